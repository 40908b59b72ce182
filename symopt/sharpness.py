r"""Sharpness-aware minimisation: a rule stepping from the gradient at the worst nearby point.

SAM (Foret et al., 2021) takes the gradient at :math:`\theta + \rho\, g / \|g\|`, the
point of a ball of radius :math:`\rho` where a first-order model of the loss is
largest, and hands it to a rule (plain or momentum SGD in the paper). Frameworks that
only hold gradient values need two passes and a cached copy of the parameters for
this (optax's ``sam`` alternates ascent and descent calls); with a symbolic graph the
gradient at the perturbed point is the gradient graph rebuilt there
(:func:`pytensor.clone_replace` of the parameters by the perturbed ones), so one
compiled function evaluates both gradients and takes the step.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Variable
from pytensor.graph.replace import clone_replace

from symopt._checks import Hyperparameter, as_scalar, check_hyper, like_param, nonzero
from symopt.blocks import scale_by_learning_rate, trace
from symopt.rules import register
from symopt.second_order.curvature import depends_on
from symopt.transform import Transform, as_transform, chain, update_rule

if TYPE_CHECKING:
    from symopt._typing import LearningRate, Scalar, StepsFunction, UpdateRule

__all__ = ["sam", "sharpness_aware"]


def sharpness_aware(rho: Scalar = 0.05) -> Transform:
    r"""Replace each gradient by the gradient at the adversarially perturbed point.

    .. math::

        \epsilon = \rho\, \frac{g}{\|g\|_2}, \qquad
        s \leftarrow \nabla L(\theta + \epsilon)

    with the norm over all parameters together (and :math:`\epsilon = 0` where it is
    zero). The incoming steps must be the gradients of a loss, symbolic functions of the
    parameters: put this block first in a :func:`symopt.chain` and pass the loss. The
    gradient graph is cloned with every parameter :math:`\theta` replaced by
    :math:`\theta + \epsilon`, so a compiled step evaluates it twice. Not elementwise;
    no state.
    """
    rho = Hyperparameter(rho, "rho", low=0)

    def transform(steps, params):
        if not depends_on(steps, params):
            raise ValueError(
                "sam must receive the gradients of a loss, as symbolic functions of the "
                "parameters (put it first in a chain and pass the loss), but these steps "
                "do not depend on any parameter")
        dtype = pytensor.scalar.upcast(*[p.dtype for p in params])
        norm = pt.sqrt(pt.add(*[pt.cast(pt.sum(pt.sqr(g)), dtype) for g in steps]))
        perturbed = {}
        for g, p in zip(steps, params, strict=True):
            scale = pt.cast(norm, p.dtype)
            epsilon = pt.switch(pt.gt(scale, 0), rho(p.dtype) * (g / scale),
                                as_scalar(0, p.dtype))
            perturbed[p] = like_param(p + epsilon, p)
        return [like_param(g, p) for g, p in
                zip(clone_replace(list(steps), perturbed), params, strict=True)], []

    return Transform(transform, elementwise=False, name="sharpness_aware")


def _sam(learning_rate: LearningRate = 1e-2, rho: Scalar = 0.05, momentum: Scalar = 0.0,
         rule: Transform | StepsFunction | None = None) -> Transform:
    r"""Sharpness-aware minimisation (Foret et al., 2021): the step a rule takes from the
    gradient at the worst point of a small ball around the parameters.

    .. math::

        \epsilon &= \rho\, \frac{g}{\|g\|_2}, \qquad
        \tilde g = \nabla L(\theta + \epsilon) \\
        v &\leftarrow \mu v - \eta\, \tilde g, \qquad \theta \leftarrow \theta + v

    the norm over all parameters together (Algorithm 1 of the paper with :math:`p = 2`;
    :math:`\mu = 0` is plain SGD). ``rule`` replaces the SGD step by any rule's, fed
    :math:`\tilde g`: ``symopt.sam(symopt.adam(learning_rate=1e-3), rho=0.05)``.

    The gradient at the perturbed point is the gradient graph rebuilt there (the
    parameters replaced by :math:`\theta + \epsilon`), so one compiled function computes
    both gradients and the step: about twice an SGD step's cost (2.25 times,
    measured with ``benchmarks/probe_cost.py`` on a 20-256-1 tanh network, batches of
    100). It needs the loss, not gradients. One step equals two calls of
    ``optax.contrib.sam`` in its plain mode (``opaque_mode=False``, ``sync_period=2``,
    ascent ``chain(normalize(), sgd(rho))``), which alternate an ascent call and a
    descent call. Not elementwise: ``fuse=True`` raises :class:`symopt.fused.NotFusable`.

    Parameters
    ----------
    loss_or_grads : scalar TensorVariable, optional
        The loss (gradients are refused: the rule evaluates them at another point). A
        rule may be passed here instead, with nothing else positional:
        ``symopt.sam(rule, rho=0.05)`` is ``symopt.sam(rule=rule, rho=0.05)``.
    params : list of SharedVariable, optional
        The parameters to update.
    learning_rate : float or scalar variable, default 1e-2
        :math:`\eta` of the SGD step (not used with ``rule``).
    rho : float or scalar variable, default 0.05
        :math:`\rho`, the radius of the ball (the paper's default).
    momentum : float or scalar variable, default 0.0
        :math:`\mu` of the SGD step (not used with ``rule``).
    rule : rule, optional
        A configured rule (``symopt.adam(learning_rate=1e-3)``) or any transform, to step
        from :math:`\tilde g` instead of SGD; give it its own learning rate.
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
    State: ``<param>.velocity`` with momentum, the rule's own with ``rule``; SAM adds
    none.

    References
    ----------
    P. Foret, A. Kleiner, H. Mobahi and B. Neyshabur (2021), "Sharpness-Aware
    Minimization for Efficiently Improving Generalization", ICLR 2021.
    https://arxiv.org/abs/2010.01412

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> step = pytensor.function([], [], updates=symopt.sam((w ** 2).sum(), [w], 0.1, rho=0.5))
    >>> for _ in range(3): _ = step()
    >>> w.get_value().round(6)
    array([ 0.40288, -0.80576])
    >>> rule = symopt.sam(symopt.adam(learning_rate=0.1), rho=0.5)
    >>> rule  # doctest: +NORMALIZE_WHITESPACE
    sam(learning_rate=0.01, rho=0.5, momentum=0.0,
        rule=adam(learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=1e-08,
                  epsilon_placement='after_correction'))
    """
    if rule is None:
        inner = scale_by_learning_rate(learning_rate)
        if nonzero(momentum):
            inner = chain(inner, trace(momentum))
    else:
        check_hyper(learning_rate, "learning_rate", low=0)
        check_hyper(momentum, "momentum", low=0, high=1)
        for name, value, default in (("learning_rate", learning_rate, 1e-2),
                                     ("momentum", momentum, 0.0)):
            if isinstance(value, Variable) or value != default:
                raise ValueError(f"sam: {name} is the SGD step's, which rule= replaces; give "
                                 "the rule its own (symopt.adam(learning_rate=...))")
        inner = as_transform(rule, "rule")
    return chain(sharpness_aware(rho), inner)


_sam.__name__ = _sam.__qualname__ = "sam"
_sam_rule = update_rule(_sam, needs_loss=True)


@functools.wraps(_sam_rule)
def sam(loss_or_grads: Any = None, params: Any = None, *args: Any, **kwargs: Any) -> Any:
    if isinstance(loss_or_grads, Transform):  # sam(rule, rho=...): the rule comes first
        if params is not None or args or "rule" in kwargs:
            raise TypeError("sam(rule, ...): give the other arguments by name, e.g. "
                            "sam(rule, rho=0.05)")
        return _sam_rule(rule=loss_or_grads, **kwargs)
    return _sam_rule(loss_or_grads, params, *args, **kwargs)


# (to a type checker, sam takes and returns Any: it also takes its inner rule first)
_typed = cast("UpdateRule", sam)
_typed.__signature__ = _sam_rule.__signature__
_typed.build, _typed.needs_loss = _sam_rule.build, True
register(_typed, "gradient")
