r"""Rules made of rules: per-group rules, masks, gradient accumulation, lookahead, averaging.

- :func:`partition`: a different rule for each group of parameters;
- :func:`masked`: a rule (or block) that acts on some parameters only;
- :func:`multi_steps`: the mean of ``every`` gradients, one step of the rule;
- :func:`lookahead`: fast weights stepped by the rule, slow weights pulled towards them;
- :func:`ema` and :func:`averages`: an exponential moving average of the parameters.

The first four take a rule configured without a loss (``symopt.adam(learning_rate=1e-3)``)
or a building block, and return a :class:`symopt.ConfiguredRule`: call it with
``(loss_or_grads, params)``, chain it, or hand it to ``pm.fit(obj_optimizer=...)``.
:func:`ema` wraps the updates a rule returned. Their state is named ``<param>.<role>``
(``W.acc_grad``, ``W.slow``, ``W.ema``) with int64 counters (``multi_steps.t``,
``lookahead.t``, ``ema.t``), all tagged, so :func:`symopt.save_state` and
:func:`symopt.load_state` resume a run bit for bit. The semantics are optax's
(``optax.partition``, ``optax.masked``, ``optax.MultiSteps``, ``optax.lookahead``,
``optax.ema``), and the tests compare them step by step.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from symopt._checks import Hyperparameter, describe
from symopt.state import param_state, state_tag, step_counter
from symopt.transform import ConfiguredRule, Transform, as_transform

__all__ = ["averages", "ema", "lookahead", "masked", "multi_steps", "partition"]


def _steps_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer number of steps, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _per_param(what, mapping, params, name):
    """``mapping`` (a dict keyed by parameter, or a function of one) read for each param."""
    if callable(mapping) and not isinstance(mapping, dict):
        return [mapping(p) for p in params]
    if not isinstance(mapping, dict):
        raise TypeError(f"{name} must be a dict {{param: {what}}} or a function of a "
                        f"parameter, got {type(mapping).__name__}")
    named = [k for k in mapping if isinstance(k, str)]
    if named:
        raise TypeError(f"{name} is keyed by {named[0]!r}, a name: key it by the shared "
                        f"variables themselves ({{W: ...}}), or pass a function of a parameter")
    by_id = {id(k): v for k, v in mapping.items()}
    known = {id(p) for p in params}
    unknown = [describe(k) for k in mapping if id(k) not in known]
    if unknown:
        raise ValueError(f"{name} names {', '.join(unknown)}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not among the params")
    missing = [describe(p) for p in params if id(p) not in by_id]
    if missing:
        raise ValueError(f"{name} has no {what} for {', '.join(missing)}: give every "
                         "parameter one")
    return [by_id[id(p)] for p in params]


def partition(rules, labels):
    r"""A rule per group of parameters: each parameter is stepped by the rule of its label.

    Parameters
    ----------
    rules : dict of str to rule
        Configured rules or building blocks, by label.
    labels : dict of SharedVariable to str, or callable
        The label of each parameter, or a function ``labels(param) -> label``. Every
        parameter needs a label that names a rule.

    Returns
    -------
    ConfiguredRule
        Its state is the state of each group's rule, for that group's parameters (two
        groups using Adam have a counter ``adam.t`` each). Not elementwise: it runs on the
        per-tensor path.

    References
    ----------
    optax's ``partition`` (formerly ``multi_transform``), https://optax.readthedocs.io.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.ones((2, 2)), name="W")
    >>> b = pytensor.shared(np.ones(2), name="b")
    >>> opt = symopt.partition({"decay": symopt.adamw(learning_rate=0.1, weight_decay=0.5),
    ...                         "no_decay": symopt.sgd(learning_rate=0.1)},
    ...                        labels=lambda p: "decay" if p.ndim > 1 else "no_decay")
    >>> step = pytensor.function([], [], updates=opt((W ** 2).sum() + (b ** 2).sum(), [W, b]))
    >>> _ = step(); float(W.get_value()[0, 0].round(6)), float(b.get_value()[0].round(6))
    (0.85, 0.8)
    """
    if not isinstance(rules, dict) or not rules:
        raise TypeError("rules must be a non-empty dict {label: rule}")
    blocks = {label: as_transform(rule, f"rules[{label!r}]") for label, rule in rules.items()}

    def transform(steps, params):
        names = _per_param("label", labels, params, "labels")
        for p, label in zip(params, names):
            if label not in blocks:
                raise ValueError(f"{describe(p)} has the label {label!r}, which has no rule; "
                                 f"the rules are for {sorted(map(str, blocks))}")
        new_steps, state = list(steps), []
        for label, block in blocks.items():
            chosen = [i for i, name in enumerate(names) if name == label]
            if not chosen:
                continue
            sub_steps, sub_state = block.transform([steps[i] for i in chosen],
                                                   [params[i] for i in chosen])
            for i, s in zip(chosen, sub_steps, strict=True):
                new_steps[i] = s
            state += sub_state
        return new_steps, state

    return ConfiguredRule("partition", transform, {"rules": rules, "labels": labels})


def _descends(transform):
    """Whether ``transform``'s steps are descent steps (it holds a learning rate)."""
    if isinstance(transform, ConfiguredRule):
        return True
    if transform.name.startswith("scale_by_learning_rate"):
        return True
    return any(_descends(part) for part in getattr(transform, "parts", ()))


def masked(rule, mask, others=None):
    r"""Apply ``rule`` to the parameters ``mask`` selects; the others are left alone.

    Parameters
    ----------
    rule : rule or building block
        ``symopt.adamw(learning_rate=1e-3)``, or a block such as
        ``symopt.add_decayed_weights(0.01)`` in a :func:`symopt.chain`.
    mask : dict of SharedVariable to bool, or callable
        True for the parameters the rule acts on (every parameter must be in the dict,
        and nothing else), or a function ``mask(param) -> bool``.
    others : {"freeze", "pass"}, optional
        What the unselected parameters get. ``"freeze"``: a zero step, they do not move;
        ``"pass"``: their steps go through unchanged (optax's ``masked``), right for a block
        inside a chain. By default ``"freeze"`` when ``rule`` makes descent steps (a
        configured rule, ``scale_by_learning_rate``, or a chain holding one of them) and
        ``"pass"`` for a block that transforms gradients.

    Returns
    -------
    ConfiguredRule
        With the state of ``rule`` for the selected parameters only. Not elementwise.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.ones(2), name="W")
    >>> b = pytensor.shared(np.ones(2), name="b")
    >>> opt = symopt.masked(symopt.sgd(learning_rate=0.1), {W: True, b: False})
    >>> step = pytensor.function([], [], updates=opt((W ** 2).sum() + (b ** 2).sum(), [W, b]))
    >>> _ = step(); W.get_value(), b.get_value()
    (array([0.8, 0.8]), array([1., 1.]))
    """
    block = as_transform(rule, "rule")
    if others is None:
        others = "freeze" if _descends(block) else "pass"
    if others not in ("freeze", "pass"):
        raise ValueError(f"others must be 'freeze' or 'pass', got {others!r}")

    def transform(steps, params):
        flags = _per_param("True or False", mask, params, "mask")
        for p, flag in zip(params, flags):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"mask gives {describe(p)} the value {flag!r}; it must be "
                                "True or False")
        chosen = [i for i, flag in enumerate(flags) if flag]
        if others == "pass":
            new_steps = list(steps)
        else:
            new_steps = [pt.zeros_like(s) for s in steps]
        if not chosen:
            return new_steps, []
        sub_steps, state = block.transform([steps[i] for i in chosen],
                                           [params[i] for i in chosen])
        for i, s in zip(chosen, sub_steps, strict=True):
            new_steps[i] = s
        return new_steps, state

    return ConfiguredRule("masked", transform, {"rule": rule, "mask": mask, "others": others})


def multi_steps(rule, every):
    r"""Gradient accumulation: the mean of ``every`` gradients, then one step of ``rule``.

    On the first ``every - 1`` of each ``every`` calls the parameters and the rule's state
    stay as they are and the gradient is added to a running mean; on the last call the rule
    steps with that mean and the mean restarts. A batch of ``every * n`` examples fitted
    with batches of ``n``:

    .. math::

        a \leftarrow a + (g - a)/(k + 1), \qquad
        \theta \leftarrow \begin{cases} \theta + \mathrm{rule}(a) & k = \mathrm{every} - 1
        \\ \theta & \text{otherwise} \end{cases}, \qquad k \leftarrow (k + 1) \bmod
        \mathrm{every}

    Parameters
    ----------
    rule : rule or building block
    every : int
        The number of gradients per step, >= 1.

    Returns
    -------
    ConfiguredRule
        Elementwise when ``rule`` is. State: ``<param>.acc_grad``, the counter
        ``multi_steps.t`` (gradients in the current mean), and the rule's own.

    References
    ----------
    optax's ``MultiSteps``, https://optax.readthedocs.io.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> opt = symopt.multi_steps(symopt.sgd(learning_rate=0.1), every=2)
    >>> step = pytensor.function([], [], updates=opt((w ** 2).sum(), [w]))
    >>> for _ in range(4): _ = step()
    >>> w.get_value()  # moved on the 2nd and 4th calls
    array([0.64])
    """
    block = as_transform(rule, "rule")
    every = _steps_count(every, "every")

    def transform(steps, params):
        k = step_counter("multi_steps")
        emit = pt.eq(k, every - 1)
        means, state = [], []
        for g, p in zip(steps, params, strict=True):
            acc = param_state(p, "acc_grad", "multi_steps")
            mean = acc + (g - acc) / pt.cast(k + 1, p.dtype)
            means.append(mean)
            state.append((acc, pt.switch(emit, pt.zeros_like(mean), mean)))
        inner_steps, inner_state = block.transform(means, params)
        new_steps = [pt.switch(emit, s, pt.zeros_like(s)) for s in inner_steps]
        state += [(var, pt.switch(emit, value, var)) for var, value in inner_state]
        return new_steps, state + [(k, (k + 1) % every)]

    return ConfiguredRule("multi_steps", Transform(transform, elementwise=block.elementwise),
                          {"rule": rule, "every": every})


def lookahead(rule, sync_period=6, slow_step_size=0.5):
    r"""Lookahead (Zhang et al., 2019): ``k`` steps forward with ``rule``, one step back.

    The parameters hold the fast weights (the gradients are taken there); the slow weights
    are state, ``<param>.slow``, equal to the parameters before the first step. Every
    ``sync_period`` steps the slow weights move towards the fast ones and the fast weights
    are reset to them:

    .. math::

        \phi \leftarrow \phi + \alpha\,(\theta - \phi), \qquad \theta \leftarrow \phi

    Parameters
    ----------
    rule : rule or building block
        The fast rule.
    sync_period : int, default 6
        :math:`k`, >= 1.
    slow_step_size : float, default 0.5
        :math:`\alpha`, in ``[0, 1]``.

    Returns
    -------
    ConfiguredRule
        Elementwise when ``rule`` is. State: ``<param>.slow``, ``lookahead.t`` (the steps
        taken) and the rule's own. To evaluate with the slow weights, read ``<param>.slow``
        (:func:`symopt.get_state`); right after a synchronisation both are equal.

    References
    ----------
    M. R. Zhang, J. Lucas, G. Hinton and J. Ba (2019), "Lookahead Optimizer: k steps
    forward, 1 step back", NeurIPS 2019. https://arxiv.org/abs/1907.08610

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> opt = symopt.lookahead(symopt.sgd(learning_rate=0.25), sync_period=2,
    ...                        slow_step_size=0.5)
    >>> step = pytensor.function([], [], updates=opt((w ** 2).sum(), [w]))
    >>> _ = step(); _ = step(); w.get_value()  # fast 1 -> 0.5 -> 0.25, slow 1 -> 0.625
    array([0.625])
    """
    block = as_transform(rule, "rule")
    sync_period = _steps_count(sync_period, "sync_period")
    slow_step_size = Hyperparameter(slow_step_size, "slow_step_size", low=0, high=1)

    def transform(steps, params):
        t = step_counter("lookahead")
        sync = pt.eq((t + 1) % sync_period, 0)
        first = pt.eq(t, 0)
        inner_steps, state = block.transform(steps, params)
        new_steps = []
        for u, p in zip(inner_steps, params, strict=True):
            alpha = slow_step_size(p.dtype)
            slow = param_state(p, "slow", "lookahead")
            slow_old = pt.switch(first, p, slow)
            difference = p + u - slow_old
            new_steps.append(pt.switch(sync, u - (1 - alpha) * difference, u))
            state.append((slow, pt.switch(sync, slow_old + alpha * difference, slow_old)))
        return new_steps, state + [(t, t + 1)]

    return ConfiguredRule("lookahead", Transform(transform, elementwise=block.elementwise),
                          {"rule": rule, "sync_period": sync_period,
                           "slow_step_size": slow_step_size})


def _pairs_and_params(updates):
    pairs = list(updates.items() if isinstance(updates, dict) else updates)
    params = [var for var, _ in pairs if state_tag(var) is None]
    if not params:
        raise ValueError("these updates update no parameter (only optimizer state)")
    return pairs, params


def ema(updates, decay=0.999, debias=True):
    r"""Keep an exponential moving average of the parameters, updated with them.

    .. math::

        \bar\theta \leftarrow (1-\beta)\, \theta_{new} + \beta\, \bar\theta, \qquad
        \hat\theta = \bar\theta / (1 - \beta^t) \ \ \text{(debiased)}

    Parameters
    ----------
    updates : list of (SharedVariable, TensorVariable) or dict
        What a rule returned; every updated variable that is not optimizer state is
        averaged.
    decay : float or scalar variable, default 0.999
        :math:`\beta`, in ``[0, 1]``.
    debias : bool, default True
        Also keep :math:`\hat\theta` (``<param>.average``), free of the bias of the zero
        start (optax's ``ema(debias=True)``).

    Returns
    -------
    list or OrderedDict
        The same kind as ``updates``, with ``<param>.ema`` (and ``<param>.average``) and
        ``ema.t`` appended. :func:`averages` finds the averages again.

    References
    ----------
    B. T. Polyak and A. B. Juditsky (1992), "Acceleration of Stochastic Approximation by
    Averaging", SIAM Journal on Control and Optimization 30(4).
    https://doi.org/10.1137/0330046 ; optax's ``ema``, https://optax.readthedocs.io.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> updates = symopt.ema(symopt.sgd((w ** 2).sum(), [w], 0.25), decay=0.5)
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step(); _ = step(); symopt.averages(updates)[w].get_value()  # (2 * 0.25 + 0.5) / 3
    array([0.33333333])
    """
    decay = Hyperparameter(decay, "decay", low=0, high=1)
    pairs, params = _pairs_and_params(updates)
    new_values = {id(var): value for var, value in pairs}
    t = step_counter("ema")
    t_new = t + 1
    added = []
    for p in params:
        beta = decay(p.dtype)
        average = param_state(p, "ema", "ema")
        average_new = (1 - beta) * new_values[id(p)] + beta * average
        added.append((average, average_new))
        if debias:
            debiased = param_state(p, "average", "ema")
            added.append((debiased, average_new / (1 - beta ** pt.cast(t_new, p.dtype))))
    added = [(var, var.type.filter_variable(value)) for var, value in added]
    result = pairs + added + [(t, t_new)]
    return OrderedDict(result) if isinstance(updates, dict) else result


def averages(updates):
    """``{param: its average}`` from updates that went through :func:`ema`.

    The average is the debiased one (``<param>.average``) if :func:`ema` kept it, else
    ``<param>.ema``: shared variables, to read or to copy into a model for evaluation.
    """
    pairs = list(updates.items() if isinstance(updates, dict) else updates)
    found = OrderedDict()
    for var, _ in pairs:
        tag = state_tag(var)
        if tag is None or tag.rule != "ema" or tag.param is None:
            continue
        if tag.role == "average" or id(tag.param) not in {id(p) for p in found}:
            found[tag.param] = var
    if not found:
        raise ValueError("these updates keep no average: pass them through symopt.ema first")
    return found
