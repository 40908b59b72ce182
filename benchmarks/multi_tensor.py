"""Many parameter tensors: the fused multi-tensor path against the per-tensor path.

One rule (Adam, float32) over ``k`` tensors of ``size`` elements, its gradients given as
inputs of the compiled function, against the same number of elements as one vector;
torch.optim's Adam over the same tensors (foreach and fused, 1 and 2 threads) and
optax's (one jitted step, donated buffers; its first call is the compile) when they are
installed. For each configuration one worker process measures:

- the cold compile: compiling and the first call (when Numba compiles) in a fresh
  PyTensor compile directory, and the process's peak resident memory;
- the warm compile: the same in a second process, with that directory filled;
- the step: min and median over repeats.

``--big`` sizes (default 1e6, 4e6, 1e7) add one tensor of that size with the fused
loop of each backend on 1 and 2 threads (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``;
tensors of 2**19 elements or more use a parallel loop) against torch.optim's fused Adam
on 1 and 2 threads. ``--vector-fused`` adds the one vector on the fused path, the fair
baseline for the C backend, whose fused loop is faster than PyTensor's own.

It also times a function with the same ``k`` gradient inputs that does nothing with them,
the cost of passing ``k`` arrays to a compiled PyTensor function, which every
``k``-tensor step here pays and a training function (whose gradients are computed
inside) does not.

    python benchmarks/multi_tensor.py                  # k = 100 and 300, ~15 minutes
    python benchmarks/multi_tensor.py --tensors 100 --per-tensor --big
    python benchmarks/multi_tensor.py --quick

``--per-tensor`` adds the per-tensor path's cold compiles: minutes each (the issue
measured about 200 s in C and 5 minutes with Numba for 100 tensors), so it is off by
default: the per-tensor path is then measured for k <= 100 only, in the shared compile
directory (its "warm" row is cold the first time it runs on a machine).
Results: ``benchmarks/results/multi_tensor.{json,md}`` (``--name`` changes the stem).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    emit,
    machine,
    optax_stepper,
    parse_results,
    peak_rss_mib,
    pin_threads,
    thread_env,
    time_calls,
    versions,
)

MODES = {"numba": "NUMBA", "c": "CVM"}


# --------------------------------------------------------------------------- workers

def pytensor_worker(args):
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    import symopt

    rng = np.random.default_rng(0)
    k, size = args.k, args.size
    if args.layout in ("vector", "vector-fused"):  # the same elements as one tensor
        k, size = 1, args.k * args.size
    params = [pytensor.shared(rng.normal(size=size).astype("float32"), name=f"p{i}")
              for i in range(k)]
    grads = [pt.tensor(f"g{i}", dtype="float32", shape=(size,)) for i in range(k)]
    values = [rng.normal(size=size).astype("float32") for _ in range(k)]
    start = time.perf_counter()
    if args.layout == "inputs-only":  # the price of passing k arrays, nothing else
        fn = pytensor.function(grads, grads[0][0], mode=MODES[args.backend],
                               on_unused_input="ignore")
    else:
        updates = symopt.adam(grads, params, learning_rate=1e-3,
                              fuse=args.layout in ("fused", "vector-fused"))
        fn = pytensor.function(grads, [], updates=updates, mode=MODES[args.backend])
    fn(*values)  # Numba compiles at the first call
    compile_seconds = time.perf_counter() - start
    nodes = len(fn.maker.fgraph.apply_nodes)
    times = time_calls(lambda: fn(*values), repeats=args.repeats)
    emit({"framework": "symopt", "backend": args.backend, "layout": args.layout,
          "k": args.k, "size": args.size, "compile_s": compile_seconds,
          "peak_rss_mib": peak_rss_mib(), "nodes": nodes, **times})


def torch_worker(args):
    import torch

    threads = pin_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    params = [torch.randn(args.size, requires_grad=True) for _ in range(args.k)]
    for p in params:
        p.grad = torch.randn(args.size)
    kind = args.layout
    opt = torch.optim.Adam(params, lr=1e-3, foreach=kind == "foreach", fused=kind == "fused")
    start = time.perf_counter()
    opt.step()
    first = time.perf_counter() - start
    times = time_calls(opt.step, repeats=args.repeats)
    emit({"framework": "torch", "backend": kind, "layout": kind, "threads": threads,
          "k": args.k, "size": args.size, "compile_s": first,
          "peak_rss_mib": peak_rss_mib(), **times})


def jax_worker(args):
    """optax.adam over the k tensors, one jitted step with donated buffers; its first call
    (tracing and XLA's compile) is the compile time, as in the MLP benchmark."""
    threads = pin_threads()
    import jax.numpy as jnp
    import numpy as np
    import optax

    rng = np.random.default_rng(0)
    params = [jnp.asarray(rng.normal(size=args.size).astype("float32")) for _ in range(args.k)]
    grads = [jnp.asarray(rng.normal(size=args.size).astype("float32")) for _ in range(args.k)]
    call, sync, first = optax_stepper(optax.adam(1e-3), params, grads)
    times = time_calls(call, repeats=args.repeats, sync=sync)
    emit({"framework": "jax", "backend": "optax", "layout": "jit", "threads": threads,
          "k": args.k, "size": args.size, "compile_s": first,
          "peak_rss_mib": peak_rss_mib(), **times})


# --------------------------------------------------------------------------- driver

def run_worker(argv, env):
    out = subprocess.run([sys.executable, __file__, "--worker", *argv], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    results = parse_results(out.stdout)
    return results[0] if results else None


def measure_pytensor(backend, layout, k, size, repeats, cold, compiledir=None, threads=1):
    env = thread_env(threads)
    flags = [env.get("PYTENSOR_FLAGS", "")]
    rows = []
    with tempfile.TemporaryDirectory() as fresh:
        base = fresh if cold else compiledir
        if base:
            flags.append(f"base_compiledir={base}")
        env["PYTENSOR_FLAGS"] = ",".join(f for f in flags if f)
        argv = ["--backend", backend, "--layout", layout, "--k", str(k), "--size", str(size),
                "--repeats", str(repeats)]
        for phase in ("cold", "warm") if cold else ("warm",):
            row = run_worker(argv, env)
            if row:
                row["phase"], row["threads"] = phase, threads
                rows.append(row)
                print(f"  {backend:5s} {layout:11s} k={k:3d} {threads}T {phase}: compile "
                      f"{row['compile_s']:7.2f} s, step {row['min'] * 1e3:7.3f} ms, "
                      f"peak {row['peak_rss_mib']:.0f} MiB", flush=True)
    return rows


def measure_torch(k, size, repeats, kinds=("foreach", "fused")):
    rows = []
    for kind in kinds:
        for threads in (1, 2):
            row = run_worker(["--framework", "torch", "--layout", kind, "--k", str(k),
                              "--size", str(size), "--repeats", str(repeats)],
                             thread_env(threads))
            if row:
                rows.append(row)
                print(f"  torch {kind:7s} {threads} thread(s) k={k}: step "
                      f"{row['min'] * 1e3:.3f} ms", flush=True)
    return rows


def measure_jax(k, size, repeats):
    rows = []
    for threads in (1, 2):
        row = run_worker(["--framework", "jax", "--k", str(k), "--size", str(size),
                          "--repeats", str(repeats)], thread_env(threads))
        if row:
            rows.append(row)
            print(f"  jax   optax   {threads} thread(s) k={k}: first call "
                  f"{row['compile_s']:.2f} s, step {row['min'] * 1e3:.3f} ms", flush=True)
    return rows


def table(rows):
    lines = ["| framework | backend | layout | threads | k x size | phase | compile s | "
             "peak MiB | step min ms | step median ms |", "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['framework']} | {r['backend']} | {r['layout']} | {r.get('threads', 1)} | "
            f"{r['k']} x {r['size']} | {r.get('phase', '')} | {r['compile_s']:.2f} | "
            f"{r['peak_rss_mib']:.0f} | {r['min'] * 1e3:.3f} | {r['median'] * 1e3:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--framework", default="symopt", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="numba", help=argparse.SUPPRESS)
    parser.add_argument("--layout", default="fused", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--tensors", type=int, nargs="*", default=[100, 300])
    parser.add_argument("--size", type=int, default=10_000, help="elements per tensor")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--backends", nargs="*", default=list(MODES), choices=list(MODES),
                        help="symopt's backends (none: only torch.optim and optax)")
    parser.add_argument("--per-tensor", action="store_true",
                        help="also compile the per-tensor path cold (minutes each)")
    parser.add_argument("--vector-fused", action="store_true",
                        help="also the same elements as one tensor on the fused path")
    parser.add_argument("--quick", action="store_true", help="k = 20, few repeats")
    parser.add_argument("--big", type=float, nargs="*", default=[1e6, 4e6, 1e7],
                        help="also one tensor of each of these sizes, 1 and 2 threads")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="multi_tensor", help="stem of the result files")
    args = parser.parse_args()

    if args.worker:
        workers = {"torch": torch_worker, "jax": jax_worker}
        workers.get(args.framework, pytensor_worker)(args)
        return
    if args.quick:
        args.tensors, args.repeats, args.big = [20], 5, [1e6]

    rows = []
    for k in args.tensors:
        print(f"Adam over {k} tensors of {args.size} float32 elements", flush=True)
        for backend in args.backends:
            rows += measure_pytensor(backend, "vector", k, args.size, args.repeats, cold=True)
            rows += measure_pytensor(backend, "fused", k, args.size, args.repeats, cold=True)
            if args.vector_fused:
                rows += measure_pytensor(backend, "vector-fused", k, args.size, args.repeats,
                                         cold=True)
            if args.per_tensor or k <= 100:
                rows += measure_pytensor(backend, "per-tensor", k, args.size, args.repeats,
                                         cold=args.per_tensor)
            rows += measure_pytensor(backend, "inputs-only", k, args.size, args.repeats,
                                     cold=False)
        if importlib.util.find_spec("torch"):
            rows += measure_torch(k, args.size, args.repeats)
        else:
            print("  torch is not installed: no torch rows")
        if importlib.util.find_spec("optax"):
            rows += measure_jax(k, args.size, args.repeats)

    for n in [int(x) for x in args.big]:
        print(f"Adam over one tensor of {n} float32 elements, 1 and 2 threads", flush=True)
        for backend in args.backends:
            for threads in (1, 2):
                rows += measure_pytensor(backend, "fused", 1, n, args.repeats, cold=False,
                                         threads=threads)
        if importlib.util.find_spec("torch"):
            rows += measure_torch(1, n, args.repeats, kinds=("fused",))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "versions": versions(), "rows": rows}
    (out / f"{args.name}.json").write_text(json.dumps(payload, indent=1))
    (out / f"{args.name}.md").write_text(
        "# Many tensors: Adam, float32, one thread unless said\n\n" + table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
