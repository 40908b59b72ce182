r"""Penalties to add to a loss: the slides' :math:`\ell_1` and :math:`\ell_2` regularisation."""

from __future__ import annotations

import pytensor.tensor as pt

from symopt._checks import Hyperparameter

__all__ = ["l1", "l2", "regularize"]


def l1(x):
    r"""The :math:`\ell_1` penalty :math:`\sum_i |x_i|`."""
    return pt.abs(x).sum()


def l2(x):
    r"""The :math:`\ell_2` penalty :math:`\sum_i x_i^2` (without a factor 1/2, as in the slides)."""
    return pt.sqr(x).sum()


def regularize(params, penalty=l2, coefficient=None):
    r"""The penalty summed over ``params``, times ``coefficient`` if given.

    ``loss + regularize(weights, l1, 0.001)`` is the slides' :math:`J + \lambda R(w)`.
    Apply it to weights, not biases, as the slides do.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> w = pytensor.shared(np.array([1.0, -2.0]))
    >>> float(regularize([w], l1, 0.5).eval())
    1.5
    """
    params = list(params)
    if not params:
        raise ValueError("regularize needs at least one parameter")
    total = sum(penalty(p) for p in params)
    if coefficient is None:
        return total
    return Hyperparameter(coefficient, "coefficient", low=0)(total.dtype) * total
