"""Worker of the many-tensor benchmark: Adam over ``k`` tensors, fused or per tensor.

``benchmarks/run.py --only many`` drives it (cold and warm compiles, the peers, the
big single tensors); one invocation measures one configuration and prints one
``BENCH_RESULT`` line.

One rule (Adam, float32) over ``k`` tensors of ``size`` elements, its gradients given as
inputs of the compiled function, against the same number of elements as one vector;
torch.optim's Adam over the same tensors (foreach and fused, 1 and 2 threads) and
optax's (one jitted step, donated buffers; its first call is the compile) when they are
installed. For each configuration one worker process measures:

- the cold compile: compiling and the first call (when Numba compiles) in a fresh
  PyTensor compile directory, and the process's peak resident memory;
- the warm compile: the same in a second process, with that directory filled;
- the step: min and median over repeats.

``--many-big`` sizes (default 1e6, 4e6, 1e7) add one tensor of that size with the fused
loop of each backend on 1 and 2 threads (``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS``;
tensors of 2**19 elements or more use a parallel loop) against torch.optim's fused Adam
on 1 and 2 threads. ``--many-vector-fused`` adds the one vector on the fused path, the fair
baseline for the C backend, whose fused loop is faster than PyTensor's own.

It also times a function with the same ``k`` gradient inputs that does nothing with them,
the cost of passing ``k`` arrays to a compiled PyTensor function, which every
``k``-tensor step here pays and a training function (whose gradients are computed
inside) does not.

    python benchmarks/run.py --only many                   # k = 100 and 300
    python benchmarks/run.py --only many --many-tensors 100 --per-tensor
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import emit, optax_stepper, peak_rss_mib, pin_threads, time_calls  # noqa: E402

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
    elif args.layout == "flat":  # the k tensors as views of one vector: one update
        flat = symopt.FlatParameters([p.get_value() for p in params])
        loss = pt.add(*[(view * g).sum() for view, g in zip(flat.views, grads, strict=True)])
        fn = pytensor.function(grads, [], updates=symopt.adam(loss, [flat.vector], 1e-3),
                               mode=_mode(args))
    else:
        updates = symopt.adam(grads, params, learning_rate=1e-3,
                              fuse=args.layout in ("fused", "vector-fused"))
        fn = pytensor.function(grads, [], updates=updates, mode=_mode(args))
    fn(*values)  # Numba compiles at the first call
    compile_seconds = time.perf_counter() - start
    nodes = len(fn.maker.fgraph.apply_nodes)
    times = time_calls(lambda: fn(*values), repeats=args.repeats)
    emit({"framework": "symopt", "backend": args.backend, "layout": args.layout,
          "exclude": args.exclude, "k": args.k, "size": args.size, "compile_s": compile_seconds,
          "peak_rss_mib": peak_rss_mib(), "nodes": nodes, **times})


def _mode(args):
    from pytensor.compile.mode import get_mode

    mode = get_mode(MODES[args.backend])
    if args.exclude:  # e.g. symopt_fusion: the default path before its rewrites
        mode = mode.excluding(*args.exclude)
    return mode


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default="symopt", choices=["symopt", "torch", "jax"])
    parser.add_argument("--backend", default="numba", choices=list(MODES))
    parser.add_argument("--layout", default="fused",
                        choices=["fused", "per-tensor", "flat", "vector", "vector-fused",
                                 "inputs-only", "foreach"])
    parser.add_argument("--k", type=int, default=100, help="number of tensors")
    parser.add_argument("--size", type=int, default=10_000, help="elements per tensor")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--exclude", nargs="*", default=[],
                        help="rewrite tags to exclude from the mode (symopt_fusion: the "
                             "default path without symopt's rewrites)")
    args = parser.parse_args()
    {"torch": torch_worker, "jax": jax_worker}.get(args.framework, pytensor_worker)(args)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
