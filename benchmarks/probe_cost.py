"""What a step of the rules that need the loss costs, against a plain gradient step.

``sam`` evaluates the gradient twice (at the parameters and at the perturbed point);
``sophia`` and ``adahessian`` add a Hutchinson probe, one Hessian-vector product built
through the gradient's graph (and a random draw), as ``esgd`` does. This worker times
one compiled mini-batch step of each on a small tanh network (the one
``examples/second_order.py`` uses: 20 inputs, ``--hidden`` tanh units, one output, a
squared loss; mini-batches of ``--batch``) and reports each rule's time as a multiple
of SGD's, the "probe cost" their docstrings quote. Only the step is timed (compilation
excluded), as in ``update_step.py``; the data of a step is fixed, so the draw of
mini-batches is not timed either.

Run on its own (it prints a table and one ``BENCH_RESULT`` JSON line)::

    python benchmarks/probe_cost.py --hidden 256 --mode NUMBA
    python benchmarks/probe_cost.py --hidden 256 --mode CVM

Timings on a shared machine carry its load: read the CPU-time column for 1 thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _common  # noqa: E402

#: the rules timed, each with the hyperparameters that make its step what is measured
#: (sophia's ``every=1`` and ``every=10`` cost the same: see its docstring)
RULES = {
    "sgd": {"learning_rate": 0.01},
    "rmsprop": {"learning_rate": 1e-3},
    "adam": {"learning_rate": 1e-3},
    "sam": {"learning_rate": 0.01, "rho": 0.05},
    "sophia": {"learning_rate": 1e-3, "every": 10, "seed": 0},
    "sophia(every=1)": {"learning_rate": 1e-3, "every": 1, "seed": 0},
    "adahessian": {"learning_rate": 0.15, "seed": 0},
    "esgd": {"learning_rate": 0.1, "seed": 0},
}


def build(rule, args):
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    import symopt

    rng = np.random.default_rng(0)
    X = pt.constant(rng.standard_normal((args.batch, 20)).astype(args.dtype))
    y = pt.constant(rng.standard_normal(args.batch).astype(args.dtype))
    shapes = [(20, args.hidden), (args.hidden,), (args.hidden, 1), (1,)]
    params = [pytensor.shared((0.1 * rng.standard_normal(s)).astype(args.dtype), name=n)
              for s, n in zip(shapes, ("W1", "b1", "W2", "b2"))]
    W1, b1, W2, b2 = params
    loss = (((pt.tanh(X @ W1 + b1) @ W2 + b2)[:, 0] - y) ** 2).mean()
    name = rule.split("(")[0]
    make = symopt.esgd if name == "esgd" else symopt.RULES[name]
    updates = make(loss, params, **RULES[rule])
    return pytensor.function([], loss, updates=updates, mode=args.mode)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--mode", default="NUMBA", help="PyTensor mode (NUMBA, CVM)")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.1)
    args = parser.parse_args(argv)
    _common.pin_threads()
    _common.quiet_warnings()
    results = {}
    for rule in args.rules:
        step = build(rule, args)
        results[rule] = _common.time_calls(step, repeats=args.repeats, min_time=args.min_time)
    base = results.get("sgd", next(iter(results.values())))
    print(f"one step, 20-{args.hidden}-1 tanh network, batch {args.batch}, {args.dtype}, "
          f"mode {args.mode}")
    print(f"{'rule':<18}{'wall (us)':>12}{'cpu (us)':>12}{'x sgd (cpu)':>14}")
    for rule, r in results.items():
        print(f"{rule:<18}{1e6 * r['min']:>12.1f}{1e6 * r['cpu_min']:>12.1f}"
              f"{r['cpu_min'] / base['cpu_min']:>14.2f}")
    _common.emit({"kind": "probe_cost", "args": vars(args), "results": results})
    return results


if __name__ == "__main__":
    main()
