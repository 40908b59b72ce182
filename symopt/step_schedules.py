r"""In-graph learning-rate schedules: symbolic functions of the rule's own step counter.

A :class:`StepSchedule` maps an int64 step count to a float64 value, symbolically. Passed
as a rule's ``learning_rate``, it is evaluated on a counter the rule keeps in its state
(``learning_rate.t``, an int64 named and tagged like every counter), so the schedule's
position is saved and restored with :func:`symopt.save_state` and a resumed run continues
on the same values. The convention is optax's: the first step uses the value at count 0.

These are reached as ``symopt.schedules.<name>``. The host-side schedules of
:mod:`symopt.schedules` (``StepDecay``, ``ReduceOnPlateau``) remain for what needs a
monitored metric.

>>> import numpy as np, pytensor, symopt
>>> lr = symopt.schedules.linear(init_value=0.1, end_value=0.0, transition_steps=4)
>>> w = pytensor.shared(np.array([1.0]), name="w")
>>> train = pytensor.function([], [], updates=symopt.sgd((w ** 2).sum(), [w], lr))
>>> for _ in range(5): _ = train()
>>> w.get_value().round(6)  # steps at rates 0.1, 0.075, 0.05, 0.025, 0.0
array([0.5814])
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pytensor.tensor as pt

__all__ = [
    "StepSchedule",
    "constant",
    "cosine_decay",
    "exponential_decay",
    "join",
    "linear",
    "one_cycle",
    "piecewise_constant",
    "polynomial",
    "sgdr",
    "warmup_cosine_decay",
]


class StepSchedule:
    """A symbolic schedule: ``schedule(count)`` is its float64 value at ``count``.

    ``count`` is an integer scalar (or, to tabulate many steps at once, an integer
    vector): every schedule is elementwise in it.

    Parameters
    ----------
    fn : callable
        ``fn(count)`` with ``count`` an int64 tensor, returning a float64 tensor.
    name : str
        For ``repr`` and messages.
    """

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, count):
        count = pt.as_tensor_variable(count)
        if count.dtype[:3] not in ("int", "uin"):
            raise TypeError(f"{self.name}: the step count must be an integer, got "
                            f"dtype {count.dtype}")
        return pt.cast(self.fn(pt.cast(count, "int64")), "float64")

    def __repr__(self):
        return self.name


def _real(value, name, *, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return v


def _count(value, name, low=0):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer number of steps, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _f(count):
    return pt.cast(count, "float64")


def _const(value):
    return pt.constant(np.float64(value))


def constant(value):
    """The same value at every step."""
    value = _real(value, "value")
    return StepSchedule(lambda count: pt.zeros_like(_f(count)) + value, f"constant({value})")


def polynomial(init_value, end_value, power, transition_steps, transition_begin=0):
    r"""Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    .. math:: v(n) = (v_0 - v_1)\,(1 - k/K)^{p} + v_1, \qquad
        k = \mathrm{clip}(n - n_0, 0, K)

    (optax's ``polynomial_schedule``).
    """
    init_value, end_value = _real(init_value, "init_value"), _real(end_value, "end_value")
    power = _real(power, "power")
    steps = _count(transition_steps, "transition_steps", low=1)
    begin = _count(transition_begin, "transition_begin")

    def fn(count):
        k = pt.clip(count - begin, 0, steps)
        frac = 1 - _f(k) / steps
        return (init_value - end_value) * frac ** _const(power) + end_value

    return StepSchedule(fn, f"polynomial({init_value}, {end_value}, {power}, {steps})")


def linear(init_value, end_value, transition_steps, transition_begin=0):
    """Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps``."""
    schedule = polynomial(init_value, end_value, 1, transition_steps, transition_begin)
    schedule.name = f"linear({init_value}, {end_value}, {transition_steps})"
    return schedule


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    r"""Exponential decay: :math:`v(n) = v_0\, r^{(n - n_0)/K}` after ``transition_begin``.

    With ``staircase`` the exponent is floored; ``end_value`` bounds the value (below for a
    rate under 1, above for a rate over 1). optax's ``exponential_decay``.
    """
    init_value = _real(init_value, "init_value")
    steps = _count(transition_steps, "transition_steps", low=1)
    rate = _real(decay_rate, "decay_rate", low=0, low_open=True)
    begin = _count(transition_begin, "transition_begin")
    end = None if end_value is None else _real(end_value, "end_value")

    def fn(count):
        elapsed = count - begin
        p = _f(elapsed) / steps
        if staircase:
            p = pt.floor(p)
        value = pt.switch(pt.le(elapsed, 0), _const(init_value),
                          init_value * _const(rate) ** p)
        if end is not None:
            value = (pt.maximum if rate < 1 else pt.minimum)(value, end)
        return value

    return StepSchedule(fn, f"exponential_decay({init_value}, {steps}, {rate})")


def cosine_decay(init_value, decay_steps, alpha=0.0, exponent=1.0):
    r"""Cosine decay (Loshchilov & Hutter, 2017) from ``init_value`` to ``alpha * init_value``.

    .. math:: v(n) = v_0 \Big((1-\alpha)\, \big(\tfrac12 (1 + \cos(\pi \min(n, K)/K))
        \big)^{e} + \alpha\Big)

    References
    ----------
    I. Loshchilov and F. Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR 2017. https://arxiv.org/abs/1608.03983
    """
    init_value = _real(init_value, "init_value")
    steps = _count(decay_steps, "decay_steps", low=1)
    alpha, exponent = _real(alpha, "alpha"), _real(exponent, "exponent")

    def fn(count):
        k = _f(pt.minimum(count, steps))
        decay = 0.5 * (1 + pt.cos(np.pi * k / steps))
        return init_value * ((1 - alpha) * decay ** _const(exponent) + alpha)

    return StepSchedule(fn, f"cosine_decay({init_value}, {steps}, alpha={alpha})")


def join(schedules, boundaries):
    """``schedules[i]`` from ``boundaries[i-1]`` on, each counting from its own start.

    ``boundaries`` are increasing step counts, one fewer than ``schedules``.
    """
    schedules = list(schedules)
    boundaries = [_count(b, f"boundaries[{i}]") for i, b in enumerate(boundaries)]
    if not schedules:
        raise ValueError("join needs at least one schedule")
    for i, s in enumerate(schedules):
        if not isinstance(s, StepSchedule):
            raise TypeError(f"schedules[{i}] is a {type(s).__name__}, not a StepSchedule")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join needs one boundary fewer than schedules: got "
                         f"{len(schedules)} schedules and {len(boundaries)} boundaries")
    if any(b <= a for a, b in zip(boundaries, boundaries[1:])):
        raise ValueError(f"boundaries must increase, got {boundaries}")

    def fn(count):
        value = schedules[0].fn(count)
        for boundary, schedule in zip(boundaries, schedules[1:]):
            value = pt.switch(pt.lt(count, boundary), value, schedule.fn(count - boundary))
        return value

    return StepSchedule(fn, f"join({', '.join(map(repr, schedules))}; {boundaries})")


def warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0,
                        exponent=1.0):
    r"""Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` counts the whole schedule, warm-up included (optax's
    ``warmup_cosine_decay_schedule``); from ``decay_steps`` on the value is ``end_value``.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
    >>> lr = symopt.schedules.warmup_cosine_decay(0.0, 1.0, warmup_steps=2, decay_steps=4)
    >>> count = pt.lvector("count")
    >>> pytensor.function([count], lr(count))(np.arange(6)).round(6)
    array([0. , 0.5, 1. , 0.5, 0. , 0. ])
    """
    init_value, peak = _real(init_value, "init_value"), _real(peak_value, "peak_value")
    end_value = _real(end_value, "end_value")
    warmup = _count(warmup_steps, "warmup_steps")
    total = _count(decay_steps, "decay_steps", low=1)
    if total <= warmup:
        raise ValueError(f"decay_steps ({total}) must be greater than warmup_steps "
                         f"({warmup}): it counts the whole schedule, warm-up included")
    alpha = 0.0 if peak == 0.0 else end_value / peak
    decay = cosine_decay(peak, total - warmup, alpha=alpha, exponent=exponent)
    if warmup == 0:
        schedule = decay
    else:
        schedule = join([linear(init_value, peak, warmup), decay], [warmup])
    schedule.name = (f"warmup_cosine_decay({init_value}, {peak}, {warmup}, {total}, "
                     f"{end_value})")
    return schedule


def piecewise_constant(init_value, boundaries_and_scales):
    """``init_value``, multiplied by ``scale`` once the count reaches each ``boundary``.

    ``boundaries_and_scales`` is a dict ``{boundary: scale}`` with scales >= 0.
    """
    init_value = _real(init_value, "init_value")
    pieces = sorted((_count(b, "a boundary"), _real(s, f"the scale at {b}", low=0))
                    for b, s in dict(boundaries_and_scales).items())

    def fn(count):
        value = pt.zeros_like(_f(count)) + init_value
        for boundary, scale in pieces:
            value = pt.switch(pt.lt(count, boundary), value, scale * value)
        return value

    return StepSchedule(fn, f"piecewise_constant({init_value}, {dict(pieces)})")


def sgdr(cosine_kwargs):
    """Cosine decay with warm restarts (Loshchilov & Hutter, 2017).

    ``cosine_kwargs`` is a list of keyword dicts of :func:`warmup_cosine_decay`, one per
    cycle; each cycle lasts its ``decay_steps`` (optax's ``sgdr_schedule``).

    References
    ----------
    I. Loshchilov and F. Hutter (2017), "SGDR: Stochastic Gradient Descent with Warm
    Restarts", ICLR 2017. https://arxiv.org/abs/1608.03983
    """
    cycles = [warmup_cosine_decay(**kwargs) for kwargs in cosine_kwargs]
    if not cycles:
        raise ValueError("sgdr needs at least one cycle")
    boundaries = list(np.cumsum([kwargs["decay_steps"] for kwargs in cosine_kwargs])[:-1])
    schedule = join(cycles, [int(b) for b in boundaries])
    schedule.name = f"sgdr({len(cycles)} cycles)"
    return schedule


def one_cycle(transition_steps, peak_value, pct_start=0.3, div_factor=25.0,
              final_div_factor=1e4):
    r"""The one-cycle policy (Smith & Topin, 2018) with cosine annealing.

    From ``peak_value / div_factor`` up to ``peak_value`` over the first ``pct_start`` of
    ``transition_steps``, then down to ``peak_value / (div_factor * final_div_factor)``,
    each leg a half cosine (optax's ``cosine_onecycle_schedule``).

    References
    ----------
    L. N. Smith and N. Topin (2018), "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates". https://arxiv.org/abs/1708.07120
    """
    steps = _count(transition_steps, "transition_steps", low=1)
    peak = _real(peak_value, "peak_value")
    pct = _real(pct_start, "pct_start", low=0, high=1)
    div = _real(div_factor, "div_factor", low=0, low_open=True)
    final_div = _real(final_div_factor, "final_div_factor", low=0, low_open=True)
    bounds = [0, int(pct * steps), steps]
    values = list(np.cumprod([peak / div, div, 1.0 / (div * final_div)]))

    def fn(count):
        value = pt.zeros_like(_f(count))
        for i in range(2):
            size = max(bounds[i + 1] - bounds[i], 1)
            frac = _f(count - bounds[i]) / size
            leg = values[i + 1] + (values[i] - values[i + 1]) / 2.0 * (pt.cos(np.pi * frac) + 1)
            inside = pt.and_(pt.le(bounds[i], count), pt.lt(count, bounds[i + 1]))
            value = value + pt.switch(inside, leg, 0.0)
        return value + pt.switch(pt.le(bounds[-1], count), values[-1], 0.0)

    return StepSchedule(fn, f"one_cycle({steps}, {peak})")
