"""Turning a loss, or a list of gradients, into one gradient per parameter."""

from __future__ import annotations

import numpy as np
import pytensor
from pytensor.gradient import DisconnectedInputError
from pytensor.graph.basic import Variable

from symopt._checks import check_params, describe, like_param


def get_or_compute_grads(loss_or_grads, params):
    """Return one gradient per parameter, each with its parameter's type.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable
        A scalar loss to differentiate, or gradients already computed, one per parameter.
    params : list of SharedVariable
        The parameters.

    Returns
    -------
    list of TensorVariable
        The gradients, cast to the dtype of their parameter and given its static shape,
        so that update expressions keep the exact type of the shared variables. A list
        of gradients that already have those types is returned as it is (the same list),
        as Lasagne and PyMC do.

    Raises
    ------
    symopt.ParamError
        If a parameter is not a floating-point shared variable: both a ``TypeError`` and
        a ``ValueError`` (Lasagne and PyMC document a ``ValueError`` there).
    TypeError
        If ``loss_or_grads`` is neither a variable nor a list.
    ValueError
        If the loss is not a scalar, does not depend on a parameter, or the gradient list
        has the wrong length or a gradient the wrong number of dimensions, or a static
        shape that is not its parameter's.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    >>> [g] = get_or_compute_grads((w ** 2).sum(), [w])
    >>> g.eval()
    array([2., 4.])
    """
    params = check_params(params)
    if isinstance(loss_or_grads, (list, tuple)):
        grads = list(loss_or_grads)
        if len(grads) != len(params):
            raise ValueError(
                f"got {len(grads)} gradients for {len(params)} parameters; "
                "pass exactly one gradient per parameter, in the same order"
            )
        checked = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                raise ValueError(f"gradient {i} (for {describe(p)}) is None")
            g_ndim = g.ndim if isinstance(g, Variable) else np.ndim(g)
            if g_ndim != p.ndim:
                raise ValueError(
                    f"gradient {i} has {g_ndim} dimensions but its parameter "
                    f"{describe(p)} has {p.ndim}"
                )
            _check_static_shape(i, g, p)
            checked.append(like_param(g, p))
        if isinstance(loss_or_grads, list) and all(
                c is g for c, g in zip(checked, grads, strict=True)):
            return loss_or_grads
        return checked
    if isinstance(loss_or_grads, Variable):
        loss = loss_or_grads
        if getattr(loss, "ndim", None) != 0:
            raise ValueError(
                f"the loss must be a scalar, got a variable with ndim={loss.ndim}; "
                "reduce it first, e.g. with .mean() or .sum()"
            )
        if loss.dtype[:5] != "float":
            raise TypeError(f"the loss must be floating point, got dtype {loss.dtype}")
        try:
            grads = pytensor.grad(loss, params)
        except DisconnectedInputError as err:
            raise ValueError(
                f"the loss does not depend on one of the parameters ({err}); "
                "remove it from params or pass gradients explicitly"
            ) from None
        return [like_param(g, p) for g, p in zip(grads, params)]
    if loss_or_grads is None:
        raise ValueError("loss_or_grads is required: pass a scalar loss or a list of gradients")
    raise TypeError(
        "loss_or_grads must be a scalar loss or a list of gradients, "
        f"got {type(loss_or_grads).__name__}"
    )


def _check_static_shape(i, grad, param):
    """A gradient's static shape, where known, against its parameter's shape (that of its
    value, which the rule's state is made for)."""
    if isinstance(grad, Variable):
        known = getattr(grad.type, "shape", None) or ()
    else:
        known = np.shape(grad)
    shape = param.get_value(borrow=True).shape
    if any(g is not None and g != s for g, s in zip(known, shape)):
        dims = ["?" if g is None else str(g) for g in known]
        shown = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        raise ValueError(
            f"gradient {i} has shape {shown} but its parameter {describe(param)} has shape "
            f"{shape}; a gradient must have its parameter's shape"
        )
