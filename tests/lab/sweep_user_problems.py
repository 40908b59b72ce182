"""User problems for the sweep tests, imported by name on the Dask workers
(``--problem tests.lab.sweep_user_problems:<function>``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt

from symopt.lab.sweep_problems import SweepProblem

#: The file whose absence makes :func:`dies_once` kill its worker (once).
DIE_ONCE = "SYMOPT_TEST_DIE_ONCE"


def small_quadratic(dtype="float64"):
    """A deterministic (loss, params) pair: 0.5 * sum(k * (w - 1)^2), k = 1..4."""
    w = pytensor.shared(np.zeros(4, dtype=dtype), name="w")
    k = np.arange(1.0, 5.0).astype(dtype)
    return 0.5 * pt.sum(k * (w - 1) ** 2), [w]


def dies_once(dtype="float64"):
    """The small quadratic, seeded: a run with seed 1 kills its worker process the first
    time (when the file named by ``$SYMOPT_TEST_DIE_ONCE`` does not exist yet)."""
    loss, [w] = small_quadratic(dtype)

    def start(seed):
        marker = os.environ.get(DIE_ONCE)
        if seed == 1 and marker and not Path(marker).exists():
            Path(marker).write_text(str(os.getpid()))
            os._exit(1)          # the worker dies mid-run, as a machine would
        return {w: np.full(4, float(seed), dtype=dtype)}

    return SweepProblem(loss, [w], start=start, name="dies_once")


def broken(dtype="float64"):
    """A problem whose function fails."""
    raise RuntimeError("this problem is broken on purpose")


def fails_on_workers(dtype="float64"):
    """Builds on the client, fails on a Dask worker (as a module missing there would)."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return small_quadratic(dtype)
    raise RuntimeError("no data on this worker")
