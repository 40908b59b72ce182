r"""The update rules users call: each a short chain of building blocks.

Every rule has the signature ``rule(loss_or_grads=None, params=None, **hyperparameters)``
(Lasagne's and PyMC's, with their hyperparameter names) and returns a list of
``(shared_variable, update_expression)`` pairs. Called with neither a loss nor params it
returns a configured rule, to be applied later (``pm.fit(obj_optimizer=adam(...))``) or
chained after gradient transforms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from symopt._checks import like_param, nonzero
from symopt.blocks import (
    add_decayed_weights,
    identity,
    negate,
    scale_by_adabelief,
    scale_by_adadelta,
    scale_by_adafactor,
    scale_by_adagrad,
    scale_by_adagrad_window,
    scale_by_adam,
    scale_by_adamax,
    scale_by_adan,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_amsgrad,
    scale_by_asgd,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_muon,
    scale_by_nadam,
    scale_by_novograd,
    scale_by_prodigy,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    scale_by_schedule_free,
    scale_by_trust_ratio,
    scale_by_yogi,
    trace,
)
from symopt.state import state_tag
from symopt.transform import Transform, chain, update_rule

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Literal

    from pytensor.graph.basic import Variable

    from symopt._typing import (
        EpsilonPlacement,
        LearningRate,
        RegisteredRule,
        Scalar,
        UpdateRule,
    )

__all__ = [
    "KINDS",
    "RULES",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adagrad_window",
    "adam",
    "adamax",
    "ademamix",
    "adamw",
    "adan",
    "adopt",
    "amsgrad",
    "asgd",
    "lamb",
    "lars",
    "lion",
    "momentum",
    "muon",
    "nadam",
    "nesterov_momentum",
    "novograd",
    "prodigy",
    "radam",
    "rmsprop",
    "rprop",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "sgd",
    "yogi",
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
RULES: dict[str, RegisteredRule] = {}


def register(rule: UpdateRule, kind: str, stochastic: bool = True) -> RegisteredRule:
    """Enter ``rule`` (made by :func:`symopt.update_rule`) in :data:`RULES`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    registered = cast("RegisteredRule", rule)
    registered.kind, registered.stochastic = kind, stochastic
    RULES[rule.__name__] = registered
    return registered


def _registered(kind: str, stochastic: bool = True, needs_loss: bool = False
                ) -> Callable[[Callable[..., Transform]], RegisteredRule]:
    """:func:`symopt.update_rule`, and an entry in :data:`RULES`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def make(build: Callable[..., Transform]) -> RegisteredRule:
        return register(update_rule(build, needs_loss=needs_loss), kind, stochastic)

    return make


@_registered("gradient")
def sgd(learning_rate: LearningRate = 1e-3) -> Transform:
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
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: none; the rule keeps no state.

    References
    ----------
    H. Robbins and S. Monro (1951), "A Stochastic Approximation Method", The Annals of
    Mathematical Statistics 22(3). https://doi.org/10.1214/aoms/1177729586

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
def momentum(learning_rate: LearningRate = 1e-3, momentum: Scalar = 0.9) -> Transform:
    r"""SGD with classical momentum (Polyak, 1964), as in Lasagne and PyMC.

    .. math::

        v \leftarrow \mu\, v - \eta\, g, \qquad \theta \leftarrow \theta + v

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    momentum : float or scalar variable, default 0.9
        :math:`\mu`, in ``[0, 1]``: the fraction of the velocity kept from one step to
        the next.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.velocity``.

    References
    ----------
    B. T. Polyak (1964), "Some methods of speeding up the convergence of iteration
    methods", USSR Computational Mathematics and Mathematical Physics 4(5).
    https://doi.org/10.1016/0041-5553(64)90137-5

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.momentum((w ** 2).sum(), [w], learning_rate=0.1, momentum=0.5)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value()
    array([ 0.302, -0.604])
    """
    return chain(scale_by_learning_rate(learning_rate), trace(momentum))


@_registered("gradient")
def nesterov_momentum(learning_rate: LearningRate = 1e-3, momentum: Scalar = 0.9) -> Transform:
    r"""SGD with Nesterov's accelerated gradient, in the form of Sutskever et al. (2013).

    The look-ahead is folded into the parameter (Bengio et al., 2013), so the gradient is
    taken at the stored parameter:

    .. math::

        v \leftarrow \mu\, v - \eta\, g, \qquad \theta \leftarrow \theta + \mu\, v - \eta\, g

    This is Lasagne's, PyMC's and the book's NAG, and the blog script's ``nag`` rewritten.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    momentum : float or scalar variable, default 0.9
        :math:`\mu`, in ``[0, 1]``: the fraction of the velocity kept from one step to
        the next.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.velocity``.

    References
    ----------
    I. Sutskever, J. Martens, G. Dahl and G. Hinton (2013), "On the importance of
    initialization and momentum in deep learning", ICML 2013.
    https://proceedings.mlr.press/v28/sutskever13.html

    Y. Bengio, N. Boulanger-Lewandowski and R. Pascanu (2013), "Advances in Optimizing
    Recurrent Networks", ICASSP 2013. https://arxiv.org/abs/1212.0901

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.nesterov_momentum((w ** 2).sum(), [w], learning_rate=0.1,
    ...                                    momentum=0.5)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value()
    array([ 0.248, -0.496])
    """
    return chain(scale_by_learning_rate(learning_rate), trace(momentum, nesterov=True))


@_registered("adaptive")
def adagrad(learning_rate: LearningRate = 1.0, epsilon: Scalar = 1e-6) -> Transform:
    r"""Adagrad (Duchi et al., 2011), epsilon inside the root as in Lasagne and PyMC.

    .. math::

        r \leftarrow r + g^2, \qquad \theta \leftarrow \theta - \eta\, g / \sqrt{r + \epsilon}

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`.
    epsilon : float or scalar variable, default 1e-6
        :math:`\epsilon`, added to the sum of squares inside the root, for stability.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.sum_square``.

    References
    ----------
    J. Duchi, E. Hazan and Y. Singer (2011), "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", Journal of Machine Learning Research 12.
    https://jmlr.org/papers/v12/duchi11a.html

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adagrad((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.780456, -1.775822])
    """
    return chain(scale_by_adagrad(epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adagrad_window(learning_rate: Scalar = 1e-3, epsilon: Scalar = 0.1,
                   n_win: int = 10) -> Transform:
    r"""Adagrad over a window of the last ``n_win`` squared gradients: PyMC's ``adagrad_window``.

    .. math::

        w_{t \bmod n} \leftarrow g^2, \qquad
        \theta \leftarrow \theta - \eta\, g \,/\, \sqrt{\textstyle\sum_{k=0}^{n-1} w_k + \epsilon}

    Adagrad's sum of every squared gradient so far makes its steps shrink for good; here
    only the last :math:`n` count, in a ring buffer :math:`w` (zeros at first), so the
    step follows the gradient's recent scale, as RMSProp's running mean does, but with a
    hard window. It is PyMC's default optimizer for ``pm.fit`` (ADVI), with its
    defaults, and computes what ``pymc.adagrad_window`` computes, bit for bit.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta` (PyMC's default).
    epsilon : float or scalar variable, default 0.1
        :math:`\epsilon`, added to the windowed sum inside the root (PyMC's default:
        large, so the first steps, when the window holds one square, stay small).
    n_win : int, default 10
        :math:`n`, how many past squared gradients are summed.
    fuse : bool or "auto", default False
        The window has an axis the parameter does not, so this rule runs on the
        per-tensor path only: True raises :class:`symopt.fused.NotFusable`, ``"auto"``
        keeps the per-tensor path.

    Returns
    -------
    Updates, or ConfiguredRule
        The updates (a list of pairs that also reads as a mapping), or, called without
        ``loss_or_grads`` and ``params``, the configured rule.

    Notes
    -----
    State: ``<param>.window`` (the parameter's shape and a last axis of length ``n_win``,
    PyMC's layout) and the counter ``adagrad_window.t``; PyMC keeps one floating-point
    slot index per parameter instead, all equal to this counter modulo ``n_win``.

    References
    ----------
    PyMC developers, ``pymc.variational.updates.adagrad_window`` (PyMC 3.1 and later,
    2017), https://www.pymc.io/projects/docs/en/stable/api/generated/pymc.adagrad_window.html

    J. Duchi, E. Hazan and Y. Singer (2011), "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", Journal of Machine Learning Research 12.
    https://jmlr.org/papers/v12/duchi11a.html

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.adagrad_window((w ** 2).sum(), [w], 0.1, n_win=2)
    >>> [var.name for var in updates.keys()], updates.keys()[1].get_value().shape
    (['w', 'w.window', 'adagrad_window.t'], (2, 2))
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.767341, -1.762271])
    """
    return scale_by_adagrad_window(epsilon, n_win, learning_rate=learning_rate)


@_registered("adaptive")
def rmsprop(learning_rate: LearningRate = 1.0, rho: Scalar = 0.9, epsilon: Scalar = 1e-6,
            momentum: Scalar = 0.0, centered: bool = False) -> Transform:
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
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`.
    rho : float or scalar variable, default 0.9
        :math:`\rho`, in ``[0, 1]``: the decay of the running mean square :math:`r`.
    epsilon : float or scalar variable, default 1e-6
        :math:`\epsilon`, added inside the root, for stability.
    momentum : float or scalar variable, default 0.0
        :math:`\mu`, in ``[0, 1]``. A literal 0 keeps no velocity:
        :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{r + \epsilon}`.
    centered : bool, default False
        Also keep a running mean :math:`\bar g` of the gradient and divide by
        :math:`\sqrt{r - \bar g^2 + \epsilon}`, an estimate of its standard deviation
        (Graves, 2013).
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.mean_square``, and ``<param>.mean_grad`` and ``<param>.velocity``
    when used.

    References
    ----------
    T. Tieleman and G. Hinton (2012), "Lecture 6.5 - rmsprop: Divide the gradient by a
    running average of its recent magnitude", COURSERA: Neural Networks for Machine
    Learning. https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf

    A. Graves (2013), "Generating Sequences With Recurrent Neural Networks" (the centred
    form), arXiv:1308.0850. https://arxiv.org/abs/1308.0850

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.rmsprop((w ** 2).sum(), [w], 0.01))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.927053, -1.926634])
    """
    with_momentum = trace(momentum) if nonzero(momentum) else identity()
    return chain(scale_by_rms(rho, epsilon, centered), scale_by_learning_rate(learning_rate),
                 with_momentum)


@_registered("unit")
def adadelta(learning_rate: LearningRate = 1.0, rho: Scalar = 0.95,
             epsilon: Scalar = 1e-6) -> Transform:
    r"""AdaDelta (Zeiler, 2012), as in Lasagne, PyMC and the book.

    .. math::

        r &\leftarrow \rho\, r + (1-\rho)\, g^2, \qquad
        s = g\, \sqrt{d + \epsilon} / \sqrt{r + \epsilon} \\
        d &\leftarrow \rho\, d + (1-\rho)\, s^2, \qquad \theta \leftarrow \theta - \eta\, s

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`, a plain factor on the step; the paper has none, so 1.0 reproduces it.
    rho : float or scalar variable, default 0.95
        :math:`\rho`, in ``[0, 1]``: the decay of both running means, :math:`r` and
        :math:`d`.
    epsilon : float or scalar variable, default 1e-6
        :math:`\epsilon`, added inside both roots; since :math:`d` starts at zero, it
        also sets the size of the first steps.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.mean_square``, ``<param>.mean_square_delta``.

    References
    ----------
    M. D. Zeiler (2012), "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701.
    https://arxiv.org/abs/1212.5701

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adadelta((w ** 2).sum(), [w]))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.986464, -1.986448])
    """
    return chain(scale_by_adadelta(rho, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adam(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
         epsilon: Scalar = 1e-8, *,
         epsilon_placement: EpsilonPlacement = "after_correction") -> Transform:
    r"""Adam (Kingma & Ba, 2015), Algorithm 1 of the paper, or its "efficient" form.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        \theta &\leftarrow \theta - \eta\,
            \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    This is the form of ``torch.optim.Adam``, optax and the book (whose text form also
    decays :math:`\beta_1`, see :func:`symopt.texts.book.adam`): epsilon is added
    *after* the bias correction. Lasagne and PyMC compute the paper's efficient form of
    its section 2, epsilon added to :math:`\sqrt{v}` *before* the correction, which
    ``epsilon_placement="before_correction"`` selects:

    .. math::

        \alpha_t = \eta\, \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
        \theta \leftarrow \theta - \alpha_t\, \frac{m}{\sqrt{v} + \epsilon}

    bit for bit ``pymc.adam`` and ``lasagne.updates.adam`` (and ``pm.fit`` with either
    gives the same history). It is the first form with :math:`\epsilon` replaced by
    :math:`\epsilon \sqrt{1-\beta_2^t}`, so the two agree while epsilon is small next
    to :math:`\sqrt{v}`; with a large epsilon, or a loss scaled by 1e-6, they do not: the
    first step of ``x**2 / 2`` from 1.0 with ``learning_rate=0.01, epsilon=1e-2`` (or
    ``epsilon=1e-8`` and the loss times 1e-6) ends at 0.990099 in the first form and at
    0.992403 in the efficient one.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``[0, 1)``: the decay of the first moment :math:`m`.
    beta2 : float or scalar variable, default 0.999
        :math:`\beta_2`, in ``[0, 1)``: the decay of the second moment :math:`v`.
    epsilon : float or scalar variable, default 1e-8
        :math:`\epsilon`, added to the root of the second moment, for stability.
    epsilon_placement : {"after_correction", "before_correction"}, keyword only
        Add epsilon to the root of the bias-corrected second moment (Algorithm 1; torch,
        optax), or to the root of the raw one, the corrections folded into the step size
        (the efficient form; Lasagne, PyMC).
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    Updates, or ConfiguredRule
        The updates (a list of pairs that also reads as a mapping), or, called without
        ``loss_or_grads`` and ``params``, the configured rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and the counter ``adam.t``.

    References
    ----------
    D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR 2015.
    https://arxiv.org/abs/1412.6980

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adam((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.701586, -1.700623])

    Configured first and applied later, as ``pm.fit(obj_optimizer=...)`` does:

    >>> opt = symopt.adam(learning_rate=0.1)
    >>> opt  # doctest: +NORMALIZE_WHITESPACE
    adam(learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=1e-08,
         epsilon_placement='after_correction')
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=opt((w ** 2).sum(), [w]))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.701586, -1.700623])

    Lasagne's and PyMC's form; with this epsilon the two forms part visibly:

    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> for placement in ("after_correction", "before_correction"):
    ...     w.set_value(np.array([1.0]))
    ...     updates = symopt.adam((w ** 2).sum() / 2, [w], 0.01, epsilon=1e-2,
    ...                           epsilon_placement=placement)
    ...     _ = pytensor.function([], [], updates=updates)()
    ...     print(placement, w.get_value().round(6))
    after_correction [0.990099]
    before_correction [0.992403]
    """
    if epsilon_placement == "before_correction":  # refuses a StepSchedule, and says so
        return scale_by_adam(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                             learning_rate=learning_rate)  # type: ignore[arg-type]
    return chain(scale_by_adam(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adamax(learning_rate: LearningRate = 2e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
           epsilon: Scalar = 1e-8, *,
           epsilon_placement: EpsilonPlacement = "after_correction") -> Transform:
    r"""AdaMax (Kingma & Ba, 2015, section 7.1), as in Lasagne, PyMC and the lecture.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1)\, g, \qquad u \leftarrow \max(\beta_2 u, |g|),
        \qquad \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}\, \frac{m}{u + \epsilon}

    :math:`u` needs no bias correction, so epsilon has one place and both values of
    ``epsilon_placement`` compute this equation. They differ in the order of rounding:
    ``"after_correction"`` divides :math:`m` by :math:`1-\beta_1^t` and then scales by
    :math:`\eta` (as the other rules apply their learning rate), ``"before_correction"``
    forms the step size first, as Lasagne and PyMC do,

    .. math::

        \alpha_t = \frac{\eta}{1-\beta_1^t}, \qquad
        \theta \leftarrow \theta - \alpha_t\, \frac{m}{u + \epsilon}

    which is ``pymc.adamax`` and ``lasagne.updates.adamax`` bit for bit.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 2e-3
        :math:`\eta`.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``[0, 1)``: the decay of the first moment :math:`m`.
    beta2 : float or scalar variable, default 0.999
        :math:`\beta_2`, in ``[0, 1)``: the decay of the infinity norm :math:`u`.
    epsilon : float or scalar variable, default 1e-8
        :math:`\epsilon`, added to :math:`u`, for stability.
    epsilon_placement : {"after_correction", "before_correction"}, keyword only
        The order of computation, see above (the same equation either way).
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.u`` and ``adamax.t``.

    References
    ----------
    D. P. Kingma and J. Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR 2015.
    https://arxiv.org/abs/1412.6980

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adamax((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.715499, -1.707648])
    """
    if epsilon_placement == "before_correction":  # refuses a StepSchedule, and says so
        return scale_by_adamax(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                               learning_rate=learning_rate)  # type: ignore[arg-type]
    return chain(scale_by_adamax(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def amsgrad(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
            epsilon: Scalar = 1e-8, *,
            epsilon_placement: EpsilonPlacement = "after_correction") -> Transform:
    r"""AMSGrad (Reddi et al., 2018): Adam whose second moment never decreases.

    .. math::

        \hat v \leftarrow \max(\hat v, v), \qquad
        \theta \leftarrow \theta - \eta\,
            \frac{m / (1-\beta_1^t)}{\sqrt{\hat v / (1-\beta_2^t)} + \epsilon}

    with ``m``, ``v`` as in :func:`adam`; the form of ``torch.optim.Adam(amsgrad=True)``,
    epsilon added after the bias correction. ``epsilon_placement="before_correction"``
    gives ``lasagne.updates.amsgrad``, Adam's efficient form with the same maximum:

    .. math::

        \alpha_t = \eta\, \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}, \qquad
        \theta \leftarrow \theta - \alpha_t\, \frac{m}{\sqrt{\hat v} + \epsilon}

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``[0, 1)``: the decay of the first moment :math:`m`.
    beta2 : float or scalar variable, default 0.999
        :math:`\beta_2`, in ``[0, 1)``: the decay of the second moment :math:`v`.
    epsilon : float or scalar variable, default 1e-8
        :math:`\epsilon`, added to the root of :math:`\hat v`, for stability.
    epsilon_placement : {"after_correction", "before_correction"}, keyword only
        Add epsilon after the bias correction (torch) or before it, the corrections in
        the step size (Lasagne).
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v``, ``<param>.v_max`` and ``amsgrad.t``.

    References
    ----------
    S. J. Reddi, S. Kale and S. Kumar (2018), "On the Convergence of Adam and Beyond",
    ICLR 2018. https://openreview.net/forum?id=ryQu7f-RZ

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.amsgrad((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.701586, -1.700623])
    """
    if epsilon_placement == "before_correction":  # refuses a StepSchedule, and says so
        return scale_by_amsgrad(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                                learning_rate=learning_rate)  # type: ignore[arg-type]
    return chain(scale_by_amsgrad(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def nadam(learning_rate: LearningRate = 2e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
          epsilon: Scalar = 1e-8) -> Transform:
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum, constant :math:`\beta_1`.

    .. math::

        \theta \leftarrow \theta - \eta\, \frac{\beta_1 m / (1-\beta_1^{t+1})
            + (1-\beta_1)\, g / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    with ``m``, ``v`` as in :func:`adam` (the form of optax's ``nadam``).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 2e-3
        :math:`\eta` (Dozat's and Keras's default).
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``[0, 1)``: the decay of the first moment :math:`m`.
    beta2 : float or scalar variable, default 0.999
        :math:`\beta_2`, in ``[0, 1)``: the decay of the second moment :math:`v`.
    epsilon : float or scalar variable, default 1e-8
        :math:`\epsilon`, added to the root of the second moment, for stability.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and ``nadam.t``.

    References
    ----------
    T. Dozat (2016), "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.nadam((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.640611, -1.634284])
    """
    return chain(scale_by_nadam(beta1, beta2, epsilon), scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adamw(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
          epsilon: Scalar = 1e-8, weight_decay: Scalar = 1e-2) -> Transform:
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    .. math::

        \theta \leftarrow \theta - \eta\, \big(\mathrm{adam\ direction} + \lambda\, \theta\big)

    The decay is not part of the gradient, so it is not rescaled by the second moment.
    Defaults are ``torch.optim.AdamW``'s.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``[0, 1)``: the decay of the first moment :math:`m`.
    beta2 : float or scalar variable, default 0.999
        :math:`\beta_2`, in ``[0, 1)``: the decay of the second moment :math:`v`.
    epsilon : float or scalar variable, default 1e-8
        :math:`\epsilon`, added to the root of the second moment, for stability.
    weight_decay : float or scalar variable, default 1e-2
        :math:`\lambda`, the decoupled weight decay; like the direction, it is
        multiplied by the learning rate.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and ``adamw.t``.

    References
    ----------
    I. Loshchilov and F. Hutter (2019), "Decoupled Weight Decay Regularization",
    ICLR 2019. https://arxiv.org/abs/1711.05101

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.adamw((w ** 2).sum(), [w], learning_rate=0.1, weight_decay=0.5)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.574974, -1.431025])
    """
    return chain(scale_by_adam(beta1, beta2, epsilon, name="adamw"),
                 add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))


@_registered("adaptive", stochastic=False)
def rprop(learning_rate: Scalar = 0.01, etas: tuple[Scalar, Scalar] = (0.5, 1.2),
          step_sizes: tuple[Scalar, Scalar] = (1e-6, 50.0)) -> Transform:
    r"""Rprop (Riedmiller & Braun, 1993), the iRprop- form of ``torch.optim.Rprop``.

    Each element moves by its own step size :math:`\delta` against the sign of its
    gradient; the step grows by ``etas[1]`` while the gradient keeps its sign and shrinks
    by ``etas[0]`` when it flips (then that element waits one step):

    .. math::

        \delta \leftarrow \mathrm{clip}\big(\delta \cdot
            \begin{cases}\eta^+ & g\, g_{prev} > 0\\ \eta^- & g\, g_{prev} < 0\\
            1 & \text{otherwise}\end{cases}, \delta_{min}, \delta_{max}\big), \qquad
        \theta \leftarrow \theta - \mathrm{sign}(g)\, \delta

    where, when the sign flipped, :math:`g` (and the stored :math:`g_{prev}`) is set to zero.

    Rprop is a full-batch rule: it acts on the signs of the gradients only, so with noisy
    mini-batch gradients, whose signs change from batch to batch, it does not converge
    (the lecture explains why). It is marked ``stochastic=False`` in :data:`symopt.RULES`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 0.01
        The initial step size :math:`\delta` of every element (not a factor on the
        gradient).
    etas : (float, float), default (0.5, 1.2)
        :math:`(\eta^-, \eta^+)`, with :math:`0 < \eta^- < 1 < \eta^+`.
    step_sizes : (float, float), default (1e-6, 50.0)
        :math:`(\delta_{min}, \delta_{max})`, the smallest and largest step size.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.prev_grad``, ``<param>.step_size`` and ``rprop.t``.

    References
    ----------
    M. Riedmiller and H. Braun (1993), "A direct adaptive method for faster
    backpropagation learning: the RPROP algorithm", IEEE International Conference on
    Neural Networks. https://doi.org/10.1109/ICNN.1993.298623

    C. Igel and M. Hüsken (2000), "Improving the Rprop Learning Algorithm" (iRprop-),
    Proceedings of the Second International Symposium on Neural Computation (NC 2000).

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.rprop((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value()
    array([ 0.636, -1.636])
    """
    return chain(scale_by_rprop(learning_rate, etas, step_sizes), negate())


@_registered("adaptive")
def lion(learning_rate: LearningRate = 1e-4, beta1: Scalar = 0.9, beta2: Scalar = 0.99,
         weight_decay: Scalar = 1e-3) -> Transform:
    r"""Lion, "EvoLved Sign Momentum" (Chen et al., 2023): the sign of a momentum.

    .. math::

        u &= \mathrm{sign}\big(\beta_1 m + (1-\beta_1)\, g\big), \qquad
        m \leftarrow \beta_2 m + (1-\beta_2)\, g \\
        \theta &\leftarrow \theta - \eta\, (u + \lambda\, \theta)

    Every element moves by exactly the learning rate (plus the decay), so Lion wants a
    learning rate 3-10 times smaller than AdamW's and, the paper advises, a weight decay
    as much larger. It keeps one state variable per parameter, against Adam's two.
    This is ``optax.lion``; the defaults are its (the authors' code has no weight decay by
    default).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-4
        :math:`\eta`.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, the interpolation that gives the update's sign.
    beta2 : float or scalar variable, default 0.99
        :math:`\beta_2`, the decay of the momentum :math:`m`.
    weight_decay : float or scalar variable, default 1e-3
        :math:`\lambda`, decoupled as in AdamW.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``.

    References
    ----------
    X. Chen, C. Liang, D. Huang, E. Real, K. Wang, Y. Liu, H. Pham, X. Dong, T. Luong,
    C.-J. Hsieh, Y. Lu and Q. V. Le (2023), "Symbolic Discovery of Optimization
    Algorithms", NeurIPS 2023. https://arxiv.org/abs/2302.06675

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.lion((w ** 2).sum(), [w], 0.1,
    ...                                                      weight_decay=0.0))
    >>> for _ in range(3): _ = step()
    >>> w.get_value()
    array([ 0.7, -1.7])
    """
    return chain(scale_by_lion(beta1, beta2), add_decayed_weights(weight_decay),
                 scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------------------
# The modern rules (issue 17), each checked against torch.optim or optax
# --------------------------------------------------------------------------------------


@_registered("adaptive")
def radam(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
          epsilon: Scalar = 1e-8, weight_decay: Scalar = 0.0,
          decoupled_weight_decay: bool = False) -> Transform:
    r"""RAdam (Liu et al., 2020): Adam whose adaptive step is rectified for its variance,
    and plain momentum SGD while that variance is unknown.

    .. math::

        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t} \\
        \theta &\leftarrow \theta - \eta \begin{cases}
            r_t\, \hat m\, \sqrt{1-\beta_2^t} / (\sqrt v + \epsilon) & \rho_t > 5 \\
            \hat m & \text{otherwise}\end{cases}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}

    with ``m``, ``v`` as in :func:`adam` and :math:`\hat m = m/(1-\beta_1^t)`. This is
    ``torch.optim.RAdam``: the paper has no epsilon and switches at
    :math:`\rho_t > 4`; torch switches at 5 and adds epsilon to :math:`\sqrt v` before
    the bias correction. With :math:`\beta_2 = 0.999` the first six steps are
    unrectified.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
        The decays of the first and second moments, in ``[0, 1)``.
    epsilon : float or scalar variable, default 1e-8
        Added to :math:`\sqrt v`.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`: added to the gradient (:math:`g + \lambda\theta`, an L2 penalty)
        or, with ``decoupled_weight_decay``, applied as
        :math:`\theta \leftarrow \theta - \eta\lambda\theta` (AdamW's).
    decoupled_weight_decay : bool, default False
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and ``radam.t``.

    References
    ----------
    L. Liu, H. Jiang, P. He, W. Chen, X. Liu, J. Gao and J. Han (2020), "On the Variance
    of the Adaptive Learning Rate and Beyond", ICLR 2020. https://arxiv.org/abs/1908.03265

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.radam((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.462303, -0.924607])
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    if decoupled_weight_decay:
        return chain(scale_by_radam(beta1, beta2, epsilon), decay,
                     scale_by_learning_rate(learning_rate))
    return chain(decay, scale_by_radam(beta1, beta2, epsilon),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adafactor(learning_rate: Scalar = 1e-2, beta2_decay: Scalar = -0.8,
              epsilon1: Scalar | None = None, epsilon2: Scalar = 1e-3, d: Scalar = 1.0,
              weight_decay: Scalar = 0.0) -> Transform:
    r"""Adafactor (Shazeer & Stern, 2018): a second moment in sublinear memory, steps
    relative to the parameters' scale, in the form of ``torch.optim.Adafactor``.

    A matrix (the last two axes of any tensor of two dimensions or more) keeps the row
    and column means :math:`R`, :math:`C` of its squared gradients instead of their
    full average; a vector keeps the average :math:`V` itself:

    .. math::

        w_t &= t^{c}, \qquad
        R \leftarrow R + w_t\big(\mathrm{mean}_{-1}(g^2) - R\big), \qquad
        C \leftarrow C + w_t\big(\mathrm{mean}_{-2}(g^2) - C\big), \qquad
        \hat V = \frac{R\, C}{\max(\mathrm{mean}_{-2}(R), \epsilon_1)} \\
        U &= g / \sqrt{\max(\hat V, \epsilon_1^2)}, \qquad
        \alpha_t = \max\big(\epsilon_2, \mathrm{RMS}(\theta)\big) \min(\eta, 1/\sqrt t) \\
        \theta &\leftarrow \theta - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\, U
            - \eta\lambda\,\theta

    with :math:`c` = ``beta2_decay`` (the paper's :math:`\hat\beta_{2t} = 1 - t^{-0.8}`)
    and the update clipped to an RMS of ``d``. No first moment (the paper's
    :math:`\beta_1 = 0`). Differences from the paper, all torch's: the learning rate
    caps the relative step (the paper's constant 1e-2 is the default) and scales the
    weight decay (none in the paper); :math:`\epsilon_1` clamps instead of adding.
    Not elementwise: ``fuse=True`` raises :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-2
        :math:`\eta`, the largest relative step.
    beta2_decay : float or scalar variable, default -0.8
        :math:`c \le 0`, the exponent of the second moment's averaging weight.
    epsilon1 : float or scalar variable, optional
        :math:`\epsilon_1`, the floor of the second moment's root; None (the default) is
        the machine epsilon of the parameter's dtype.
    epsilon2 : float or scalar variable, default 1e-3
        :math:`\epsilon_2`, the smallest parameter scale.
    d : float or scalar variable, default 1.0
        The clipping threshold of the update's RMS, at least 1.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled and scaled by the learning rate.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.row_variance`` (shape ``shape[:-1] + (1,)``) and
    ``<param>.col_variance`` (shape ``shape[:-2] + (1, shape[-1])``) for tensors of two
    dimensions or more, ``<param>.variance`` for the others, and ``adafactor.t``.

    References
    ----------
    N. Shazeer and M. Stern (2018), "Adafactor: Adaptive Learning Rates with Sublinear
    Memory Cost", ICML 2018. https://arxiv.org/abs/1804.04235

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adafactor((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.598744, -1.582177])
    """
    return chain(scale_by_adafactor(learning_rate, beta2_decay, epsilon1, epsilon2, d,
                                    weight_decay), negate())


@_registered("gradient")
def asgd(learning_rate: Scalar = 1e-2, lambd: Scalar = 1e-4, alpha: Scalar = 0.75, t0: Scalar = 1e6,
         weight_decay: Scalar = 0.0) -> Transform:
    r"""Averaged SGD (Polyak & Juditsky, 1992), in the form of ``torch.optim.ASGD``: SGD
    with a decaying step, and a running average of the parameters.

    With :math:`k = t-1` the steps already taken:

    .. math::

        \eta_k &= \frac{\eta}{(1 + \lambda \eta k)^\alpha}, \qquad
        \theta \leftarrow \theta - \eta_k\, (g + w\,\theta) - \lambda\eta_k\,\theta \\
        \bar\theta &\leftarrow \bar\theta + \frac{\theta - \bar\theta}{\max(1, k - t_0)}

    so :math:`\bar\theta` follows :math:`\theta` for the first :math:`t_0` steps and
    then averages it. The parameters are the SGD iterates; the average, the point the
    theory is about, is the state ``<param>.average``
    (``symopt.get_state(updates)["W.average"]``).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-2
        :math:`\eta`, the first step size.
    lambd : float or scalar variable, default 1e-4
        :math:`\lambda`: the step size's decay, and a decay of the parameters.
    alpha : float or scalar variable, default 0.75
        The power of the step size's decay.
    t0 : float or scalar variable, default 1e6
        The step after which averaging starts.
    weight_decay : float or scalar variable, default 0.0
        :math:`w`, an L2 penalty added to the gradient.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.average`` and ``asgd.t``.

    References
    ----------
    B. T. Polyak and A. B. Juditsky (1992), "Acceleration of Stochastic Approximation by
    Averaging", SIAM Journal on Control and Optimization 30(4).
    https://doi.org/10.1137/0330046

    W. Xu (2011), "Towards Optimal One Pass Large Scale Learning with Averaged Stochastic
    Gradient Descent" (the step-size schedule). https://arxiv.org/abs/1107.2490

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.asgd((w ** 2).sum(), [w], 0.1, t0=1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6), symopt.get_state(updates)["w.average"].get_value().round(6)
    (array([ 0.511984, -1.023967]), array([ 0.511984, -1.023967]))
    """
    return chain(scale_by_asgd(learning_rate, lambd, alpha, t0, weight_decay), negate())


@_registered("adaptive")
def muon(learning_rate: Scalar = 1e-3, weight_decay: Scalar = 0.1, momentum: Scalar = 0.95,
         nesterov: bool = True,
         ns_coefficients: tuple[Scalar, Scalar, Scalar] = (3.4445, -4.7750, 2.0315),
         epsilon: Scalar = 1e-7, ns_steps: int = 5,
         adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None,
         adam_learning_rate: Scalar | None = None, adam_beta1: Scalar = 0.9,
         adam_beta2: Scalar = 0.999, adam_epsilon: Scalar = 1e-8,
         adam_weight_decay: Scalar = 0.0) -> Transform:
    r"""Muon (Jordan et al., 2024): the momentum of a matrix, orthogonalised; AdamW for
    every parameter that is not a matrix.

    For a matrix of shape :math:`(A, B)`, as ``torch.optim.Muon`` computes it:

    .. math::

        M &\leftarrow \mu M + (1-\mu)\, g, \qquad
        \tilde M = (1-\mu)\, g + \mu M \ \text{(Nesterov) or } M \\
        O &= \mathrm{NS}_k\big(\tilde M / \max(\|\tilde M\|_F, \epsilon)\big), \qquad
        \theta \leftarrow \theta - \eta\, r\, O - \eta\lambda\,\theta

    where :math:`\mathrm{NS}_k` is ``ns_steps`` iterations of the quintic Newton-Schulz
    map :math:`X \leftarrow aX + (bXX^\top + c(XX^\top)^2)X` (on the wide orientation),
    which takes the singular values towards 1: every direction of the momentum moves
    about as far. :math:`r = \sqrt{\max(1, A/B)}` (``adjust_lr_fn`` None or
    ``"original"``) or :math:`0.2\sqrt{\max(A, B)}` (``"match_rms_adamw"``, Liu et al.
    2025, which makes the update's RMS AdamW's).

    torch's Muon refuses every parameter that is not a matrix. symopt updates them with
    AdamW instead, exactly ``torch.optim.AdamW`` with ``adam_learning_rate`` (None: the
    learning rate), ``adam_beta1``, ``adam_beta2``, ``adam_epsilon`` and
    ``adam_weight_decay``, as optax's muon does: so one rule trains a whole network
    (biases, embeddings and convolution kernels, which the authors flatten or hand to
    AdamW, go to AdamW here). The matrices' iteration runs in the parameters' dtype
    (torch's in bfloat16). Not elementwise: ``fuse=True`` raises
    :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    weight_decay : float or scalar variable, default 0.1
        :math:`\lambda`, decoupled, for the matrices.
    momentum : float or scalar variable, default 0.95
        :math:`\mu`.
    nesterov : bool, default True
    ns_coefficients : (float, float, float), default (3.4445, -4.7750, 2.0315)
        :math:`(a, b, c)` of the Newton-Schulz map.
    epsilon : float or scalar variable, default 1e-7
        Floor of the norm the momentum is divided by.
    ns_steps : int, default 5
    adjust_lr_fn : {None, "original", "match_rms_adamw"}, default None
    adam_learning_rate : float or scalar variable, optional
        The other parameters' learning rate; None uses ``learning_rate``.
    adam_beta1, adam_beta2 : float or scalar variable, default 0.9, 0.999
    adam_epsilon : float or scalar variable, default 1e-8
    adam_weight_decay : float or scalar variable, default 0.0
        Decoupled (AdamW's), for the other parameters.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m`` for every parameter, ``<param>.v`` for those AdamW updates, and
    ``muon.t``.

    References
    ----------
    K. Jordan, Y. Jin, V. Boza, J. You, F. Cesista, L. Newhouse and J. Bernstein (2024),
    "Muon: An optimizer for hidden layers in neural networks".
    https://kellerjordan.github.io/posts/muon/

    J. Liu, J. Su, X. Yao et al. (2025), "Muon is Scalable for LLM Training" (the
    ``match_rms_adamw`` scale). https://arxiv.org/abs/2502.16982

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.array([[1.0, -2.0], [0.5, 3.0]]), name="W")
    >>> updates = symopt.muon((W ** 2).sum(), [W], 0.1, weight_decay=0.0)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> W.get_value().round(6)
    array([[ 0.781685, -1.88214 ],
           [ 0.361863,  2.80872 ]])
    """
    return chain(scale_by_muon(learning_rate, weight_decay, momentum, nesterov,
                               ns_coefficients, epsilon, ns_steps, adjust_lr_fn,
                               adam_learning_rate, adam_beta1, adam_beta2, adam_epsilon,
                               adam_weight_decay), negate())


@_registered("adaptive")
def lamb(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
         epsilon: Scalar = 1e-6, eps_root: Scalar = 0.0, weight_decay: Scalar = 0.0) -> Transform:
    r"""LAMB (You et al., 2020): AdamW's direction, scaled per tensor to the tensor's norm.

    .. math::

        u = \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}
            + \lambda\theta, \qquad
        \theta \leftarrow \theta - \eta\, \frac{\|\theta\|}{\|u\|}\, u

    with ``m``, ``v`` as in :func:`adam`, the norms over each tensor (the paper's layer),
    and the ratio 1 where either norm is zero. This is ``optax.lamb``; the paper's
    scaling function :math:`\phi` is the identity. Not elementwise: ``fuse=True``
    raises :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
    epsilon : float or scalar variable, default 1e-6
        Added to the root (the paper's value).
    eps_root : float or scalar variable, default 0.0
        Added under the root.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled, inside the trust ratio.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and ``lamb.t``.

    References
    ----------
    Y. You, J. Li, S. Reddi, J. Hseu, S. Kumar, S. Bhojanapalli, X. Song, J. Demmel,
    K. Keutzer and C.-J. Hsieh (2020), "Large Batch Optimization for Deep Learning:
    Training BERT in 76 minutes", ICLR 2020. https://arxiv.org/abs/1904.00962

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.lamb((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.570163, -1.567486])
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(scale_by_adam(beta1, beta2, epsilon, name="lamb", eps_root=eps_root), decay,
                 scale_by_trust_ratio(), scale_by_learning_rate(learning_rate))


@_registered("unit")
def lars(learning_rate: LearningRate = 1.0, weight_decay: Scalar = 0.0,
         trust_coefficient: Scalar = 1e-3, epsilon: Scalar = 0.0, momentum: Scalar = 0.9,
         nesterov: bool = False) -> Transform:
    r"""LARS (You, Gitman & Ginsburg, 2017): momentum SGD with a learning rate per tensor,
    proportional to the ratio of the tensor's norm to its gradient's.

    .. math::

        d = g + \lambda\theta, \qquad
        r = \frac{\kappa\,\|\theta\|}{\|d\| + \epsilon}, \qquad
        v \leftarrow \mu v - \eta\, r\, d, \qquad
        \theta \leftarrow \theta + v \quad(\text{Nesterov: } \theta + \mu v - \eta r d)

    the norms over each tensor, and :math:`r = 1` where either is zero (a tensor at
    zero, such as a bias at the start, takes a plain SGD step). This is
    ``optax.lars``; the paper divides by :math:`\|g\| + \lambda\|\theta\|`. Each step
    moves a tensor by about :math:`\eta\kappa` of its norm, so the learning rate is a
    unit-free factor (the paper's global rates are 1 to 10). Not elementwise:
    ``fuse=True`` raises :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, added to the gradient before the trust ratio.
    trust_coefficient : float or scalar variable, default 1e-3
        :math:`\kappa` (the paper's :math:`\eta`).
    epsilon : float or scalar variable, default 0.0
    momentum : float or scalar variable, default 0.9
        :math:`\mu`.
    nesterov : bool, default False
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.velocity``.

    References
    ----------
    Y. You, I. Gitman and B. Ginsburg (2017), "Large Batch Training of Convolutional
    Networks", arXiv:1708.03888. https://arxiv.org/abs/1708.03888

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.lars((w ** 2).sum(), [w], 10.0))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.944379, -1.888758])
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(decay, scale_by_trust_ratio(trust_coefficient, epsilon),
                 scale_by_learning_rate(learning_rate), trace(momentum, nesterov=nesterov))


@_registered("adaptive")
def yogi(learning_rate: LearningRate = 1e-2, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
         epsilon: Scalar = 1e-3, initial_accumulator_value: Scalar = 1e-6,
         eps_root: Scalar = 0.0) -> Transform:
    r"""Yogi (Zaheer et al., 2018): Adam whose second moment moves additively, by at most
    :math:`(1-\beta_2) g^2` per step, so that it forgets a large past more slowly.

    .. math::

        v &\leftarrow v - (1-\beta_2)\,\mathrm{sign}(v - g^2)\, g^2 \\
        \theta &\leftarrow \theta - \eta\, \frac{m/(1-\beta_1^t)}
            {\sqrt{v/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    with ``m`` as in :func:`adam`. This is ``optax.yogi`` (and optax's
    ``scale_by_yogi``'s two options): unlike the paper, both moments start at
    ``initial_accumulator_value`` and both are bias-corrected.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-2
        :math:`\eta` (the paper's).
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
    epsilon : float or scalar variable, default 1e-3
        The paper's, larger than Adam's.
    initial_accumulator_value : float or scalar variable, default 1e-6
        Where ``m`` and ``v`` start.
    eps_root : float or scalar variable, default 0.0
        Added under the root.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` (zeros until the first step, which starts them
    at ``initial_accumulator_value``) and ``yogi.t``.

    References
    ----------
    M. Zaheer, S. Reddi, D. Sachan, S. Kale and S. Kumar (2018), "Adaptive Methods for
    Nonconvex Optimization", NeurIPS 2018.
    https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.yogi((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.701849, -1.700786])
    """
    return chain(scale_by_yogi(beta1, beta2, epsilon, initial_accumulator_value, eps_root),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adan(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.98, beta2: Scalar = 0.92,
         beta3: Scalar = 0.99, epsilon: Scalar = 1e-8, eps_root: Scalar = 1e-8,
         weight_decay: Scalar = 0.0) -> Transform:
    r"""Adan (Xie et al., 2022): Adam with Nesterov momentum estimated from the difference
    of successive gradients.

    With :math:`\Delta = g_t - g_{t-1}` (zero at the first step):

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\Delta, \qquad
        n \leftarrow \beta_3 n + (1-\beta_3)(g + \beta_2\Delta)^2 \\
        \theta &\leftarrow \theta - \eta\Big(\frac{m/(1-\beta_1^t) + \beta_2\, v/(1-\beta_2^t)}
            {\sqrt{n/(1-\beta_3^t) + \epsilon_{root}} + \epsilon} + \lambda\theta\Big)

    The betas are written as optax and the authors' code write them (:math:`1-\beta` of
    the paper's 0.02, 0.08, 0.01). These are the paper's and the authors' code's
    equations, with the bias corrections of the code and the decoupled weight decay of
    optax and of the code's ``no_prox=True`` (the paper's is proximal,
    :math:`\theta/(1+\eta\lambda)`). ``optax.adan`` 0.2.8 differs: it weights
    :math:`\Delta` in :math:`n` and :math:`v` in the step by :math:`1-\beta_2` instead of
    :math:`\beta_2` (0.08 instead of 0.92 by default; optax pull request 1715), so the
    two agree for :math:`\beta_2 = 1/2` only, where symopt's tests compare them.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2, beta3 : float or scalar variable, default 0.98, 0.92, 0.99
        The decays of the gradient's, the gradient difference's and the squared
        look-ahead's averages.
    epsilon : float or scalar variable, default 1e-8
    eps_root : float or scalar variable, default 1e-8
        Added under the root.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v``, ``<param>.n``, ``<param>.prev_grad`` and
    ``adan.t``.

    References
    ----------
    X. Xie, P. Zhou, H. Li, Z. Lin and S. Yan (2022), "Adan: Adaptive Nesterov Momentum
    Algorithm for Faster Optimizing Deep Models", arXiv:2208.06677 (IEEE TPAMI 2024).
    https://arxiv.org/abs/2208.06677

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adan((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.702129, -1.700601])
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(scale_by_adan(beta1, beta2, beta3, epsilon, eps_root), decay,
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adabelief(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
              epsilon: Scalar = 1e-16, eps_root: Scalar = 1e-16,
              nesterov: bool = False) -> Transform:
    r"""AdaBelief (Zhuang et al., 2020): Adam that divides by the spread of the gradient
    around its running mean (the "belief" in it) instead of its magnitude.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        s \leftarrow \beta_2 s + (1-\beta_2)(g - m)^2 + \epsilon_{root} \\
        \theta &\leftarrow \theta - \eta\, \frac{\hat m}{\sqrt{s/(1-\beta_2^t)} + \epsilon},
        \qquad \hat m = \frac{m}{1-\beta_1^t} \ \text{or (Nesterov)}\
        \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)\, g}{1-\beta_1^t}

    This is ``optax.adabelief`` and the paper's Algorithm 2 (whose :math:`\epsilon`
    inside :math:`s` is ``eps_root``).

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
    epsilon : float or scalar variable, default 1e-16
        Added to the root (the authors' value).
    eps_root : float or scalar variable, default 1e-16
        Added to :math:`s` at every step.
    nesterov : bool, default False
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.s`` and ``adabelief.t``.

    References
    ----------
    J. Zhuang, T. Tang, Y. Ding, S. Tatikonda, N. Dvornek, X. Papademetris and
    J. Duncan (2020), "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS 2020. https://arxiv.org/abs/2010.07468

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adabelief((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.652305, -1.650571])
    """
    return chain(scale_by_adabelief(beta1, beta2, epsilon, eps_root, nesterov),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def novograd(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.25,
             epsilon: Scalar = 1e-6, eps_root: Scalar = 0.0,
             weight_decay: Scalar = 0.0) -> Transform:
    r"""NovoGrad (Ginsburg et al., 2019): momentum on gradients normalised by a running
    average of each tensor's squared norm (one second moment per tensor).

    .. math::

        v &\leftarrow \beta_2 v + (1-\beta_2)\|g\|^2 \quad(\|g\|^2 \text{ at the first
            step}), \qquad
        m \leftarrow \beta_1 m + \frac{g}{\sqrt{v + \epsilon_{root}} + \epsilon}
            + \lambda\theta \\
        \theta &\leftarrow \theta - \eta\, m

    This is ``optax.novograd`` and the paper's Algorithm 1. Not elementwise:
    ``fuse=True`` raises :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.25
        optax's (the authors' experiments use 0.95, 0.98).
    epsilon : float or scalar variable, default 1e-6
    eps_root : float or scalar variable, default 0.0
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, added to the normalised gradient.
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` (a scalar per parameter) and ``novograd.t``.

    References
    ----------
    B. Ginsburg, P. Castonguay, O. Hrinchuk, O. Kuchaiev, V. Lavrukhin, R. Leary, J. Li,
    H. Nguyen, Y. Zhang and J. M. Cohen (2019), "Stochastic Gradient Methods with
    Layer-wise Adaptive Moments for Training of Deep Networks", arXiv:1905.11286.
    https://arxiv.org/abs/1905.11286

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.novograd((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.751357, -1.502714])
    """
    return chain(scale_by_novograd(beta1, beta2, epsilon, eps_root, weight_decay),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adopt(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.9999,
          epsilon: Scalar = 1e-6, nesterov: bool = False, use_clipping: bool = True,
          clip_value_fn: Callable[[Variable], Scalar] | None = None) -> Transform:
    r"""ADOPT (Taniguchi et al., 2024): Adam with the gradient normalised by the second
    moment of the earlier gradients, before the momentum; it converges for any
    :math:`\beta_2`.

    .. math::

        \tilde g &= \mathrm{clip}\Big(\frac{g}{\max(\sqrt{v}, \epsilon)}, \pm c(t-1)\Big),
            \qquad m \leftarrow \beta_1 m + (1-\beta_1) \tilde g, \qquad
            v \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
        \theta &\leftarrow \theta - \eta\, m \quad(\text{Nesterov: }
            \theta - \eta\,(\beta_1 m + (1-\beta_1)\tilde g))

    The first step only sets :math:`v = g^2` and leaves the parameters where they are.
    :math:`c(k) = k^{1/4}` is the clipping of the paper's Algorithm 2. This is
    ``optax.contrib.adopt``.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.9999
    epsilon : float or scalar variable, default 1e-6
        The floor of :math:`\sqrt v`.
    nesterov : bool, default False
    use_clipping : bool, default True
    clip_value_fn : callable, optional
        :math:`c`, called with the number of earlier steps :math:`t-1` as a symbolic
        scalar of the parameter's dtype; None is :math:`k^{1/4}`.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v`` and ``adopt.t``.

    References
    ----------
    S. Taniguchi, K. Harada, G. Minegishi, Y. Oshima, S. C. Jeong, G. Nagahara, T. Iiyama,
    M. Suzuki, Y. Iwasawa and Y. Matsuo (2024), "ADOPT: Modified Adam Can Converge with
    Any beta2 with the Optimal Rate", NeurIPS 2024. https://arxiv.org/abs/2411.02853

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.adopt((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.9711 , -1.97105])
    """
    return chain(scale_by_adopt(beta1, beta2, epsilon, nesterov, use_clipping, clip_value_fn),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def ademamix(learning_rate: LearningRate = 1e-3, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
             beta3: Scalar = 0.9999, alpha: Scalar = 5.0, epsilon: Scalar = 1e-8,
             eps_root: Scalar = 0.0, weight_decay: Scalar = 0.0) -> Transform:
    r"""AdEMAMix (Pagliardini, Ablin & Grangier, 2024): AdamW plus a second, slow
    momentum that keeps gradients of thousands of steps ago.

    .. math::

        m_1 &\leftarrow \beta_1 m_1 + (1-\beta_1) g, \qquad
        m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g, \qquad
        \nu \leftarrow \beta_2 \nu + (1-\beta_2) g^2 \\
        \theta &\leftarrow \theta - \eta\Big(\frac{m_1/(1-\beta_1^t) + \alpha\, m_2}
            {\sqrt{\nu/(1-\beta_2^t) + \epsilon_{root}} + \epsilon} + \lambda\theta\Big)

    The slow momentum is not bias-corrected (it would swamp the first steps); the paper
    warms ``alpha`` and ``beta3`` up over training, which a shared variable set between
    calls (see :mod:`symopt.schedules`) does here. This is ``optax.contrib.ademamix``.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-3
        :math:`\eta`.
    beta1, beta2, beta3 : float or scalar variable, default 0.9, 0.999, 0.9999
        The decays of the fast momentum, of the second moment and of the slow momentum.
    alpha : float or scalar variable, default 5.0
        The slow momentum's weight.
    epsilon : float or scalar variable, default 1e-8
    eps_root : float or scalar variable, default 0.0
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m1``, ``<param>.m2``, ``<param>.nu`` and ``ademamix.t``.

    References
    ----------
    M. Pagliardini, P. Ablin and D. Grangier (2024), "The AdEMAMix Optimizer: Better,
    Faster, Older", arXiv:2409.03137 (ICLR 2025). https://arxiv.org/abs/2409.03137

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.ademamix((w ** 2).sum(), [w], 0.1))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.701289, -1.700324])
    """
    decay = add_decayed_weights(weight_decay) if nonzero(weight_decay) else identity()
    return chain(scale_by_ademamix(beta1, beta2, beta3, alpha, epsilon, eps_root), decay,
                 scale_by_learning_rate(learning_rate))


@_registered("gradient")
def schedule_free_sgd(learning_rate: Scalar = 1.0, warmup_steps: int | None = None,
                      beta1: Scalar = 0.9, weight_decay: Scalar = 0.0,
                      weight_lr_power: Scalar = 2.0) -> Transform:
    r"""Schedule-free SGD (Defazio et al., 2024): no learning-rate schedule, an average of
    the iterates instead, where the gradients are taken at an interpolation.

    The shared parameters hold :math:`y`, the point where the gradients are taken (as
    in optax); :math:`z` is the plain SGD iterate and :math:`x`, the average, the point
    to evaluate and to keep (:func:`schedule_free_eval_params`):

    .. math::

        z &\leftarrow z - \gamma_t\, (g + \lambda y), \qquad
        x \leftarrow (1-c_t)\, x + c_t z, \qquad y \leftarrow \beta_1 x + (1-\beta_1) z \\
        c_t &= \frac{(\max_{i \le t} \gamma_i)^p}{\sum_{j \le t} (\max_{i \le j} \gamma_i)^p}

    (with a constant learning rate, :math:`c_t = 1/t`: :math:`x` is the plain mean of the
    :math:`z`). With ``warmup_steps`` :math:`W` the learning rate rises linearly,
    :math:`\gamma(k) = \eta\min(k, W)/W`, the z step taking :math:`\gamma(t-1)` (zero at
    the first step) and the weight :math:`\gamma(t)`, as optax's
    ``schedule_free_sgd`` does. The paper weights by :math:`\gamma_t^2`; optax and the
    authors' code by the running maximum, to the power ``weight_lr_power``.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update (they hold :math:`y`).
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta` (optax's default).
    warmup_steps : int, optional
        :math:`W`; None: no warm-up.
    beta1 : float or scalar variable, default 0.9
        :math:`\beta_1`, in ``(0, 1]``: the interpolation's weight on :math:`x`.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, at :math:`y`.
    weight_lr_power : float or scalar variable, default 2.0
        :math:`p`.
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.z`` (zeros until the first step copies the parameter),
    ``schedule_free_sgd.max_lr``, ``schedule_free_sgd.weight_sum`` (scalars of the
    parameters' dtype) and ``schedule_free_sgd.t``.

    References
    ----------
    A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled and A. Cutkosky (2024), "The
    Road Less Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.schedule_free_sgd((w ** 2).sum(), [w], 0.1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6), symopt.schedule_free_eval_params(updates)[0].eval().round(6)
    (array([ 0.63104, -1.26208]), array([ 0.645867, -1.291733]))
    """
    return chain(scale_by_schedule_free(learning_rate, warmup_steps, beta1, weight_decay,
                                        weight_lr_power, rule="schedule_free_sgd"), negate())


@_registered("adaptive")
def schedule_free_adamw(learning_rate: Scalar = 0.0025, warmup_steps: int | None = None,
                        beta1: Scalar = 0.9, beta2: Scalar = 0.999, epsilon: Scalar = 1e-8,
                        weight_decay: Scalar = 0.0, weight_lr_power: Scalar = 2.0) -> Transform:
    r"""Schedule-free AdamW (Defazio et al., 2024): :func:`schedule_free_sgd` whose base
    step is Adam's, without momentum (the interpolation is the momentum).

    .. math::

        v &\leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
        z \leftarrow z - \gamma_t\Big(\frac{g}{\sqrt{v/(1-\beta_2^t)} + \epsilon}
            + \lambda y\Big) \\
        x &\leftarrow (1-c_t)\, x + c_t z, \qquad y \leftarrow \beta_1 x + (1-\beta_1) z

    with :math:`c_t`, the warm-up and :math:`y` (the shared parameters) as in
    :func:`schedule_free_sgd`; :func:`schedule_free_eval_params` gives :math:`x`. This
    is ``optax.contrib.schedule_free_adamw``: the paper folds the bias correction into
    :math:`\gamma_t` (epsilon outside) and weights the average by that corrected
    :math:`\gamma_t^2`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update (they hold :math:`y`).
    learning_rate : float or scalar variable, default 0.0025
        :math:`\eta` (optax's default).
    warmup_steps : int, optional
        None: no warm-up.
    beta1 : float or scalar variable, default 0.9
    beta2 : float or scalar variable, default 0.999
    epsilon : float or scalar variable, default 1e-8
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, at :math:`y`.
    weight_lr_power : float or scalar variable, default 2.0
    fuse : bool or "auto", default False
        True runs the update of all parameters of a dtype as one fused loop, their state
        in flat buffers (see :func:`symopt.apply`); ``"auto"`` lets symopt choose whether
        to fuse; False updates each parameter on its own.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.v``, ``<param>.z``, ``schedule_free_adamw.max_lr``,
    ``schedule_free_adamw.weight_sum`` and ``schedule_free_adamw.t``.

    References
    ----------
    A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled and A. Cutkosky (2024), "The
    Road Less Scheduled", NeurIPS 2024. https://arxiv.org/abs/2405.15682

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.schedule_free_adamw((w ** 2).sum(), [w], 0.1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6), symopt.schedule_free_eval_params(updates)[0].eval().round(6)
    (array([ 0.79683 , -1.793279]), array([ 0.806141, -1.802948]))
    """
    return chain(scale_by_schedule_free(learning_rate, warmup_steps, beta1, weight_decay,
                                        weight_lr_power, beta2, epsilon,
                                        rule="schedule_free_adamw"), negate())


def schedule_free_eval_params(updates: Sequence[tuple[Any, Any]] | dict[Any, Any]
                              ) -> list[Variable]:
    r"""The schedule-free average :math:`x = (y - (1-\beta_1) z)/\beta_1` of every parameter.

    The parameters of :func:`schedule_free_sgd` and :func:`schedule_free_adamw` hold
    :math:`y`, where the gradients are taken; the average :math:`x` is the point to
    evaluate (validation loss, accuracy) and to keep at the end of training. It is
    computed from the parameters and their ``z`` state, so it is never stale.

    Parameters
    ----------
    updates : list of (SharedVariable, TensorVariable) or dict
        What a schedule-free rule returned (on the per-tensor or the fused path).

    Returns
    -------
    list of TensorVariable
        One expression per parameter, in the order of ``updates``, each of its
        parameter's type: ``pytensor.function([], xs)()`` reads their values, and
        ``pytensor.clone_replace(outputs, dict(zip(params, xs)))`` evaluates a model
        there.

    Raises
    ------
    ValueError
        If the updates hold no schedule-free state for a parameter.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.schedule_free_sgd((w ** 2).sum(), [w], 0.1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step()
    >>> [x] = symopt.schedule_free_eval_params(updates)
    >>> x.eval()  # the mean of z, here the first z: w - 0.1 * 2 w
    array([ 0.8, -1.6])
    """
    pairs = list(updates.items() if isinstance(updates, dict) else updates)
    params = [var for var, _ in pairs if state_tag(var) is None]
    averages = {}
    for var, _ in pairs:
        tag = state_tag(var)
        if tag is None or tag.role != "z" or not hasattr(var.tag, "schedule_free_beta1"):
            continue
        beta1 = var.tag.schedule_free_beta1
        slices, start = [], 0
        for p in tag.members or (tag.param,):
            size = int(np.prod(p.get_value(borrow=True).shape))
            z = var if not tag.members else var[start:start + size].reshape(p.shape)
            slices.append((p, z))
            start += size
        for p, z in slices:
            b1 = beta1(p.dtype)
            averages[p] = like_param((p - (1 - b1) * z) / b1, p)
    missing = [p.name for p in params if p not in averages]
    if missing or not params:
        raise ValueError(f"these updates hold no schedule-free state for {missing or 'any'}: "
                         "pass what schedule_free_sgd or schedule_free_adamw returned")
    return [averages[p] for p in params]


@_registered("unit")
def prodigy(learning_rate: Scalar = 1.0, beta1: Scalar = 0.9, beta2: Scalar = 0.999,
            beta3: Scalar | None = None, epsilon: Scalar = 1e-8, estim_lr0: Scalar = 1e-6,
            estim_lr_coef: Scalar = 1.0, weight_decay: Scalar = 0.0,
            safeguard_warmup: bool = False) -> Transform:
    r"""Prodigy (Mishchenko & Defazio, 2024): Adam with its learning rate :math:`d`
    estimated as it goes, from how far the parameters have moved; the learning rate
    is a plain factor on it, 1 by default.

    With :math:`x_0` the initial parameters and :math:`d_0` = ``estim_lr0``:

    .. math::

        \hat\gamma &= d\,\eta\,\sqrt{1-\beta_2^t}/(1-\beta_1^t), \qquad
        m \leftarrow \beta_1 m + (1-\beta_1)\, d g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, d^2 g^2 \\
        s &\leftarrow \beta_3 s + \hat\gamma\, d g / d_0, \qquad
        r \leftarrow \beta_3 r + (d/d_0)\,\hat\gamma\, \langle g, x_0 - \theta\rangle,
        \qquad d \leftarrow \max\big(d, \kappa\, r / \|s\|_1\big) \\
        \theta &\leftarrow \theta - \hat\gamma\lambda\theta
            - \hat\gamma\, m / (\sqrt v + d\,\epsilon)

    The inner product and the l1 norm run over all parameters together; :math:`d` never
    decreases. This is ``optax.contrib.prodigy``, the Adam form of the authors' code
    (``safeguard_warmup`` takes :math:`d^2 g/d_0` in :math:`s`, against early
    overestimates). Not elementwise: ``fuse=True`` raises
    :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable or list of TensorVariable, optional
        The loss, or one gradient per parameter.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1.0
        :math:`\eta`, a factor on the estimated :math:`d`.
    beta1, beta2 : float or scalar variable, default 0.9, 0.999
    beta3 : float or scalar variable, optional
        The decay of :math:`s` and :math:`r`; None is :math:`\sqrt{\beta_2}`.
    epsilon : float or scalar variable, default 1e-8
    estim_lr0 : float or scalar variable, default 1e-6
        :math:`d_0 > 0`, a deliberate underestimate.
    estim_lr_coef : float or scalar variable, default 1.0
        :math:`\kappa`.
    weight_decay : float or scalar variable, default 0.0
        :math:`\lambda`, decoupled.
    safeguard_warmup : bool, default False
    fuse : bool or "auto", default False
        ``"auto"`` and False update each parameter on its own; True raises, the rule not
        being elementwise.

    Returns
    -------
    list of (SharedVariable, TensorVariable), or ConfiguredRule
        The updates, or, called without ``loss_or_grads`` and ``params``, the configured
        rule.

    Notes
    -----
    State: ``<param>.m``, ``<param>.v``, ``<param>.grad_sum`` (:math:`s`),
    ``<param>.initial`` (:math:`x_0`, zeros until the first step copies the parameter),
    and for the rule as a whole ``prodigy.estim_lr`` (:math:`d`, zero until the first
    step reads :math:`d_0`), ``prodigy.numerator`` (:math:`r`) and ``prodigy.t``.

    References
    ----------
    K. Mishchenko and A. Defazio (2024), "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner", ICML 2024. https://arxiv.org/abs/2306.06101

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> updates = symopt.prodigy((w ** 2).sum(), [w])
    >>> step = pytensor.function([], [], updates=updates)
    >>> for _ in range(20): _ = step()
    >>> estimate = symopt.get_state(updates)["prodigy.estim_lr"]
    >>> w.get_value().round(6), round(float(estimate.get_value()), 8)
    (array([ 0.998292, -1.998292]), 0.00089895)
    """
    return chain(scale_by_prodigy(learning_rate, beta1, beta2, beta3, epsilon, estim_lr0,
                                  estim_lr_coef, weight_decay, safeguard_warmup), negate())
