"""Training helpers: minibatches, compiled steps, early stopping and a generic loop.

The pieces work alone or through :func:`train`:

- :func:`minibatches` shuffles with a seed and yields batches covering every example once;
- :func:`compile_train_step` compiles one training step that also returns the norms and
  NaN count of :func:`symopt.lab.diagnostics.monitor_outputs`; :func:`compile_evaluator`
  compiles metrics averaged over a data set;
- :class:`EarlyStopping` watches a validation metric and restores the best parameters;
- :func:`train` runs epochs of minibatches, evaluates, steps a learning-rate schedule
  (:mod:`symopt.schedules`), stops early, shows its progress
  (:class:`~symopt.lab.progress.Progress`) and records a :class:`~symopt.lab.history.History`.

This module also re-exports :func:`~symopt.lab.diagnostics.gradient_check`,
:func:`~symopt.lab.diagnostics.monitor_outputs`, :class:`~symopt.lab.history.History`,
:func:`~symopt.lab.history.plot_histories` and :class:`~symopt.lab.progress.Progress`.

>>> import numpy as np, pytensor.tensor as pt, symopt
>>> from symopt.lab import nn, training
>>> rng = np.random.default_rng(0)
>>> x_all = rng.normal(size=(200, 2)).astype("float32")
>>> y_all = (x_all[:, 0] + x_all[:, 1] > 0).astype("int64")
>>> net = nn.MLP([2, 8, 2], seed=0)
>>> x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
>>> log_p = net.output(x, training=True)
>>> loss = nn.categorical_crossentropy_from_log_probs(log_p, y)
>>> step = training.compile_train_step(
...     [x, y], loss, net.params, symopt.sgd(learning_rate=0.5),
...     metrics={"accuracy": nn.accuracy(log_p, y)}, extra_updates=net.extra_updates)
>>> history = training.train(step, (x_all, y_all), epochs=10, batch_size=20, progress=False)
>>> bool(history["train_loss"][-1] < history["train_loss"][0]), history.last("train_accuracy") > 0.9
(True, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.tensor.random.type import RandomType

from symopt._checks import check_params
from symopt.fused.lowering import ancestors
from symopt.grads import get_or_compute_grads
from symopt.lab.diagnostics import GradientCheck, gradient_check, monitor_outputs
from symopt.lab.history import History, plot_histories
from symopt.lab.progress import Progress, ProgressBar
from symopt.schedules import Schedule

__all__ = [
    "EarlyStopping",
    "Evaluator",
    "GradientCheck",
    "History",
    "Progress",
    "ProgressBar",
    "TrainStep",
    "compile_evaluator",
    "compile_train_step",
    "gradient_check",
    "minibatch_indices",
    "minibatches",
    "monitor_outputs",
    "plot_histories",
    "train",
]

# ---------------------------------------------------------------------------------------
# Minibatches
# ---------------------------------------------------------------------------------------


def minibatch_indices(n: int, batch_size: int, *, shuffle: bool = True,
                      seed: int | np.random.Generator | None = None,
                      drop_last: bool = False) -> list[np.ndarray]:
    """The index arrays of one epoch's minibatches.

    Parameters
    ----------
    n : int
        The number of examples.
    batch_size : int
    shuffle : bool, default True
        Visit the examples in a random order (else in order).
    seed : int or numpy.random.Generator, optional
        An int gives the same order every time; a Generator is advanced, so passing the
        same one each epoch gives a new, reproducible order per epoch.
    drop_last : bool, default False
        Leave out the last batch when it is smaller than ``batch_size``.

    Examples
    --------
    >>> [b.tolist() for b in minibatch_indices(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in minibatch_indices(5, 2, shuffle=False, drop_last=True)]
    [[0, 1], [2, 3]]
    """
    n, batch_size = int(n), int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def minibatches(*arrays: np.ndarray, batch_size: int, shuffle: bool = True,
                seed: int | np.random.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield tuples of aligned minibatches of ``arrays``, each example once per pass.

    See :func:`minibatch_indices` for the arguments.

    Examples
    --------
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in minibatches(x, y, batch_size=2, seed=0)]
    [[2, 4], [3, 0], [1]]
    """
    if not arrays:
        raise ValueError("minibatches needs at least one array")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n:
            raise ValueError(f"array {i} has {len(a)} examples, array 0 has {n}")
    for index in minibatch_indices(n, batch_size, shuffle=shuffle, seed=seed,
                                   drop_last=drop_last):
        yield tuple(a[index] for a in arrays)


# ---------------------------------------------------------------------------------------
# Early stopping
# ---------------------------------------------------------------------------------------


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` epochs.

    The slides' early stopping: the validation error goes down, then back up as the
    model starts to overfit; stop near its minimum. Each time the metric improves, the
    values of ``params`` are copied, and :meth:`restore` puts them back.

    Parameters
    ----------
    monitor : str, default "valid_loss"
        The epoch metric :func:`train` watches (``valid_accuracy`` with ``mode="max"``).
    patience : int, default 5
        Epochs without improvement before stopping.
    mode : {"min", "max"}, default "min"
    min_delta : float, default 0.0
        How much better a value must be to count as an improvement.
    params : list of SharedVariable, optional
        The variables to remember and restore; :func:`train` fills in the training
        step's parameters when omitted. Pass ``net.variables`` to include batch
        normalisation's running statistics.
    restore_best : bool, default True
        Whether :func:`train` restores the best values when it ends.

    Attributes
    ----------
    best : float
    best_epoch : int or None
    wait : int
        Epochs since the last improvement.
    stopped_epoch : int or None
        The epoch at which :meth:`step` said stop.

    Examples
    --------
    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.step(v) for v in [0.5, 0.4, 0.45, 0.41]]
    [False, False, False, True]
    >>> stopper.best, stopper.best_epoch, stopper.stopped_epoch
    (0.4, 2, 4)
    """

    def __init__(self, monitor: str = "valid_loss", patience: int = 5, mode: str = "min",
                 min_delta: float = 0.0, params: Sequence | None = None,
                 restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.mode = monitor, mode
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.params = None if params is None else check_params(list(params))
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.best_values: list[np.ndarray] | None = None
        self.wait = 0
        self.epoch = 0
        self.stopped_epoch: int | None = None

    @property
    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats :attr:`best` by more than ``min_delta`` (NaN never does)."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, epoch: int | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop.

        ``epoch`` defaults to one more than the previous call's. Once it has said stop,
        it keeps saying so and records nothing more.
        """
        if self.should_stop:
            return True
        self.epoch = self.epoch + 1 if epoch is None else int(epoch)
        value = float(value)
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, self.epoch, 0
            if self.params is not None:
                self.best_values = [p.get_value(borrow=False) for p in self.params]
        else:
            self.wait += 1
            if self.wait >= self.patience and self.stopped_epoch is None:
                self.stopped_epoch = self.epoch
        return self.should_stop

    def restore(self) -> bool:
        """Set the parameters back to their best values; False if there is nothing to restore."""
        if self.params is None or self.best_values is None:
            return False
        for p, v in zip(self.params, self.best_values):
            p.set_value(v)
        return True


# ---------------------------------------------------------------------------------------
# Compiled steps and evaluators
# ---------------------------------------------------------------------------------------


class TrainStep:
    """A compiled training step: call it with a batch, get a dict of floats.

    Made by :func:`compile_train_step`. Attributes: ``function`` (the PyTensor
    function), ``names`` (its outputs' names, ``loss`` first), ``params``, ``updates``.
    """

    def __init__(self, function, names: Sequence[str], params: list, updates: list):
        self.function = function
        self.names = tuple(names)
        self.params = params
        self.updates = updates

    def __call__(self, *batch) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.function(*batch))}

    def __repr__(self) -> str:
        return f"TrainStep(outputs={list(self.names)})"

    def warm_up(self, *batch) -> float:
        """Call the step once on ``batch``, then put back every shared variable it changed.

        The first call is where the Numba backend compiles (and the C backend loads its
        modules), often far longer than ``pytensor.function`` itself: a run that warms up
        before timing counts it as compile time, and trains from the same values as one
        that did not. Returns the seconds the call took.
        """
        shared = self.function.get_shared()
        saved = [variable.get_value(borrow=False) for variable in shared]
        start = time.monotonic()
        self.function(*batch)
        seconds = time.monotonic() - start
        for variable, value in zip(shared, saved, strict=True):
            variable.set_value(value, borrow=True)
        return seconds


def compile_train_step(inputs: Sequence, loss, params: Sequence, rule: Callable | None = None,
                       *, updates: Sequence | None = None, grads: Sequence | None = None,
                       extra_updates: Sequence = (), metrics: Mapping | None = None,
                       monitor: bool = True, per_param: bool = False, mode=None) -> TrainStep:
    """Compile a training step returning the loss, metrics and monitoring values.

    Parameters
    ----------
    inputs : list of Variable
        The batch's symbolic inputs, e.g. ``[x, y]``.
    loss : scalar TensorVariable
    params : list of SharedVariable
    rule : callable, optional
        An update rule taking ``(grads, params)``: a configured rule such as
        ``symopt.adam(learning_rate=schedule.variable)``, or a chain applied with
        ``functools.partial(symopt.apply, transform)``. The gradients are computed once
        and shared with the monitors.
    updates : list of (SharedVariable, TensorVariable), optional
        Ready-made updates instead of ``rule`` (give ``grads`` too, to monitor exactly
        the gradients they used).
    grads : list of TensorVariable, optional
        The gradients; ``pytensor.grad(loss, params)`` by default.
    extra_updates : list of pairs
        More updates, e.g. ``net.extra_updates`` (batch normalisation, dropout). A step
        whose random generators (dropout's) have no update is refused: it would draw the
        same numbers at every step.
    metrics : dict of str to scalar TensorVariable, optional
        More outputs, e.g. ``{"accuracy": nn.accuracy(out, y)}``.
    monitor : bool, default True
        Add :func:`~symopt.lab.diagnostics.monitor_outputs`: ``param_norm``, ``grad_norm``,
        ``update_norm``, ``nonfinite``.
    per_param : bool, default False
        Monitor each parameter's norms too.
    mode : pytensor Mode or str, optional
        By default :func:`symopt.fused.modes.training_mode` of PyTensor's default backend.

    Returns
    -------
    TrainStep
    """
    params = check_params(list(params))
    if (rule is None) == (updates is None):
        raise ValueError("pass exactly one of rule (an update rule) and updates")
    if grads is None:
        grads = get_or_compute_grads(loss, params)
    grads = list(grads)
    if rule is not None:
        updates = rule(grads, params)
    updates = list(updates.items() if isinstance(updates, Mapping) else updates)
    all_updates = updates + list(extra_updates)
    outputs = {"loss": loss}
    for name, expr in (metrics or {}).items():
        if name in outputs:
            raise ValueError(f"metric name {name!r} is taken")
        outputs[name] = expr
    _check_random_generators_advance(list(outputs.values()) + [e for _, e in updates],
                                     all_updates)
    if monitor:
        for name, expr in monitor_outputs(params, grads, updates, per_param=per_param).items():
            outputs.setdefault(name, expr)
    if mode is None:
        from symopt.fused.modes import training_mode

        mode = training_mode()
    function = pytensor.function(list(inputs), list(outputs.values()), updates=all_updates,
                                 mode=mode)
    return TrainStep(function, list(outputs), params, all_updates)


def _check_random_generators_advance(outputs, updates):
    """Refuse a training step whose random generators (dropout's) have no update: every
    step would draw the same numbers (the same dropout mask), silently."""
    updated = {id(var) for var, _ in updates}
    frozen = sorted({var.name or "a random generator" for var in ancestors(outputs)
                     if isinstance(var, SharedVariable) and isinstance(var.type, RandomType)
                     and id(var) not in updated})
    if frozen:
        raise ValueError(
            f"the training step draws random numbers from {', '.join(map(repr, frozen))} but "
            "no update advances it, so every step would draw the same numbers (dropout the "
            "same mask): pass extra_updates=net.extra_updates")


class Evaluator:
    """Compiled metrics averaged over a data set, batch by batch if asked.

    Made by :func:`compile_evaluator`. Calling it with the data arrays returns a dict of
    floats; each metric must be a mean over its batch, and batches are weighted by size,
    so the result is the mean over the whole set.
    """

    def __init__(self, function, names: Sequence[str], batch_size: int | None = None):
        self.function = function
        self.names = tuple(names)
        self.batch_size = batch_size

    def __call__(self, *arrays, batch_size: int | None = None) -> dict[str, float]:
        batch_size = batch_size or self.batch_size
        n = len(arrays[0])
        if not batch_size or batch_size >= n:
            return {name: float(v) for name, v in zip(self.names, self.function(*arrays))}
        totals = np.zeros(len(self.names))
        for batch in minibatches(*arrays, batch_size=batch_size, shuffle=False):
            totals += len(batch[0]) * np.array([float(v) for v in self.function(*batch)])
        return dict(zip(self.names, (totals / n).tolist()))

    def __repr__(self) -> str:
        return f"Evaluator(metrics={list(self.names)})"


def compile_evaluator(inputs: Sequence, metrics: Mapping, *, batch_size: int | None = None,
                      mode=None) -> Evaluator:
    """Compile metrics (batch means, e.g. ``{"loss": ..., "accuracy": ...}``) for evaluation.

    Build them from the inference graph (``net.output(x, training=False)``). With
    ``batch_size``, large sets are evaluated in pieces.
    """
    if not metrics:
        raise ValueError("compile_evaluator needs at least one metric")
    function = pytensor.function(list(inputs), list(metrics.values()), mode=mode)
    return Evaluator(function, list(metrics), batch_size)


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------


def _mean_records(sums: dict, weight: float) -> dict:
    return {k: (v if k == "nonfinite" else v / weight) for k, v in sums.items()}


def train(step: Callable[..., Mapping[str, float]], train_data: Sequence[np.ndarray], *,
          epochs: int, batch_size: int = 100, evaluate: Callable[..., Mapping] | None = None,
          eval_data: Mapping[str, Sequence[np.ndarray]] | None = None,
          schedule: Schedule | None = None, schedule_unit: str = "epoch",
          early_stopping: EarlyStopping | None = None, history: History | None = None,
          seed: int | None = 0, shuffle: bool = True, drop_last: bool = False,
          record_steps: bool | int = True, stop_on_nonfinite: bool = True,
          progress: bool | str = True, callback: Callable[[int, dict], bool | None] | None = None,
          ) -> History:
    """Train for some epochs of shuffled minibatches, evaluating after each epoch.

    Each epoch: every minibatch goes through ``step`` (the step's outputs are logged per
    step); then the epoch record gets ``epoch``, the batch-size-weighted means of the
    step outputs prefixed ``train_`` (``train_loss``; ``train_nonfinite`` is a sum),
    ``evaluate(*data)`` for each named set of ``eval_data`` prefixed with its name
    (``valid_loss``), ``learning_rate`` (the value used during the epoch) and ``time``
    (seconds since the start). Then the schedule steps and early stopping decides.

    Parameters
    ----------
    step : callable
        ``step(*batch) -> dict`` of floats with a ``loss``, such as a
        :class:`TrainStep`.
    train_data : sequence of numpy.ndarray
        Aligned arrays, e.g. ``(x_train, y_train)``.
    epochs : int
        The maximum number of epochs.
    batch_size : int, default 100
        The blog's.
    evaluate : callable, optional
        ``evaluate(*arrays) -> dict``, such as an :class:`Evaluator`.
    eval_data : dict of str to sequence of numpy.ndarray, optional
        The sets to evaluate, e.g. ``{"valid": (x_va, y_va)}``.
    schedule : Schedule, optional
        The schedule whose ``variable`` the step's rule uses. Time-based schedules step
        once per epoch (or per minibatch with ``schedule_unit="step"``);
        :class:`~symopt.schedules.ReduceOnPlateau` steps per epoch with the metric it
        monitors (``train_loss`` by default).
    schedule_unit : {"epoch", "step"}, default "epoch"
    early_stopping : EarlyStopping, optional
        Watches its ``monitor`` metric; when it stops, or at the end, the best values
        are restored if ``restore_best``.
    history : History, optional
        Appended to, continuing its epoch and step numbers; a new one by default.
    seed : int, optional
        Seeds the shuffling (a new order each epoch, the same run each time).
    shuffle, drop_last : bool
        See :func:`minibatches`.
    record_steps : bool or int, default True
        Log every step (True), none (False), or every k-th step (k).
    stop_on_nonfinite : bool, default True
        Stop at the first step whose loss is NaN or infinite.
    progress : bool or {"auto", "tqdm", "lines", "none"}, default True
        How to show progress on stderr (:class:`~symopt.lab.progress.Progress`): True is
        ``"auto"``, a tqdm bar on a terminal or in Jupyter and one line per epoch (with
        elapsed time and ETA) in a log file; False is ``"none"``.
    callback : callable, optional
        ``callback(epoch, record)`` after each epoch; returning True stops training.

    Returns
    -------
    History
        With ``meta["last_epoch"]``, ``meta["stopped"]`` (why training stopped before
        ``epochs``, or None) and, with early stopping, ``meta["best_epoch"]``.
    """
    if schedule_unit not in ("epoch", "step"):
        raise ValueError(f"schedule_unit must be 'epoch' or 'step', got {schedule_unit!r}")
    if schedule is not None and schedule.monitor is not None and schedule_unit != "epoch":
        raise ValueError(f"{type(schedule).__name__} follows a metric, so it steps per epoch")
    if eval_data and evaluate is None:
        raise ValueError("eval_data was given without an evaluate function")
    train_data = tuple(train_data)
    n = len(train_data[0])
    history = History() if history is None else history
    every = int(record_steps) if record_steps is not True else 1
    if early_stopping is not None and early_stopping.params is None:
        params = getattr(step, "params", None)
        if params is not None:
            early_stopping.params = list(params)
    rng = np.random.default_rng(seed)
    n_batches = len(minibatch_indices(n, batch_size, shuffle=False, drop_last=drop_last))
    mode = progress if isinstance(progress, str) else ("auto" if progress else "none")
    bar = Progress(epochs * n_batches, description="training", mode=mode)
    start = time.monotonic()
    # Continuing a history continues its epoch and step numbers.
    first_epoch = int(history.last("epoch")) + 1 if history.epochs else 1
    global_step = int(history.last("step", "steps")) if history.steps else 0
    last_epoch = first_epoch + int(epochs) - 1
    stopped = None
    epoch = first_epoch - 1
    with bar:
        for epoch in range(first_epoch, last_epoch + 1):
            bar.set_description(f"epoch {epoch}/{last_epoch}")
            learning_rate = schedule.value if schedule is not None else None
            sums: dict[str, float] = {}
            seen = 0
            for batch in minibatches(*train_data, batch_size=batch_size, shuffle=shuffle,
                                     seed=rng, drop_last=drop_last):
                global_step += 1
                out = dict(step(*batch))
                size = len(batch[0])
                seen += size
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + (v if k == "nonfinite" else v * size)
                if every and global_step % every == 0:
                    lr = {} if schedule is None else {"learning_rate": schedule.value}
                    history.log_step(epoch=epoch, step=global_step, **lr, **out)
                if schedule is not None and schedule_unit == "step":
                    schedule.step()
                bar.update(loss=out.get("loss", math.nan))
                if stop_on_nonfinite and not math.isfinite(out.get("loss", 0.0)):
                    stopped = f"non-finite loss at epoch {epoch}, step {global_step}"
                    break
            record = {"epoch": epoch}
            record.update({f"train_{k}": v for k, v in _mean_records(sums, max(seen, 1)).items()})
            if stopped is None and evaluate is not None:
                for name, data in (eval_data or {}).items():
                    evaluated = {f"{name}_{k}": v for k, v in evaluate(*data).items()}
                    record.update(evaluated)
                    bar.update(0, **evaluated)
            if learning_rate is not None:
                record["learning_rate"] = learning_rate
            record["time"] = time.monotonic() - start
            history.log_epoch(**record)
            bar.end_epoch(**{k: v for k, v in record.items()
                             if k in ("train_loss", "valid_loss", "valid_accuracy")})
            if stopped is not None:
                break
            if schedule is not None and schedule_unit == "epoch":
                schedule.step(_metric(record, schedule.monitor) if schedule.monitor else None)
            if early_stopping is not None:
                if early_stopping.step(_metric(record, early_stopping.monitor), epoch):
                    stopped = (f"early stopping: no improvement of {early_stopping.monitor} "
                               f"for {early_stopping.patience} epochs")
            if callback is not None and callback(epoch, record):
                stopped = stopped or f"callback stopped training after epoch {epoch}"
            if stopped is not None:
                break
    history.meta["last_epoch"] = epoch
    history.meta["stopped"] = stopped
    if early_stopping is not None:
        history.meta["best_epoch"] = early_stopping.best_epoch
        if early_stopping.restore_best:
            early_stopping.restore()
    return history


def _metric(record: dict, name: str) -> float:
    try:
        return record[name]
    except KeyError:
        raise KeyError(
            f"the epoch record has no {name!r}; it has {sorted(record)} (evaluate a set "
            "named 'valid' to get valid_* metrics)"
        ) from None
