r"""Clipping and norm constraints: on gradient lists, on single tensors, and as transforms.

The functions map tensors to tensors (use them on gradients before a rule, or on
updated parameters after it); :func:`clip_by_global_norm` and :func:`clip` are the same
operations as transforms for :func:`symopt.chain`. Applied to a rule's updates, the norm
constraint is :func:`symopt.wrappers.apply_norm_constraint`.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from symopt._checks import Hyperparameter, as_scalar, check_hyper
from symopt.transform import Transform

__all__ = [
    "clip",
    "clip_by_global_norm",
    "clip_by_value",
    "norm_constraint",
    "total_norm_constraint",
]


def _tensor_list(tensor_vars, name):
    if isinstance(tensor_vars, Variable):
        raise TypeError(f"{name} must be a list of tensors; wrap a single tensor in a list")
    tensors = [pt.as_tensor_variable(t) for t in tensor_vars]
    if not tensors:
        raise ValueError(f"{name} is empty")
    return tensors


def total_norm_constraint(tensor_vars, max_norm, epsilon=1e-7, return_norm=False):
    r"""Rescale a list of tensors so that their joint L2 norm is at most ``max_norm``.

    .. math::

        n = \sqrt{\textstyle\sum_k \|x_k\|^2}, \qquad
        x_k \leftarrow x_k \, \frac{\min(n, c)}{n + \epsilon}

    This is Lasagne's and PyMC's ``total_norm_constraint``, usually applied to the
    gradients of all parameters (Pascanu et al., 2013). Each result keeps its tensor's
    dtype.

    Parameters
    ----------
    tensor_vars : list of TensorVariable
    max_norm : float or scalar variable
        :math:`c > 0`.
    epsilon : float, default 1e-7
        Added to the norm, > 0 (it keeps a zero norm from dividing by zero).
    return_norm : bool, default False
        Also return the norm :math:`n` before rescaling.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> a, b = pt.constant(np.array([3.0])), pt.constant(np.array([4.0]))
    >>> [x.eval().round(6) for x in total_norm_constraint([a, b], 1.0)]
    [array([0.6]), array([0.8])]
    """
    tensors = _tensor_list(tensor_vars, "tensor_vars")
    max_norm = Hyperparameter(max_norm, "max_norm", low=0, low_open=True)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0, low_open=True)
    norm = pt.sqrt(sum(pt.sqr(t).sum() for t in tensors))
    dtype = norm.dtype
    target = pt.clip(norm, as_scalar(0, dtype), max_norm(dtype))
    multiplier = target / (epsilon(dtype) + norm)
    scaled = [t * pt.cast(multiplier, t.dtype) for t in tensors]
    return (scaled, norm) if return_norm else scaled


def clip_by_value(tensor_vars, min_value, max_value):
    r"""Clip every element of every tensor into ``[min_value, max_value]``.

    The slides' ``tf.clip_by_value(grad, -threshold, threshold)`` on each gradient.
    """
    tensors = _tensor_list(tensor_vars, "tensor_vars")
    low, high = Hyperparameter(min_value, "min_value"), Hyperparameter(max_value, "max_value")
    if not isinstance(min_value, Variable) and not isinstance(max_value, Variable):
        if min_value > max_value:
            raise ValueError(f"min_value ({min_value}) is larger than max_value ({max_value})")
    return [pt.clip(t, low(t.dtype), high(t.dtype)) for t in tensors]


def _default_norm_axes(ndim):
    if ndim == 2:  # dense weights (inputs, units): the incoming weights of each unit
        return (0,)
    if ndim in (3, 4, 5):  # convolution filters (units, channels, *kernel)
        return tuple(range(1, ndim))
    raise ValueError(
        f"Unsupported tensor dimensionality {ndim}: no default norm_axes for a tensor "
        f"with {ndim} dimensions; pass norm_axes"
    )


def norm_constraint(tensor_var, max_norm, norm_axes=None, epsilon=1e-7):
    r"""Max-norm constraint: rescale slices of a tensor whose L2 norm exceeds ``max_norm``.

    .. math:: w_j \leftarrow w_j\, \frac{\min(\|w_j\|, r)}{\|w_j\| + \epsilon}

    where the norm is taken over ``norm_axes``. Applied to an updated weight matrix after
    each step, this is the slides' max-norm regularisation (Srivastava et al., 2014).

    Parameters
    ----------
    tensor_var : TensorVariable
    max_norm : float or scalar variable
        :math:`r > 0`.
    norm_axes : sequence of int, optional
        Axes to sum over. By default ``(0,)`` for a matrix of shape ``(inputs, units)``,
        so each unit's incoming weights are constrained, and all but the first axis for
        3-5 dimensional (convolution) tensors. TensorFlow's ``clip_by_norm(W, r, axes=1)``
        in the slides is ``norm_axes=(1,)``.
    epsilon : float, default 1e-7
        Added to the norms, > 0 (it keeps a zero norm from dividing by zero).
    """
    x = pt.as_tensor_variable(tensor_var)
    max_norm = Hyperparameter(max_norm, "max_norm", low=0, low_open=True)
    epsilon = Hyperparameter(epsilon, "epsilon", low=0, low_open=True)
    axes = _default_norm_axes(x.ndim) if norm_axes is None else tuple(norm_axes)
    for axis in axes:
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"norm_axes {axes} do not fit a tensor with {x.ndim} dimensions")
    norms = pt.sqrt(pt.sqr(x).sum(axis=axes, keepdims=True))
    target = pt.clip(norms, as_scalar(0, x.dtype), max_norm(x.dtype))
    return x * (target / (epsilon(x.dtype) + norms))


def clip_by_global_norm(max_norm, epsilon=1e-7):
    """:func:`total_norm_constraint` over all steps, as a transform for :func:`symopt.chain`."""
    check_hyper(max_norm, "max_norm", low=0, low_open=True)

    def transform(steps, params):
        return total_norm_constraint(steps, max_norm, epsilon), []

    return Transform(transform, elementwise=False, name="clip_by_global_norm")


def clip(max_delta):
    """Clip every element of every step into ``[-max_delta, max_delta]``, as a transform."""
    check_hyper(max_delta, "max_delta", low=0)

    def transform(steps, params):
        return clip_by_value(steps, -max_delta, max_delta), []

    return Transform(transform, elementwise=True, name="clip")
