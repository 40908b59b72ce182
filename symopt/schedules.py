r"""Learning-rate schedules held in shared variables, changed between calls without recompiling.

A schedule owns a scalar shared variable, ``schedule.variable``, to pass as any rule's
``learning_rate``. Calling ``schedule.step()`` (once per epoch, or per minibatch) sets
the variable to the next value; the compiled training function reads it at each call.

>>> import numpy as np, pytensor, symopt
>>> from symopt.schedules import StepDecay
>>> w = pytensor.shared(np.array([1.0]), name="w")
>>> lr = StepDecay(0.1, factor=0.5, every=2)
>>> train = pytensor.function([], [], updates=symopt.sgd((w ** 2).sum(), [w], lr.variable))
>>> for epoch in range(4):
...     _ = train()
...     _ = lr.step()
>>> lr.value, w.get_value()  # steps of 0.1, 0.1, 0.05, 0.05
(0.025, array([0.5184]))

Time-based schedules (:class:`StepDecay`, :class:`ExponentialDecay`,
:class:`InverseTimeDecay`) are functions of the step count ``t``, exact in Python
floats (``schedule.value``; the variable holds it in its own dtype).
:class:`ReduceOnPlateau` follows a monitored metric, as the book suggests: "When
training loss does not improve anymore for one or a few more iterations, the learning
rate can be reduced by a factor".

In PyMC's ``pm.fit``, whose loop calls ``callback(approx, losses, i)`` after every
iteration and stops at a ``StopIteration``, :class:`StepEvery` steps a schedule (the rule
was compiled with its shared variable, so the new rate takes effect at the next
iteration) and :class:`StopOnPlateau` stops the fit when the loss has stopped improving:

.. code-block:: python

    lr = symopt.schedules.ReduceOnPlateau(0.1, factor=0.5, patience=3)
    approx = pm.fit(20_000, obj_optimizer=symopt.adam(learning_rate=lr.variable),
                    callbacks=[symopt.schedules.StepEvery(lr, every=200),
                               symopt.schedules.StopOnPlateau(every=200, patience=6)])
"""

from __future__ import annotations

import math

import numpy as np
import pytensor

__all__ = [
    "Constant",
    "ExponentialDecay",
    "InverseTimeDecay",
    "ReduceOnPlateau",
    "Schedule",
    "StepDecay",
    "StepEvery",
    "StopOnPlateau",
]


def _positive(value, name, *, allow_zero=False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Schedule:
    """A learning rate in a shared scalar variable, updated by :meth:`step`.

    Parameters
    ----------
    initial : float
        The value before any step, > 0.
    minimum : float, default 0.0
        A floor the value never goes below.
    name : str, default "learning_rate"
        The shared variable's name.
    dtype : str, optional
        The shared variable's dtype, a floating-point one; ``pytensor.config.floatX`` by
        default. Rules cast it to each parameter's dtype, so a float64 rate never upcasts
        float32 updates.

    Attributes
    ----------
    variable : SharedVariable
        Pass this as ``learning_rate``.
    value : float
        The current value, exact.
    t : int
        The number of steps taken.
    """

    #: The metric a training loop passes to :meth:`step` (None: it takes none).
    monitor: str | None = None

    def __init__(self, initial: float, *, minimum: float = 0.0, name: str = "learning_rate",
                 dtype: str | None = None):
        self.initial = _positive(initial, "initial")
        self.minimum = _positive(minimum, "minimum", allow_zero=True)
        if self.minimum > self.initial:
            raise ValueError(f"minimum ({minimum}) is above the initial value ({initial})")
        dtype = np.dtype(dtype or pytensor.config.floatX)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a floating-point dtype (a learning rate is a "
                             f"fraction), got {dtype.name}")
        self.variable = pytensor.shared(np.asarray(self.initial, dtype=dtype), name=name)
        self.t = 0
        self.value = self.initial

    def _set(self, value: float) -> float:
        self.value = max(float(value), self.minimum)
        self.variable.set_value(np.asarray(self.value, dtype=self.variable.dtype))
        return self.value

    def step(self, metric: float | None = None) -> float:
        """Advance one step and return the new value."""
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the initial value and ``t = 0``."""
        self.t = 0
        self._set(self.initial)

    def __float__(self) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(value={self.value!r}, t={self.t})"


class _TimeSchedule(Schedule):
    """A schedule whose value is a function of the step count alone."""

    def value_at(self, t: int) -> float:
        """The value after ``t`` steps (before the floor ``minimum``)."""
        raise NotImplementedError

    def step(self, metric: float | None = None) -> float:
        """Advance ``t`` by one and set the value to ``value_at(t)``; ``metric`` is ignored."""
        self.t += 1
        return self._set(self.value_at(self.t))


class Constant(_TimeSchedule):
    """A learning rate that never changes (a shared variable all the same).

    Examples
    --------
    >>> c = Constant(0.01)
    >>> c.step(), float(c.variable.get_value())
    (0.01, 0.01)
    """

    def value_at(self, t: int) -> float:
        return self.initial


class StepDecay(_TimeSchedule):
    r"""Multiply by ``factor`` every ``every`` steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / k \rfloor}

    Parameters
    ----------
    initial : float
        :math:`\eta_0`.
    factor : float, default 0.5
        :math:`\gamma`, in ``(0, 1]``.
    every : int, default 10
        :math:`k`, the number of steps between reductions.
    minimum, name, dtype
        See :class:`Schedule`.

    Examples
    --------
    >>> s = StepDecay(1.0, factor=0.5, every=2)
    >>> [s.step() for _ in range(5)]
    [1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, initial: float, factor: float = 0.5, every: int = 10, **kwargs):
        super().__init__(initial, **kwargs)
        self.factor = _positive(factor, "factor")
        if self.factor > 1:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        self.every = _positive_int(every, "every")

    def value_at(self, t: int) -> float:
        return self.initial * self.factor ** (t // self.every)


class ExponentialDecay(_TimeSchedule):
    r"""Exponential decay, the course note's :math:`\eta = 0.95^{\mathrm{epoch}}\, \eta_0`.

    .. math:: \eta_t = \eta_0 \, r^{t / k}
        \qquad (\text{or } r^{\lfloor t / k \rfloor} \text{ with } \texttt{staircase})

    Parameters
    ----------
    initial : float
        :math:`\eta_0`.
    rate : float
        :math:`r`, in ``(0, 1]``.
    every : int, default 1
        :math:`k`: the value is multiplied by :math:`r` once per ``every`` steps.
    staircase : bool, default False
        Change only every ``every`` steps.
    minimum, name, dtype
        See :class:`Schedule`.

    Examples
    --------
    >>> s = ExponentialDecay(1.0, rate=0.5)
    >>> [s.step() for _ in range(3)]
    [0.5, 0.25, 0.125]
    """

    def __init__(self, initial: float, rate: float, every: int = 1, staircase: bool = False,
                 **kwargs):
        super().__init__(initial, **kwargs)
        self.rate = _positive(rate, "rate")
        if self.rate > 1:
            raise ValueError(f"rate must be in (0, 1], got {rate!r}")
        self.every = _positive_int(every, "every")
        self.staircase = bool(staircase)

    def value_at(self, t: int) -> float:
        exponent = t // self.every if self.staircase else t / self.every
        return self.initial * self.rate ** exponent


class InverseTimeDecay(_TimeSchedule):
    r"""The course note's 1/t decay: :math:`\eta = \eta_0 / (1 + d \cdot \mathrm{epoch})`.

    .. math:: \eta_t = \frac{\eta_0}{1 + d\, t / k}
        \qquad (\text{or } d \lfloor t / k \rfloor \text{ with } \texttt{staircase})

    Parameters
    ----------
    initial : float
        :math:`\eta_0`.
    rate : float
        :math:`d \ge 0`.
    every : int, default 1
        :math:`k`.
    staircase : bool, default False
    minimum, name, dtype
        See :class:`Schedule`.

    Examples
    --------
    >>> s = InverseTimeDecay(0.2, rate=1.0)
    >>> [s.step() for _ in range(3)]
    [0.1, 0.06666666666666667, 0.05]
    """

    def __init__(self, initial: float, rate: float, every: int = 1, staircase: bool = False,
                 **kwargs):
        super().__init__(initial, **kwargs)
        self.rate = _positive(rate, "rate", allow_zero=True)
        self.every = _positive_int(every, "every")
        self.staircase = bool(staircase)

    def value_at(self, t: int) -> float:
        elapsed = t // self.every if self.staircase else t / self.every
        return self.initial / (1.0 + self.rate * elapsed)


class ReduceOnPlateau(Schedule):
    """Reduce the rate by a factor when a metric has stopped improving.

    Call :meth:`step` once per epoch with the monitored value (the training loss, as in
    the book, or a validation loss). A value improves on the best so far if it is lower
    by more than ``min_delta`` (``mode="min"``) or higher by more than ``min_delta``
    (``mode="max"``). After ``patience`` epochs in a row without improvement, the rate
    is multiplied by ``factor`` (but not below ``minimum``) and the count restarts; the
    ``cooldown`` epochs right after a reduction are not counted (improvements still
    update the best value).

    Parameters
    ----------
    initial : float
        The starting rate.
    factor : float, default 0.1
        In ``(0, 1)``.
    patience : int, default 10
        Epochs without improvement before a reduction.
    min_delta : float, default 1e-4
        How much better a value must be to count as an improvement.
    mode : {"min", "max"}, default "min"
    cooldown : int, default 0
        Epochs after a reduction that do not count towards ``patience``.
    monitor : str, default "train_loss"
        The metric :func:`symopt.lab.training.train` passes to :meth:`step`.
    minimum, name, dtype
        See :class:`Schedule`.

    Attributes
    ----------
    best : float
        The best value seen.
    wait : int
        Epochs since the last improvement (or reduction).
    reductions : list of int
        The steps (epochs, from 1) at which the rate was reduced.

    Examples
    --------
    >>> s = ReduceOnPlateau(0.1, factor=0.5, patience=2, min_delta=0.0)
    >>> [s.step(loss) for loss in [1.0, 0.9, 0.95, 0.91, 0.8, 0.85, 0.85]]
    [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    >>> s.reductions
    [4, 7]
    """

    def __init__(self, initial: float, factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, mode: str = "min", cooldown: int = 0,
                 monitor: str = "train_loss", **kwargs):
        super().__init__(initial, **kwargs)
        self.factor = _positive(factor, "factor")
        if self.factor >= 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        self.patience = _positive_int(patience, "patience")
        self.min_delta = _positive(min_delta, "min_delta", allow_zero=True)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.mode = mode
        self.cooldown = int(cooldown)
        if self.cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown!r}")
        self.monitor = monitor
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_left = 0
        self.reductions: list[int] = []

    def improves(self, metric: float) -> bool:
        """Whether ``metric`` is better than :attr:`best` by more than ``min_delta``."""
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def step(self, metric: float | None = None) -> float:
        """Record one epoch's ``metric`` and return the rate for the next epoch.

        A NaN metric counts as no improvement.
        """
        if metric is None:
            raise ValueError("ReduceOnPlateau.step needs the monitored metric's value")
        metric = float(metric)
        self.t += 1
        in_cooldown = self.cooldown_left > 0
        if in_cooldown:
            self.cooldown_left -= 1
        if self.improves(metric):
            self.best = metric
            self.wait = 0
        elif not in_cooldown:
            self.wait += 1
            if self.wait >= self.patience:
                reduced = max(self.value * self.factor, self.minimum)
                if reduced < self.value:
                    self._set(reduced)
                    self.reductions.append(self.t)
                self.wait = 0
                self.cooldown_left = self.cooldown
        return self.value

    def reset(self) -> None:
        super().reset()
        self._reset_counters()


# -- callbacks for fit loops that call ``callback(approx, losses, i)`` (PyMC's pm.fit) ---


def _window_mean(losses, every: int) -> float:
    """The mean of the finite values among the last ``every`` losses (NaN if none)."""
    window = np.asarray(losses[-every:], dtype="float64")
    window = window[np.isfinite(window)]
    return float(window.mean()) if window.size else math.nan


class StepEvery:
    """Step a schedule every ``every`` iterations of a fit loop: a ``pm.fit`` callback.

    PyMC calls each callback as ``callback(approx, losses, i)`` after iteration ``i``
    (from 1), ``losses`` holding the loss (the negative ELBO) of every iteration so far.
    Every ``every`` iterations this steps ``schedule`` once, with the mean loss of those
    iterations as the metric (:class:`ReduceOnPlateau` needs it; time schedules ignore
    it, and count windows, not iterations). The rule must have been built with
    ``learning_rate=schedule.variable``; the compiled step reads it at every call, so the
    new rate applies from the next iteration, as if training had been stopped, the rate
    set, and training continued (``tests/with_pymc/test_pymc_porting.py`` checks exactly
    that against ``Inference.refine``).

    Parameters
    ----------
    schedule : Schedule
    every : int, default 100
        Iterations per step of the schedule. The ELBO of one iteration is a noisy
        one-sample estimate: a window of a hundred or more gives a metric that can be
        compared from one window to the next.

    Attributes
    ----------
    history : list of (int, float, float)
        ``(iteration, window mean loss, learning rate after the step)`` per step.

    Examples
    --------
    >>> lr = StepDecay(0.1, factor=0.5, every=2)
    >>> callback = StepEvery(lr, every=3)
    >>> losses = []
    >>> for i in range(1, 13):
    ...     losses.append(10.0 / i)
    ...     callback(None, losses, i)
    >>> [(i, rate) for i, _, rate in callback.history]
    [(3, 0.1), (6, 0.05), (9, 0.05), (12, 0.025)]
    """

    def __init__(self, schedule: Schedule, every: int = 100):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a symopt.schedules.Schedule, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        self.every = _positive_int(every, "every")
        self.history: list[tuple[int, float, float]] = []

    def __call__(self, approx, losses, i) -> None:
        if i % self.every:
            return
        metric = _window_mean(losses, self.every)
        self.history.append((int(i), metric, self.schedule.step(metric)))


class StopOnPlateau:
    """Stop a fit loop when its mean loss has stopped improving: a ``pm.fit`` callback.

    Every ``every`` iterations the mean loss of those iterations is compared with the
    best such mean so far; when ``patience`` windows in a row have not improved on it by
    more than ``min_delta``, the callback raises ``StopIteration``, which ``pm.fit``
    takes as the end of the fit (the approximation keeps its current parameters, and
    ``approx.hist`` ends there). PyMC's own ``CheckParametersConvergence`` stops on the
    parameters' movement instead; the two can be combined.

    Parameters
    ----------
    every : int, default 100
        Iterations per window.
    patience : int, default 5
        Windows without improvement before stopping.
    min_delta : float, default 0.0
        How much lower a window's mean must be than the best to count as better, in the
        loss's units.

    Attributes
    ----------
    best : float
        The best window mean.
    stopped_at : int or None
        The iteration at which the fit was stopped.
    history : list of (int, float)
        ``(iteration, window mean loss)`` per window.

    Examples
    --------
    >>> stop, losses = StopOnPlateau(every=2, patience=2), []
    >>> try:
    ...     for i, loss in enumerate([5, 4, 3, 3, 3, 3.5, 3, 3, 2], start=1):
    ...         losses.append(loss)
    ...         stop(None, losses, i)
    ... except StopIteration as stopped:
    ...     print(stopped, stop.best)
    no improvement of the mean loss over 2 windows of 2 iterations: stopped at 8 3.0
    """

    def __init__(self, every: int = 100, patience: int = 5, min_delta: float = 0.0):
        self.every = _positive_int(every, "every")
        self.patience = _positive_int(patience, "patience")
        self.min_delta = _positive(min_delta, "min_delta", allow_zero=True)
        self.best = math.inf
        self.wait = 0
        self.stopped_at: int | None = None
        self.history: list[tuple[int, float]] = []

    def __call__(self, approx, losses, i) -> None:
        if i % self.every:
            return
        metric = _window_mean(losses, self.every)
        self.history.append((int(i), metric))
        if metric < self.best - self.min_delta:
            self.best, self.wait = metric, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_at = int(i)
            raise StopIteration(
                f"no improvement of the mean loss over {self.patience} windows of "
                f"{self.every} iterations: stopped at {i}")


# In-graph schedules, symbolic functions of the rule's own step counter (saved with its
# state): defined in symopt.step_schedules, reached from here.
from symopt.step_schedules import (  # noqa: E402, F401 (re-exported)
    StepSchedule,
    constant,
    cosine_decay,
    exponential_decay,
    join,
    linear,
    one_cycle,
    piecewise_constant,
    polynomial,
    sgdr,
    warmup_cosine_decay,
)
