r"""Curvature-vector products, built symbolically: the Hessian's and the Gauss-Newton matrix's.

None of these forms a matrix. Each costs a small multiple of one gradient evaluation
(Pearlmutter, 1994):

- :func:`hessian_vector_product`, :math:`H v = \nabla_\theta (\nabla_\theta f \cdot v)`, is
  backpropagation applied to the gradient graph (an L-op of an L-op): about two to four
  times the cost of the gradient, and exact up to rounding.
- :func:`jacobian_vector_product`, :math:`J v` (an R-op), is built from two L-ops
  (``J v = d/du [(J^T u) \cdot v]``, the same construction as ``pytensor.gradient.Rop``'s
  default), so that every op with a gradient is supported, on PyTensor 2.38 and 3.
- :func:`gauss_newton_vector_product`, :math:`G v = J^T H_L J v + H_R v`, the generalised
  Gauss-Newton product of Schraudolph (2002) that Hessian-free optimisation uses (Martens,
  2010): positive semi-definite whenever the loss is convex in the model's outputs.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad
from pytensor.graph.replace import clone_replace

try:  # PyTensor 3
    from pytensor.graph.traversal import ancestors
except ImportError:  # PyTensor 2.x
    from pytensor.graph.basic import ancestors  # type: ignore[no-redef]

from symopt._checks import describe, require_loss

__all__ = [
    "gauss_newton_vector_product",
    "hessian_vector_product",
    "jacobian_vector_product",
    "require_loss",
]


def depends_on(expressions, wrt):
    """Whether any of ``expressions`` has any of ``wrt`` in its graph."""
    wanted = {id(w) for w in wrt}
    return any(id(a) in wanted for a in ancestors(list(expressions)))


def _as_list(x):
    return (list(x), True) if isinstance(x, (list, tuple)) else ([x], False)


def _like(x, ref):
    """``x`` with the dtype of ``ref`` (and its static type, when that is compatible)."""
    x = pt.as_tensor_variable(x)
    if x.dtype != ref.dtype:
        x = pt.cast(x, ref.dtype)
    try:
        return ref.type.filter_variable(x, allow_convert=True)
    except TypeError:
        return x


def _check_vectors(wrt, vectors, name):
    if len(vectors) != len(wrt):
        raise ValueError(f"{name}: got {len(vectors)} vectors for {len(wrt)} variables")
    out = []
    for i, (w, v) in enumerate(zip(wrt, vectors)):
        v = pt.as_tensor_variable(v)
        if v.ndim != w.ndim:
            raise ValueError(
                f"{name}: vector {i} has {v.ndim} dimensions but {describe(w)} has {w.ndim}"
            )
        out.append(_like(v, w))
    return out


def _hvp_from_grads(grads, wrt, vectors):
    """:math:`H v` from gradients that are symbolic functions of ``wrt``."""
    inner = pt.add(*[(g * disconnected_grad(v)).sum() for g, v in zip(grads, vectors)])
    hv = pytensor.grad(inner, wrt, disconnected_inputs="ignore", return_disconnected="zero")
    return [_like(h, w) for h, w in zip(hv, wrt)]


def hessian_vector_product(loss, wrt, vectors, grads=None):
    r"""The Hessian of ``loss`` times ``vectors``: :math:`H v = \nabla (\nabla f \cdot v)`.

    Parameters
    ----------
    loss : scalar TensorVariable
    wrt : Variable or list of Variable
        The variables (shared parameters or symbolic inputs) the Hessian is taken over.
    vectors : TensorVariable or list of TensorVariable
        One per variable in ``wrt``, of the same shape; the product is over all of them
        at once, :math:`(H v)_i = \sum_j \partial_i \partial_j f \, v_j`.
    grads : list of TensorVariable, optional
        The gradients of ``loss``, if already built (they are then reused).

    Returns
    -------
    TensorVariable or list of TensorVariable
        Like ``wrt``: one product per variable, each with its variable's dtype.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> x = pt.dvector("x")
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> hv = hessian_vector_product(0.5 * x @ A @ x, x, pt.constant(np.array([1.0, 0.0])))
    >>> hv.eval({x: np.zeros(2)})
    array([2., 1.])
    """
    require_loss(loss, "hessian_vector_product")
    wrt_list, many = _as_list(wrt)
    vectors, _ = _as_list(vectors)
    vectors = _check_vectors(wrt_list, vectors, "hessian_vector_product")
    if grads is None:
        grads = pytensor.grad(loss, wrt_list, disconnected_inputs="ignore")
    hv = _hvp_from_grads(list(grads), wrt_list, vectors)
    return hv if many else hv[0]


def jacobian_vector_product(outputs, wrt, vectors):
    r"""The Jacobian of ``outputs`` times ``vectors`` (forward mode, an R-op): :math:`J v`.

    Built from two reverse passes: with a dummy cotangent :math:`u`, :math:`J^T u` is
    linear in :math:`u`, and :math:`J v = \nabla_u [(J^T u) \cdot v]`.

    Parameters
    ----------
    outputs : TensorVariable
        One variable (for instance a model's outputs, any shape).
    wrt, vectors
        As in :func:`hessian_vector_product`.

    Returns
    -------
    TensorVariable
        Shaped like ``outputs``.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> x = pt.dvector("x")
    >>> jacobian_vector_product(x ** 2, x, pt.constant(np.array([1.0, 1.0]))).eval(
    ...     {x: np.array([1.0, 3.0])})
    array([2., 6.])
    """
    wrt_list, _ = _as_list(wrt)
    vectors, _ = _as_list(vectors)
    vectors = _check_vectors(wrt_list, vectors, "jacobian_vector_product")
    outputs = pt.as_tensor_variable(outputs)
    u = outputs.type()
    jtu = pytensor.grad(None, wrt_list, known_grads={outputs: u},
                        disconnected_inputs="ignore", return_disconnected="zero")
    inner = pt.add(*[(a * disconnected_grad(v)).sum() for a, v in zip(jtu, vectors)])
    jv = pytensor.grad(inner, u, disconnected_inputs="ignore", return_disconnected="zero")
    if depends_on([jv], [u]):  # J^T u is linear in u, so u can only remain as a dead input
        jv = clone_replace(jv, {u: pt.zeros_like(outputs)})
    return _like(jv, outputs)


def gauss_newton_vector_product(loss, outputs, wrt, vectors):
    r"""The generalised Gauss-Newton matrix times ``vectors`` (Schraudolph, 2002).

    For a loss :math:`f(\theta) = L(z(\theta)) + R(\theta)` of a model's ``outputs``
    :math:`z` (the pre-activations of the last layer, for instance the logits) and of
    terms :math:`R` that use the parameters directly (weight decay):

    .. math::

        G v = J^T H_L J v + H_R v, \qquad J = \partial z / \partial \theta, \quad
        H_L = \partial^2 L / \partial z^2

    It drops the second-order terms of the model itself, so it is positive semi-definite
    whenever :math:`L` is convex in :math:`z` (squared error, cross-entropy on logits) and
    :math:`R` is convex: the curvature matrix Martens (2010) recommends for Hessian-free.

    Parameters
    ----------
    loss : scalar TensorVariable
    outputs : TensorVariable
        The model's outputs :math:`z`, a variable in the graph of ``loss``.
    wrt, vectors
        As in :func:`hessian_vector_product`.

    Returns
    -------
    TensorVariable or list of TensorVariable
        Like ``wrt``.
    """
    require_loss(loss, "gauss_newton_vector_product")
    wrt_list, many = _as_list(wrt)
    vectors, _ = _as_list(vectors)
    vectors = _check_vectors(wrt_list, vectors, "gauss_newton_vector_product")
    outputs = pt.as_tensor_variable(outputs)
    if not depends_on([loss], [outputs]):
        raise ValueError("gauss_newton_vector_product: the loss does not depend on outputs")
    jv = jacobian_vector_product(outputs, wrt_list, vectors)
    grad_z = pytensor.grad(loss, outputs)
    h_jv = pytensor.grad((grad_z * disconnected_grad(jv)).sum(), outputs,
                         disconnected_inputs="ignore", return_disconnected="zero")
    gv = pytensor.grad(None, wrt_list, known_grads={outputs: h_jv},
                       disconnected_inputs="ignore", return_disconnected="zero")
    # terms of the loss that use the parameters directly, with outputs held fixed
    direct = pytensor.grad(loss, wrt_list, consider_constant=[outputs],
                           disconnected_inputs="ignore", return_disconnected="none")
    pairs = [(d, v) for d, v in zip(direct, vectors) if d is not None]
    if pairs and depends_on([d for d, _ in pairs], wrt_list):
        inner = pt.add(*[(d * disconnected_grad(v)).sum() for d, v in pairs])
        hr_v = pytensor.grad(inner, wrt_list, consider_constant=[outputs],
                             disconnected_inputs="ignore", return_disconnected="zero")
        gv = [a + b for a, b in zip(gv, hr_v)]
    gv = [_like(g, w) for g, w in zip(gv, wrt_list)]
    return gv if many else gv[0]
