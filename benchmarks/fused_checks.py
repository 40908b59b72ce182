"""What the fused path's shape checks cost per step (issue 14).

Every call of a fused update checks, before it writes anything, that each parameter has
the shape its slot in the flat buffers was built for, each gradient its parameter's
shape and each buffer its length: once for the whole dtype group (the ``FusedCheck``
node) and again in each ``FusedUpdate`` node. This script times, for Adam over ``k``
tensors of ``size`` elements (gradients as inputs, as ``multi_tensor.py`` does):

- ``step``: the whole fused step, checks included;
- ``check``: a function computing only the group's ``FusedCheck`` token;
- ``nothing``: a function with the same inputs that does nothing with them (the cost of
  calling a compiled function with ``k`` arrays, which ``check`` pays too).

``check - nothing`` is what the group's check adds to a step; the nodes' own checks
compare the same shapes once more. Small tensors are the worst case (the loops are
short); the report gives the added cost as a fraction of the step. It prints one JSON
line; it is not run by the test suite.

    python benchmarks/fused_checks.py --k 100 --size 1000 --mode numba
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import pin_threads, time_calls  # noqa: E402

MODES = {"numba": "NUMBA", "c": "CVM"}


def _token(updates):
    """The output of the group's FusedCheck: the last input of any FusedUpdate node."""
    from symopt.fused import FusedUpdate

    for _, expr in updates:
        node = expr.owner
        while node is not None and not isinstance(node.op, FusedUpdate):
            node = node.inputs[0].owner if node.inputs else None
        if node is not None:
            return node.inputs[-1]
    raise RuntimeError("no fused update in the graph")


def measure(k, size, mode, repeats, min_time):
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    import symopt

    rng = np.random.default_rng(0)
    params = [pytensor.shared(rng.normal(size=size).astype("float32"), name=f"w{i}")
              for i in range(k)]
    grads = [pt.vector(f"g{i}", dtype="float32") for i in range(k)]
    values = [rng.normal(size=size).astype("float32") for _ in range(k)]
    updates = symopt.adam(grads, params, 1e-3, fuse=True)
    mode = MODES[mode]
    step = pytensor.function(grads, [], updates=updates, mode=mode)
    check = pytensor.function(grads, _token(updates), mode=mode)
    nothing = pytensor.function(grads, pt.constant(np.int8(0)), mode=mode,
                                on_unused_input="ignore")
    times = {name: time_calls(lambda f=f: f(*values), repeats=repeats, min_time=min_time)
             for name, f in (("step", step), ("check", check), ("nothing", nothing))}
    best = {name: t["cpu_min"] for name, t in times.items()}
    added = max(best["check"] - best["nothing"], 0.0)
    return {"k": k, "size": size, "mode": mode, "threads": pin_threads(),
            "cpu_min_us": {name: round(v * 1e6, 2) for name, v in best.items()},
            "check_us": round(added * 1e6, 2),
            "check_fraction_of_step": round(added / best["step"], 4)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--mode", choices=sorted(MODES), nargs="+", default=["numba", "c"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.1)
    args = parser.parse_args(argv)
    for mode in args.mode:
        for k in args.k:
            print(json.dumps(measure(k, args.size, mode, args.repeats, args.min_time)),
                  flush=True)


if __name__ == "__main__":
    main()
