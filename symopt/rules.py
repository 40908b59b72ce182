r"""The update rules users call: each a short chain of building blocks.

Every rule has the signature ``rule(loss_or_grads=None, params=None, **hyperparameters)``
(Lasagne's and PyMC's, with their hyperparameter names) and returns a list of
``(shared_variable, update_expression)`` pairs. Called with neither a loss nor params it
returns a configured rule, to be applied later (``pm.fit(obj_optimizer=adam(...))``) or
chained after gradient transforms.
"""

from __future__ import annotations

from symopt.blocks import (
    add_decayed_weights,
    identity,
    negate,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_nadam,
    scale_by_rms,
    scale_by_rprop,
    trace,
)
from symopt.transform import chain, update_rule

__all__ = [
    "KINDS",
    "RULES",
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "amsgrad",
    "momentum",
    "nadam",
    "nesterov_momentum",
    "rmsprop",
    "rprop",
    "sgd",
]

#: What scale a rule's learning rate lives on, so that studies can give every rule of a
#: kind the same one: ``"gradient"`` (the step is proportional to the gradient: SGD and
#: momentum), ``"adaptive"`` (the step is about the learning rate whatever the
#: gradient: Adam's family, RMSProp, Adagrad, Rprop) and ``"unit"`` (AdaDelta, whose
#: learning rate is a plain factor around 1).
KINDS = ("gradient", "adaptive", "unit")

#: Every update rule of the library, by name, in the order of the rule table: the one
#: registry the lab's forms, the tests and the benchmarks read. Each rule carries
#: ``rule.kind`` (one of :data:`KINDS`) and ``rule.stochastic`` (whether it suits noisy
#: mini-batch gradients; Rprop, which acts on their signs, is a full-batch rule).
RULES = {}


def _registered(kind, stochastic=True):
    """:func:`symopt.update_rule`, and an entry in :data:`RULES`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def register(build):
        rule = update_rule(build)
        rule.kind, rule.stochastic = kind, stochastic
        RULES[rule.__name__] = rule
        return rule

    return register


@_registered("gradient")
def sgd(learning_rate=1e-3):
    r"""Stochastic gradient descent.

    .. math:: \theta \leftarrow \theta - \eta\, g

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta` (Lasagne's and PyMC's default).

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, without loss and params, the configured rule.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.sgd((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value()
    array([ 0.512, -1.024])
    """
    return scale_by_learning_rate(learning_rate)


@_registered("gradient")
def momentum(learning_rate=1e-3, momentum=0.9):
    r"""SGD with classical momentum (Polyak, 1964), as in Lasagne and PyMC.

    .. math::

        v \leftarrow \mu\, v - \eta\, g, \qquad \theta \leftarrow \theta + v

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    momentum : float or scalar variable, default 0.9
        :math:`\mu`, in ``[0, 1]``.

    State: ``<param>.velocity``. See :func:`sgd` for ``loss_or_grads``, ``params`` and
    what is returned.
    """
    return chain(scale_by_learning_rate(learning_rate), trace(momentum))


@_registered("gradient")
def nesterov_momentum(learning_rate=1e-3, momentum=0.9):
    r"""SGD with Nesterov's accelerated gradient, in the form of Sutskever et al. (2013).

    The look-ahead is folded into the parameter (Bengio et al., 2013), so the gradient is
    taken at the stored parameter:

    .. math::

        v \leftarrow \mu\, v - \eta\, g, \qquad \theta \leftarrow \theta + \mu\, v - \eta\, g

    This is Lasagne's, PyMC's and the book's NAG, and the blog script's ``nag`` rewritten.

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1e-3
    momentum : float or scalar variable, default 0.9

    State: ``<param>.velocity``.
    """
    return chain(scale_by_learning_rate(learning_rate), trace(momentum, nesterov=True))


@_registered("adaptive")
def adagrad(learning_rate=1.0, epsilon=1e-6):
    r"""Adagrad (Duchi et al., 2011), epsilon inside the root as in Lasagne and PyMC.

    .. math::

        r \leftarrow r + g^2, \qquad \theta \leftarrow \theta - \eta\, g / \sqrt{r + \epsilon}

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1.0
    epsilon : float, default 1e-6

    State: ``<param>.sum_square``.
    """
    return chain(scale_by_adagrad(epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def rmsprop(learning_rate=1.0, rho=0.9, epsilon=1e-6, momentum=0.0, centered=False):
    r"""RMSProp (Tieleman & Hinton, 2012), optionally with momentum and centred.

    .. math::

        r &\leftarrow \rho\, r + (1-\rho)\, g^2 \\
        v &\leftarrow \mu\, v - \eta\, g / \sqrt{r + \epsilon}, \qquad \theta \leftarrow \theta + v

    With ``momentum=0`` (the default) this is Lasagne's and PyMC's rmsprop; with
    ``momentum=0.9, rho=0.9, epsilon=1e-10`` it is TensorFlow's ``RMSPropOptimizer`` as the
    slides use it; ``centered=True`` subtracts the squared running mean of the gradient
    inside the root (Graves, 2013).

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1.0
    rho : float, default 0.9
    epsilon : float, default 1e-6
    momentum : float, default 0.0
    centered : bool, default False

    State: ``<param>.mean_square``, and ``<param>.mean_grad`` and ``<param>.velocity``
    when used.
    """
    with_momentum = trace(momentum) if _nonzero(momentum) else identity()
    return chain(scale_by_rms(rho, epsilon, centered), scale_by_learning_rate(learning_rate),
                 with_momentum)


def _nonzero(value):
    return not isinstance(value, (int, float)) or value != 0


@_registered("unit")
def adadelta(learning_rate=1.0, rho=0.95, epsilon=1e-6):
    r"""AdaDelta (Zeiler, 2012), as in Lasagne, PyMC and the book.

    .. math::

        r &\leftarrow \rho\, r + (1-\rho)\, g^2, \qquad
        s = g\, \sqrt{d + \epsilon} / \sqrt{r + \epsilon} \\
        d &\leftarrow \rho\, d + (1-\rho)\, s^2, \qquad \theta \leftarrow \theta - \eta\, s

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1.0
    rho : float, default 0.95
    epsilon : float, default 1e-6

    State: ``<param>.mean_square``, ``<param>.mean_square_delta``.
    """
    return chain(scale_by_adadelta(rho, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adam(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""Adam (Kingma & Ba, 2015), Algorithm 1 of the paper.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        \theta &\leftarrow \theta - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    This is the form of ``torch.optim.Adam``, optax and the book (whose text form also
    decays :math:`\beta_1`, see :func:`symopt.texts.book.adam`). Lasagne and PyMC add
    epsilon to :math:`\sqrt{v}` before the bias correction instead; the two differ only
    while :math:`\sqrt{\hat v}` is near epsilon.

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1e-3
    beta1 : float, default 0.9
    beta2 : float, default 0.999
    epsilon : float, default 1e-8

    State: ``<param>.m``, ``<param>.v`` and the counter ``adam.t``.
    """
    return chain(scale_by_adam(beta1, beta2, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adamax(learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""AdaMax (Kingma & Ba, 2015, section 7.1), as in Lasagne, PyMC and the lecture.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad u \leftarrow \max(\beta_2 u, |g|),
        \qquad \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\, \frac{m}{u + \epsilon}

    Parameters
    ----------
    learning_rate : float or scalar variable, default 2e-3
    beta1 : float, default 0.9
    beta2 : float, default 0.999
    epsilon : float, default 1e-8

    State: ``<param>.m``, ``<param>.u`` and ``adamax.t``.
    """
    return chain(scale_by_adamax(beta1, beta2, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def amsgrad(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""AMSGrad (Reddi et al., 2018): Adam whose second moment never decreases.

    .. math::

        \hat v \leftarrow \max(\hat v, v), \qquad
        \theta \leftarrow \theta - \eta\, \frac{m / (1-\beta_1^t)}{\sqrt{\hat v / (1-\beta_2^t)} + \epsilon}

    with ``m``, ``v`` as in :func:`adam`; the form of ``torch.optim.Adam(amsgrad=True)``.

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1e-3
    beta1, beta2, epsilon : float, defaults 0.9, 0.999, 1e-8

    State: ``<param>.m``, ``<param>.v``, ``<param>.v_max`` and ``amsgrad.t``.
    """
    return chain(scale_by_amsgrad(beta1, beta2, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def nadam(learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum, constant :math:`\beta_1`.

    .. math::

        \theta \leftarrow \theta - \eta\, \frac{\beta_1 m / (1-\beta_1^{t+1})
            + (1-\beta_1)\, g / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    with ``m``, ``v`` as in :func:`adam` (the form of optax's ``nadam``).

    Parameters
    ----------
    learning_rate : float or scalar variable, default 2e-3 (Dozat's and Keras's)
    beta1, beta2, epsilon : float, defaults 0.9, 0.999, 1e-8

    State: ``<param>.m``, ``<param>.v`` and ``nadam.t``.
    """
    return chain(scale_by_nadam(beta1, beta2, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adamw(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=1e-2):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    .. math:: \theta \leftarrow \theta - \eta\, \big(\mathrm{adam\ direction} + \lambda\, \theta\big)

    The decay is not part of the gradient, so it is not rescaled by the second moment.
    Defaults are ``torch.optim.AdamW``'s.

    Parameters
    ----------
    learning_rate : float or scalar variable, default 1e-3
    beta1, beta2, epsilon : float, defaults 0.9, 0.999, 1e-8
    weight_decay : float or scalar variable, default 1e-2
        :math:`\lambda`.

    State: ``<param>.m``, ``<param>.v`` and ``adamw.t``.
    """
    return chain(scale_by_adam(beta1, beta2, epsilon, name="adamw"),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))


@_registered("adaptive", stochastic=False)
def rprop(learning_rate=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    r"""Rprop (Riedmiller & Braun, 1993), the iRprop- form of ``torch.optim.Rprop``.

    Each element moves by its own step size against the sign of its gradient; the step
    grows by ``etas[1]`` while the gradient keeps its sign and shrinks by ``etas[0]`` when
    it flips (then that element waits one step). Meant for full-batch training: the
    lecture explains why it fails on mini-batches.

    Parameters
    ----------
    learning_rate : float or scalar variable, default 0.01
        The initial step size of every element.
    etas : (float, float), default (0.5, 1.2)
        :math:`(\eta^-, \eta^+)`, with :math:`0 < \eta^- < 1 < \eta^+`.
    step_sizes : (float, float), default (1e-6, 50.0)
        Smallest and largest step size.

    State: ``<param>.prev_grad``, ``<param>.step_size`` and ``rprop.t``.
    """
    return chain(scale_by_rprop(learning_rate, etas, step_sizes), negate())
