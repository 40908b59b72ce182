r"""The book's update rules, *Deep Learning with Theano*, "Optimization and other update rules".

Each rule here is the book's loop transcribed: the gradients of ``cost`` are clipped to
a total norm of 50 with :func:`clip_norms` (``clip=None`` turns that off) and the rule's
update list is returned. The book leaves learning rates and decays free; the defaults
here are the common ones and are written in each function.

Differences from the library's rules, which the tests check:

- SGD, momentum, Adagrad, AdaDelta and RMSProp are :func:`symopt.sgd`,
  :func:`symopt.momentum`, :func:`symopt.adagrad`, :func:`symopt.adadelta` and
  :func:`symopt.rmsprop` with ``epsilon=1e-6`` after ``clip_norms``; NAG is
  :func:`symopt.nesterov_momentum` up to rounding (it adds the terms in another order).
- :func:`adam` decays :math:`\beta_1` over time, :math:`\beta_{1,t} = \beta_1 \lambda^{t-1}`
  with :math:`\lambda = 1 - 10^{-8}` (from the first arXiv versions of the Adam paper),
  corrects the bias with the undecayed :math:`\beta_1^t`, and uses epsilon 1e-6 outside
  the bias-corrected root. In float32 :math:`1 - 10^{-8}` rounds to 1, so there the decay
  vanishes and the rule is :func:`symopt.adam` with ``epsilon=1e-6``.
- The book counts steps in a float shared variable; here the counter is an exact int64
  (the values are the same while ``t`` < 2**24 in float32).
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt

from symopt._checks import as_scalar, check_hyper, check_params
from symopt.state import param_state, step_counter

__all__ = ["adadelta", "adagrad", "adam", "clip_norms", "momentum", "nag", "rmsprop", "sgd"]


def clip_norms(gs, c):
    r"""The book's gradient clipping: rescale all gradients when their total norm reaches ``c``.

    .. math:: n = \sqrt{\textstyle\sum_k \|g_k\|^2}, \qquad
              g_k \leftarrow \begin{cases} g_k\, c / n & n \ge c \\ g_k & n < c \end{cases}

    Unlike :func:`symopt.total_norm_constraint`, gradients below the threshold are
    returned unchanged, and the rescaled norm is exactly ``c``.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> g = [pt.constant(np.array([3.0, 4.0]))]
    >>> clip_norms(g, 1)[0].eval(), clip_norms(g, 50)[0].eval()
    (array([0.6, 0.8]), array([3., 4.]))
    """
    gs = list(gs)
    if not gs:
        raise ValueError("clip_norms needs at least one gradient")
    check_hyper(c, "c", low=0, low_open=True)
    norm = pt.sqrt(sum([pt.sum(g**2) for g in gs]))
    return [
        pt.switch(pt.ge(norm, as_scalar(c, norm.dtype)),
                  g * as_scalar(c, g.dtype) / pt.cast(norm, g.dtype), g)
        for g in gs
    ]


def _clipped_grads(cost, params, clip):
    params = check_params(params)
    grads = pytensor.grad(cost, params)
    if clip is not None:
        grads = clip_norms(grads, clip)
    return params, grads


def sgd(cost, params, learning_rate=0.01, clip=50):
    r"""SGD after clipping: :math:`\theta \leftarrow \theta - \eta\, g`."""
    check_hyper(learning_rate, "learning_rate", low=0)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        updated_p = p - as_scalar(learning_rate, p.dtype) * g
        updates.append((p, updated_p))
    return updates


def momentum(cost, params, learning_rate=0.01, momentum=0.9, clip=50):
    r"""Momentum: :math:`v = \mu m - \eta g`, :math:`m \leftarrow v`,
    :math:`\theta \leftarrow \theta + v`.

    The book suggests a momentum between 0.5 and 0.9, to be cross-validated.
    """
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        mu, lr = as_scalar(momentum, p.dtype), as_scalar(learning_rate, p.dtype)
        m = param_state(p, "velocity", "book.momentum")
        v = (mu * m) - (lr * g)
        updates.append((m, v))
        updates.append((p, p + v))
    return updates


def nag(cost, params, learning_rate=0.01, momentum=0.9, clip=50):
    r"""Nesterov: :math:`v = \mu m - \eta g`, :math:`\theta \leftarrow \theta + \mu v - \eta g`."""
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(momentum, "momentum", low=0, high=1)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        mu, lr = as_scalar(momentum, p.dtype), as_scalar(learning_rate, p.dtype)
        m = param_state(p, "velocity", "book.nag")
        v = (mu * m) - (lr * g)
        updates.append((m, v))
        updates.append((p, p + mu * v - lr * g))
    return updates


def adagrad(cost, params, learning_rate=0.01, clip=50):
    r"""Adagrad: :math:`a \leftarrow a + g^2`,
    :math:`\theta \leftarrow \theta - \eta g / \sqrt{a + 10^{-6}}`."""
    check_hyper(learning_rate, "learning_rate", low=0)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        acc = param_state(p, "sum_square", "book.adagrad")
        acc_t = acc + g**2
        updates.append((acc, acc_t))
        lr, eps = as_scalar(learning_rate, p.dtype), as_scalar(1e-6, p.dtype)
        p_t = p - (lr / pt.sqrt(acc_t + eps)) * g
        updates.append((p, p_t))
    return updates


def adadelta(cost, params, learning_rate=1.0, rho=0.95, clip=50):
    r"""AdaDelta with two running averages, of squared gradients and of squared updates."""
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(rho, "rho", low=0, high=1)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        r, lr, eps = (as_scalar(x, p.dtype) for x in (rho, learning_rate, 1e-6))
        acc = param_state(p, "mean_square", "book.adadelta")
        acc_delta = param_state(p, "mean_square_delta", "book.adadelta")
        acc_new = r * acc + (1 - r) * g**2
        updates.append((acc, acc_new))
        update = g * pt.sqrt(acc_delta + eps) / pt.sqrt(acc_new + eps)
        updates.append((p, p - lr * update))
        updates.append((acc_delta, r * acc_delta + (1 - r) * update**2))
    return updates


def rmsprop(cost, params, learning_rate=0.001, rho=0.9, clip=50):
    r"""RMSProp: :math:`a \leftarrow \rho a + (1-\rho) g^2`,
    :math:`\theta \leftarrow \theta - \eta g / \sqrt{a + 10^{-6}}`."""
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(rho, "rho", low=0, high=1)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    for p, g in zip(params, grads):
        r, lr, eps = (as_scalar(x, p.dtype) for x in (rho, learning_rate, 1e-6))
        acc = param_state(p, "mean_square", "book.rmsprop")
        acc_new = r * acc + (1 - r) * g**2
        updates.append((acc, acc_new))
        updated_p = p - lr * (g / pt.sqrt(acc_new + eps))
        updates.append((p, updated_p))
    return updates


def adam(cost, params, learning_rate=0.001, b1=0.9, b2=0.999, l=1 - 1e-8, clip=50):  # noqa: E741
    r"""The book's Adam, with the decaying first-moment coefficient.

    .. math::

        \beta_{1,t} &= \beta_1 \lambda^{t-1}, \qquad
        m \leftarrow \beta_{1,t} m + (1-\beta_{1,t})\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        \theta &\leftarrow \theta
            - \frac{\eta\, m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + 10^{-6}}

    with :math:`t = 1` at the first step. State: ``<param>.m``, ``<param>.v``, ``adam.t``.
    """
    check_hyper(learning_rate, "learning_rate", low=0)
    check_hyper(b1, "b1", low=0, high=1, high_open=True)
    check_hyper(b2, "b2", low=0, high=1, high_open=True)
    check_hyper(l, "l", low=0, high=1)
    params, grads = _clipped_grads(cost, params, clip)
    updates = []
    counter = step_counter("adam")
    t_int = counter + 1
    for p, g in zip(params, grads):
        lr, b1_, b2_, l_, eps = (as_scalar(x, p.dtype) for x in (learning_rate, b1, b2, l, 1e-6))
        t = pt.cast(t_int, p.dtype)
        b1_t = b1_ * l_ ** (t - 1)
        m = param_state(p, "m", "book.adam")
        v = param_state(p, "v", "book.adam")
        m_t = b1_t * m + (1 - b1_t) * g
        v_t = b2_ * v + (1 - b2_) * g**2
        updates.append((m, m_t))
        updates.append((v, v_t))
        updates.append((p, p - (lr * m_t / (1 - b1_**t)) / (pt.sqrt(v_t / (1 - b2_**t)) + eps)))
    updates.append((counter, t_int))
    return updates
