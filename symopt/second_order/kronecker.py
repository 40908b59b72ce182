r"""Kronecker-factored preconditioners: Shampoo, SOAP and K-FAC.

Each keeps, for a weight matrix :math:`W \in \mathbb{R}^{m \times n}`, two small matrices
whose Kronecker product stands in for a full :math:`mn \times mn` preconditioner, and
refreshes a matrix function of them (an inverse root, an inverse, eigenvectors) every
``update_every`` steps, in the graph, through
:class:`symopt.second_order._periodic.PeriodicMatrixFunction`: the eigendecomposition runs
only on the refreshing steps, on every backend (``pytensor.ifelse`` would run it at every
step on the Numba backend, which evaluates both branches).

- :func:`shampoo` (Gupta, Koren & Singer, 2018) and :func:`soap` (Vyas et al., 2024) need
  only the gradients, so they are rules like the others, registered in
  :data:`symopt.RULES`; parameters that are not matrices, or whose both sides are longer
  than ``max_dim``, fall back to AdamW with the same hyperparameters (as ``optax``'s Muon
  does), and a side longer than ``max_dim`` is left unpreconditioned.
- :func:`kfac` (Martens & Grosse, 2015) needs each dense layer's inputs and the gradients
  of the loss with respect to its pre-activations, so it takes the layers themselves:
  :class:`DenseLayer`.

None of them is elementwise: they cannot run on the fused path (``fuse=True`` raises
:class:`symopt.fused.NotFusable`; ``fuse="auto"`` keeps the per-tensor path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.gradient import disconnected_grad

from symopt._checks import Hyperparameter, as_scalar, check_hyper, check_positive_int, like_param
from symopt.blocks import _betas, add_decayed_weights, scale_by_learning_rate
from symopt.rules import _registered
from symopt.second_order._periodic import periodic_eigenvectors, periodic_inverse_root
from symopt.state import param_state, step_counter, tag_state
from symopt.transform import Transform, chain

if TYPE_CHECKING:
    from symopt._typing import LearningRate, Scalar

__all__ = [
    "DenseLayer",
    "kfac",
    "scale_by_shampoo",
    "scale_by_soap",
    "shampoo",
    "soap",
]


# ---------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------


def _shape(p):
    return tuple(p.get_value(borrow=True).shape) if isinstance(p, SharedVariable) else p.type.shape


def _matrix_sides(p, max_dim):
    """Which sides of ``p`` get a preconditioner: ``(left, right)``, or None for the fallback."""
    shape = _shape(p)
    if len(shape) != 2:
        return None
    left, right = shape[0] <= max_dim, shape[1] <= max_dim
    return (left, right) if left or right else None


def _side_state(p, role, rule, size):
    """A ``size x size`` matrix of zeros named ``<param>.<role>``, tagged as ``p``'s state.

    Its static shape is known when the parameter's is (else ``(None, None)``, like the
    parameter's own).
    """
    static = (size, size) if None not in p.type.shape else (None, None)
    var = pytensor.shared(np.zeros((size, size), dtype=p.dtype),
                          name=f"{p.name or 'param'}.{role}", shape=static)
    return tag_state(var, rule, role, p)


def _like_state(x, var):
    return var.type.filter_variable(pt.cast(x, var.dtype) if x.dtype != var.dtype else x,
                                    allow_convert=True)


def _refresh_flag(t_new, every):
    """True at steps 1, 1 + every, 1 + 2 every, ... (``t_new`` is 1 at the first step)."""
    return pt.eq((t_new - 1) % every, 0)


def _decayed(old, new, beta):
    r""":math:`\beta\, S + (1-\beta)\, X` for :math:`\beta < 1`; the running sum :math:`S + X`
    for :math:`\beta = 1`."""
    weight = pt.switch(pt.lt(beta, 1), 1 - beta, pt.ones_like(beta))
    return beta * old + weight * new


def _safe_ratio(numerator, denominator):
    positive = pt.gt(denominator, 0)
    return pt.switch(positive, numerator / pt.switch(positive, denominator, 1), 0)


# ---------------------------------------------------------------------------------------
# Shampoo
# ---------------------------------------------------------------------------------------


def scale_by_shampoo(beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8,
                     shampoo_beta: Scalar = 1.0, shampoo_epsilon: Scalar = 1e-6,
                     update_every: int = 10, graft: bool = True, max_dim: int = 1024) -> Transform:
    r"""Shampoo's direction for matrices (Gupta, Koren & Singer, 2018), Adam's for the rest.

    For a matrix parameter with gradient :math:`G \in \mathbb{R}^{m \times n}`:

    .. math::

        M &\leftarrow \beta_1 M + (1-\beta_1)\, G, \qquad \hat M = M / (1-\beta_1^t) \\
        L &\leftarrow \beta_L L + w\, G G^T, \qquad R \leftarrow \beta_L R + w\, G^T G
            \qquad (w = 1-\beta_L, \text{ or } 1 \text{ when } \beta_L = 1) \\
        P_L &= (L + \epsilon_L I)^{-1/4}, \quad P_R = (R + \epsilon_L I)^{-1/4}
            \quad\text{refreshed at steps } 1, 1+k, 1+2k, \dots \\
        S &= P_L \hat M P_R, \qquad
        s \leftarrow S\, \frac{\lVert A \rVert_F}{\lVert S \rVert_F} \ \ \text{(grafted)}
            \quad\text{or}\quad s \leftarrow S

    with :math:`A = \hat M / (\sqrt{\hat V} + \epsilon)` Adam's direction
    (:math:`V \leftarrow \beta_2 V + (1-\beta_2) G^2`, :math:`\hat V = V/(1-\beta_2^t)`).
    With ``beta1=0``, ``shampoo_beta=1``, ``update_every=1`` and ``graft=False`` this is
    Algorithm 1 of the paper: :math:`L_0 = R_0 = \epsilon I` and running sums, each step
    :math:`W \leftarrow W - \eta L_t^{-1/4} G_t R_t^{-1/4}`. The extensions are those of
    Anil et al. (2020): the roots recomputed every ``update_every`` steps (the eigenvalue
    problems are the cost), exponential moving averages (:math:`\beta_L < 1`), momentum,
    and grafting, which takes the step's direction from Shampoo and its size, layer by
    layer, from Adam, so that Shampoo shares Adam's learning rate (and its fallback's).

    The roots are computed from the eigendecomposition in float64
    (:class:`~symopt.second_order._periodic.PeriodicMatrixFunction`), eigenvalues below
    zero (rounding) taken as zero. A side longer than ``max_dim`` keeps the identity; a
    parameter that is not a matrix, or has no side within ``max_dim``, gets Adam's
    direction :math:`A`.

    State: ``<param>.m`` and, with grafting or for the fallback, ``<param>.v``; for
    matrices ``<param>.left``, ``<param>.right`` (:math:`L`, :math:`R`) and
    ``<param>.left_root``, ``<param>.right_root`` (:math:`P_L`, :math:`P_R`); the counter
    ``shampoo.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    shampoo_beta = Hyperparameter(shampoo_beta, "shampoo_beta", low=0, high=1)
    shampoo_epsilon = Hyperparameter(shampoo_epsilon, "shampoo_epsilon", low=0, low_open=True)
    every = check_positive_int(update_every, "update_every")
    max_dim = check_positive_int(max_dim, "max_dim")
    graft = bool(graft)

    def transform(steps, params):
        t = step_counter("shampoo")
        t_new = t + 1
        refresh = _refresh_flag(t_new, every)
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            dtype = p.dtype
            b1, b2, eps = (x(dtype) for x in (beta1, beta2, epsilon))
            tt = pt.cast(t_new, dtype)
            sides = _matrix_sides(p, max_dim)
            m = param_state(p, "m", "shampoo")
            m_new = b1 * m + (1 - b1) * g
            m_hat = m_new / (1 - b1**tt)
            pairs = [(m, m_new)]
            adam = None
            if sides is None or graft:
                v = param_state(p, "v", "shampoo")
                v_new = b2 * v + (1 - b2) * pt.sqr(g)
                pairs.append((v, v_new))
                adam = m_hat / (pt.sqrt(v_new / (1 - b2**tt)) + eps)
            if sides is None:
                new_steps.append(adam)
                state += pairs
                continue
            beta_l = shampoo_beta(dtype)
            eps_l = shampoo_epsilon(dtype)
            direction = m_hat
            stats, roots = [], []
            for side, (used, size) in enumerate(zip(sides, _shape(p))):
                if not used:
                    continue
                role = ("left", "right")[side]
                stat = _side_state(p, role, "shampoo", size)
                root = _side_state(p, f"{role}_root", "shampoo", size)
                outer = pt.dot(g, g.T) if side == 0 else pt.dot(g.T, g)
                stat_new = _like_state(_decayed(stat, outer, beta_l), stat)
                root_new = _like_state(
                    periodic_inverse_root(refresh, stat_new, root, eps_l, 0.25), root)
                direction = (pt.dot(root_new, direction) if side == 0
                             else pt.dot(direction, root_new))
                stats.append((stat, stat_new))
                roots.append((root, root_new))
            if graft:
                ratio = _safe_ratio(pt.sqrt(pt.sqr(adam).sum()),
                                    pt.sqrt(pt.sqr(direction).sum()))
                direction = direction * ratio
            new_steps.append(like_param(direction, p))
            state += pairs + stats + roots
        return new_steps, state + [(t, t_new)]

    return Transform(transform, elementwise=False, name="scale_by_shampoo")


@_registered("adaptive")
def shampoo(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
            epsilon: Scalar = 1e-8, shampoo_beta: Scalar = 1.0, shampoo_epsilon: Scalar = 1e-6,
            update_every: int = 10, graft: bool = True, weight_decay: Scalar = 0.0,
            max_dim: int = 1024) -> Transform:
    r"""Shampoo (Gupta, Koren & Singer, 2018): a Kronecker-factored AdaGrad for matrices.

    For each matrix parameter :math:`W` with gradient :math:`G`, two small statistics,
    :math:`L = \sum G G^T` (:math:`m \times m`) and :math:`R = \sum G^T G`
    (:math:`n \times n`), precondition the step from both sides:

    .. math::

        W \leftarrow W - \eta\, \big(L^{-1/4}\, \hat M\, R^{-1/4}\big)\,
            \frac{\lVert A \rVert_F}{\lVert L^{-1/4} \hat M R^{-1/4} \rVert_F}
            - \eta \lambda W

    where :math:`\hat M` is the bias-corrected momentum of the gradients and :math:`A`
    Adam's step, whose size is grafted onto Shampoo's direction (Anil et al., 2020); the
    inverse fourth roots are recomputed in the graph every ``update_every`` steps. Every
    equation is in :func:`scale_by_shampoo`; ``beta1=0, shampoo_beta=1, update_every=1,
    graft=False`` is the paper's Algorithm 1. Parameters that are not matrices (biases,
    scalars) or that are too large on both sides (``max_dim``) are updated by AdamW with
    the same learning rate, betas, epsilon and weight decay, as ``optax``'s Muon updates
    its non-matrix parameters.

    **Cost.** Per step, for an :math:`m \times n` matrix, two Gram products and two
    products with the roots, :math:`O(mn(m+n))`; every ``update_every`` steps two
    symmetric eigendecompositions, :math:`O(m^3 + n^3)`. On a layer of 784 x 600 that is
    several times the forward and backward pass of a mini-batch of 100 (milliseconds per
    step against Adam's: ``examples/natural_family.py``, in ``docs/results``).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`; with grafting, on Adam's scale.
    beta1 : float or scalar variable, default 0.9
        Momentum of the gradients, :math:`M` (0 for the paper's plain gradient).
    beta2 : float or scalar variable, default 0.999
        Decay of Adam's second moment (grafting and the fallback).
    epsilon : float or scalar variable, default 1e-8
        Adam's :math:`\epsilon`.
    shampoo_beta : float or scalar variable, default 1.0
        Decay of :math:`L` and :math:`R`; 1 keeps the paper's running sums.
    shampoo_epsilon : float or scalar variable, default 1e-6
        :math:`\epsilon_L`: :math:`L_0 = R_0 = \epsilon_L I`, the paper's :math:`\epsilon`.
    update_every : int, default 10
        Recompute the roots at steps 1, 1 + k, 1 + 2k, ... (k = ``update_every``).
    graft : bool, default True
        Take each matrix step's Frobenius norm from Adam's step.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled (AdamW's).
    max_dim : int, default 1024
        Sides longer than this get no preconditioner.
    fuse : bool or "auto", default False
        Shampoo is not elementwise: ``True`` raises :class:`symopt.fused.NotFusable`,
        ``"auto"`` keeps the per-tensor path.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` (with grafting, and for the fallback),
    ``<param>.left``, ``<param>.right``, ``<param>.left_root``, ``<param>.right_root``
    (matrices) and ``shampoo.t``.

    References
    ----------
    V. Gupta, T. Koren and Y. Singer (2018), "Shampoo: Preconditioned Stochastic Tensor
    Optimization", ICML 2018. https://arxiv.org/abs/1802.09568

    R. Anil, V. Gupta, T. Koren, K. Regan and Y. Singer (2020), "Scalable Second Order
    Optimization for Deep Learning". https://arxiv.org/abs/2002.09018

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.array([[1.0, -2.0], [0.5, 1.0]]), name="W")
    >>> loss = ((W - np.eye(2)) ** 2).sum()
    >>> step = pytensor.function([], loss, updates=symopt.shampoo(loss, [W], 0.05))
    >>> losses = [float(step()) for _ in range(200)]
    >>> losses[0], losses[-1] < 1e-3
    (4.25, True)
    """
    return chain(scale_by_shampoo(beta1, beta2, epsilon, shampoo_beta, shampoo_epsilon,
                                  update_every, graft, max_dim),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))


# ---------------------------------------------------------------------------------------
# SOAP
# ---------------------------------------------------------------------------------------


def scale_by_soap(beta1: Scalar = 0.95, beta2: Scalar = 0.95, epsilon: Scalar = 1e-8,
                  shampoo_beta: Scalar | None = None, update_every: int = 10,
                  max_dim: int = 1024) -> Transform:
    r"""SOAP's direction (Vyas et al., 2024): Adam in the eigenbasis of Shampoo's factors.

    For a matrix parameter with gradient :math:`G`, with :math:`Q_L`, :math:`Q_R` the
    eigenvectors of :math:`L` and :math:`R` (columns, by decreasing eigenvalue):

    .. math::

        L &\leftarrow \beta_s L + (1-\beta_s)\, G G^T, \qquad
        R \leftarrow \beta_s R + (1-\beta_s)\, G^T G \\
        M &\leftarrow \beta_1 M + (1-\beta_1)\, G, \qquad
        G' = Q_L^T G\, Q_R, \qquad M' = Q_L^T M\, Q_R \\
        V &\leftarrow \beta_2 V + (1-\beta_2)\, G' \odot G' \\
        s &\leftarrow Q_L\, \frac{M' / (1-\beta_1^t)}{\sqrt{V / (1-\beta_2^t)} + \epsilon}\, Q_R^T

    Algorithm 3 of the paper, with Adam's bias correction, :math:`M` kept in the original
    basis and :math:`V` in the rotated one. The eigenvectors are recomputed at the end of
    every ``update_every``-th step from the :math:`L` and :math:`R` of that step (the
    paper's order: here, at the start of steps 1 + k, 1 + 2k, ... from the kept
    statistics), by an exact symmetric eigendecomposition where the paper allows one
    power iteration and a QR decomposition; at step 1 they come from the first gradient's
    statistics (the authors' code spends its first step computing them and moves the
    parameters from step 2). :math:`V` is kept when the basis changes, each entry with
    the eigenvector of the same rank. A side longer than ``max_dim`` keeps the identity
    (no rotation on that side); a parameter that is not a matrix gets Adam's direction,
    which is SOAP with both rotations the identity.

    State: ``<param>.m``, ``<param>.v``; for matrices ``<param>.left``,
    ``<param>.right`` and the bases ``<param>.left_basis``, ``<param>.right_basis``;
    the counter ``soap.t``.
    """
    beta1, beta2 = _betas(beta1, beta2)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0)
    if shampoo_beta is not None:
        shampoo_beta = Hyperparameter(shampoo_beta, "shampoo_beta", low=0, high=1,
                                      high_open=True)
    every = check_positive_int(update_every, "update_every")
    max_dim = check_positive_int(max_dim, "max_dim")

    def transform(steps, params):
        t = step_counter("soap")
        t_new = t + 1
        first = pt.eq(t_new, 1)
        refresh = _refresh_flag(t_new, every)
        new_steps, state = [], []
        for g, p in zip(steps, params, strict=True):
            dtype = p.dtype
            b1, b2, eps = (x(dtype) for x in (beta1, beta2, epsilon))
            b_s = b2 if shampoo_beta is None else shampoo_beta(dtype)
            tt = pt.cast(t_new, dtype)
            sides = _matrix_sides(p, max_dim) or (False, False)
            m = param_state(p, "m", "soap")
            v = param_state(p, "v", "soap")
            m_new = b1 * m + (1 - b1) * g
            rotated_g, rotated_m = g, m_new
            stats, bases, used = [], [], []
            for side, (on, size) in enumerate(zip(sides, _shape(p))):
                if not on:
                    continue
                role = ("left", "right")[side]
                stat = _side_state(p, role, "soap", size)
                basis = _side_state(p, f"{role}_basis", "soap", size)
                outer = pt.dot(g, g.T) if side == 0 else pt.dot(g.T, g)
                stat_new = _like_state(b_s * stat + (1 - b_s) * outer, stat)
                source = pt.switch(first, stat_new, stat)
                basis_new = _like_state(periodic_eigenvectors(refresh, source, basis), basis)
                if side == 0:
                    rotated_g = pt.dot(basis_new.T, rotated_g)
                    rotated_m = pt.dot(basis_new.T, rotated_m)
                else:
                    rotated_g = pt.dot(rotated_g, basis_new)
                    rotated_m = pt.dot(rotated_m, basis_new)
                stats.append((stat, stat_new))
                bases.append((basis, basis_new))
                used.append((side, basis_new))
            v_new = b2 * v + (1 - b2) * pt.sqr(rotated_g)
            direction = (rotated_m / (1 - b1**tt)) / (pt.sqrt(v_new / (1 - b2**tt)) + eps)
            for side, basis_new in used:
                direction = (pt.dot(basis_new, direction) if side == 0
                             else pt.dot(direction, basis_new.T))
            new_steps.append(like_param(direction, p))
            state += [(m, m_new), (v, like_param(v_new, v))] + stats + bases
        return new_steps, state + [(t, t_new)]

    return Transform(transform, elementwise=False, name="scale_by_soap")


@_registered("adaptive")
def soap(learning_rate: LearningRate = 3e-3, beta1: Scalar = 0.95, beta2: Scalar = 0.95,
         epsilon: Scalar = 1e-8, shampoo_beta: Scalar | None = None, update_every: int = 10,
         weight_decay: Scalar = 0.01, max_dim: int = 1024) -> Transform:
    r"""SOAP, "ShampoO with Adam in the Preconditioner's eigenbasis" (Vyas et al., 2024).

    Shampoo's factors :math:`L \approx E[G G^T]` and :math:`R \approx E[G^T G]` give a
    rotation (their eigenvectors :math:`Q_L`, :math:`Q_R`, recomputed every
    ``update_every`` steps), and Adam runs in the rotated coordinates:

    .. math::

        G' = Q_L^T G\, Q_R, \quad V \leftarrow \beta_2 V + (1-\beta_2)\, G'^2, \quad
        W \leftarrow W - \eta\, Q_L \frac{\hat M'}{\sqrt{\hat V} + \epsilon} Q_R^T
            - \eta \lambda W

    with :math:`M` the momentum of the gradients, rotated the same way, and Adam's bias
    corrections (every equation in :func:`scale_by_soap`). With the identity for both
    rotations it is AdamW, which is what SOAP does for parameters that are not
    matrices. Only the eigenvectors are needed, so the statistics need no inverse roots,
    and Adam's second moment keeps adapting between two refreshes; the paper finds it
    stable with preconditioning frequencies where Shampoo degrades. Defaults are those of
    the authors' code (learning rate 3e-3, betas 0.95, weight decay 0.01, frequency 10).

    **Cost.** Per step, for an :math:`m \times n` matrix, two Gram products and six
    products with the bases, :math:`O(mn(m+n))`; every ``update_every`` steps two
    symmetric eigendecompositions (milliseconds per step against Adam's:
    ``examples/natural_family.py``, in ``docs/results``).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 3e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.95
        Adam's decays, in the rotated coordinates.
    epsilon : float or scalar variable, default 1e-8
    shampoo_beta : float or scalar variable, optional
        :math:`\beta_s`, the decay of :math:`L` and :math:`R`; None uses ``beta2``, as
        the paper does.
    update_every : int, default 10
        The preconditioning frequency :math:`f`.
    weight_decay : float or scalar variable, default 0.01
        :math:`\lambda`, decoupled.
    max_dim : int, default 1024
        Sides longer than this are not rotated.
    fuse : bool or "auto", default False
        SOAP is not elementwise: ``True`` raises :class:`symopt.fused.NotFusable`,
        ``"auto"`` keeps the per-tensor path.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule

    Notes
    -----
    State: ``<param>.m``, ``<param>.v``, and for matrices ``<param>.left``,
    ``<param>.right``, ``<param>.left_basis``, ``<param>.right_basis``; ``soap.t``.

    References
    ----------
    N. Vyas, D. Morwani, R. Zhao, M. Kwun, I. Shapira, D. Brandfonbrener, L. Janson and
    S. Kakade (2025), "SOAP: Improving and Stabilizing Shampoo using Adam", ICLR 2025
    (arXiv 2024). https://arxiv.org/abs/2409.11321

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.array([[1.0, -2.0], [0.5, 1.0]]), name="W")
    >>> loss = ((W - np.eye(2)) ** 2).sum()
    >>> step = pytensor.function([], loss, updates=symopt.soap(loss, [W], 0.05,
    ...                                                        weight_decay=0.0))
    >>> losses = [float(step()) for _ in range(200)]
    >>> losses[0], losses[-1] < 1e-3
    (4.25, True)
    """
    return chain(scale_by_soap(beta1, beta2, epsilon, shampoo_beta, update_every, max_dim),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))


# ---------------------------------------------------------------------------------------
# K-FAC
# ---------------------------------------------------------------------------------------


class DenseLayer(NamedTuple):
    r"""A dense layer as K-FAC sees it: :math:`s = x W + b`.

    Attributes
    ----------
    W : SharedVariable
        The weights, shape ``(n_in, n_out)``.
    b : SharedVariable or None
        The biases, shape ``(n_out,)``, or None for a layer without them.
    inputs : TensorVariable
        The layer's input :math:`x` in the training graph, shape ``(batch, n_in)`` (after
        dropout, if any).
    preactivations : TensorVariable
        :math:`s = x W + b` in the training graph, shape ``(batch, n_out)``, the variable
        the loss is differentiated with respect to.
    """

    W: SharedVariable
    b: SharedVariable | None
    inputs: pt.TensorVariable
    preactivations: pt.TensorVariable


FISHERS = ("empirical", "categorical", "bernoulli", "gaussian")


def _check_layers(layers, loss):
    from symopt._checks import check_params
    from symopt.second_order.curvature import depends_on

    if isinstance(layers, DenseLayer) or not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError("kfac: layers must be a non-empty list of DenseLayer(W, b, inputs, "
                        "preactivations)")
    checked = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, tuple) or len(layer) != 4:
            raise TypeError(f"kfac: layers[{i}] must be a DenseLayer(W, b, inputs, "
                            f"preactivations), got {type(layer).__name__}")
        layer = DenseLayer(*layer)
        params = check_params([layer.W] + ([] if layer.b is None else [layer.b]))
        if layer.W.ndim != 2:
            raise ValueError(f"kfac: layers[{i}].W must be a matrix, got ndim {layer.W.ndim}")
        if layer.b is not None and layer.b.ndim != 1:
            raise ValueError(f"kfac: layers[{i}].b must be a vector, got ndim {layer.b.ndim}")
        x = pt.as_tensor_variable(layer.inputs)
        s = pt.as_tensor_variable(layer.preactivations)
        if x.ndim != 2 or s.ndim != 2:
            raise ValueError(f"kfac: layers[{i}]: inputs and preactivations must be matrices "
                             f"(batch, features), got ndim {x.ndim} and {s.ndim}")
        if not depends_on([s], params[:1]):
            raise ValueError(f"kfac: layers[{i}].preactivations do not depend on its W")
        if not depends_on([loss], [s]):
            raise ValueError(f"kfac: the loss does not depend on layers[{i}].preactivations")
        checked.append(DenseLayer(layer.W, layer.b, x, s))
    params = [p for layer in checked for p in (layer.W, layer.b) if p is not None]
    check_params(params)  # no parameter twice
    return checked


def _sampled_loss(fisher, outputs, rng):
    """The negative log-likelihood of targets drawn from the model, and the rng's next state."""
    from symopt.second_order.rules import _draw

    z = pt.as_tensor_variable(outputs)
    if fisher == "categorical":
        if z.ndim != 2:
            raise ValueError(f"kfac: fisher='categorical' needs logits of shape (batch, "
                             f"classes), got ndim {z.ndim}")
        log_p = pt.special.log_softmax(z, axis=-1)
        next_rng, y = _draw(pt.random.categorical, pt.exp(log_p), rng=rng)
        nll = -log_p[pt.arange(z.shape[0]), y].mean()
    elif fisher == "bernoulli":
        next_rng, u = _draw(pt.random.uniform, 0.0, 1.0, size=z.shape, rng=rng, dtype=z.dtype)
        y = pt.cast(pt.lt(u, pt.sigmoid(z)), z.dtype)
        nll = (pt.softplus(z) - y * z).reshape((z.shape[0], -1)).sum(axis=1).mean()
    else:  # gaussian of unit variance around the outputs
        next_rng, e = _draw(pt.random.normal, 0.0, 1.0, size=z.shape, rng=rng, dtype=z.dtype)
        y = disconnected_grad(z + e)  # the draw is data: only -log p's own z is differentiated
        nll = (0.5 * pt.sqr(y - z)).reshape((z.shape[0], -1)).sum(axis=1).mean()
    return nll, next_rng


def kfac(loss, layers, learning_rate=1e-2, momentum=0.9, damping=1e-2, decay=0.95,
         update_every=20, kl_clip=1e-3, fisher="empirical", outputs=None, seed=None):
    r"""K-FAC for dense layers (Martens & Grosse, 2015): a Kronecker-factored natural gradient.

    For a dense layer :math:`s = x W + b` (inputs :math:`x`, pre-activations :math:`s`),
    the block of the Fisher that belongs to :math:`\bar W = [W; b]` is approximated by the
    Kronecker product of two small matrices: the second moment of the layer's inputs
    :math:`a = [x, 1]` and that of the back-propagated gradients
    :math:`g = \partial(-\log p(y \mid x)) / \partial s` of each example,

    .. math::

        F_{\bar W} \approx A \otimes G, \qquad A = E[a a^T], \quad G = E[g g^T],

    so its inverse is applied to the gradient with two small inverses:
    :math:`\Delta = A^{-1}\, \nabla_{\bar W} L\, G^{-1}`. Each step:

    .. math::

        \epsilon_t &= \min(1 - 1/t,\ \text{decay}), \quad
        A \leftarrow \epsilon_t A + (1-\epsilon_t)\, \tfrac1n a^T a, \quad
        G \leftarrow \epsilon_t G + (1-\epsilon_t)\, \tfrac1n g^T g \\
        \pi &= \sqrt{\frac{\mathrm{tr}(A) / \dim A}{\mathrm{tr}(G) / \dim G}}, \quad
        \gamma = \sqrt{\lambda}, \quad
        \Delta = (A + \pi\gamma I)^{-1}\, \nabla_{\bar W} L\, (G + \gamma/\pi\, I)^{-1} \\
        \nu &= \min\Big(1, \sqrt{\kappa \,/\, (\eta^2 \textstyle\sum_{\text{layers}}
            \langle \Delta, \nabla_{\bar W} L \rangle)}\Big), \qquad
        v \leftarrow \mu v - \eta \nu \Delta, \qquad \bar W \leftarrow \bar W + v

    with the inverses recomputed every ``update_every`` steps (at steps 1, 1 + k, ...).
    From the paper: the factors, their running averages (section 5), the factored
    Tikhonov damping :math:`\pi` (section 6.3) and the amortised inverses (section 8);
    in place of its adaptive damping and its step size and momentum chosen by the exact
    quadratic model (sections 6.4-7), a fixed learning rate and momentum with the
    KL-divergence clipping :math:`\nu` of Ba, Grosse & Martens (2017), as most
    implementations do. ``kl_clip=None`` turns the clipping off.

    **Which Fisher.** ``fisher="empirical"`` takes :math:`g` from the training loss (the
    observed targets): cheapest, and the one the tests transcribe. The true Fisher, as
    in the paper, needs targets drawn from the model: ``"categorical"`` (softmax on
    logits), ``"bernoulli"`` (independent sigmoids on logits, autoencoders) and
    ``"gaussian"`` (a unit-variance Gaussian around the outputs) draw them from
    ``outputs`` with a random generator kept as state (``kfac.rng``), and take :math:`g`
    from their negative log-likelihood (one more backward pass). ``loss`` should be the
    mini-batch mean of each example's negative log-likelihood (plus penalties), so that
    :math:`n\, \partial L / \partial s` are the examples' own gradients.

    Parameters
    ----------
    loss : scalar TensorVariable
    layers : list of DenseLayer
        The dense layers to update, each with its input and pre-activation variables (the
        lab's ``symopt.lab.nn.kfac_layers(net)`` lists them for a network); their ``W``
        and ``b`` are updated, nothing else: train other parameters (batch
        normalisation's) with another rule.
    learning_rate : float or scalar variable, default 1e-2
        :math:`\eta`.
    momentum : float or scalar variable, default 0.9
        :math:`\mu`.
    damping : float or scalar variable, default 1e-2
        :math:`\lambda` (the paper's :math:`\lambda + \eta_{\ell_2}`), split between the
        factors as :math:`\pi\gamma` and :math:`\gamma/\pi`.
    decay : float, default 0.95
        The largest :math:`\epsilon_t` of the factors' running averages.
    update_every : int, default 20
        :math:`T_3`, steps between two inversions.
    kl_clip : float or None, default 1e-3
        :math:`\kappa`.
    fisher : {"empirical", "categorical", "bernoulli", "gaussian"}, default "empirical"
    outputs : TensorVariable, optional
        The model's outputs (logits, or the Gaussian's mean), needed for the sampled
        Fishers.
    seed : int, optional
        Seed of the targets' generator (sampled Fishers).

    Returns
    -------
    list of (SharedVariable, Variable)
        The layers' updates and the state's: ``<W>.input_factor`` (:math:`A`),
        ``<W>.output_factor`` (:math:`G`), their damped inverses
        ``<W>.input_factor_inverse`` and ``<W>.output_factor_inverse``, the velocities
        ``<W>.velocity`` and ``<b>.velocity``, the counter ``kfac.t`` and, for a sampled
        Fisher, ``kfac.rng``.

    References
    ----------
    J. Martens and R. Grosse (2015), "Optimizing Neural Networks with Kronecker-factored
    Approximate Curvature", ICML 2015. https://arxiv.org/abs/1503.05671

    J. Ba, R. Grosse and J. Martens (2017), "Distributed Second-Order Optimization using
    Kronecker-Factored Approximations", ICLR 2017.
    https://openreview.net/forum?id=SkkTMpjex

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
    >>> from symopt.second_order import DenseLayer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3)); labels = (X[:, 0] > X[:, 1]).astype("int64")
    >>> W = pytensor.shared(np.zeros((3, 2)), name="W")
    >>> b = pytensor.shared(np.zeros(2), name="b")
    >>> x = pt.dmatrix("x"); s = x @ W + b
    >>> loss = -pt.special.log_softmax(s, axis=-1)[pt.arange(64), labels].mean()
    >>> updates = symopt.kfac(loss, [DenseLayer(W, b, x, s)], learning_rate=0.5,
    ...                       update_every=5)
    >>> step = pytensor.function([x], loss, updates=updates)
    >>> losses = [float(step(X)) for _ in range(30)]
    >>> round(losses[0], 4), losses[-1] < 0.2
    (0.6931, True)
    """
    from symopt.second_order.curvature import require_loss

    require_loss(loss, "kfac")
    layers = _check_layers(layers, loss)
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    check_hyper(damping, "damping", low=0, low_open=True)
    check_hyper(decay, "decay", low=0, high=1, high_open=True)
    every = check_positive_int(update_every, "update_every")
    if kl_clip is not None:
        check_hyper(kl_clip, "kl_clip", low=0, low_open=True)
    if fisher not in FISHERS:
        raise ValueError(f"kfac: fisher must be one of {FISHERS}, got {fisher!r}")
    if fisher != "empirical" and outputs is None:
        raise ValueError(f"kfac: fisher={fisher!r} draws targets from the model: pass its "
                         "outputs (the logits) as outputs=")

    t = step_counter("kfac")
    t_new = t + 1
    refresh = _refresh_flag(t_new, every)
    extra_state = []
    fisher_loss = loss
    if fisher != "empirical":
        from symopt.second_order.rules import _check_seed

        rng = tag_state(pytensor.shared(np.random.default_rng(_check_seed(seed)),
                                        name="kfac.rng"), "kfac", "rng")
        fisher_loss, next_rng = _sampled_loss(fisher, outputs, rng)
        extra_state.append((rng, next_rng))
    preacts = [layer.preactivations for layer in layers]
    backprop = pytensor.grad(fisher_loss, preacts)
    params = [p for layer in layers for p in (layer.W, layer.b) if p is not None]
    grads = dict(zip(params, pytensor.grad(loss, params), strict=True))

    updates, state, directions = [], [], []
    inner = []
    for layer, g_s in zip(layers, backprop, strict=True):
        W, b, x, s = layer
        dtype = W.dtype
        n_in, n_out = _shape(W)
        n_batch = pt.cast(x.shape[0], dtype)
        x = pt.cast(x, dtype) if x.dtype != dtype else x
        a = x if b is None else pt.concatenate([x, pt.ones((x.shape[0], 1), dtype=dtype)],
                                                axis=1)
        g = pt.cast(g_s, dtype) * n_batch  # each example's own gradient
        eps_t = pt.minimum(1 - 1 / pt.cast(t_new, dtype), as_scalar(decay, dtype))
        dim_a = n_in + (b is not None)
        A = _side_state(W, "input_factor", "kfac", dim_a)
        G = _side_state(W, "output_factor", "kfac", n_out)
        A_new = _like_state(eps_t * A + (1 - eps_t) * pt.dot(a.T, a) / n_batch, A)
        G_new = _like_state(eps_t * G + (1 - eps_t) * pt.dot(g.T, g) / n_batch, G)
        trace_a = pt.diagonal(A_new).sum() / dim_a
        trace_g = pt.diagonal(G_new).sum() / n_out
        pi = pt.sqrt(_safe_ratio(trace_a, trace_g))
        pi = pt.switch(pt.gt(pi, 0), pi, pt.ones_like(pi))
        gamma = pt.sqrt(as_scalar(damping, dtype))
        A_inv = _side_state(W, "input_factor_inverse", "kfac", dim_a)
        G_inv = _side_state(W, "output_factor_inverse", "kfac", n_out)
        A_inv_new = _like_state(periodic_inverse_root(refresh, A_new, A_inv, pi * gamma, 1.0),
                                A_inv)
        G_inv_new = _like_state(periodic_inverse_root(refresh, G_new, G_inv, gamma / pi, 1.0),
                                G_inv)
        grad_w = grads[W]
        grad_full = grad_w if b is None else pt.concatenate([grad_w, grads[b][None, :]], axis=0)
        delta = pt.dot(pt.dot(A_inv_new, grad_full), G_inv_new)
        inner.append((delta * grad_full).sum())
        pieces = [(W, delta[:n_in])] + ([] if b is None else [(b, delta[n_in])])
        directions += pieces
        state += [(A, A_new), (G, G_new), (A_inv, A_inv_new), (G_inv, G_inv_new)]

    lr = [as_scalar(learning_rate, p.dtype) for p, _ in directions]
    if kl_clip is None:
        scales = [pt.ones((), dtype=p.dtype) for p, _ in directions]
    else:
        dtype = directions[0][0].dtype
        eta = as_scalar(learning_rate, dtype)
        budget = as_scalar(kl_clip, dtype) / (eta**2 * pt.add(*inner))
        nu = pt.switch(pt.gt(budget, 1), pt.ones_like(budget),
                       pt.sqrt(pt.maximum(budget, 0)))
        scales = [pt.cast(nu, p.dtype) for p, _ in directions]
    velocities = []
    for (p, d), eta, nu in zip(directions, lr, scales, strict=True):
        v = param_state(p, "velocity", "kfac")
        v_new = like_param(as_scalar(momentum, p.dtype) * v - eta * nu * d, p)
        updates.append((p, like_param(p + v_new, p)))
        velocities.append((v, v_new))
    return updates + state + velocities + extra_state + [(t, t_new)]
