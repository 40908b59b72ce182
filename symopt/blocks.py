r"""The building blocks every update rule is made of: small elementwise transforms.

Each factory returns a :class:`symopt.Transform` (see :mod:`symopt.transform` for the
contract) that declares itself elementwise. A rule is a short :func:`symopt.chain` of
them (:mod:`symopt.rules`). State is created with :func:`symopt.state.param_state` (one
shared variable per parameter, named ``<param>.<role>``) and
:func:`symopt.state.step_counter` (an int64 ``<rule>.t``).

Hyperparameters may be Python or NumPy numbers, shared variables or symbolic scalars;
they are cast to each parameter's dtype, so a float32 parameter stays float32, and a value
known when the rule is built is checked twice (:class:`symopt._checks.Hyperparameter`): as
given, and in each dtype it is used in (``beta1=1 - 1e-9`` is 1.0 in float32).
"""

from __future__ import annotations

import numbers

import pytensor.tensor as pt

from symopt._checks import Hyperparameter, as_scalar, known_value
from symopt.state import param_state, step_counter
from symopt.step_schedules import StepSchedule
from symopt.transform import Transform

__all__ = [
    "add_decayed_weights",
    "identity",
    "negate",
    "scale",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adagrad_window",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_nadam",
    "scale_by_rms",
    "scale_by_rprop",
    "trace",
]


def _pair(value, name, what):
    """``value`` as two hyperparameters, or a clear error."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair {what}, got {value!r}") from None
    return first, second


def _elementwise(fn, name):
    """A stateless elementwise transform from ``fn(step, param) -> new_step``."""

    def transform(steps, params):
        return [fn(s, p) for s, p in zip(steps, params, strict=True)], []

    return Transform(transform, elementwise=True, name=name)



def identity():
    """The transform that changes nothing."""
    return _elementwise(lambda s, p: s, "identity")


def scale(factor):
    r"""Multiply every step by ``factor``: :math:`s \leftarrow c\, s`."""
    factor = Hyperparameter(factor, "factor")
    return _elementwise(lambda s, p: factor(p.dtype) * s, "scale")


def negate():
    r"""Flip the sign of every step, :math:`s \leftarrow -s`; exact in floating point."""
    return _elementwise(lambda s, p: -s, "negate")


def scale_by_learning_rate(learning_rate):
    r"""Turn gradient-like steps into descent steps: :math:`s \leftarrow -\eta\, s`.

    This is the one place where the sign is flipped. ``learning_rate`` may be a
    :class:`symopt.schedules.StepSchedule`: then :math:`\eta = \eta(n)` with :math:`n` a
    counter of this block's own, ``learning_rate.t`` (0 at the first step, as in optax),
    saved and restored with the rest of the state.
    """
    if isinstance(learning_rate, StepSchedule):
        return _scheduled_learning_rate(learning_rate)
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    return _elementwise(lambda s, p: -(learning_rate(p.dtype) * s), "scale_by_learning_rate")


def _scheduled_learning_rate(schedule):
    def transform(steps, params):
        count = step_counter("learning_rate")
        rate = schedule(count)
        new_steps = [-(as_scalar(rate, p.dtype) * s) for s, p in zip(steps, params, strict=True)]
        return new_steps, [(count, count + 1)]

    return Transform(transform, elementwise=True, name=f"scale_by_learning_rate({schedule!r})")


def add_decayed_weights(weight_decay):
    r"""Add the decoupled weight decay term: :math:`s \leftarrow s + \lambda\, \theta`."""
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)
    return _elementwise(lambda s, p: s + weight_decay(p.dtype) * p, "add_decayed_weights")


def trace(decay=0.9, nesterov=False):
    r"""A momentum trace of the steps (a velocity).

    .. math::

        v \leftarrow \mu\, v + s, \qquad
        s \leftarrow v \ \ \text{(classical)} \quad\text{or}\quad
        s \leftarrow \mu\, v + s \ \ \text{(Nesterov)}

    State: ``<param>.velocity``, zeros at first.
    """
    decay = Hyperparameter(decay, "momentum", low=0, high=1)

    def transform(steps, params):
        new_steps, state = [], []
        for s, p in zip(steps, params, strict=True):
            mu = decay(p.dtype)
            v = param_state(p, "velocity", "momentum")
            v_new = mu * v + s
            new_steps.append(mu * v_new + s if nesterov else v_new)
            state.append((v, v_new))
        return new_steps, state

    return Transform(transform, elementwise=True, name="trace")


def scale_by_adagrad(epsilon=1e-6):
    r"""Divide by the root of the summed squared gradients (Duchi et al., 2011).

    .. math::

        r \leftarrow r + g^2, \qquad s \leftarrow g / \sqrt{r + \epsilon}

    State: ``<param>.sum_square``. ``epsilon`` must be > 0 (in the parameter's dtype): it
    keeps :math:`0 / 0` from the first zero gradient.
    """
    epsilon = _epsilon(epsilon)

    def transform(steps, params):
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            eps = epsilon(p.dtype)
            r = param_state(p, "sum_square", "adagrad")
            r_new = r + pt.sqr(g)
            new_steps.append(g / pt.sqrt(r_new + eps))
            state.append((r, r_new))
        return new_steps, state

    return Transform(transform, elementwise=True, name="scale_by_adagrad")


def scale_by_adagrad_window(epsilon=0.1, n_win=10, learning_rate=None):
    r"""Adagrad over a window: divide by the root of the last ``n_win`` squared gradients.

    PyMC's ``adagrad_window`` (its default optimizer for ``pm.fit``): the sum of all
    squared gradients of :func:`scale_by_adagrad` becomes the sum of the last
    :math:`n` of them, kept in a ring buffer, so old gradients stop counting:

    .. math::

        w_{t \bmod n} \leftarrow g^2, \qquad
        s \leftarrow g \,/\, \sqrt{\textstyle\sum_{k=0}^{n-1} w_k + \epsilon}

    with the window :math:`w` zero at first (the first :math:`n - 1` steps sum fewer
    squares). State: ``<param>.window``, of the parameter's shape with a last axis of
    length ``n_win`` (PyMC's layout), and the counter ``adagrad_window.t``, whose value
    modulo ``n_win`` is the slot written next.

    Given a ``learning_rate``, the block folds it in and gives the descent step
    :math:`-(\eta g) / \sqrt{\cdot}` (the products in PyMC's order, so that it rounds as
    PyMC's does whatever the gradient graph is, a clipped one included); otherwise chain
    :func:`scale_by_learning_rate` after it.

    Not elementwise in the fused path's sense: the window has an axis the parameter does
    not, and the flat buffers of :mod:`symopt.fused` are parameter-shaped. ``fuse=True``
    refuses it, ``fuse="auto"`` keeps it on the per-tensor path.
    """
    epsilon = _epsilon(epsilon)
    if learning_rate is not None:
        learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    if isinstance(n_win, bool) or not isinstance(n_win, numbers.Integral) or n_win < 1:
        raise ValueError(f"n_win must be a positive integer (the number of past squared "
                         f"gradients summed), got {n_win!r}")
    n_win = int(n_win)

    def transform(steps, params):
        t = step_counter("adagrad_window")
        slot = t % n_win
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            eps = epsilon(p.dtype)
            window = param_state(p, "window", "adagrad_window", extra_axes=(n_win,))
            window_new = pt.set_subtensor(window[..., slot], pt.sqr(g))
            new_steps.append(_step_size(g, pt.sqrt(window_new.sum(axis=-1) + eps),
                                        learning_rate, p.dtype))
            state.append((window, window_new))
        return new_steps, state + [(t, t + 1)]

    return Transform(transform, elementwise=False, name="scale_by_adagrad_window")


def scale_by_rms(rho=0.9, epsilon=1e-6, centered=False):
    r"""Divide by a running root mean square of the gradients (Tieleman & Hinton, 2012).

    .. math::

        r \leftarrow \rho\, r + (1-\rho)\, g^2, \qquad
        s \leftarrow g / \sqrt{r + \epsilon}

    With ``centered=True`` the running mean :math:`\bar g \leftarrow \rho \bar g + (1-\rho) g`
    is also kept and :math:`s \leftarrow g / \sqrt{r - \bar g^2 + \epsilon}` (Graves, 2013).
    State: ``<param>.mean_square`` and, centered, ``<param>.mean_grad``.
    """
    rho, epsilon = Hyperparameter(rho, "rho", low=0, high=1), _epsilon(epsilon)

    def transform(steps, params):
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            rho_, eps = rho(p.dtype), epsilon(p.dtype)
            r = param_state(p, "mean_square", "rmsprop")
            r_new = rho_ * r + (1 - rho_) * pt.sqr(g)
            state.append((r, r_new))
            denominator = r_new
            if centered:
                m = param_state(p, "mean_grad", "rmsprop")
                m_new = rho_ * m + (1 - rho_) * g
                state.append((m, m_new))
                denominator = r_new - pt.sqr(m_new)
            new_steps.append(g / pt.sqrt(denominator + eps))
        return new_steps, state

    return Transform(transform, elementwise=True, name="scale_by_rms")


def scale_by_adadelta(rho=0.95, epsilon=1e-6):
    r"""Scale by the ratio of running RMS of past updates and of gradients (Zeiler, 2012).

    .. math::

        r &\leftarrow \rho\, r + (1-\rho)\, g^2 \\
        s &\leftarrow g\, \sqrt{d + \epsilon} / \sqrt{r + \epsilon} \\
        d &\leftarrow \rho\, d + (1-\rho)\, s^2

    State: ``<param>.mean_square`` and ``<param>.mean_square_delta``.
    """
    rho, epsilon = Hyperparameter(rho, "rho", low=0, high=1), _epsilon(epsilon)

    def transform(steps, params):
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            rho_, eps = rho(p.dtype), epsilon(p.dtype)
            r = param_state(p, "mean_square", "adadelta")
            d = param_state(p, "mean_square_delta", "adadelta")
            r_new = rho_ * r + (1 - rho_) * pt.sqr(g)
            s = g * pt.sqrt(d + eps) / pt.sqrt(r_new + eps)
            d_new = rho_ * d + (1 - rho_) * pt.sqr(s)
            new_steps.append(s)
            state += [(r, r_new), (d, d_new)]
        return new_steps, state

    return Transform(transform, elementwise=True, name="scale_by_adadelta")


def _epsilon(epsilon):
    """``epsilon`` where it guards a division (by a root of zeros at the first step):
    > 0, in each dtype it is used in."""
    return Hyperparameter(epsilon, "epsilon", low=0, low_open=True)


#: Where Adam's family adds epsilon: to the root of the bias-corrected second moment
#: (Algorithm 1 of Kingma & Ba; torch, optax), or to the root of the raw one, with both
#: bias corrections folded into the step size (the paper's "efficient" form of section 2;
#: Lasagne, PyMC).
EPSILON_PLACEMENTS = ("after_correction", "before_correction")


def _check_placement(epsilon_placement, learning_rate):
    if epsilon_placement not in EPSILON_PLACEMENTS:
        raise ValueError(f"epsilon_placement must be one of {EPSILON_PLACEMENTS}, got "
                         f"{epsilon_placement!r}")
    if learning_rate is not None:
        if epsilon_placement != "before_correction":
            raise ValueError("learning_rate is folded into the step size only with "
                             "epsilon_placement='before_correction'; otherwise chain "
                             "scale_by_learning_rate after this block")
        Hyperparameter(learning_rate, "learning_rate", low=0)


def _step_size(numerator, denominator, learning_rate, dtype):
    r"""The efficient form's step size :math:`\alpha_t = -\eta \cdot n / d` (or ``n / d``);
    also adagrad_window's step, :math:`-\eta g / d`.

    ``numerator`` None stands for 1. Given a learning rate, it is folded in with its sign,
    as ``(-lr * n) / d`` (``-lr / d``): Lasagne and PyMC compute ``(lr * n) / d`` and
    subtract the step, which rounds the same; PyTensor's rewrites keep that order only
    for this exact graph (a ``* 1``, or the sign outside, lets them reorder the product).
    """
    if learning_rate is None:
        return (1 / denominator) if numerator is None else numerator / denominator
    if not isinstance(learning_rate, Hyperparameter):
        learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    negative_rate = -learning_rate(dtype)
    if numerator is None:
        return negative_rate / denominator
    return negative_rate * numerator / denominator


def _moments(g, p, b1, b2, rule):
    """The first and second moment estimates of Adam, and their state pairs."""
    m = param_state(p, "m", rule)
    v = param_state(p, "v", rule)
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * pt.sqr(g)
    return m_new, v_new, [(m, m_new), (v, v_new)]


def _adam_family(rule, beta1, beta2, epsilon, direction):
    """A transform with a step counter and per-parameter state; ``direction`` gives a step.

    ``direction(g, p, b1, b2, eps, t)`` returns ``(step, state_pairs)`` for one parameter,
    with ``t`` the step count (1 at the first step) cast to the parameter's dtype.
    """
    beta1 = Hyperparameter(beta1, "beta1", low=0, high=1, high_open=True)
    beta2 = Hyperparameter(beta2, "beta2", low=0, high=1, high_open=True)
    epsilon = _epsilon(epsilon)

    def transform(steps, params):
        t = step_counter(rule)
        t_new = t + 1
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            dtype = p.dtype
            step, pairs = direction(
                g, p, beta1(dtype), beta2(dtype), epsilon(dtype), pt.cast(t_new, dtype),
            )
            new_steps.append(step)
            state += pairs
        return new_steps, state + [(t, t_new)]

    return Transform(transform, elementwise=True, name=f"scale_by_{rule}")


def scale_by_adam(beta1=0.9, beta2=0.999, epsilon=1e-8, name="adam", *,
                  epsilon_placement="after_correction", learning_rate=None):
    r"""Adam's direction, Algorithm 1 of Kingma & Ba (2015).

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        s &\leftarrow \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    With ``epsilon_placement="before_correction"`` (Kingma & Ba's "efficient" form of
    their section 2, which Lasagne and PyMC compute) both bias corrections move into the
    step size and epsilon is added to the root of the raw second moment:

    .. math::

        \alpha_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
        s \leftarrow \alpha_t\, \frac{m}{\sqrt{v} + \epsilon}

    which is the first form with :math:`\epsilon` scaled by :math:`\sqrt{1-\beta_2^t}`:
    the two agree while :math:`\epsilon` is small next to :math:`\sqrt{v}`. Given a
    ``learning_rate`` (only in that form), the block folds it into the step size,
    :math:`\alpha_t = -\eta \sqrt{1-\beta_2^t}/(1-\beta_1^t)`, and returns descent steps
    (no :func:`scale_by_learning_rate` after it): the order in which Lasagne and PyMC
    round, so the rule equals theirs bit for bit.

    State: ``<param>.m``, ``<param>.v`` and the counter ``<name>.t``.
    """
    _check_placement(epsilon_placement, learning_rate)

    def direction(g, p, b1, b2, eps, t):
        m, v, pairs = _moments(g, p, b1, b2, name)
        if epsilon_placement == "after_correction":
            return (m / (1 - b1**t)) / (pt.sqrt(v / (1 - b2**t)) + eps), pairs
        alpha = _step_size(pt.sqrt(1 - b2**t), 1 - b1**t, learning_rate, p.dtype)
        return alpha * m / (pt.sqrt(v) + eps), pairs

    return _adam_family(name, beta1, beta2, epsilon, direction)


def scale_by_adamax(beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                    epsilon_placement="after_correction", learning_rate=None):
    r"""AdaMax's direction, the infinity-norm Adam of Kingma & Ba (2015), Algorithm 2.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        u \leftarrow \max(\beta_2 u, |g|), \qquad
        s \leftarrow \frac{m / (1-\beta_1^t)}{u + \epsilon}

    :math:`u` has no bias correction, so both ``epsilon_placement`` values give this
    equation; ``"before_correction"`` computes it as Lasagne and PyMC do, the correction
    in the step size first, :math:`\alpha_t = 1/(1-\beta_1^t)` and
    :math:`s \leftarrow \alpha_t\, m / (u + \epsilon)`, and, given a ``learning_rate``,
    folds it in (:math:`\alpha_t = -\eta/(1-\beta_1^t)`, descent steps), which rounds as
    they do. State: ``<param>.m``, ``<param>.u`` and ``adamax.t``.
    """
    _check_placement(epsilon_placement, learning_rate)

    def direction(g, p, b1, b2, eps, t):
        m = param_state(p, "m", "adamax")
        u = param_state(p, "u", "adamax")
        m_new = b1 * m + (1 - b1) * g
        u_new = pt.maximum(b2 * u, pt.abs(g))
        pairs = [(m, m_new), (u, u_new)]
        if epsilon_placement == "after_correction":
            return (m_new / (1 - b1**t)) / (u_new + eps), pairs
        alpha = _step_size(None, 1 - b1**t, learning_rate, p.dtype)
        return alpha * m_new / (u_new + eps), pairs

    return _adam_family("adamax", beta1, beta2, epsilon, direction)


def scale_by_amsgrad(beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                     epsilon_placement="after_correction", learning_rate=None):
    r"""AMSGrad's direction (Reddi et al., 2018), with Adam's bias correction.

    .. math::

        \hat v \leftarrow \max(\hat v, v), \qquad
        s \leftarrow \frac{m / (1-\beta_1^t)}{\sqrt{\hat v / (1-\beta_2^t)} + \epsilon}

    with ``m`` and ``v`` as in Adam: the form of ``torch.optim.Adam(amsgrad=True)``. With
    ``epsilon_placement="before_correction"``, Lasagne's ``amsgrad``:
    :math:`s \leftarrow \alpha_t\, m / (\sqrt{\hat v} + \epsilon)` with
    :math:`\alpha_t` as in :func:`scale_by_adam` (and a ``learning_rate`` folded in the
    same way). State: ``<param>.m``, ``<param>.v``, ``<param>.v_max`` and ``amsgrad.t``.
    """
    _check_placement(epsilon_placement, learning_rate)

    def direction(g, p, b1, b2, eps, t):
        m, v, pairs = _moments(g, p, b1, b2, "amsgrad")
        v_max = param_state(p, "v_max", "amsgrad")
        v_max_new = pt.maximum(v_max, v)
        pairs = pairs + [(v_max, v_max_new)]
        if epsilon_placement == "after_correction":
            return (m / (1 - b1**t)) / (pt.sqrt(v_max_new / (1 - b2**t)) + eps), pairs
        alpha = _step_size(pt.sqrt(1 - b2**t), 1 - b1**t, learning_rate, p.dtype)
        return alpha * m / (pt.sqrt(v_max_new) + eps), pairs

    return _adam_family("amsgrad", beta1, beta2, epsilon, direction)


def scale_by_nadam(beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""NAdam's direction: Adam with a Nesterov look-ahead on the first moment (Dozat, 2016).

    .. math::

        \hat m = \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g}{1-\beta_1^t},
        \qquad s \leftarrow \frac{\hat m}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    with a constant :math:`\beta_1` (optax's ``nadam``; torch's NAdam adds a momentum
    schedule). State: ``<param>.m``, ``<param>.v`` and ``nadam.t``.
    """

    def direction(g, p, b1, b2, eps, t):
        m, v, pairs = _moments(g, p, b1, b2, "nadam")
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        return m_hat / (pt.sqrt(v / (1 - b2**t)) + eps), pairs

    return _adam_family("nadam", beta1, beta2, epsilon, direction)


def scale_by_lion(beta1=0.9, beta2=0.99):
    r"""Lion's direction: the sign of an interpolation of momentum and gradient.

    .. math::

        s \leftarrow \mathrm{sign}\big(\beta_1 m + (1-\beta_1)\, g\big), \qquad
        m \leftarrow \beta_2 m + (1-\beta_2)\, g

    Chen et al. (2023), "Symbolic Discovery of Optimization Algorithms", Program 1.
    State: ``<param>.m``.
    """
    beta1 = Hyperparameter(beta1, "beta1", low=0, high=1)
    beta2 = Hyperparameter(beta2, "beta2", low=0, high=1)

    def transform(steps, params):
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            b1, b2 = beta1(p.dtype), beta2(p.dtype)
            m = param_state(p, "m", "lion")
            new_steps.append(pt.sign(b1 * m + (1 - b1) * g))
            state.append((m, b2 * m + (1 - b2) * g))
        return new_steps, state

    return Transform(transform, elementwise=True, name="scale_by_lion")


def scale_by_rprop(initial_step=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    r"""Rprop's step (Riedmiller & Braun, 1993), in the iRprop- form of ``torch.optim.Rprop``.

    Each element keeps its own step size :math:`\delta`, starting at ``initial_step``:

    .. math::

        \delta \leftarrow \mathrm{clip}\big(\delta \cdot
            \begin{cases}\eta^+ & g\, g_{prev} > 0\\ \eta^- & g\, g_{prev} < 0\\
            1 & \text{otherwise}\end{cases}, \delta_{min}, \delta_{max}\big), \qquad
        s \leftarrow \mathrm{sign}(g)\, \delta

    where the sign flipped (:math:`g\, g_{prev} < 0`) the element does not move and its
    stored gradient is set to zero. Only the gradient's sign is used: the step carries the
    units of the parameter. State: ``<param>.prev_grad``, ``<param>.step_size``, ``rprop.t``.
    """
    initial_step = Hyperparameter(initial_step, "learning_rate", low=0)
    eta_minus, eta_plus = _pair(etas, "etas", "(eta_minus, eta_plus), e.g. (0.5, 1.2)")
    eta_minus = Hyperparameter(eta_minus, "etas[0]", low=0, high=1)
    eta_plus = Hyperparameter(eta_plus, "etas[1]", low=1)
    min_step, max_step = _pair(step_sizes, "step_sizes",
                               "(smallest, largest) step size, e.g. (1e-6, 50.0)")
    min_step = Hyperparameter(min_step, "step_sizes[0]", low=0)
    max_step = Hyperparameter(max_step, "step_sizes[1]", low=0)
    smallest, largest = known_value(min_step.value), known_value(max_step.value)
    if smallest is not None and largest is not None and smallest > largest:
        raise ValueError(f"step_sizes={tuple(step_sizes)!r}: the smallest step size "
                         f"(step_sizes[0]) is larger than the largest (step_sizes[1])")

    def transform(steps, params):
        t = step_counter("rprop")
        first = pt.eq(t, 0)
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            dtype = p.dtype
            prev = param_state(p, "prev_grad", "rprop")
            delta = param_state(p, "step_size", "rprop")
            delta_old = pt.switch(first, initial_step(dtype), delta)
            agreement = g * prev
            factor = pt.switch(
                pt.gt(agreement, 0), eta_plus(dtype),
                pt.switch(pt.lt(agreement, 0), eta_minus(dtype), as_scalar(1, dtype)),
            )
            delta_new = pt.clip(delta_old * factor, min_step(dtype), max_step(dtype))
            g_kept = pt.switch(pt.lt(agreement, 0), pt.zeros_like(g), g)
            new_steps.append(pt.sign(g_kept) * delta_new)
            state += [(prev, g_kept), (delta, delta_new)]
        return new_steps, state + [(t, t + 1)]

    return Transform(transform, elementwise=True, name="scale_by_rprop")
