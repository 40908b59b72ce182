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
    scale_by_adagrad_window,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_lion,
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
    "adagrad_window",
    "adam",
    "adamax",
    "adamw",
    "amsgrad",
    "lion",
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
def momentum(learning_rate=1e-3, momentum=0.9):
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
def nesterov_momentum(learning_rate=1e-3, momentum=0.9):
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
def adagrad(learning_rate=1.0, epsilon=1e-6):
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
def adagrad_window(learning_rate=1e-3, epsilon=0.1, n_win=10):
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
def adam(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
         epsilon_placement="after_correction"):
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
    if epsilon_placement == "before_correction":
        return scale_by_adam(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                             learning_rate=learning_rate)
    return chain(scale_by_adam(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def adamax(learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
           epsilon_placement="after_correction"):
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
    if epsilon_placement == "before_correction":
        return scale_by_adamax(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                               learning_rate=learning_rate)
    return chain(scale_by_adamax(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def amsgrad(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
            epsilon_placement="after_correction"):
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
    if epsilon_placement == "before_correction":
        return scale_by_amsgrad(beta1, beta2, epsilon, epsilon_placement=epsilon_placement,
                                learning_rate=learning_rate)
    return chain(scale_by_amsgrad(beta1, beta2, epsilon, epsilon_placement=epsilon_placement),
                 scale_by_learning_rate(learning_rate))


@_registered("adaptive")
def nadam(learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
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
def adamw(learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=1e-2):
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
def rprop(learning_rate=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
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
def lion(learning_rate=1e-4, beta1=0.9, beta2=0.99, weight_decay=1e-3):
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
