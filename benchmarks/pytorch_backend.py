"""Which rules run on PyTensor's PyTorch backend (``mode="PYTORCH"``), and why not.

Every rule of ``symopt.RULES`` over one float64 vector, compiled for PyTensor's PyTorch
backend and stepped twice; the first line of each failure is recorded:

    .venv/bin/python benchmarks/pytorch_backend.py --out benchmarks/results/pytorch_backend

writes ``pytorch_backend.json`` and ``pytorch_backend.md``; with ``--pytensor-only``
(``--out benchmarks/results/pytorch_backend_before``) PyTensor's own conversions of
Pow, Mod and EQ are put back, which :mod:`symopt._pytorch_backend` mends (the "before").
What still fails is PyTensor's, for upstream.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt

import symopt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/pytorch_backend")
    parser.add_argument("--pytensor-only", action="store_true",
                        help="PyTensor's own conversions of Pow, Mod and EQ, unmended")
    args = parser.parse_args(argv)
    if args.pytensor_only:
        import pytensor.scalar as ps
        from pytensor.link.pytorch.dispatch.basic import pytorch_funcify

        generic = pytorch_funcify.dispatch(ps.ScalarOp)
        for op_class in (ps.Pow, ps.Mod, ps.EQ):
            pytorch_funcify.register(op_class)(generic)
    rows = []
    for name, rule in symopt.RULES.items():
        W = pytensor.shared(np.ones(5), name="W")
        x = pt.vector("x")
        cost = ((W - x) ** 2).sum()  # the loss, so that the second-order rules run too
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = pytensor.function([x], cost, updates=rule(cost, [W]), mode="PYTORCH")
                f(np.linspace(-1, 1, 5))
                f(np.linspace(-1, 1, 5))
            rows.append({"rule": name, "runs": True, "error": ""})
        except Exception as error:  # noqa: BLE001 - the point is to record it
            first = (str(error).splitlines() or [""])[0][:160]
            rows.append({"rule": name, "runs": False,
                         "error": f"{type(error).__name__}: {first}"})
    meta = {"pytensor": pytensor.__version__, "torch": __import__("torch").__version__,
            "date": time.strftime("%Y-%m-%d"), "pytensor_only": args.pytensor_only}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    ran = sum(r["runs"] for r in rows)
    which = ", PyTensor's own conversions (before)" if args.pytensor_only else ""
    lines = [f"# symopt's rules on PyTensor's PyTorch backend{which}: {ran} of {len(rows)} "
             "run", "",
             f"Made by `benchmarks/pytorch_backend.py{' --pytensor-only' * args.pytensor_only}`"
             f" on {meta['date']} (PyTensor "
             f"{meta['pytensor']}, torch {meta['torch']}).", "",
             "| rule | runs | first line of the error |", "|---|---|---|"]
    lines += [f"| {r['rule']} | {'yes' if r['runs'] else 'no'} | "
              f"{r['error'].replace('|', '/')} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
