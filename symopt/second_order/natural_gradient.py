r"""The natural gradient (Amari, 1998), inverted by conjugate gradient inside the graph.

The natural gradient is the gradient measured in the metric of the model's predictive
distribution, the Fisher information :math:`F`: :math:`f'_N = F^{-1} f'` (Misra's
lecture, "Natural Gradients"). For the log-likelihood losses of the lab's models (softmax
cross-entropy on logits, sigmoid cross-entropy on logits, squared error on a Gaussian's
mean) the model's outputs :math:`z` are the natural parameters of an exponential family,
and the Fisher equals the generalised Gauss-Newton matrix
:math:`G = J^T H_L J` (Martens, 2014, section 9.2): its products with vectors come
from the graph itself (:func:`symopt.second_order.gauss_newton_vector_product`, an R-op
and two L-ops), and a fixed number of conjugate-gradient iterations, unrolled in the
graph, inverts the damped matrix :math:`F + \lambda I`. Nothing is formed or solved
outside the compiled function: one call is one natural-gradient step.
"""

from __future__ import annotations

import numbers

import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

from symopt._checks import Hyperparameter, as_scalar, check_params, like_param
from symopt.second_order.curvature import gauss_newton_vector_product, require_loss
from symopt.state import param_state

__all__ = ["natural_gradient"]


def _dot(xs, ys):
    return pt.add(*[(x * y).sum() for x, y in zip(xs, ys, strict=True)])


def _safe_ratio(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, else 0 (no NaN)."""
    positive = pt.gt(denominator, 0)
    one = pt.ones_like(denominator)
    return pt.switch(positive, numerator / pt.switch(positive, denominator, one),
                     pt.zeros_like(numerator))


def conjugate_gradient_graph(matvec, rhs, x0=None, iterations=10):
    r"""``iterations`` steps of conjugate gradient on :math:`A x = b`, unrolled symbolically.

    Parameters
    ----------
    matvec : callable
        Maps a list of tensors (shaped like ``rhs``) to :math:`A v`, for a symmetric
        positive (semi-)definite :math:`A`.
    rhs : list of TensorVariable
        :math:`b`.
    x0 : list of TensorVariable, optional
        The starting point (zeros by default, which saves one product).
    iterations : int

    Returns
    -------
    list of TensorVariable
        The iterate after ``iterations`` steps. Where a step meets no curvature
        (:math:`p^T A p = 0`, reached at the exact solution) or no residual, it stops
        moving instead of dividing by zero.
    """
    if x0 is None:
        x = [pt.zeros_like(b) for b in rhs]
        r = list(rhs)
    else:
        x = list(x0)
        r = [b - a for b, a in zip(rhs, matvec(x), strict=True)]
    p = list(r)
    rr = _dot(r, r)
    for _ in range(iterations):
        ap = matvec(p)
        alpha = _safe_ratio(rr, _dot(p, ap))
        x = [xi + alpha * pi for xi, pi in zip(x, p, strict=True)]
        r = [ri - alpha * api for ri, api in zip(r, ap, strict=True)]
        rr_new = _dot(r, r)
        beta = _safe_ratio(rr_new, rr)
        p = [ri + beta * pi for ri, pi in zip(r, p, strict=True)]
        rr = rr_new
    return x


def natural_gradient(loss, params, outputs, learning_rate=1.0, damping=1e-3, cg_iters=10,
                     warm_start=0.0):
    r"""Natural-gradient descent: :math:`\theta \leftarrow \theta - \eta\,(F + \lambda I)^{-1} g`.

    :math:`F` is the Fisher information of the model's predictive distribution, equal,
    for the losses below, to the generalised Gauss-Newton matrix
    :math:`G = J^T H_L J` of the loss :math:`L` in the model's ``outputs`` :math:`z`
    (:math:`J = \partial z / \partial \theta`, :math:`H_L = \partial^2 L / \partial z^2`).
    Each update solves :math:`(F + \lambda I)\, d = g` approximately by ``cg_iters``
    iterations of conjugate gradient, every product :math:`F v` built from the graph
    (:func:`symopt.second_order.gauss_newton_vector_product`: one forward-mode and two
    reverse-mode passes), all unrolled in the update expressions:

    .. math::

        d_0 &= \delta\, d_{prev} \ \ (\text{zero unless } \delta = \text{warm\_start} > 0) \\
        d &= \mathrm{CG}_{k}\big(F + \lambda I,\ g,\ d_0\big) \\
        \theta &\leftarrow \theta - \eta\, d

    With :math:`k` at least the number of parameters, :math:`d` is the exact damped natural
    gradient (to rounding); with fewer iterations it is the minimiser of the quadratic
    model over the Krylov space CG explores, the truncated Newton step of Hessian-free
    optimisation (Martens, 2010) without its line search and adaptive damping.

    **When F equals the Gauss-Newton matrix.** When :math:`z` are the natural parameters
    of the model's distribution and the loss is its mean negative log-likelihood:
    softmax cross-entropy of logits (:func:`symopt.lab.nn.categorical_crossentropy` of
    ``log_softmax(z)``), sigmoid cross-entropy of logits
    (:func:`symopt.lab.nn.binary_crossentropy_with_logits`, logistic regression) or a
    squared error of a Gaussian's mean. Pass the logits, not the probabilities. Terms
    of the loss that use the parameters directly (an L2 penalty) add their own Hessian,
    as in :func:`symopt.second_order.gauss_newton_vector_product`. For other losses the
    step is a Gauss-Newton step.

    **Cost.** ``cg_iters`` curvature products per update, each about two to three
    gradient evaluations, so a step costs some :math:`2k` to :math:`3k` SGD steps on the
    same mini-batch; the graph grows with :math:`k`, and so does its compile time.

    Parameters
    ----------
    loss : scalar TensorVariable
        The mean negative log-likelihood of the mini-batch (plus penalties).
    params : list of SharedVariable
    outputs : TensorVariable
        The model's outputs :math:`z` in the graph of ``loss``: the logits.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`; 1 is the full (damped) natural-gradient step.
    damping : float or scalar variable, default 1e-3
        :math:`\lambda \geq 0`, Tikhonov damping: it bounds the step where the Fisher is
        (nearly) singular and, with few CG iterations, trades the natural gradient
        for the plain gradient (:math:`d \to g/\lambda` as :math:`\lambda` grows).
    cg_iters : int, default 10
        :math:`k`, conjugate-gradient iterations per update (a Python int: they are
        unrolled).
    warm_start : float, default 0.0
        :math:`\delta \in [0, 1]`: start CG from :math:`\delta` times the previous
        update's solution (Martens, 2010, uses 0.95). With :math:`\delta > 0` the solution
        is kept as state, ``<param>.ng_direction``.

    Returns
    -------
    list of (SharedVariable, TensorVariable)
        The parameters' updates (and, with ``warm_start``, the solutions').

    References
    ----------
    S. Amari (1998), "Natural Gradient Works Efficiently in Learning", Neural Computation
    10(2). https://doi.org/10.1162/089976698300017746

    J. Martens (2010), "Deep learning via Hessian-free optimization", ICML 2010.
    https://www.cs.toronto.edu/~jmartens/docs/Deep_HessianFree.pdf

    J. Martens (2020), "New Insights and Perspectives on the Natural Gradient Method",
    JMLR 21(146) (arXiv 2014). https://jmlr.org/papers/v21/17-678.html

    Examples
    --------
    Logistic regression, where the damped natural-gradient step is a Newton step:

    >>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); y = (X @ [1.0, -2.0] > 0).astype(float)
    >>> y[:10] = 1 - y[:10]
    >>> w = pytensor.shared(np.zeros(2), name="w")
    >>> z = X @ w
    >>> loss = (pt.softplus(z) - y * z).mean()
    >>> step = pytensor.function([], loss, updates=symopt.natural_gradient(
    ...     loss, [w], z, learning_rate=1.0, damping=1e-4, cg_iters=2))
    >>> losses = [float(step()) for _ in range(8)]
    >>> round(losses[0], 4), losses[-1] < losses[1] < losses[0]
    (0.6931, True)
    """
    require_loss(loss, "natural_gradient")
    params = check_params(params)
    if outputs is None:
        raise ValueError("natural_gradient needs the model's outputs (the logits) to build "
                         "the Fisher-vector products: pass outputs=")
    learning_rate = Hyperparameter(learning_rate, "learning_rate", low=0)
    damping = Hyperparameter(damping, "damping", low=0)
    if isinstance(cg_iters, bool) or not isinstance(cg_iters, numbers.Integral) or cg_iters < 1:
        raise ValueError(f"cg_iters must be a positive integer, got {cg_iters!r}")
    if not isinstance(warm_start, numbers.Real) or isinstance(warm_start, bool) \
            or not 0.0 <= float(warm_start) <= 1.0:
        raise ValueError(f"warm_start must be a number in [0, 1], got {warm_start!r}")
    outputs = pt.as_tensor_variable(outputs)
    grads = pytensor.grad(loss, params)
    grads = [like_param(g, p) for g, p in zip(grads, params)]

    # the product is built once, on stand-in vectors, and each CG iteration substitutes
    # its own: building it anew per iteration would clone the growing graph each time
    stand_ins = [p.type() for p in params]
    products = gauss_newton_vector_product(loss, outputs, params, stand_ins)
    products = [like_param(fv + damping(p.dtype) * v, p)
                for fv, v, p in zip(products, stand_ins, params)]

    def damped_fisher(vectors):
        return graph_replace(products, dict(zip(stand_ins, vectors, strict=True)), strict=False)

    state, x0 = [], None
    if warm_start > 0:
        previous = [param_state(p, "ng_direction", "natural_gradient") for p in params]
        x0 = [as_scalar(warm_start, p.dtype) * d for d, p in zip(previous, params)]
    directions = conjugate_gradient_graph(damped_fisher, grads, x0, int(cg_iters))
    directions = [like_param(d, p) for d, p in zip(directions, params)]
    if warm_start > 0:
        state = list(zip(previous, directions))
    updates = [(p, like_param(p - learning_rate(p.dtype) * d, p))
               for p, d in zip(params, directions)]
    return updates + state
