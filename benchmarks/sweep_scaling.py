"""How ``symopt sweep`` scales with workers on one machine, and what a run costs it.

    python benchmarks/sweep_scaling.py --out docs/results/sweep/scaling

1. *Warm-up* (not timed): each of the grid's graphs once (a learning rate and a seed per
   rule), so every graph is in PyTensor's disk cache and the timed sweeps measure
   training and cache loads, not cold compiles.
2. *Scaling*: the same grid (the 784-600-10 MLP on the embedded images, float32, four
   rules x three learning rates x five seeds, 100 steps: 60 runs) with 1 and 2 local
   workers, each into a fresh output directory. For each: the wall time of the runs (from
   the first submission to the last result; the cluster's start-up apart), the sum of the
   runs' own wall and CPU times as the workers measured them, and the load average. On a
   machine shared with other jobs the wall time depends on what they do; the CPU time a
   run needs does not, so the table gives both, and the workers' *CPU share* (their CPU
   time over workers x wall time: 1.0 when each worker had a core to itself).
3. *Overhead per run*: 200 one-step runs of the toy problem on 2 workers: the runs'
   wall time over 200, less what the runs themselves took. That is Dask's task
   round trip, the record's transfer and its fsync'ed append.

Writes ``scaling.md`` and ``scaling.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from symopt.lab.sweep import sweep

GRID = dict(problems=["mlp"], rules=["sgd", "momentum", "adam", "rmsprop"],
            learning_rates=[1e-3, 1e-2, 1e-1], seeds=[0, 1, 2, 3, 4], steps=100,
            dtype="float32")
WARM_UP = dict(GRID, learning_rates=[1e-2], seeds=[0])   # every graph once
OVERHEAD = dict(problems=["toy"], rules=["sgd"],
                learning_rates=[round(1e-3 * (1 + i), 6) for i in range(40)],
                seeds=[0, 1, 2, 3, 4], steps=1)


HEADER = ("| workers | runs | runs' wall time (s) | sum of run wall times (s) | "
          "sum of run CPU times (s) | CPU share | compiles (time) | cluster start (s) | "
          "load average before / after |\n|---|---|---|---|---|---|---|---|---|")


def _quiet(message):
    pass


def _measure(grid, workers, scratch):
    out = Path(tempfile.mkdtemp(dir=scratch))
    load_before = os.getloadavg()
    result = sweep(**grid, workers=workers, out=out, progress="none", report=False,
                   say=_quiet)
    records = result.records
    return {
        "workers": workers, "runs": len(records), "new": result.new,
        "cluster_start_s": round(result.timings["cluster_start"], 2),
        "runs_wall_s": round(result.timings["runs"], 2),
        "sum_run_wall_s": round(sum(r["wall_time"] for r in records), 2),
        "sum_run_cpu_s": round(sum(r["cpu_time"] for r in records), 2),
        "sum_compile_s": round(sum(r["compile_time"] for r in records), 2),
        "compiles": sum(1 for r in records if r["compiled"]),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/results/sweep/scaling")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed sweeps per worker count (the fastest is reported)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="sweep-scaling-")
    try:
        started = time.monotonic()
        _measure(WARM_UP, 2, scratch)                           # warm PyTensor's caches
        _measure(dict(OVERHEAD, learning_rates=[1.0], seeds=[0]), 1, scratch)
        scaling = {}
        for workers in (1, 2):
            runs = [_measure(GRID, workers, scratch) for _ in range(args.repeats)]
            scaling[workers] = min(runs, key=lambda m: m["runs_wall_s"])
            scaling[workers]["all_runs_wall_s"] = [m["runs_wall_s"] for m in runs]
        overhead = _measure(OVERHEAD, 2, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    one, two = scaling[1], scaling[2]
    for m in (one, two):
        m["cpu_share"] = round(m["sum_run_cpu_s"] / (m["workers"] * m["runs_wall_s"]), 2)
    speedup = one["runs_wall_s"] / two["runs_wall_s"]
    per_run = overhead["runs_wall_s"] / overhead["runs"]
    own = overhead["sum_run_wall_s"] / overhead["runs"]
    report = {"grid": GRID, "scaling": scaling, "speedup_wall": round(speedup, 2),
              "overhead": overhead, "overhead_per_run_ms": round(1000 * (per_run * 2 - own), 1),
              "wall_per_run_ms_2_workers": round(1000 * per_run, 1),
              "cpus": os.cpu_count(), "seconds": round(time.monotonic() - started, 1)}
    (out / "scaling.json").write_text(json.dumps(report, indent=1) + "\n")
    rows = "\n".join(
        f"| {m['workers']} | {m['runs']} | {m['runs_wall_s']} | {m['sum_run_wall_s']} | "
        f"{m['sum_run_cpu_s']} | {m['cpu_share']} | {m['compiles']} ({m['sum_compile_s']} s) | "
        f"{m['cluster_start_s']} | {m['load_before'][0]} / {m['load_after'][0]} |"
        for m in (one, two))
    text = f"""# Sweep scaling on this machine

`python benchmarks/sweep_scaling.py --out {args.out}` ({os.cpu_count()} cores, shared with
other jobs). The grid: the 784-600-10 MLP on the embedded images, float32, rules
{', '.join(GRID['rules'])}, learning rates {GRID['learning_rates']}, seeds
{GRID['seeds']}, {GRID['steps']} steps: {one['runs']} runs, with PyTensor's caches warm.

{HEADER}
{rows}

Speed-up from 1 to 2 workers, wall time of the runs: **{speedup:.2f}x** (2.0 is linear).
*CPU share*: the workers' CPU time over workers x wall time (1.0: each worker had a core
of its own).

Overhead per run (200 one-step runs of the toy problem on 2 workers): {1000 * per_run:.1f} ms
of wall time per run, of which the runs themselves took {1000 * own:.2f} ms: about
{1000 * (per_run * 2 - own):.0f} ms of worker time per run for Dask's round trip, the
record's transfer and its fsync'ed append.
"""
    (out / "scaling.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
