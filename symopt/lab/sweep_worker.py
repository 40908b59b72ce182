"""What runs on a sweep's workers: one training per call, compiled graphs kept per process.

:func:`run_config` trains one run (a config of :mod:`symopt.lab.sweep_grid`) and returns
its record. It is a plain module-level function, so Dask sends it to workers by name.

Compiling is the expensive part of a short run (seconds, against milliseconds for a
step), so each worker process keeps what it compiled: the problem's graph and
evaluation function per (problem, data, dtype, backend), and one training function per
rule and graph-shaping hyperparameters (:func:`symopt.lab.sweep_grid.graph_key`). The
numeric hyperparameters (learning rate, betas, momentum, ...) are shared variables of
that function, set before each run, so every learning rate and seed of a rule reuses
one compiled function: a worker compiles each distinct graph once, whatever the size of
the grid. Before each run the parameters, the rule's state (moments, step counters) and
the problem's seeded values are reset to their starting values.

A worker with several threads may run two trainings of one problem at once; each holds
its own *slot* (a copy of the problem's graph and functions) while it runs, and a second
slot is built only when all others are busy. With one thread per worker, as
:func:`symopt.lab.sweep.sweep` starts its local workers, there is one slot per problem.

Compiled code is also cached on disk by PyTensor, under ``pytensor.config.compiledir``
(in ``~/.pytensor`` by default, one directory per user, platform and Python), which
worker processes of one user on one machine share: the C backend compiles modules under
PyTensor's file lock, and Numba's cache writes each entry to a temporary file that it
renames into place, so concurrent compiles are safe and a graph compiled by one worker
loads quickly in the others.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytensor

from symopt.lab.sweep_grid import graph_key
from symopt.lab.sweep_problems import ProblemBuildError, build_problem

__all__ = ["COMPILES", "ProblemBuildError", "clear_cache", "run_config", "worker_info"]

#: Compiled functions made in this process, by graph key (training) or
#: ``("evaluation", problem key)``: a training graph compiled more than once per process
#: (with one thread) would show here.
COMPILES = Counter()

_SLOTS = {}
_SLOTS_LOCK = threading.Lock()

# significant digits kept in a record's curves (final and best losses keep all of theirs)
_CURVE_DIGITS = 7


@dataclass
class _Trainer:
    """One rule's compiled training function on a slot's problem."""

    function: object
    hyper: dict            # name -> shared variable holding the hyperparameter
    state: list            # (shared variable, starting value) of the rule's state


@dataclass
class _Slot:
    """A problem built in this process, with its compiled functions."""

    problem: object
    backend: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    trainers: dict = field(default_factory=dict)
    evaluate: object = None
    start: list = field(default_factory=list)


def clear_cache():
    """Forget every compiled function of this process (for tests)."""
    with _SLOTS_LOCK:
        _SLOTS.clear()
        COMPILES.clear()


def worker_info():
    """Where a run ran: host, process and PyTensor's compile directory."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "compiledir": str(pytensor.config.compiledir)}


def _mode(backend):
    from symopt.lab.problems import MODES

    return MODES[backend]


def _acquire_slot(config):
    key = (config["problem"], config.get("data"), config["dtype"], config["backend"])
    with _SLOTS_LOCK:
        for slot in _SLOTS.get(key, []):
            if slot.lock.acquire(blocking=False):
                return slot
    problem = build_problem(config["problem"], config["dtype"], config.get("data", "embedded"))
    slot = _Slot(problem, config["backend"])
    slot.start = [(p, p.get_value(borrow=False)) for p in problem.params]
    slot.lock.acquire()
    with _SLOTS_LOCK:
        _SLOTS.setdefault(key, []).append(slot)
    return slot


def _hyperparameter_arguments(hyper, dtype):
    """Shared variables for the numeric hyperparameters; literals for zeros and the rest."""
    shared, kwargs = {}, {}
    for name, value in hyper.items():
        if isinstance(value, float) and value != 0:
            shared[name] = kwargs[name] = pytensor.shared(np.asarray(value, dtype=dtype),
                                                          name=f"sweep.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return shared, kwargs


def _trainer(slot, config):
    """The slot's compiled training function for this config's graph, compiled if new."""
    key = graph_key(config)
    if key in slot.trainers:
        return slot.trainers[key], False
    from symopt.lab.forms import FORMS

    problem = slot.problem
    shared, kwargs = _hyperparameter_arguments(config["hyperparameters"], config["dtype"])
    lr = kwargs.pop("learning_rate")
    updates = FORMS[config["rule"]].make(problem.cost_at, problem.params, lr, **kwargs)
    function = pytensor.function(problem.inputs, problem.loss, updates=updates,
                                 mode=_mode(config["backend"]))
    params = set(problem.params)
    state = [(var, var.get_value(borrow=False)) for var, _ in updates if var not in params]
    # Numba compiles at the first call: make it now (every run resets what it changed)
    function(*(next(iter(problem.batches(0, 1))) if problem.inputs else ()))
    trainer = slot.trainers[key] = _Trainer(function, shared, state)
    COMPILES[key] += 1
    return trainer, True


def _evaluator(slot, config):
    if slot.evaluate is None:
        problem = slot.problem
        outputs = [problem.loss, *problem.metrics.values()]
        slot.evaluate = pytensor.function(problem.inputs, outputs, mode=_mode(slot.backend))
        if problem.evaluation:
            slot.evaluate(*(a[:2] for a in next(iter(problem.evaluation.values()))))
        elif not problem.inputs:
            slot.evaluate()
        COMPILES[("evaluation", config["problem"], config.get("data"), config["dtype"],
                  config["backend"])] += 1
    return slot.evaluate


def _evaluate_set(function, arrays, chunk):
    """Mean of ``function``'s outputs over a data set, in chunks of rows."""
    n = len(arrays[0])
    if not chunk or n <= chunk:
        return [float(v) for v in function(*arrays)]
    totals = None
    for first in range(0, n, chunk):
        part = [a[first:first + chunk] for a in arrays]
        values = np.array([float(v) for v in function(*part)]) * len(part[0])
        totals = values if totals is None else totals + values
    return list(totals / n)


def _evaluate(slot, config):
    """``(final loss, what it was measured on, metrics by "<set>_<name>")``."""
    problem = slot.problem
    if not problem.evaluation:
        if problem.inputs:
            return None, "last steps", {}
        loss, *metrics = [float(v) for v in _evaluator(slot, config)()]
        return loss, "final params", dict(zip(problem.metrics, metrics))
    function = _evaluator(slot, config)
    final, on, measured = None, None, {}
    for set_name, arrays in problem.evaluation.items():
        loss, *metrics = _evaluate_set(function, list(arrays), problem.evaluation_chunk)
        if final is None:
            final, on = loss, f"{set_name} set"
        measured[f"{set_name}_loss"] = loss
        measured.update({f"{set_name}_{m}": v for m, v in zip(problem.metrics, metrics)})
    return final, on, measured


def _finite(value):
    return value is not None and math.isfinite(value)


def _round(value):
    return float(f"{value:.{_CURVE_DIGITS}g}") if _finite(value) else None


def _thin(losses, every, deterministic):
    """Every ``every``-th loss (deterministic problems) or the mean of each window of
    ``every`` steps (mini-batch losses, which are noisy)."""
    if every <= 1:
        return {"step": list(range(len(losses))), "loss": [_round(v) for v in losses],
                "kind": "per step"}
    if deterministic:
        steps = list(range(0, len(losses), every))
        return {"step": steps, "loss": [_round(losses[s]) for s in steps], "kind": "sampled"}
    steps, values = [], []
    for first in range(0, len(losses), every):
        window = losses[first:first + every]
        steps.append(first + len(window) - 1)
        values.append(_round(float(np.mean(window))))
    return {"step": steps, "loss": values, "kind": f"mean of {every} steps"}


def run_config(config, curve_every=1):
    """Train one run and return its record (without its key: the client adds that).

    A run that diverges (a non-finite loss, or one above ``divergence_factor`` times the
    first step's loss over the first loss) stops there and is recorded with
    ``diverged=True``: a result, not an error. A problem that cannot be built raises
    :class:`symopt.lab.sweep_problems.ProblemBuildError`.
    """
    slot = _acquire_slot(config)
    try:
        return _run(slot, config, max(int(curve_every), 1))
    finally:
        slot.lock.release()


def _run(slot, config, curve_every):
    problem, dtype = slot.problem, config["dtype"]
    compile_start = time.perf_counter()
    trainer, compiled = _trainer(slot, config)
    if problem.evaluation or not problem.inputs:
        _evaluator(slot, config)
    compile_time = time.perf_counter() - compile_start

    for var, value in slot.start + trainer.state:
        var.set_value(value.copy())
    for var, value in problem.start_values(config["seed"]).items():
        var.set_value(np.asarray(value, dtype=var.dtype).copy())
    for name, var in trainer.hyper.items():
        var.set_value(np.asarray(config["hyperparameters"][name], dtype=dtype))

    steps, factor = config["steps"], config["divergence_factor"]
    eval_every = config["eval_every"]
    batches = (problem.batches(config["seed"], steps) if problem.inputs
               else (() for _ in range(steps)))
    losses, evaluations, diverged_at, threshold = [], [], None, math.inf
    wall, cpu = time.perf_counter(), time.process_time()
    for step, batch in enumerate(batches):
        loss = float(trainer.function(*batch))
        losses.append(loss)
        if step == 0 and math.isfinite(loss):
            threshold = (loss + factor * abs(loss)) if factor is not None and loss != 0 \
                else math.inf
        if not math.isfinite(loss) or loss > threshold:
            diverged_at = step
            break
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            evaluations.append((step + 1, _evaluate(slot, config)[0]))
    if len(losses) < steps and diverged_at is None:
        raise ValueError(f"problem {config['problem']!r} gave {len(losses)} batches for "
                         f"{steps} steps")
    final, final_on, metrics = (None, None, {}) if diverged_at is not None \
        else _evaluate(slot, config)
    if diverged_at is None and final is None:          # mini-batches, no evaluation sets
        tail = losses[-max(1, steps // 10):]
        final = float(np.mean(tail))
    if diverged_at is None and (not _finite(final) or final > threshold):
        diverged_at = steps
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu

    diverged = diverged_at is not None
    if diverged:
        final = None
    if evaluations or problem.evaluation or problem.inputs:
        seen = [v for _, v in evaluations] + ([final] if final is not None else [])
    else:
        seen = losses + ([final] if final is not None else [])
    finite_seen = [v for v in seen if _finite(v)]
    record = {
        "config": config,
        "diverged": diverged,
        "diverged_at": diverged_at,
        "initial_loss": _round(losses[0]) if losses else None,
        "final_loss": final,
        "final_loss_on": final_on or ("last steps" if final is not None else None),
        "best_loss": min(finite_seen) if finite_seen else None,
        "metrics": {k: (v if _finite(v) else None) for k, v in metrics.items()},
        "curve": _thin(losses, curve_every, not problem.inputs),
        "wall_time": round(wall, 6),
        "cpu_time": round(cpu, 6),
        "compile_time": round(compile_time, 6),
        "compiled": compiled,
        "worker": worker_info(),
    }
    if evaluations:
        record["evaluations"] = {"step": [s for s, _ in evaluations],
                                 "loss": [_round(v) for _, v in evaluations]}
    return record

