r"""The blog post's update rules: the toy ``MomentumUpdate`` and the MLP script's three.

The toy (minimise :math:`(x_1^2+x_2^2+x_3^2+x_4^2)^2` from :math:`x = 0.5`) uses one
function for all three methods: ``momentum=0.0`` is vanilla SGD, ``momentum=0.9`` is
classical momentum, and the same call with the gradient taken at the look-ahead point
``x + momentum * v`` is the toy NAG. That toy NAG updates ``x`` with the velocity alone,
:math:`x \leftarrow x + v`, unlike the script's ``nag`` and :func:`symopt.nesterov_momentum`,
which keep the parameter at the look-ahead point and add :math:`\mu v - \eta g`; the
examples show both.
"""

from __future__ import annotations

from collections import OrderedDict

import pytensor

from symopt._checks import as_scalar, check_hyper, check_params, like_param
from symopt.state import param_state

__all__ = ["MomentumUpdate", "momentum", "nag", "sgd"]


def MomentumUpdate(params, learning_rate=0.01, momentum=0.9):  # noqa: N802 (the blog's name)
    r"""The blog's toy update: ``[x, v, df]`` in, ``[(x, x + v_next), (v, v_next)]`` out.

    .. math:: v_{next} = \mu\, v - \eta\, df, \qquad x \leftarrow x + v_{next}

    Parameters
    ----------
    params : [SharedVariable, SharedVariable, TensorVariable]
        The position ``x``, its velocity ``v`` (zeros, same shape) and the gradient ``df``.
    learning_rate : float, default 0.01
    momentum : float, default 0.9
        0.0 gives vanilla SGD.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> x = pytensor.shared(np.full(4, 0.5, dtype="float32"))
    >>> v = pytensor.shared(np.zeros(4, dtype="float32"))
    >>> inputX = pt.vector("x", dtype="float32")
    >>> y = pt.sqr(pt.sum(pt.sqr(inputX)))
    >>> df = pytensor.grad(y, inputX)
    >>> updates = MomentumUpdate([x, v, df], learning_rate=0.01, momentum=0.9)
    >>> cost = pytensor.function([], y, updates=updates, givens={inputX: x})
    >>> round(float(cost()), 6), x.get_value()[0]
    (1.0, np.float32(0.48))
    """
    x, v, df = params
    check_params([x, v])
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    mu, lr = as_scalar(momentum, v.dtype), as_scalar(learning_rate, v.dtype)
    v_next = mu * v - lr * like_param(df, v)
    updates = [(x, x + v_next), (v, v_next)]
    return updates


def _grads(cost, params):
    params = check_params(params)
    return params, pytensor.grad(cost, params)


def sgd(cost, params, learning_rate=0.01):
    r"""The MLP script's ``sgd``: :math:`\theta \leftarrow \theta - \eta\, g`.

    Returns an OrderedDict."""
    params, grads = _grads(cost, params)
    check_hyper(learning_rate, "learning_rate", low=0)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        updates[param] = param - as_scalar(learning_rate, param.dtype) * grad
    return updates


def momentum(cost, params, learning_rate=0.01, momentum=0.9):
    r"""The MLP script's ``momentum``: classical momentum, velocity first.

    .. math:: v \leftarrow \mu\, v - \eta\, g, \qquad \theta \leftarrow \theta + v
    """
    params, grads = _grads(cost, params)
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        mu, lr = as_scalar(momentum, param.dtype), as_scalar(learning_rate, param.dtype)
        velocity = param_state(param, "velocity", "blog.momentum")
        updates[velocity] = mu * velocity - lr * grad
        updates[param] = param + updates[velocity]
    return updates


def nag(cost, params, learning_rate=0.01, momentum=0.9):
    r"""The MLP script's ``nag``: Nesterov momentum, re-formulated on the stored parameter.

    In the script's own steps:

    .. math::

        \theta' = \theta - \eta\, g, \qquad
        v \leftarrow \mu\, v + \theta' - \theta, \qquad
        \theta \leftarrow \mu\, v + \theta'

    which is :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + \mu v - \eta g`,
    :func:`symopt.nesterov_momentum` up to rounding.
    """
    params, grads = _grads(cost, params)
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    updates = OrderedDict()
    for param, grad in zip(params, grads):
        mu, lr = as_scalar(momentum, param.dtype), as_scalar(learning_rate, param.dtype)
        velocity = param_state(param, "velocity", "blog.nag")
        updates[param] = param - lr * grad
        updates[velocity] = mu * velocity + updates[param] - param
        updates[param] = mu * updates[velocity] + updates[param]
    return updates
