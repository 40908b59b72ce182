"""Optimizer sweeps on Dask: rules x learning rates (and any hyperparameter) x seeds x
problems, on one machine or a cluster, with results that survive interruptions.

:func:`sweep` is the Python entry point; ``symopt sweep`` (:mod:`symopt.lab.cli`) the
console command, with the same arguments::

    symopt sweep --problem quadratic --rules sgd,adam --learning-rates 0.01,0.1 \\
                 --seeds 0,1 --steps 50 --workers 2 --out results/sweep
    symopt sweep ... --scheduler tcp://host:8786 --out results/sweep

How it works, and what it promises:

- **Dask distributed runs it.** Without a scheduler address the sweep starts a
  ``LocalCluster`` of worker processes (one thread each: PyTensor's functions are not
  shared between threads, and BLAS gets one thread per process); with one it connects
  to that cluster, whose workers must be able to import symopt (and any user problem).
  Each run is one task (:func:`symopt.lab.sweep_worker.run_config`), retried once if it
  raises (``retries``); a task whose worker dies is re-run on another worker by the
  scheduler.
- **Each worker compiles each graph once.** A run's graph depends on the problem, the
  rule, the dtype and the backend; learning rates and the other numeric hyperparameters
  are shared variables set per run (:mod:`symopt.lab.sweep_worker`). Runs are submitted
  with different graphs first (:func:`interleave_graphs`), so that a graph is compiled
  cold on one worker and loaded from PyTensor's disk cache by the others.
- **Results survive.** Each finished run is appended by this (the client) process to
  ``results.jsonl`` in ``out`` as one JSON line, fsync'ed, keyed by its config
  (:mod:`symopt.lab.sweep_log`). Running the same command again runs only what is not
  there: an interrupted sweep resumes, a grown grid adds only its new points, and no run
  is recorded twice.
- **Failures stay small.** A run whose loss becomes non-finite or grows past
  ``divergence_factor`` times its first loss is recorded as diverged, a result like any
  other. A run that raises is listed in ``failures.jsonl`` and the sweep goes on (it is
  tried again by the next invocation). A problem that cannot be built stops the sweep
  before any run starts, with one message; if it builds on the client but not on the
  workers, its runs are cancelled and the cause is reported once.
- **What to look at**: ``summary.md`` and ``summary.csv`` (best learning rate per rule,
  median and spread over seeds), ``learning_rates_<problem>.png``,
  ``curves_<problem>.png`` and, over two or more problems, ``profile.png``
  (:mod:`symopt.lab.sweep_report`); ``sweep.json`` records the grid, the command, the
  cluster and the versions.

On a cluster: start a scheduler (``dask scheduler``) and workers (``dask worker
tcp://host:8786 --nthreads 1`` on each machine, as many as it has cores), or let
``dask-jobqueue`` submit them to a batch system (``SLURMCluster(cores=1, processes=1,
memory="2GB").scale(jobs=32)``, then pass its ``scheduler_address``). Workers on one
machine share PyTensor's compile cache; machines that share a home directory on a
network disk share it too.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import math
import os
import sys
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from symopt.lab.sweep_grid import (
    SweepSpecError,
    check_rule_settings,
    config_key,
    default_learning_rate,
    expand_grid,
    graph_key,
)
from symopt.lab.sweep_log import ResultsLog, write_json_atomic
from symopt.lab.sweep_problems import ProblemBuildError, build_problem

__all__ = ["ProblemBuildError", "SweepResult", "SweepSpecError", "default_workers",
           "interleave_graphs", "sweep"]

#: Most curve points a record keeps (longer runs average or sample their steps).
CURVE_POINTS = 200


def default_workers():
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass
class SweepResult:
    """What a sweep did.

    ``records`` are the grid's runs that are in the results file (done now or before),
    ``new`` and ``skipped`` count the runs done by this call and those found done,
    ``failures`` the runs that raised (with their error), ``paths`` the files written,
    ``timings`` the seconds spent starting the cluster (from the call), running the
    runs (first submission to last result) and writing the report.
    """

    out: Path
    records: list
    new: int = 0
    skipped: int = 0
    failures: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)
    seconds: float = 0.0
    cluster: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def ok(self):
        """True when every run of the grid is recorded."""
        return not self.failures

    @property
    def diverged(self):
        return sum(1 for r in self.records if r.get("diverged"))


class _Progress:
    """Runs done / total, diverged and failed runs, elapsed time and ETA.

    ``"tqdm"`` draws a bar (when tqdm is installed); ``"lines"`` writes a plain line at
    most every ``interval`` seconds, for logs; ``"auto"`` is tqdm on a terminal, lines
    otherwise; ``"none"`` is silent.
    """

    def __init__(self, total, mode="auto", stream=None, interval=10.0):
        self.total, self.stream, self.interval = total, stream or sys.stderr, interval
        self.done = self.diverged = self.failed = 0
        self.start = self._last = time.monotonic()
        self.bar = None
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "tqdm" if isatty and isatty() else "lines"
        if mode == "tqdm":
            try:
                from tqdm.auto import tqdm
            except ImportError:
                mode = "lines"
            else:
                self.bar = tqdm(total=total, desc="sweep", unit="run", file=self.stream,
                                dynamic_ncols=True)
        if mode not in ("tqdm", "lines", "none"):
            raise SweepSpecError(f"--progress must be auto, tqdm, lines or none, got {mode!r}")
        self.mode = mode

    def line(self):
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else math.nan
        return (f"sweep: {self.done}/{self.total} runs ({self.done / max(self.total, 1):.0%}), "
                f"{self.diverged} diverged, {self.failed} failed, {_clock(elapsed)} elapsed, "
                f"ETA {_clock(eta)}")

    def update(self, diverged=False, failed=False):
        self.done += 1
        self.diverged += bool(diverged)
        self.failed += bool(failed)
        if self.bar is not None:
            self.bar.set_postfix(diverged=self.diverged, failed=self.failed, refresh=False)
            self.bar.update(1)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last >= self.interval or self.done in (1, self.total):
                self._last = now
                print(self.line(), file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _clock(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _say(message):
    print(message, file=sys.stderr, flush=True)


def _check_problems(problems, dtype, data):
    """Build each problem once here, before any run: a problem that fails says so once."""
    for spec in problems:
        build_problem(spec, dtype, data)


def _start_client(workers, threads_per_worker, scheduler):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    # silence_logs: a worker's slow exit after PyTensor, killed by its nanny, is no news;
    # nor is the scheduler's HTTP server taking another port when 8787 is busy
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _cluster_info(client):
    from symopt.lab.sweep_worker import worker_info

    workers = client.run(worker_info)
    compiledirs = sorted({w["compiledir"] for w in workers.values()})
    hosts = sorted({w["host"] for w in workers.values()})
    return {"scheduler": client.scheduler.address, "workers": workers, "hosts": hosts,
            "compiledirs": compiledirs}


def _failure(config, key, error):
    return {"key": key, "config": config, "error": f"{type(error).__name__}: {error}",
            "error_type": type(error).__name__,
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _append_failure(directory, failure):
    import json

    path = Path(directory) / "failures.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(failure, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def interleave_graphs(configs):
    """The runs in an order that starts different graphs first: one run of each graph in
    turn (round-robin), each graph's runs in their own order.

    Workers take tasks in about the order they are submitted. Grouped by graph, two idle
    workers would both compile the first graph at once, cold; interleaved, each cold
    compile happens on one worker while the others compile other graphs, and the later
    compiles of the same graph on other workers load PyTensor's disk cache (a second or
    so, against tens of seconds cold).
    """
    groups = {}
    for config in configs:
        groups.setdefault(graph_key(config), []).append(config)
    ordered = []
    for turn in itertools.zip_longest(*groups.values()):
        ordered += [c for c in turn if c is not None]
    return ordered


def _run_on_cluster(client, todo, curve_every, retries, log, progress, say):
    """Submit every run, record each as it finishes; return the failures."""
    from dask.distributed import as_completed

    from symopt.lab.sweep_worker import run_config

    nonce = uuid.uuid4().hex[:8]
    futures = {}
    for config in interleave_graphs(todo):
        key = config_key(config)
        future = client.submit(run_config, config, curve_every, key=f"symopt-run-{key}-{nonce}",
                               pure=False, retries=retries)
        futures[future] = (key, config)
    failures, broken = [], {}
    try:
        for future in as_completed(list(futures)):
            key, config = futures.pop(future)
            if future.status == "finished":
                record = future.result()
                record["key"] = key
                record["finished_at"] = datetime.datetime.now(
                    datetime.timezone.utc).isoformat(timespec="seconds")
                log.append(record)
                progress.update(diverged=record["diverged"])
            else:
                if future.status == "cancelled":
                    problem = config["problem"]
                    error = ProblemBuildError(f"not run: {broken.get(problem, 'cancelled')}")
                else:
                    error = future.exception()
                failure = _failure(config, key, error)
                failures.append(failure)
                _append_failure(log.directory, failure)
                progress.update(failed=True)
                if isinstance(error, ProblemBuildError) and future.status != "cancelled":
                    problem = config["problem"]
                    if problem not in broken:
                        broken[problem] = str(error)
                        say(f"sweep: {error} (on a worker); its other runs are cancelled")
                        client.cancel([f for f, (_, c) in futures.items()
                                       if c["problem"] == problem])
            future.release()
    except BaseException:
        client.cancel(list(futures))
        raise
    return failures


def sweep(problems, rules, learning_rates=("default",), grid=None, seeds=(0,), *,
          steps=100, dtype="float64", backend="numba", data="embedded", out="results/sweep",
          workers=None, threads_per_worker=1, scheduler=None, client=None, retries=1,
          divergence_factor=1e4, eval_every=0, curve_every=None, progress="auto",
          report=True, command=None, dry_run=False, say=_say):
    """Run a grid of trainings on Dask and write its results, summary and figures.

    Parameters
    ----------
    problems : list of str
        Lab problems (``toy``, ``quadratic``, ``rosenbrock``, ``logistic``, ``mlp``,
        ``quadratic_deep``) or user problems ``package.module:function`` (see
        :mod:`symopt.lab.sweep_problems` for the function's contract).
    rules : list of str
        Names in :data:`symopt.RULES` or :data:`symopt.lab.forms.FORMS`; ``"all"`` for
        every library rule, ``"forms"`` for every form.
    learning_rates : list of float or "default"
        ``"default"`` is each rule's own default.
    grid : dict of str to list, optional
        Other hyperparameters and their values, e.g. ``{"beta2": [0.99, 0.999]}``; each
        applies to the rules that have it.
    seeds : list of int
    steps : int
        Training steps (mini-batches, for problems with data) per run.
    dtype : {"float64", "float32"}
    backend : {"numba", "c", "default"}
        PyTensor's backend: Numba, the C virtual machine, or PyTensor's default mode.
    data : str
        For the image problems: ``"embedded"`` (the Fashion-MNIST subset shipped with
        symopt), ``"full"`` (the full Fashion-MNIST when installed) or a directory.
    out : path
        Output directory: ``results.jsonl``, ``failures.jsonl``, ``sweep.json``,
        ``summary.md``/``.csv``, figures.
    workers, threads_per_worker : int
        The local cluster's worker processes (default: one per core) and their threads.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) instead.
    client : dask.distributed.Client, optional
        An existing client (a notebook's, a test's) instead of either.
    retries : int, default 1
        Times a run that raised is retried.
    divergence_factor : float, default 1e4
        A run diverges when its loss exceeds its first loss plus this factor times its
        absolute value (or is not finite); ``inf`` keeps only the non-finite test.
    eval_every : int, default 0
        Also evaluate the loss on the problem's evaluation set every this many steps (for
        problems with data; 0: only at the end). Part of a run's config.
    curve_every : int, optional
        Keep every n-th step of the loss curve (the mean of each n steps for mini-batch
        losses); by default so that a curve has at most 200 points.
    progress : {"auto", "tqdm", "lines", "none"}
    report : bool, default True
        Write the summary and figures.
    command : str, optional
        The command line, recorded in ``sweep.json`` and ``summary.md``.
    dry_run : bool, default False
        Expand and check the grid, report what would run, run nothing.
    say : callable
        Where status messages go (stderr by default).

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepSpecError
        For a bad grid (an unknown rule, a hyperparameter no rule has, a value a rule
        rejects), before anything runs.
    ProblemBuildError
        When a problem does not build here, before anything runs.
    SweepLockedError
        When another sweep is writing to ``out``.

    Notes
    -----
    The local cluster's workers are started with ``spawn``, which imports the calling
    script again in each worker: a script that calls :func:`sweep` must do so under
    ``if __name__ == "__main__":`` (the ``symopt`` command does).

    Examples
    --------
    >>> import tempfile
    >>> result = sweep(["toy"], ["sgd"], [0.01], seeds=[0], steps=5, dry_run=True,
    ...                out=tempfile.mkdtemp(), say=lambda message: None)
    >>> result.new, len(result.records), result.cluster
    (0, 0, {'dry_run': 1})
    """
    started = time.monotonic()
    if scheduler and client is not None:
        raise SweepSpecError("give a scheduler address or a client, not both")
    if scheduler and workers is not None:
        raise SweepSpecError("--workers starts a local cluster; with --scheduler the "
                             "cluster's own workers run the sweep")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise SweepSpecError(f"--workers must be a whole number >= 1, got {workers!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SweepSpecError(f"--retries must be a whole number >= 0, got {retries!r}")
    configs = expand_grid(list(problems), list(rules), learning_rates, grid, seeds,
                          steps=steps, dtype=dtype, backend=backend, data=data,
                          divergence_factor=divergence_factor, eval_every=eval_every)
    check_rule_settings(configs, dtype)
    _check_problems(list(dict.fromkeys(problems)), dtype, data)
    curve_every = curve_every or max(1, math.ceil(steps / CURVE_POINTS))
    keys = [config_key(c) for c in configs]
    out = Path(out)

    with ResultsLog(out) as log:
        todo = [c for c, k in zip(configs, keys) if k not in log]
        skipped = len(configs) - len(todo)
        say(f"sweep: {len(configs)} runs in the grid, {skipped} already in "
            f"{log.path}, {len(todo)} to run")
        cluster_info, failures, timings = {}, [], {}
        if dry_run:
            cluster_info = {"dry_run": len(todo)}
        elif todo:
            own_client = client is None
            cluster = None
            if own_client:
                n = workers or default_workers()
                say(f"sweep: connecting to {scheduler}" if scheduler else
                    f"sweep: starting a local Dask cluster of {n} worker processes")
                client, cluster = _start_client(n, threads_per_worker, scheduler)
            timings["cluster_start"] = time.monotonic() - started
            bar = _Progress(len(todo), progress)
            try:
                cluster_info = _cluster_info(client)
                runs_started = time.monotonic()
                failures = _run_on_cluster(client, todo, curve_every, retries, log, bar, say)
                timings["runs"] = time.monotonic() - runs_started
            except KeyboardInterrupt:
                bar.close()
                say(f"sweep: interrupted; {len(log.records)} runs are safe in {log.path}; "
                    "the same command resumes")
                raise
            finally:
                bar.close()
                if own_client:
                    client.close()
                    if cluster is not None:
                        cluster.close()
        grid_records = [log.records[k] for k in keys if k in log.records]
        new = sum(1 for c, k in zip(configs, keys) if k in log.records) - skipped

    result = SweepResult(out, grid_records, new=max(new, 0), skipped=skipped,
                         failures=failures, seconds=time.monotonic() - started,
                         cluster=cluster_info, timings=timings)
    if dry_run:
        return result
    defaults = {}
    for rule in dict.fromkeys(c["rule"] for c in configs):
        try:
            defaults[rule] = default_learning_rate(rule)
        except SweepSpecError:
            pass
    if report:
        from symopt.lab.sweep_report import write_report

        report_started = time.monotonic()
        result.paths.update(write_report(grid_records, out, defaults=defaults,
                                         command=command))
        timings["report"] = time.monotonic() - report_started
    meta = {
        "command": command,
        "grid": {"problems": list(problems), "rules": list(dict.fromkeys(c["rule"]
                                                                          for c in configs)),
                 "learning_rates": [lr if lr == "default" else float(lr)
                                    for lr in learning_rates],
                 "grid": dict(grid or {}), "seeds": list(seeds), "steps": steps,
                 "dtype": dtype, "backend": backend, "data": data,
                 "divergence_factor": (divergence_factor if math.isfinite(divergence_factor)
                                       else None),
                 "eval_every": eval_every},
        "runs": len(configs), "new": result.new, "skipped": skipped,
        "failures": len(failures), "seconds": round(result.seconds, 3),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "cluster": cluster_info, "keys": keys,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    from symopt.lab.curves import environment_metadata

    meta["versions"] = environment_metadata()
    result.paths["sweep.json"] = write_json_atomic(out / "sweep.json", meta)
    counts = Counter(f["error"] for f in failures)
    for message, n in counts.items():
        say(f"sweep: {n} run(s) failed: {message}")
    say(f"sweep: {len(grid_records)}/{len(configs)} runs recorded ({result.new} new, "
        f"{skipped} from before, {result.diverged} diverged, {len(failures)} failed) in "
        f"{result.seconds:.1f} s; results in {out / 'results.jsonl'}")
    return result
