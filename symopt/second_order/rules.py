r"""Update rules that use curvature: ESGD (Dauphin et al., 2015) and vSGD (Schaul et al., 2013).

Both are diagonal preconditioners that give steps in the units of the parameters, as
Newton's step :math:`H^{-1} g` does (gradient over curvature), instead of the unitless
steps of RMSProp or Adam. Both need the loss, not only its gradients: ESGD differentiates
the gradient once more (a Hessian-vector product) and vSGD evaluates the gradient a second
time at a shifted point. Their building blocks, :func:`scale_by_equilibration` and
:func:`scale_by_vsgd`, therefore have to come first in a :func:`symopt.chain`, where they
receive the gradients straight from the loss.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import clone_replace
from pytensor.ifelse import ifelse

from symopt._checks import (
    Hyperparameter,
    as_scalar,
    check_hyper,
    check_positive_int,
    like_param,
    nonzero,
)
from symopt.blocks import _betas, add_decayed_weights, identity, negate, scale_by_learning_rate
from symopt.rules import _registered
from symopt.second_order.curvature import _hvp_from_grads, depends_on
from symopt.state import param_state, step_counter, tag_state
from symopt.transform import Transform, chain, update_rule

if TYPE_CHECKING:
    from symopt._typing import LearningRate, Probe, Scalar

__all__ = ["adahessian", "esgd", "scale_by_adahessian", "scale_by_equilibration", "scale_by_sophia",
           "scale_by_vsgd", "sophia", "vsgd"]


def _check_seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
    return seed


def _check_differentiable(steps, params, who):
    """The steps must be symbolic gradients of a loss: functions of the parameters."""
    if not depends_on(steps, params):
        raise ValueError(
            f"{who} must receive the gradients of a loss, as symbolic functions of the "
            "parameters (put it first in a chain and pass the loss), but these steps do not "
            "depend on any parameter"
        )


def _draw(distribution, *args, **kwargs):
    """``(next_rng, value)`` of a PyTensor random variable (on PyTensor 2.38 and 3)."""
    try:
        return distribution(*args, return_next_rng=True, **kwargs)  # PyTensor 3
    except TypeError:
        return distribution(*args, **kwargs).owner.outputs


def _probe(rng, shape, dtype, kind):
    """A random tensor with :math:`E[v v^T] = I`, and the generator's next state."""
    if kind == "normal":
        return _draw(pt.random.normal, 0.0, 1.0, size=shape, rng=rng, dtype=dtype)
    next_rng, bits = _draw(pt.random.integers, 0, 2, size=shape, rng=rng)
    return next_rng, pt.cast(2 * bits - 1, dtype)


def _probes(rng, params, kind):
    """One random tensor per parameter, all from a single draw (each draw has a fixed cost)."""
    sizes = [p.size for p in params]
    dtype = pytensor.scalar.upcast(*[p.dtype for p in params])
    next_rng, flat = _probe(rng, (pt.add(*sizes) if len(sizes) > 1 else sizes[0],), dtype, kind)
    vectors, start = [], 0
    for p, size in zip(params, sizes):
        v = flat[start:start + size].reshape(p.shape)
        vectors.append(v if v.dtype == p.dtype else pt.cast(v, p.dtype))
        start = start + size
    return next_rng, vectors


def scale_by_equilibration(damping: Scalar = 1e-4, every: int = 20, seed: int | None = None,
                           probe: Probe = "normal") -> Transform:
    r"""Divide by the equilibration preconditioner, estimated with Hessian-vector products.

    Algorithm 1 of Dauphin, de Vries & Bengio (2015). With :math:`v \sim N(0, I)`,
    :math:`E[(Hv)_i^2] = \sum_j H_{ij}^2 = (H^2)_{ii}`, so the running mean :math:`D` of
    :math:`(Hv)^2` estimates the square of the equilibration preconditioner
    :math:`\sqrt{\mathrm{diag}(H^2)}` (the row norms of the Hessian), without bias:

    .. math::

        D &\leftarrow D + \big((Hv)^2 - D\big) / k \quad\text{every ``every`` steps,
            the } k\text{-th time} \\
        s &\leftarrow g \,/\, \big(\sqrt{D} + \lambda\big)

    :math:`D` is the paper's :math:`D/i`, kept as a mean. The product :math:`Hv` is
    differentiated from the incoming steps, which must therefore be the gradients of a loss.

    Parameters
    ----------
    damping : float or scalar variable, default 1e-4
        :math:`\lambda`.
    every : int, default 20
        Refresh :math:`D` at each of the first ``every`` steps (a warm-up, so that the first
        estimates average several vectors), then only every ``every`` steps; the other steps
        reuse :math:`D`. The product sits in the taken branch of an ``ifelse``, to be
        skipped on the other steps; but the Numba backend (PyTensor 3's default) evaluates
        both branches of an ``ifelse``, and in measurements with the C backend too the
        step took as long with ``every=20`` as with ``every=1``: for now ``every`` changes
        how the estimate is averaged, not what a step costs.
    seed : int, optional
        Seed of the random generator of :math:`v`; None takes a fresh one from the OS.
    probe : {"normal", "rademacher"}, default "normal"
        The distribution of :math:`v`: the paper's Gaussian, or random signs, which have
        the same :math:`E[(Hv)^2]` with a smaller variance (none at all for a diagonal
        :math:`H`); with Gaussian vectors, one estimate of an element is its true value
        times a :math:`\chi^2_1` variable, below 1/100 of it 8% of the time, and the first
        steps can be far too long.

    State: ``<param>.hv_mean_square`` (:math:`D`), the counter ``esgd.t`` and the random
    generator ``esgd.rng``.
    """
    check_hyper(damping, "damping", low=0)
    every = check_positive_int(every, "every")
    seed = _check_seed(seed)
    if probe not in ("normal", "rademacher"):
        raise ValueError(f"probe must be 'normal' or 'rademacher', got {probe!r}")

    def transform(steps, params):
        _check_differentiable(steps, params, "esgd (scale_by_equilibration)")
        t = step_counter("esgd")
        t_new = t + 1
        rng = tag_state(pytensor.shared(np.random.default_rng(seed), name="esgd.rng"),
                        "esgd", "rng")
        next_rng, vectors = _probes(rng, params, probe)
        hv = _hvp_from_grads(steps, params, vectors)
        # refresh D at each of the first `every` steps (warm-up), then every `every` steps
        refresh = pt.or_(pt.le(t_new, every), pt.eq((t_new - 1) % every, 0))
        count = pt.switch(pt.le(t_new, every), t_new, every + (t_new - 1) // every)
        squares = [param_state(p, "hv_mean_square", "esgd") for p in params]
        new_squares = [
            like_param(d + (pt.sqr(h) - d) / pt.cast(count, p.dtype), p)
            for d, h, p in zip(squares, hv, params)
        ]
        if every > 1:  # lazily: the product is only computed when it is used
            new_squares = ifelse(refresh, new_squares, squares)
            if not isinstance(new_squares, (list, tuple)):
                new_squares = [new_squares]
        new_steps = [
            g / (pt.sqrt(d) + as_scalar(damping, p.dtype, "damping", low=0))
            for g, d, p in zip(steps, new_squares, params)
        ]
        state = list(zip(squares, new_squares)) + [(rng, next_rng), (t, t_new)]
        return new_steps, state

    return Transform(transform, elementwise=False, name="scale_by_equilibration")


def scale_by_vsgd(slow_start: Scalar = 2.0, outlier_level: Scalar = 2.0,
                  epsilon: Scalar = 1e-9) -> Transform:
    r"""vSGD's step, with per-element adaptive learning rates (Schaul, Zhang & LeCun, 2013).

    Algorithm 1 of the paper (vSGD-l, one learning rate per parameter element), each
    mini-batch gradient :math:`g` taken as one sample, with the two changes of the
    follow-up paper (Schaul & LeCun, 2013) that work without the network's structure: the
    diagonal curvature :math:`h` is a finite difference instead of bbprop, and outliers
    lengthen the memory. The gradient of the same mini-batch is evaluated again at a point
    shifted by :math:`\delta = \bar g` (by :math:`g` at the first step), as in the authors'
    ``vSGDfd``, and

    .. math::

        h &= \mathrm{clip}\big(|g(\theta + \delta) - g(\theta)| \,/\, |\delta|,\
             \epsilon, 1/\epsilon\big) \\
        \tau &\leftarrow \tau + 1 \quad\text{where } |g - \bar g| > k\, \sigma_g
            \text{ or } |h - \bar h| > k\, \sigma_h \quad\text{(outliers)} \\
        \bar g &\leftarrow (1 - \tau^{-1})\, \bar g + \tau^{-1} g, \qquad
        \bar v \leftarrow (1 - \tau^{-1})\, \bar v + \tau^{-1} (g^2 + \epsilon) \\
        \bar h &\leftarrow (1 - \tau^{-1})\, \bar h + \tau^{-1} h, \qquad
        \bar w \leftarrow (1 - \tau^{-1})\, \bar w + \tau^{-1} h^2 \\
        \eta^* &= \frac{\bar g^2}{\bar h\, \bar v}, \qquad
        \tau \leftarrow \Big(1 - \frac{\bar g^2}{\bar v}\Big)\, \tau + 1, \qquad
        s \leftarrow \eta^* g

    with :math:`\sigma_g^2 = \bar v - \bar g^2` and :math:`\sigma_h^2 = \bar w - \bar h^2`
    taken before the update, and the sign flipped afterwards. At the first step the
    averages start from the first sample, with :math:`\bar v`, :math:`\bar h` and
    :math:`\bar w` multiplied by ``slow_start`` (the paper's slow start :math:`C`, which
    keeps the first steps cautious), and :math:`\tau = 1`. bbprop (Becker & LeCun, 1988)
    needs the layer structure of a network, which a generic loss does not expose; the
    finite difference needs only the gradient, at the price of a second gradient
    evaluation per step.

    Parameters
    ----------
    slow_start : float, default 2.0
        :math:`C \geq 1` (the value of the authors' code).
    outlier_level : float or None, default 2.0
        :math:`k`, in standard deviations; None turns the outlier detection off.
    epsilon : float, default 1e-9
        Keeps :math:`\bar v` and :math:`h` away from zero.

    State: ``<param>.mean_grad``, ``<param>.mean_square``, ``<param>.mean_curvature``,
    ``<param>.mean_square_curvature``, ``<param>.memory`` (:math:`\tau`) and ``vsgd.t``.
    """
    check_hyper(slow_start, "slow_start", low=1)
    if outlier_level is not None:
        check_hyper(outlier_level, "outlier_level", low=0, low_open=True)
    check_hyper(epsilon, "epsilon", low=0, low_open=True)

    def transform(steps, params):
        _check_differentiable(steps, params, "vsgd (scale_by_vsgd)")
        t = step_counter("vsgd")
        first = pt.eq(t, 0)
        g_bar = [param_state(p, "mean_grad", "vsgd") for p in params]
        deltas = [pt.switch(first, g, m) for g, m in zip(steps, g_bar)]
        shifted = clone_replace(list(steps), {p: p + d for p, d in zip(params, deltas)})
        new_steps, state = [], []
        for p, g, g2, d, gb in zip(params, steps, shifted, deltas, g_bar):
            vb = param_state(p, "mean_square", "vsgd")
            hb = param_state(p, "mean_curvature", "vsgd")
            wb = param_state(p, "mean_square_curvature", "vsgd")
            memory = param_state(p, "memory", "vsgd", fill=1.0)
            tau = memory
            eps = as_scalar(epsilon, p.dtype, "epsilon", low=0, low_open=True)
            c = as_scalar(slow_start, p.dtype, "slow_start", low=1)
            h = pt.clip(pt.abs(g2 - g) / pt.maximum(pt.abs(d), eps), eps, 1 / eps)
            if outlier_level is not None:
                k = as_scalar(outlier_level, p.dtype, "outlier_level", low=0, low_open=True)
                outlier = pt.or_(
                    pt.gt(pt.abs(g - gb), k * pt.sqrt(pt.maximum(vb - pt.sqr(gb), 0))),
                    pt.gt(pt.abs(h - hb), k * pt.sqrt(pt.maximum(wb - pt.sqr(hb), 0))),
                )
                tau = tau + pt.cast(pt.and_(outlier, pt.invert(first)), p.dtype)
            rate = 1 / tau

            def average(old, sample, start, rate=rate):
                return pt.switch(first, start, (1 - rate) * old + rate * sample)

            gb_new = average(gb, g, g)
            vb_new = average(vb, pt.sqr(g) + eps, c * (pt.sqr(g) + eps))
            hb_new = average(hb, h, c * h)
            wb_new = average(wb, pt.sqr(h), c * pt.sqr(h))
            signal = pt.sqr(gb_new) / vb_new  # in [0, 1]: the share of the mean in g**2
            new_steps.append(signal / hb_new * g)
            state += [(gb, gb_new), (vb, vb_new), (hb, hb_new), (wb, wb_new),
                      (memory, (1 - signal) * tau + 1)]
        return new_steps, state + [(t, t + 1)]

    return Transform(transform, elementwise=False, name="scale_by_vsgd")


def _needs_loss(build):
    """:func:`symopt.update_rule` for a rule that must be given the loss, not gradients."""
    return update_rule(build, needs_loss=True)


@_needs_loss
def esgd(learning_rate: LearningRate = 0.1, damping: Scalar = 1e-4, every: int = 20,
         seed: int | None = None, probe: Probe = "normal") -> Transform:
    r"""Equilibrated SGD (Dauphin, de Vries & Bengio, 2015).

    RMSProp divides by a running RMS of the gradients; ESGD divides by an unbiased running
    estimate of the equilibration preconditioner :math:`\sqrt{\mathrm{diag}(H^2)}`, from
    Hessian-vector products with Gaussian vectors :math:`v \sim N(0, I)`:

    .. math::

        D &\leftarrow D + \big((Hv)^2 - D\big) / k
            \quad\text{(every ``every`` steps; } k \text{ counts the estimates)} \\
        \theta &\leftarrow \theta - \eta\, g \,/\, \big(\sqrt{D} + \lambda\big)

    Unlike the Jacobi preconditioner :math:`|\mathrm{diag}(H)|` it is not fooled by negative
    curvature, and the step is in the units of the parameters.

    **Cost.** The Hessian-vector product is one more backward pass, through the gradient
    graph: about one to three gradient evaluations. Measured with
    ``examples/second_order.py`` (mini-batches of 100, PyTensor 3.0.7, 2 busy cores), a
    step of a 20-256-1 tanh network took 3.9 ms with ESGD against 1.7 ms with RMSProp
    (x2.3); on a logistic regression with 21 parameters, 390 us against 27 us, nearly all
    of it not the product but the random generator: PyTensor's Numba backend adds a fixed
    ~0.35 ms to every call of a function that holds a random generator (RMSProp with one
    extra random draw: 388 us); the C backend (``mode="CVM"``) has no such overhead (71 us
    against 69 us). ``every`` does not lower these costs (see above). The example prints
    the timings for your machine.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable
        The loss. Gradients are refused: the Hessian-vector product needs the loss.
    params : list of SharedVariable
    learning_rate : float or scalar variable, default 0.1
        :math:`\eta`.
    damping : float or scalar variable, default 1e-4
        :math:`\lambda`.
    every : int, default 20
        How often to refresh :math:`D`.
    seed : int, optional
        Seed of the generator of :math:`v` (a PyTensor shared random generator).
    probe : {"normal", "rademacher"}, default "normal"
        :math:`v \sim N(0, I)` as in the paper, or random signs (lower variance: see
        :func:`scale_by_equilibration`).

    Returns
    -------
    list of (SharedVariable, Variable), or ConfiguredRule

    State: ``<param>.hv_mean_square``, ``esgd.t`` and ``esgd.rng``, a shared NumPy
    ``Generator`` whose update is in the returned list (PyTensor 3 no longer applies
    ``default_update``). :func:`symopt.save_state` writes the generator's state with the
    rest, and :func:`symopt.load_state` restores it, so a run resumes bit for bit
    (``tests/second_order/test_state_resume.py``).

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -1.0]), name="w")
    >>> loss = (np.array([1.0, 100.0]) * w ** 2).sum()
    >>> step = pytensor.function([], loss, updates=symopt.esgd(loss, [w], 0.5, every=1, seed=0))
    >>> losses = [float(step()) for _ in range(30)]
    >>> losses[0], losses[-1] < 1e-6
    (101.0, True)
    """
    return chain(scale_by_equilibration(damping, every, seed, probe),
                 scale_by_learning_rate(learning_rate))


@_needs_loss
def vsgd(slow_start: Scalar = 2.0, outlier_level: Scalar = 2.0,
         epsilon: Scalar = 1e-9) -> Transform:
    r"""vSGD, "No more pesky learning rates" (Schaul, Zhang & LeCun, 2013): no learning rate.

    Each element of each parameter gets the learning rate that minimizes the expected loss
    after the step under a local quadratic model, estimated online from running averages of
    the gradient :math:`\bar g`, of its square :math:`\bar v` and of the diagonal curvature
    :math:`\bar h`, with a memory :math:`\tau` that shortens when the gradient's mean moves:

    .. math::

        \eta^* = \frac{\bar g^2}{\bar h\, \bar v}, \qquad
        \tau \leftarrow \Big(1 - \frac{\bar g^2}{\bar v}\Big)\tau + 1, \qquad
        \theta \leftarrow \theta - \eta^* g

    This is vSGD-l (Algorithm 1), each mini-batch gradient taken as one sample, with the
    finite-difference curvature and the outlier detection of the follow-up paper (Schaul &
    LeCun, 2013) instead of bbprop; see :func:`scale_by_vsgd` for every equation. When the
    gradient noise vanishes (:math:`\bar g^2 = \bar v`) the step is a diagonal Newton step
    :math:`g / \bar h`; when the noise dominates, the learning rate anneals by itself, like
    :math:`1/t`. A steadily shrinking gradient looks like noise to these statistics too, so
    on deterministic problems vSGD also ends with :math:`1/t`-like steps, not Newton's
    quadratic convergence.

    **Cost.** One more gradient evaluation per step (at the shifted point): about twice
    the cost of an SGD step, as the lecture says of the bbprop version. Measured with
    ``examples/second_order.py`` (batches of 100): x2.1 RMSProp's step on a 20-256-1 tanh
    network (3.4 ms against 1.7 ms) and on a logistic regression (58 us against 27 us).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable
        The loss. Gradients are refused: the curvature estimate re-evaluates the gradient.
    params : list of SharedVariable
    slow_start : float, default 2.0
        Overestimation factor :math:`C \geq 1` of :math:`\bar v` and :math:`\bar h` at the
        first step.
    outlier_level : float or None, default 2.0
        A gradient or curvature sample farther than this many standard deviations from its
        running mean lengthens the memory by one step; None turns this off.
    epsilon : float, default 1e-9

    State: ``<param>.mean_grad``, ``<param>.mean_square``, ``<param>.mean_curvature``,
    ``<param>.mean_square_curvature``, ``<param>.memory`` and ``vsgd.t``.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -1.0]), name="w")
    >>> loss = (np.array([1.0, 100.0]) * w ** 2).sum()
    >>> step = pytensor.function([], loss, updates=symopt.vsgd(loss, [w]))
    >>> losses = [float(step()) for _ in range(100)]
    >>> losses[0], losses[-1] < 1e-4
    (101.0, True)
    """
    return chain(scale_by_vsgd(slow_start, outlier_level, epsilon), negate())


def _hutchinson(steps, params, rule, who, probe, seed):
    """Hutchinson's estimate of the Hessian's diagonal, :math:`u \\odot (H u)`, from the
    symbolic gradients ``steps``; and the state pair of its random generator."""
    _check_differentiable(steps, params, who)
    rng = tag_state(pytensor.shared(np.random.default_rng(seed), name=f"{rule}.rng"),
                    rule, "rng")
    next_rng, vectors = _probes(rng, params, probe)
    hv = _hvp_from_grads(steps, params, vectors)
    return [u * h for u, h in zip(vectors, hv)], (rng, next_rng)


def _check_probe(probe):
    if probe not in ("normal", "rademacher"):
        raise ValueError(f"probe must be 'normal' or 'rademacher', got {probe!r}")


def scale_by_sophia(beta1: Scalar = 0.965, beta2: Scalar = 0.99, epsilon: Scalar = 1e-12,
                    gamma: Scalar = 0.01, every: int = 10, probe: Probe = "normal",
                    seed: int | None = None) -> Transform:
    r"""Sophia-H's step (Liu et al., 2024): a momentum divided by a Hutchinson estimate of
    the Hessian's diagonal, clipped element by element.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g \\
        h &\leftarrow \beta_2 h + (1-\beta_2)\, u \odot (H u) \quad\text{at steps }
            1, k+1, 2k+1, \dots \\
        s &\leftarrow \mathrm{clip}\big(m / \max(\gamma h, \epsilon), -1, 1\big)

    with :math:`u \sim N(0, I)` (or random signs) and :math:`Hu` a Hessian-vector
    product differentiated from the incoming steps, which must be the gradients of a
    loss. State: ``<param>.m``, ``<param>.h``, the generator ``sophia.rng`` and
    ``sophia.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0, low_open=True)
    gamma = Hyperparameter(gamma, "gamma", low=0, low_open=True)
    every = check_positive_int(every, "every")
    seed = _check_seed(seed)
    _check_probe(probe)

    def transform(steps, params):
        t = step_counter("sophia")
        estimates, rng_pair = _hutchinson(steps, params, "sophia", "sophia (scale_by_sophia)",
                                          probe, seed)
        refresh = pt.eq(t % every, 0)
        new_steps, state = [], []
        for g, p, estimate in zip(steps, params, estimates, strict=True):
            dtype = p.dtype
            b1, b2 = beta1(dtype), beta2(dtype)
            m = param_state(p, "m", "sophia")
            h = param_state(p, "h", "sophia")
            m_new = b1 * m + (1 - b1) * g
            h_new = pt.switch(refresh, b2 * h + (1 - b2) * estimate, h)
            ratio = m_new / pt.maximum(gamma(dtype) * h_new,
                                       epsilon(dtype))
            one = as_scalar(1, dtype)
            new_steps.append(pt.clip(ratio, -one, one))
            state += [(m, m_new), (h, like_param(h_new, p))]
        return new_steps, state + [rng_pair, (t, t + 1)]

    return Transform(transform, elementwise=False, name="scale_by_sophia")


@_registered("adaptive", needs_loss=True)
def sophia(learning_rate: LearningRate = 1e-4, beta1: Scalar = 0.965, beta2: Scalar = 0.99,
           epsilon: Scalar = 1e-12, gamma: Scalar = 0.01, weight_decay: Scalar = 1e-4,
           every: int = 10, probe: Probe = "normal", seed: int | None = None) -> Transform:
    r"""Sophia-H (Liu et al., 2024): momentum divided by a running Hutchinson estimate of
    the Hessian's diagonal, clipped so that no element moves more than the learning rate.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g \\
        h &\leftarrow \beta_2 h + (1-\beta_2)\, u \odot (H u) \quad
            (\text{every } k \text{ steps, from the first; } u \sim N(0, I)) \\
        \theta &\leftarrow \theta - \eta\big(\mathrm{clip}(m / \max(\gamma h, \epsilon),
            -1, 1) + \lambda\theta\big)

    This is Algorithm 3 of the paper with its Hutchinson estimator (Sophia-H): the
    preconditioned step :math:`m/(\gamma h)` is Newton's where the curvature is positive
    and large enough; the clipping falls back to a sign step (of size :math:`\eta`)
    where it is negative, tiny, or not estimated yet. :math:`Hu` is a Hessian-vector
    product built from the loss's graph (backpropagation through the gradient), so the
    rule needs the loss. ``optax.contrib.sophia`` differs: it divides by the previous
    :math:`h` (so its first step is a sign step), bias-corrects :math:`m` and draws
    random signs.

    **Cost.** The product :math:`Hu` is computed at every step (the Numba backend
    evaluates both branches of a lazy ``ifelse`` anyway; see :func:`esgd`) and used at
    every :math:`k`-th: a step costs about two to three gradient evaluations. Measured
    with ``benchmarks/probe_cost.py`` (a 20-256-1 tanh network, batches of 100, float64,
    Numba, CPU time on a busy machine): 2.2 times an SGD step (Adam: 1.1).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable
        The loss. Gradients are refused: the Hessian-vector product needs the loss.
    params : list of SharedVariable
    learning_rate : float or scalar variable, default 1e-4
        :math:`\eta`, the largest move of an element per step (the authors' code).
    beta1 : float or scalar variable, default 0.965
        The authors' code's and optax's (the paper's experiments use 0.96).
    beta2 : float or scalar variable, default 0.99
    epsilon : float or scalar variable, default 1e-12
    gamma : float or scalar variable, default 0.01
        :math:`\gamma`, the Hessian's scale (the paper's for Sophia-H).
    weight_decay : float or scalar variable, default 1e-4
        :math:`\lambda`, decoupled (optax's default).
    every : int, default 10
        :math:`k`, how often :math:`h` is refreshed.
    probe : {"normal", "rademacher"}, default "normal"
        :math:`u \sim N(0, I)` as in the paper, or random signs (optax's; lower
        variance).
    seed : int, optional
        Seed of the generator of :math:`u`; None takes a fresh one from the OS.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, Variable), or ConfiguredRule

    Notes
    -----
    State: ``<param>.m``, ``<param>.h``, ``sophia.rng`` (a shared NumPy ``Generator``,
    saved and loaded with the rest) and ``sophia.t``.

    References
    ----------
    H. Liu, Z. Li, D. Hall, P. Liang and T. Ma (2024), "Sophia: A Scalable Stochastic
    Second-order Optimizer for Language Model Pre-training", ICLR 2024.
    https://arxiv.org/abs/2305.14342

    M. F. Hutchinson (1990), "A stochastic estimator of the trace of the influence matrix
    for Laplacian smoothing splines", Communications in Statistics - Simulation and
    Computation 19(2). https://doi.org/10.1080/03610919008812866

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> loss = (np.array([1.0, 10.0]) * w ** 2).sum()
    >>> updates = symopt.sophia(loss, [w], 0.5, gamma=1.0, every=1, weight_decay=0.0,
    ...                         probe="rademacher", seed=0)
    >>> step = pytensor.function([], loss, updates=updates)
    >>> losses = [float(step()) for _ in range(200)]
    >>> [round(loss, 4) for loss in losses[::50]] + [round(losses[-1], 4)]
    [41.0, 1.0598, 0.0634, 0.0586, 0.0013]
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(scale_by_sophia(beta1, beta2, epsilon, gamma, every, probe, seed), decay,
                 scale_by_learning_rate(learning_rate))


def scale_by_adahessian(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-4,
                        hessian_power: Scalar = 1.0, probe: Probe = "rademacher",
                        seed: int | None = None) -> Transform:
    r"""AdaHessian's direction (Yao et al., 2021): Adam with the square of a Hutchinson
    estimate of the Hessian's diagonal in place of the gradient's square.

    .. math::

        D &= u \odot (H u) \quad(\text{a 4-D kernel: } \mathrm{mean}|D| \text{ over its
            last two axes}), \qquad
        m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, D^2 \\
        s &\leftarrow \frac{m/(1-\beta_1^t)}{(\sqrt{v}/\sqrt{1-\beta_2^t})^k + \epsilon}

    with :math:`k` = ``hessian_power``. The incoming steps must be the gradients of a
    loss. State: ``<param>.m``, ``<param>.v``, the generator ``adahessian.rng`` and
    ``adahessian.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    hessian_power = Hyperparameter(hessian_power, "hessian_power", low=0, high=1)
    seed = _check_seed(seed)
    _check_probe(probe)

    def transform(steps, params):
        t = step_counter("adahessian")
        t_new = t + 1
        estimates, rng_pair = _hutchinson(steps, params, "adahessian",
                                          "adahessian (scale_by_adahessian)", probe, seed)
        new_steps, state = [], []
        for g, p, d in zip(steps, params, estimates, strict=True):
            dtype = p.dtype
            b1, b2 = beta1(dtype), beta2(dtype)
            count = pt.cast(t_new, dtype)
            if p.ndim == 4:  # a convolution kernel: one estimate per filter pair
                d = pt.ones_like(d) * pt.mean(pt.abs(d), axis=(2, 3), keepdims=True)
            m = param_state(p, "m", "adahessian")
            v = param_state(p, "v", "adahessian")
            m_new = b1 * m + (1 - b1) * g
            v_new = b2 * v + (1 - b2) * pt.sqr(d)
            denominator = ((pt.sqrt(v_new) / pt.sqrt(1 - b2**count))
                           ** hessian_power(dtype) + epsilon(dtype))
            new_steps.append((m_new / (1 - b1**count)) / denominator)
            state += [(m, m_new), (v, like_param(v_new, p))]
        return new_steps, state + [rng_pair, (t, t_new)]

    return Transform(transform, elementwise=False, name="scale_by_adahessian")


@_registered("adaptive", needs_loss=True)
def adahessian(learning_rate: LearningRate = 0.15, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
               epsilon: Scalar = 1e-4, weight_decay: Scalar = 0.0, hessian_power: Scalar = 1.0,
               probe: Probe = "rademacher", seed: int | None = None) -> Transform:
    r"""AdaHessian (Yao et al., 2021): Adam whose second moment averages the square of a
    Hutchinson estimate of the Hessian's diagonal, instead of the gradient's square.

    .. math::

        D &= z \odot (H z), \qquad
        m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, D^2 \\
        \theta &\leftarrow \theta - \eta\Big(\frac{m/(1-\beta_1^t)}
            {(\sqrt{v}/\sqrt{1-\beta_2^t})^k + \epsilon} + \lambda\theta\Big)

    with :math:`z` random signs (Rademacher) and :math:`Hz` a Hessian-vector product
    built from the loss's graph, so the rule needs the loss. With :math:`k = 1` (the
    default) the step is a diagonal Newton step :math:`g/|D|` averaged over time: in the
    units of the parameters. For a 4-D parameter (a convolution kernel) :math:`D` is the
    mean of :math:`|D|` over its last two (spatial) axes, the paper's spatial averaging,
    as in the authors' code. The weight decay is decoupled, as in the authors' code.

    **Cost.** One Hessian-vector product per step, about two to three gradient
    evaluations. Measured with ``benchmarks/probe_cost.py`` (a 20-256-1 tanh network,
    batches of 100, float64, Numba, CPU time on a busy machine): 2.8 times an SGD step
    (Adam: 1.1).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable
        The loss. Gradients are refused: the Hessian-vector product needs the loss.
    params : list of SharedVariable
    learning_rate : float or scalar variable, default 0.15
        :math:`\eta` (the paper's and the authors' code's).
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
    epsilon : float or scalar variable, default 1e-4
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled.
    hessian_power : float or scalar variable, default 1.0
        :math:`k`, in ``[0, 1]``.
    probe : {"rademacher", "normal"}, default "rademacher"
    seed : int, optional
        Seed of the generator of :math:`z`; None takes a fresh one from the OS.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, Variable), or ConfiguredRule

    Notes
    -----
    State: ``<param>.m``, ``<param>.v``, ``adahessian.rng`` (saved and loaded with the
    rest) and ``adahessian.t``.

    References
    ----------
    Z. Yao, A. Gholami, S. Shen, M. Mustafa, K. Keutzer and M. W. Mahoney (2021),
    "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning", AAAI 2021.
    https://arxiv.org/abs/2006.00719

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> loss = (np.array([1.0, 10.0]) * w ** 2).sum()
    >>> updates = symopt.adahessian(loss, [w], 0.3, seed=0)
    >>> step = pytensor.function([], loss, updates=updates)
    >>> losses = [float(step()) for _ in range(200)]
    >>> [round(loss, 4) for loss in losses[::50]] + [round(losses[-1], 8)]
    [41.0, 0.0401, 0.0002, 0.0, 0.0]
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(scale_by_adahessian(beta1, beta2, epsilon, hessian_power, probe, seed),
                 decay, scale_by_learning_rate(learning_rate))
