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

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pytensor
import pytensor.tensor as pt

from symopt._checks import (
    Hyperparameter,
    as_scalar,
    check_hyper,
    check_positive_int,
    known_value,
    nonzero,
)
from symopt.state import param_state, rule_state, step_counter
from symopt.step_schedules import StepSchedule
from symopt.transform import Transform

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    from pytensor.graph.basic import Variable

    from symopt._typing import EpsilonPlacement, LearningRate, Scalar

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



def identity() -> Transform:
    """The transform that changes nothing."""
    return _elementwise(lambda s, p: s, "identity")


def scale(factor: Scalar) -> Transform:
    r"""Multiply every step by ``factor``: :math:`s \leftarrow c\, s`."""
    factor = Hyperparameter(factor, "factor")
    return _elementwise(lambda s, p: factor(p.dtype) * s, "scale")


def negate() -> Transform:
    r"""Flip the sign of every step, :math:`s \leftarrow -s`; exact in floating point."""
    return _elementwise(lambda s, p: -s, "negate")


def scale_by_learning_rate(learning_rate: LearningRate) -> Transform:
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


def add_decayed_weights(weight_decay: Scalar) -> Transform:
    r"""Add the decoupled weight decay term: :math:`s \leftarrow s + \lambda\, \theta`."""
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)
    return _elementwise(lambda s, p: s + weight_decay(p.dtype) * p, "add_decayed_weights")


def trace(decay: Scalar = 0.9, nesterov: bool = False) -> Transform:
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


def scale_by_adagrad(epsilon: Scalar = 1e-6) -> Transform:
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


def scale_by_adagrad_window(epsilon: Scalar = 0.1, n_win: int = 10,
                            learning_rate: Scalar | None = None) -> Transform:
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
    refuses it, ``fuse="auto"`` keeps it on the per-tensor path. On the C backends and
    Numba a compile-time rewrite writes and sums the window in one pass
    (:mod:`symopt.fused.window`), with the same result.
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


def scale_by_rms(rho: Scalar = 0.9, epsilon: Scalar = 1e-6, centered: bool = False) -> Transform:
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


def scale_by_adadelta(rho: Scalar = 0.95, epsilon: Scalar = 1e-6) -> Transform:
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


def _betas(beta1, beta2):
    """Adam's two decay rates, each in [0, 1)."""
    return (Hyperparameter(beta1, "beta1", low=0, high=1, high_open=True),
            Hyperparameter(beta2, "beta2", low=0, high=1, high_open=True))


def _adam_family(rule, beta1, beta2, epsilon, direction):
    """A transform with a step counter and per-parameter state; ``direction`` gives a step.

    ``direction(g, p, b1, b2, eps, t)`` returns ``(step, state_pairs)`` for one parameter,
    with ``t`` the step count (1 at the first step) cast to the parameter's dtype.
    """
    beta1, beta2 = _betas(beta1, beta2)
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


def scale_by_adam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8,
                  name: str = "adam", eps_root: Scalar = 0.0, *,
                  epsilon_placement: EpsilonPlacement = "after_correction",
                  learning_rate: Scalar | None = None) -> Transform:
    r"""Adam's direction, Algorithm 1 of Kingma & Ba (2015).

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        s &\leftarrow \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t) + \epsilon_{root}}
            + \epsilon}

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

    ``eps_root`` (optax's; zero for Adam, LAMB takes it) is added under the root of the
    corrected second moment, in the first form only. State: ``<param>.m``, ``<param>.v``
    and the counter ``<name>.t``.
    """
    _check_placement(epsilon_placement, learning_rate)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)
    if nonzero(eps_root) and epsilon_placement != "after_correction":
        raise ValueError("eps_root is added under the root of the corrected second moment, "
                         "so it needs epsilon_placement='after_correction', got "
                         f"{epsilon_placement!r}")

    def direction(g, p, b1, b2, eps, t):
        m, v, pairs = _moments(g, p, b1, b2, name)
        if epsilon_placement == "after_correction":
            v_hat = v / (1 - b2**t)
            if nonzero(eps_root):
                v_hat = v_hat + eps_root(p.dtype)
            return (m / (1 - b1**t)) / (pt.sqrt(v_hat) + eps), pairs
        alpha = _step_size(pt.sqrt(1 - b2**t), 1 - b1**t, learning_rate, p.dtype)
        return alpha * m / (pt.sqrt(v) + eps), pairs

    return _adam_family(name, beta1, beta2, epsilon, direction)


def scale_by_adamax(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8, *,
                    epsilon_placement: EpsilonPlacement = "after_correction",
                    learning_rate: Scalar | None = None) -> Transform:
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


def scale_by_amsgrad(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8, *,
                     epsilon_placement: EpsilonPlacement = "after_correction",
                     learning_rate: Scalar | None = None) -> Transform:
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


def scale_by_nadam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8) -> Transform:
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


def scale_by_lion(beta1: Scalar = 0.9, beta2: Scalar = 0.99) -> Transform:
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


def scale_by_rprop(initial_step: Scalar = 0.01, etas: tuple[Scalar, Scalar] = (0.5, 1.2),
                   step_sizes: tuple[Scalar, Scalar] = (1e-6, 50.0)) -> Transform:
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


# --------------------------------------------------------------------------------------
# The modern rules' blocks (issue 17)
# --------------------------------------------------------------------------------------


def _counted(rule, direction, elementwise=True, name=None):
    """A transform with a step counter ``<rule>.t`` and per-parameter state.

    ``direction(g, p, t)`` returns ``(step, state_pairs)`` for one parameter, with ``t``
    the step count (1 at the first step) cast to the parameter's dtype.
    """

    def transform(steps, params):
        t = step_counter(rule)
        t_new = t + 1
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            step, pairs = direction(g, p, pt.cast(t_new, p.dtype))
            new_steps.append(step)
            state += pairs
        return new_steps, state + [(t, t_new)]

    return Transform(transform, elementwise=elementwise, name=name or f"scale_by_{rule}")


def _lerp(a, b, weight):
    """``a + weight * (b - a)``: torch's ``lerp``, the form torch's rules update with."""
    return a + weight * (b - a)


def _frobenius(x):
    return pt.sqrt(pt.sum(pt.sqr(x)))


def scale_by_radam(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8) -> Transform:
    r"""RAdam's direction (Liu et al., 2020): Adam's, rectified once its variance is known.

    .. math::

        \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}, \qquad
        s \leftarrow \begin{cases}
            r_t\, \hat m\, \sqrt{1-\beta_2^t} / (\sqrt v + \epsilon) & \rho_t > 5 \\
            \hat m & \text{otherwise}\end{cases}

    with :math:`\hat m = m/(1-\beta_1^t)` and
    :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty / ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}`,
    the form of ``torch.optim.RAdam``. State: ``<param>.m``, ``<param>.v``, ``radam.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2 = beta1(dtype), beta2(dtype)
        m = param_state(p, "m", "radam")
        v = param_state(p, "v", "radam")
        m_new = _lerp(m, g, 1 - b1)
        v_new = b2 * v + (1 - b2) * pt.sqr(g)
        bias1, bias2 = 1 - b1**t, 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / bias2
        rectifier = pt.sqrt(pt.maximum(
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t),
            as_scalar(0, dtype)))
        m_hat = m_new / bias1
        rectified = m_hat * rectifier * pt.sqrt(bias2) / (pt.sqrt(v_new)
                                                          + epsilon(dtype))
        step = pt.switch(pt.gt(rho_t, 5), rectified, m_hat)
        return step, [(m, m_new), (v, v_new)]

    return _counted("radam", direction)


def scale_by_adafactor(learning_rate: Scalar = 1e-2, beta2_decay: Scalar = -0.8,
                       epsilon1: Scalar | None = None, epsilon2: Scalar = 1e-3, d: Scalar = 1.0,
                       weight_decay: Scalar = 0.0) -> Transform:
    r"""Adafactor's step (Shazeer & Stern, 2018), in the form of ``torch.optim.Adafactor``.

    The second moment of a matrix (of the last two axes of a tensor) is kept factored,
    as its row and column means :math:`R` and :math:`C`; a vector keeps it whole:

    .. math::

        w_t &= t^{c}, \qquad R \leftarrow R + w_t (\mathrm{mean}_{-1}(g^2) - R), \qquad
            C \leftarrow C + w_t (\mathrm{mean}_{-2}(g^2) - C), \qquad
            \hat V = \frac{R\, C}{\max(\mathrm{mean}_{-2}(R), \epsilon_1)} \\
        U &= g / \sqrt{\max(\hat V, \epsilon_1^2)}, \qquad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta)) \min(\eta, 1/\sqrt t) \\
        s &\leftarrow \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\, U + \eta\lambda\,\theta

    with :math:`c` = ``beta2_decay`` and ``epsilon1`` None the dtype's machine epsilon.
    The step is uphill and in the parameter's units (negate it). Not elementwise: the
    root mean squares and the factored means look across each tensor. State:
    ``<param>.row_variance`` and ``<param>.col_variance`` (shapes ``shape[:-1] + (1,)``
    and ``shape[:-2] + (1, shape[-1])``) for tensors of two dimensions or more,
    ``<param>.variance`` for the others, and ``adafactor.t``.
    """
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    beta2_decay = Hyperparameter(beta2_decay, "beta2_decay", high=0)
    if epsilon1 is not None:
        epsilon1 = Hyperparameter(epsilon1, "epsilon1", low=0)
    epsilon2 = Hyperparameter(epsilon2, "epsilon2", low=0)
    d = Hyperparameter(d, "d", low=1)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        lr = learning_rate(dtype)
        eps1 = as_scalar(np.finfo(dtype).eps, dtype) if epsilon1 is None else epsilon1(dtype)
        size = pt.cast(p.size, dtype)
        w = t ** beta2_decay(dtype)
        alpha = (pt.maximum(epsilon2(dtype), _frobenius(p) / pt.sqrt(size))
                 * pt.minimum(lr, 1 / pt.sqrt(t)))
        g2 = pt.sqr(g)
        if p.ndim >= 2:
            row = param_state(p, "row_variance", "adafactor",
                              shape_of=lambda shape: shape[:-1] + (1,))
            col = param_state(p, "col_variance", "adafactor",
                              shape_of=lambda shape: shape[:-2] + (1, shape[-1]))
            row_new = _lerp(row, pt.mean(g2, axis=-1, keepdims=True), w)
            col_new = _lerp(col, pt.mean(g2, axis=-2, keepdims=True), w)
            v_hat = row_new * col_new / pt.maximum(pt.mean(row_new, axis=-2, keepdims=True),
                                                   eps1)
            pairs = [(row, row_new), (col, col_new)]
        else:
            variance = param_state(p, "variance", "adafactor")
            v_hat = _lerp(variance, g2, w)
            pairs = [(variance, v_hat)]
        u = g / pt.sqrt(pt.maximum(v_hat, eps1 * eps1))
        clipping = pt.maximum(as_scalar(1, dtype),
                              _frobenius(u) / pt.sqrt(size) / d(dtype))
        step = (alpha / clipping) * u
        if nonzero(weight_decay):
            step = step + (lr * weight_decay(dtype)) * p
        return step, pairs

    return _counted("adafactor", direction, elementwise=False)


def scale_by_asgd(learning_rate: Scalar = 1e-2, lambd: Scalar = 1e-4, alpha: Scalar = 0.75,
                  t0: Scalar = 1e6, weight_decay: Scalar = 0.0) -> Transform:
    r"""Averaged SGD's step (Polyak & Juditsky, 1992), in the form of ``torch.optim.ASGD``.

    With :math:`k = t-1` the steps already taken:

    .. math::

        \eta_k = \frac{\eta}{(1 + \lambda \eta k)^\alpha}, \qquad
        \mu_k = \frac{1}{\max(1, k - t_0)}, \qquad
        s \leftarrow \eta_k\, (g + w\theta) + \lambda \eta_k\, \theta \\
        \bar\theta \leftarrow \bar\theta + \mu_k\, (\theta - s - \bar\theta)
            \quad(\text{the new parameter itself while } \mu_k = 1)

    The step is uphill, in the parameter's units. State: ``<param>.average``
    (:math:`\bar\theta`, the averaged parameters) and ``asgd.t``.
    """
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    lambd = Hyperparameter(lambd, "lambd", low=0)
    alpha = Hyperparameter(alpha, "alpha", low=0)
    t0 = Hyperparameter(t0, "t0", low=0)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)

    def transform(steps, params):
        t = step_counter("asgd")
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            dtype = p.dtype
            k = pt.cast(t, dtype)
            lr, lam = learning_rate(dtype), lambd(dtype)
            eta = lr / (1 + lam * lr * k) ** alpha(dtype)
            mu = 1 / pt.maximum(as_scalar(1, dtype), k - t0(dtype))
            if nonzero(weight_decay):
                g = g + weight_decay(dtype) * p
            step = (lam * eta) * p + eta * g
            new_p = p - step
            average = param_state(p, "average", "asgd")
            average_new = pt.switch(pt.eq(mu, 1), new_p, average + (new_p - average) * mu)
            new_steps.append(step)
            state.append((average, average_new))
        return new_steps, state + [(t, t + 1)]

    return Transform(transform, elementwise=True, name="scale_by_asgd")


def _newton_schulz(x, shape, coefficients, steps, epsilon):
    """The quintic Newton-Schulz iteration of ``torch.optim.Muon`` on a matrix ``x``."""
    rows, cols = shape
    if rows > cols:
        x = x.T
    x = x / pt.maximum(_frobenius(x), epsilon)
    a, b, c = coefficients
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if rows > cols else x


def scale_by_muon(learning_rate: Scalar = 1e-3, weight_decay: Scalar = 0.1, momentum: Scalar = 0.95,
                  nesterov: bool = True,
                  ns_coefficients: tuple[Scalar, Scalar, Scalar] = (3.4445, -4.7750, 2.0315),
                  epsilon: Scalar = 1e-7, ns_steps: int = 5,
                  adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None,
                  adam_learning_rate: Scalar | None = None, adam_beta1: Scalar = 0.9,
                  adam_beta2: Scalar = 0.999, adam_epsilon: Scalar = 1e-8,
                  adam_weight_decay: Scalar = 0.0) -> Transform:
    r"""Muon's step for matrices (Jordan et al., 2024), AdamW's for the other parameters.

    For a matrix of shape :math:`(A, B)`, in the form of ``torch.optim.Muon``:

    .. math::

        M &\leftarrow M + (1-\mu)(g - M), \qquad
        \tilde M = g + \mu (M - g)\ \text{(Nesterov) or } M \\
        O &= \mathrm{NS}^{(a,b,c)}_k\big(\tilde M / \max(\|\tilde M\|_F, \epsilon)\big),
            \qquad s \leftarrow \eta\, r\, O + \eta \lambda\, \theta

    with :math:`r = \sqrt{\max(1, A/B)}` (``adjust_lr_fn`` None or ``"original"``) or
    :math:`0.2\sqrt{\max(A, B)}` (``"match_rms_adamw"``), and NS the quintic
    Newton-Schulz iteration towards the orthogonal factor of its argument. Every other
    parameter (vectors, scalars, tensors of three dimensions or more, which torch's Muon
    refuses) gets ``torch.optim.AdamW``'s step with the ``adam_*`` hyperparameters
    (``adam_learning_rate`` None: ``learning_rate``). The step is uphill, the learning
    rates in it. Not elementwise. State: ``<param>.m`` for every parameter,
    ``<param>.v`` for the AdamW ones, and ``muon.t``.
    """
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)
    momentum = Hyperparameter(momentum, "momentum", low=0, high=1)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    ns_steps = check_positive_int(ns_steps, "ns_steps")
    if len(ns_coefficients) != 3:
        raise ValueError(f"ns_coefficients must be three numbers (a, b, c), got "
                         f"{ns_coefficients!r}")
    for i, value in enumerate(ns_coefficients):
        check_hyper(value, f"ns_coefficients[{i}]")
    if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
        raise ValueError(f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got "
                         f"{adjust_lr_fn!r}")
    if adam_learning_rate is not None:
        adam_learning_rate = Hyperparameter(adam_learning_rate, "adam_learning_rate", low=0)
    adam_beta1 = Hyperparameter(adam_beta1, "adam_beta1", low=0, high=1, high_open=True)
    adam_beta2 = Hyperparameter(adam_beta2, "adam_beta2", low=0, high=1, high_open=True)
    adam_epsilon = Hyperparameter(adam_epsilon, "adam_epsilon", low=0)
    adam_weight_decay = Hyperparameter(adam_weight_decay, "adam_weight_decay", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        m = param_state(p, "m", "muon")
        if p.ndim == 2:
            rows, cols = p.get_value(borrow=True).shape
            mu = momentum(dtype)
            m_new = _lerp(m, g, 1 - mu)
            u = _lerp(g, m_new, mu) if nesterov else m_new
            coefficients = [as_scalar(c, dtype) for c in ns_coefficients]
            o = _newton_schulz(u, (rows, cols), coefficients, ns_steps,
                               epsilon(dtype))
            ratio = (math.sqrt(max(1, rows / cols)) if adjust_lr_fn in (None, "original")
                     else 0.2 * math.sqrt(max(rows, cols)))
            lr = learning_rate(dtype)
            step = (lr * as_scalar(ratio, dtype)) * o
            if nonzero(weight_decay):
                step = step + (lr * weight_decay(dtype)) * p
            return step, [(m, m_new)]
        b1, b2 = adam_beta1(dtype), adam_beta2(dtype)
        lr = (learning_rate if adam_learning_rate is None else adam_learning_rate)(dtype)
        v = param_state(p, "v", "muon")
        m_new = _lerp(m, g, 1 - b1)
        v_new = b2 * v + (1 - b2) * pt.sqr(g)
        denominator = pt.sqrt(v_new) / pt.sqrt(1 - b2**t) + adam_epsilon(dtype)
        step = (lr / (1 - b1**t)) * (m_new / denominator)
        if nonzero(adam_weight_decay):
            step = step + (lr * adam_weight_decay(dtype)) * p
        return step, [(m, m_new), (v, v_new)]

    return _counted("muon", direction, elementwise=False)


def scale_by_trust_ratio(trust_coefficient: Scalar = 1.0, epsilon: Scalar = 0.0) -> Transform:
    r"""Scale each parameter's step by its trust ratio, a layer-wise learning rate.

    .. math::

        s \leftarrow \frac{\kappa\, \|\theta\|}{\|s\| + \epsilon}\, s
        \quad(\text{unchanged where either norm is zero})

    the norms over each whole tensor: LARS's local learning rate (You, Gitman & Ginsburg,
    2017) and, with :math:`\kappa = 1, \epsilon = 0`, LAMB's (You et al., 2020), as optax
    computes them. Not elementwise; no state.
    """
    trust_coefficient = Hyperparameter(trust_coefficient, "trust_coefficient", low=0)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)

    def transform(steps, params):
        new_steps = []
        for s, p in zip(steps, params, strict=True):
            dtype = p.dtype
            param_norm, step_norm = _frobenius(p), _frobenius(s)
            ratio = (trust_coefficient(dtype) * param_norm
                     / (step_norm + epsilon(dtype)))
            zero = pt.or_(pt.eq(param_norm, 0), pt.eq(step_norm, 0))
            new_steps.append(s * pt.switch(zero, as_scalar(1, dtype), ratio))
        return new_steps, []

    return Transform(transform, elementwise=False, name="scale_by_trust_ratio")


def scale_by_yogi(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-3,
                  initial_accumulator_value: Scalar = 1e-6, eps_root: Scalar = 0.0) -> Transform:
    r"""Yogi's direction (Zaheer et al., 2018), in the form of optax's ``scale_by_yogi``.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow v - (1-\beta_2)\, \mathrm{sign}(v - g^2)\, g^2, \qquad
        s \leftarrow \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    Both moments start at ``initial_accumulator_value`` (the state holds zeros until the
    first step reads that value instead). State: ``<param>.m``, ``<param>.v``,
    ``yogi.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    initial_accumulator_value = Hyperparameter(initial_accumulator_value,
                                               "initial_accumulator_value", low=0)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2 = beta1(dtype), beta2(dtype)
        first, start = pt.eq(t, 1), initial_accumulator_value(dtype)
        m = param_state(p, "m", "yogi")
        v = param_state(p, "v", "yogi")
        m_old, v_old = pt.switch(first, start, m), pt.switch(first, start, v)
        m_new = b1 * m_old + (1 - b1) * g
        g2 = pt.sqr(g)
        v_new = v_old - (1 - b2) * pt.sign(v_old - g2) * g2
        v_hat = v_new / (1 - b2**t)
        if nonzero(eps_root):
            v_hat = v_hat + eps_root(dtype)
        step = (m_new / (1 - b1**t)) / (pt.sqrt(v_hat) + epsilon(dtype))
        return step, [(m, m_new), (v, v_new)]

    return _counted("yogi", direction)


def scale_by_adan(beta1: Scalar = 0.98, beta2: Scalar = 0.92, beta3: Scalar = 0.99,
                  epsilon: Scalar = 1e-8, eps_root: Scalar = 1e-8) -> Transform:
    r"""Adan's direction (Xie et al., 2022), as its paper and its authors' code compute it.

    With :math:`\Delta = g_t - g_{t-1}` (zero at the first step) and the betas of the
    authors' code (:math:`1-\beta` of the paper's):

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\Delta, \qquad
        n \leftarrow \beta_3 n + (1-\beta_3)(g + \beta_2\Delta)^2 \\
        s &\leftarrow \frac{m/(1-\beta_1^t) + \beta_2\, v/(1-\beta_2^t)}
            {\sqrt{n/(1-\beta_3^t) + \epsilon_{root}} + \epsilon}

    State: ``<param>.m``, ``<param>.v``, ``<param>.n``, ``<param>.prev_grad``,
    ``adan.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    beta3 = Hyperparameter(beta3, "beta3", low=0, high=1, high_open=True)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2, b3 = (b(dtype) for b in (beta1, beta2, beta3))
        m, v, n, prev = (param_state(p, role, "adan") for role in ("m", "v", "n", "prev_grad"))
        diff = pt.switch(pt.eq(t, 1), as_scalar(0, dtype), g - prev)
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * diff
        n_new = b3 * n + (1 - b3) * pt.sqr(g + b2 * diff)
        n_hat = n_new / (1 - b3**t)
        if nonzero(eps_root):
            n_hat = n_hat + eps_root(dtype)
        step = ((m_new / (1 - b1**t) + b2 * (v_new / (1 - b2**t)))
                / (pt.sqrt(n_hat) + epsilon(dtype)))
        # g itself (t >= 1 at every step), with the state's broadcast pattern: a gradient
        # of static shape (1, n) could not update a state of shape (?, ?) as it is
        prev_new = pt.switch(pt.ge(t, 1), g, prev)
        return step, [(m, m_new), (v, v_new), (n, n_new), (prev, prev_new)]

    return _counted("adan", direction)


def scale_by_adabelief(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-16,
                       eps_root: Scalar = 1e-16, nesterov: bool = False) -> Transform:
    r"""AdaBelief's direction (Zhuang et al., 2020): Adam with the gradient's deviation
    from its mean, the "belief", in place of the gradient's square.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        s \leftarrow \beta_2 s + (1-\beta_2)(g - m)^2 + \epsilon_{root} \\
        s_{step} &\leftarrow \frac{\hat m}{\sqrt{s/(1-\beta_2^t)} + \epsilon}, \qquad
        \hat m = \frac{m}{1-\beta_1^t} \ \text{or (Nesterov)}\
        \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g}{1-\beta_1^t}

    State: ``<param>.m``, ``<param>.s``, ``adabelief.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2 = beta1(dtype), beta2(dtype)
        m = param_state(p, "m", "adabelief")
        s = param_state(p, "s", "adabelief")
        m_new = b1 * m + (1 - b1) * g
        s_new = b2 * s + (1 - b2) * pt.sqr(g - m_new) + eps_root(dtype)
        if nesterov:
            m_hat = b1 * (m_new / (1 - b1 ** (t + 1))) + (1 - b1) * (g / (1 - b1**t))
        else:
            m_hat = m_new / (1 - b1**t)
        step = m_hat / (pt.sqrt(s_new / (1 - b2**t)) + epsilon(dtype))
        return step, [(m, m_new), (s, s_new)]

    return _counted("adabelief", direction)


def scale_by_novograd(beta1: Scalar = 0.9, beta2: Scalar = 0.25, epsilon: Scalar = 1e-6,
                      eps_root: Scalar = 0.0, weight_decay: Scalar = 0.0) -> Transform:
    r"""NovoGrad's direction (Ginsburg et al., 2019): a second moment per tensor.

    .. math::

        v &\leftarrow \beta_2 v + (1-\beta_2) \|g\|^2 \quad(v = \|g\|^2 \text{ at the
            first step}), \qquad
        d = \frac{g}{\sqrt{v + \epsilon_{root}} + \epsilon} + \lambda\theta \\
        m &\leftarrow \beta_1 m + d, \qquad s \leftarrow m

    Not elementwise (the norm of each tensor). State: ``<param>.m``, ``<param>.v`` (a
    scalar per parameter) and ``novograd.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2 = beta1(dtype), beta2(dtype)
        m = param_state(p, "m", "novograd")
        v = param_state(p, "v", "novograd", shape_of=lambda shape: ())
        square = pt.sum(pt.sqr(g))
        v_new = pt.switch(pt.eq(t, 1), square, (1 - b2) * square + b2 * v)
        root = v_new + eps_root(dtype) if nonzero(eps_root) else v_new
        d = g / (pt.sqrt(root) + epsilon(dtype))
        if nonzero(weight_decay):
            d = d + weight_decay(dtype) * p
        m_new = b1 * m + d
        return m_new, [(m, m_new), (v, v_new)]

    return _counted("novograd", direction, elementwise=False)


def scale_by_adopt(beta1: Scalar = 0.9, beta2: Scalar = 0.9999, epsilon: Scalar = 1e-6,
                   nesterov: bool = False, use_clipping: bool = True,
                   clip_value_fn: Callable[[Variable], Scalar] | None = None) -> Transform:
    r"""ADOPT's direction (Taniguchi et al., 2024): the gradient normalised by the second
    moment of the *earlier* gradients, then averaged.

    .. math::

        \tilde g &= \mathrm{clip}\Big(\frac{g}{\max(\sqrt{v}, \epsilon)}, \pm c(t-1)\Big),
            \qquad m \leftarrow \beta_1 m + (1-\beta_1) \tilde g, \qquad
            v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        s &\leftarrow m \ \text{or (Nesterov)}\ \beta_1 m + (1-\beta_1)\tilde g

    At the first step only :math:`v \leftarrow g^2`, and the step is zero.
    :math:`c(k)` is ``clip_value_fn(k)`` (called with the symbolic count), :math:`k^{1/4}`
    when None, no clipping with ``use_clipping=False``. State: ``<param>.m``,
    ``<param>.v``, ``adopt.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    if clip_value_fn is not None and not callable(clip_value_fn):
        raise TypeError(f"clip_value_fn must be a function of the step count or None, got "
                        f"{type(clip_value_fn).__name__}")

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2 = beta1(dtype), beta2(dtype)
        m = param_state(p, "m", "adopt")
        v = param_state(p, "v", "adopt")
        first = pt.eq(t, 1)
        normed = g / pt.maximum(pt.sqrt(v), epsilon(dtype))
        if use_clipping:
            k = t - 1
            limit = k ** as_scalar(0.25, dtype) if clip_value_fn is None else clip_value_fn(k)
            limit = as_scalar(limit, dtype)
            normed = pt.clip(normed, -limit, limit)
        g2 = pt.sqr(g)
        v_new = pt.switch(first, g2, (1 - b2) * g2 + b2 * v)
        m_new = pt.switch(first, m, (1 - b1) * normed + b1 * m)
        step = (1 - b1) * normed + b1 * m_new if nesterov else m_new
        step = pt.switch(first, as_scalar(0, dtype), step)
        return step, [(m, m_new), (v, v_new)]

    return _counted("adopt", direction)


def scale_by_ademamix(beta1: Scalar = 0.9, beta2: Scalar = 0.999, beta3: Scalar = 0.9999,
                      alpha: Scalar = 5.0, epsilon: Scalar = 1e-8,
                      eps_root: Scalar = 0.0) -> Transform:
    r"""AdEMAMix's direction (Pagliardini, Ablin & Grangier, 2024): Adam's, plus a slow
    momentum that remembers gradients for thousands of steps.

    .. math::

        m_1 &\leftarrow \beta_1 m_1 + (1-\beta_1) g, \qquad
        m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g, \qquad
        \nu \leftarrow \beta_2 \nu + (1-\beta_2) g^2 \\
        s &\leftarrow \frac{m_1/(1-\beta_1^t) + \alpha\, m_2}
            {\sqrt{\nu/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    :math:`m_2` is not bias-corrected. ``beta3`` and ``alpha`` may be shared variables
    (the paper's warm-up schedules). State: ``<param>.m1``, ``<param>.m2``,
    ``<param>.nu``, ``ademamix.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    beta3 = Hyperparameter(beta3, "beta3", low=0, high=1, high_open=True)
    alpha = Hyperparameter(alpha, "alpha", low=0)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    eps_root = Hyperparameter(eps_root, "eps_root", low=0)

    def direction(g, p, t):
        dtype = p.dtype
        b1, b2, b3 = (b(dtype) for b in (beta1, beta2, beta3))
        m1, m2, nu = (param_state(p, role, "ademamix") for role in ("m1", "m2", "nu"))
        m1_new = b1 * m1 + (1 - b1) * g
        m2_new = b3 * m2 + (1 - b3) * g
        nu_new = b2 * nu + (1 - b2) * pt.sqr(g)
        nu_hat = nu_new / (1 - b2**t)
        if nonzero(eps_root):
            nu_hat = nu_hat + eps_root(dtype)
        step = ((m1_new / (1 - b1**t) + alpha(dtype) * m2_new)
                / (pt.sqrt(nu_hat) + epsilon(dtype)))
        return step, [(m1, m1_new), (m2, m2_new), (nu, nu_new)]

    return _counted("ademamix", direction)


def _upcast(params):
    return pytensor.scalar.upcast(*[p.dtype for p in params])


def scale_by_schedule_free(learning_rate: Scalar = 1.0, warmup_steps: int | None = None,
                           beta1: Scalar = 0.9, weight_decay: Scalar = 0.0,
                           weight_lr_power: Scalar = 2.0, beta2: Scalar | None = None,
                           epsilon: Scalar = 1e-8, rule: str = "schedule_free_sgd") -> Transform:
    r"""The schedule-free step (Defazio et al., 2024), in the form of optax's
    ``schedule_free``: the parameters :math:`y` interpolate between the average
    :math:`x` and the base iterate :math:`z`.

    .. math::

        z &\leftarrow z - \gamma_t\, (u + \lambda y), \qquad
        c_t = \frac{(\max_{i \le t} \gamma_i)^p}{\sum_{j \le t} (\max_{i \le j}
            \gamma_i)^p} \\
        x &\leftarrow (1-c_t)\, x + c_t z, \qquad y \leftarrow \beta_1 x + (1-\beta_1) z

    with :math:`u = g` (SGD) or, given ``beta2``, Adam's unbiased
    :math:`u = g / (\sqrt{v/(1-\beta_2^t)} + \epsilon)`; :math:`x` is recomputed each
    step as :math:`(y - (1-\beta_1) z)/\beta_1`. With ``warmup_steps`` :math:`W` the
    learning rate warms up linearly, :math:`\gamma(k) = \eta \min(k, W)/W`, optax's
    ``warmup_constant_schedule``; the z step takes :math:`\gamma(t-1)` and the weight
    :math:`\gamma(t)`, as in optax. The step is uphill (:math:`y - y_{new}`), the
    learning rate in it. State: ``<param>.z`` (the initial parameters until the first
    step), ``<param>.v`` with ``beta2``, and for the rule as a whole ``<rule>.max_lr``,
    ``<rule>.weight_sum`` and ``<rule>.t``; :func:`symopt.schedule_free_eval_params`
    gives :math:`x`.
    """
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    if warmup_steps is not None:
        warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
    beta1 = Hyperparameter(beta1, "beta1", low=0, high=1, low_open=True)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)
    weight_lr_power = Hyperparameter(weight_lr_power, "weight_lr_power", low=0)
    if beta2 is not None:
        beta2 = Hyperparameter(beta2, "beta2", low=0, high=1, high_open=True)
        epsilon = Hyperparameter(epsilon, "epsilon", low=0)

    def transform(steps, params):
        t = step_counter(rule)
        t_new = t + 1
        dtype = _upcast(params)
        max_lr = rule_state(rule, "max_lr", dtype)
        weight_sum = rule_state(rule, "weight_sum", dtype)
        lr = learning_rate(dtype)

        def schedule(count):
            if warmup_steps is None:
                return lr
            done = pt.cast(pt.minimum(pt.maximum(count, 0), warmup_steps), dtype)
            fraction = 1 - done / as_scalar(warmup_steps, dtype)
            return (0 - lr) * fraction + lr

        max_lr_new = pt.maximum(max_lr, schedule(t_new))
        weight = max_lr_new ** weight_lr_power(dtype)
        total = weight_sum + weight
        c_t = pt.switch(pt.eq(total, 0), as_scalar(0, dtype), weight / total)
        base_lr = schedule(t)
        first = pt.eq(t, 0)
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            pdtype = p.dtype
            b1 = beta1(pdtype)
            c, gamma = pt.cast(c_t, pdtype), pt.cast(base_lr, pdtype)
            z = param_state(p, "z", rule)
            z.tag.schedule_free_beta1 = beta1
            z_old = pt.switch(first, p, z)
            if beta2 is None:
                u = g
            else:
                b2 = beta2(pdtype)
                v = param_state(p, "v", rule)
                v_new = (1 - b2) * pt.sqr(g) + b2 * v
                v_hat = v_new / (1 - b2 ** pt.cast(t_new, pdtype))
                u = (1 / (pt.sqrt(v_hat) + epsilon(pdtype))) * g
                state.append((v, v_new))
            if nonzero(weight_decay):
                u = u + weight_decay(pdtype) * p
            z_new = z_old + (-gamma) * u
            x = (1 - c) * ((p - (1 - b1) * z_old) / b1) + c * z_new
            new_steps.append(p - (b1 * x + (1 - b1) * z_new))
            state.append((z, z_new))
        return new_steps, state + [(max_lr, max_lr_new), (weight_sum, total), (t, t_new)]

    return Transform(transform, elementwise=True, name=f"scale_by_{rule}")


def scale_by_prodigy(learning_rate: Scalar = 1.0, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
                     beta3: Scalar | None = None, epsilon: Scalar = 1e-8, estim_lr0: Scalar = 1e-6,
                     estim_lr_coef: Scalar = 1.0, weight_decay: Scalar = 0.0,
                     safeguard_warmup: bool = False) -> Transform:
    r"""Prodigy's step (Mishchenko & Defazio, 2024): Adam with a learning rate :math:`d`
    estimated from the distance travelled, in the form of optax's ``prodigy``.

    With :math:`x_0` the initial parameters and :math:`d_0` = ``estim_lr0``:

    .. math::

        \hat\gamma &= d\,\eta\,\sqrt{1-\beta_2^t}/(1-\beta_1^t), \qquad
        m \leftarrow \beta_1 m + (1-\beta_1)\, d g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, d^2 g^2 \\
        s_g &\leftarrow \beta_3 s_g + \hat\gamma\, d g / d_0 \ \ (\text{safeguard: }
            d^2 g / d_0), \qquad
        r \leftarrow \beta_3 r + (d/d_0)\,\hat\gamma\, \langle g, x_0 - \theta\rangle \\
        d &\leftarrow \max\big(d, \kappa\, r / \|s_g\|_1\big), \qquad
        s \leftarrow \hat\gamma\lambda\theta + \hat\gamma\, m / (\sqrt v + d\,\epsilon)

    (:math:`\hat\gamma` with the old :math:`d`, the epsilon term with the new), the inner
    product and the l1 norm over all parameters together; :math:`\beta_3` None is
    :math:`\sqrt{\beta_2}`. The step is uphill, the learning rate in it. Not elementwise.
    State: ``<param>.m``, ``<param>.v``, ``<param>.grad_sum``, ``<param>.initial``
    (:math:`x_0`, zeros until the first step copies the parameter), and for the rule as
    a whole ``prodigy.estim_lr`` (:math:`d`, zero until the first step reads
    :math:`d_0`), ``prodigy.numerator`` (:math:`r`) and ``prodigy.t``.
    """
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    beta1, beta2 = _betas(beta1, beta2)
    if beta3 is not None:
        beta3 = Hyperparameter(beta3, "beta3", low=0, high=1, high_open=True)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    estim_lr0 = Hyperparameter(estim_lr0, "estim_lr0", low=0, low_open=True)
    estim_lr_coef = Hyperparameter(estim_lr_coef, "estim_lr_coef", low=0)
    weight_decay = Hyperparameter(weight_decay, "weight_decay", low=0)

    def transform(steps, params):
        t = step_counter("prodigy")
        t_new = t + 1
        dtype = _upcast(params)
        first = pt.eq(t, 0)
        d_state = rule_state("prodigy", "estim_lr", dtype)
        r_state = rule_state("prodigy", "numerator", dtype)
        d0 = estim_lr0(dtype)
        d = pt.switch(first, d0, d_state)
        count = pt.cast(t_new, dtype)
        b1, b2 = beta1(dtype), beta2(dtype)
        b3 = pt.sqrt(b2) if beta3 is None else beta3(dtype)
        dlr = d * learning_rate(dtype) * (pt.sqrt(1 - b2**count) / (1 - b1**count))
        initials = [param_state(p, "initial", "prodigy") for p in params]
        starts = [pt.switch(first, p, x0) for p, x0 in zip(params, initials)]
        numerator = pt.add(*[pt.cast(pt.sum(g * (x0 - p)), dtype)
                             for g, p, x0 in zip(steps, params, starts)])
        r_new = b3 * r_state + (d / d0) * dlr * numerator
        moments, state = [], []
        for g, p, x0, start in zip(steps, params, initials, starts, strict=True):
            pdtype = p.dtype
            cast = (lambda x, pdtype=pdtype: pt.cast(x, pdtype))
            m, v, grad_sum = (param_state(p, role, "prodigy")
                              for role in ("m", "v", "grad_sum"))
            dg = cast(d) * g
            m_new = cast(b1) * m + cast(1 - b1) * dg
            v_new = cast(b2) * v + cast(1 - b2) * pt.sqr(dg)
            grad_sum_new = (cast(b3) * grad_sum
                            + cast(d if safeguard_warmup else dlr) * dg / cast(d0))
            moments.append((m_new, v_new))
            state += [(m, m_new), (v, v_new), (grad_sum, grad_sum_new), (x0, start)]
        denominator = pt.add(*[pt.cast(pt.sum(pt.abs(new)), dtype)
                               for (_, new) in state[2::4]])
        d_new = pt.maximum(d, estim_lr_coef(dtype) * r_new / denominator)
        new_steps = []
        for p, (m_new, v_new) in zip(params, moments):
            pdtype = p.dtype
            step_size = pt.cast(dlr, pdtype)
            step = step_size * m_new / (pt.sqrt(v_new) + pt.cast(d_new, pdtype)
                                        * epsilon(pdtype))
            if nonzero(weight_decay):
                step = weight_decay(pdtype) * step_size * p + step
            new_steps.append(step)
        return new_steps, state + [(d_state, d_new), (r_state, r_new), (t, t_new)]

    return Transform(transform, elementwise=False, name="scale_by_prodigy")
