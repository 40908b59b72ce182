"""The MLP training step on the C VM with no flag: one GEMM per product, or two.

PyTensor's ``local_dot22_to_dot22scalar`` folds a scalar into a matrix product whose
plain form the graph needs too, and the C VM then computes that GEMM twice (two of the
five products of the 784-600-10 MLP's Adam step). ``symopt.fused.products`` reuses the
plain product. This runs ``benchmarks/mlp.py`` on the C VM, one thread, for Adam and
momentum, three ways:

- ``default``: ``mode="CVM"``, no flag: what a user gets, with symopt's rewrite;
- ``before``: the same with ``symopt_reuse_product`` excluded, PyTensor's own choice
  (the C VM default before this rewrite);
- ``training-mode``: ``local_dot22_to_dot22scalar`` excluded, as
  ``symopt.fused.modes.training_mode("c")`` does: the reference, each product once.

    .venv/bin/python benchmarks/c_products.py --out benchmarks/results/c_products

writes ``c_products.json`` and ``c_products.md`` (a few minutes). Each row is one
process: compile (in a warm compile directory, the same for all rows) and the minimum
over the timed epochs of 600 steps (``--steps`` fewer, extrapolated).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

ROWS = {
    "default": [],
    "before": ["--exclude", "symopt_reuse_product"],
    "training-mode": ["--exclude", "local_dot22_to_dot22scalar"],
}


def _run(rule, row, epochs, steps):
    env = _common.thread_env(1)
    cmd = [sys.executable, str(HERE / "mlp.py"), "--framework", "symopt", "--mode", "CVM",
           "--config", f"symopt-cvm-{row}", "--rule", rule, "--epochs", str(epochs),
           "--steps", str(steps), *ROWS[row]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    found = _common.parse_results(proc.stdout)
    if proc.returncode or not found:
        return {"error": (proc.stderr.strip().splitlines() or ["no result"])[-1]}
    return found[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "c_products"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the Markdown table from the JSON file")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        data = json.loads(out.with_suffix(".json").read_text())
        out.with_suffix(".md").write_text(report(data["meta"], data["results"]))
        return
    results = []
    for rule in ("adam", "momentum"):
        for row in ROWS:
            print(f"[{time.strftime('%H:%M:%S')}] {rule} {row}", flush=True)
            results.append({"rule": rule, "row": row,
                            **_run(rule, row, args.epochs, args.steps)})
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": _common.machine()["cpu"] or platform.machine(),
            "epochs": args.epochs, "steps": args.steps,
            "load_average_end": os.getloadavg()[0]}
    _common.save_run(out, meta, results, report)


def report(meta, results):
    """The Markdown table of a run."""
    lines = ["# The MLP training step on the C VM, no flag: GEMMs reused or repeated",
             "",
             f"Made by `benchmarks/c_products.py` on {meta['date']} ({meta['machine']}, "
             f"1 thread, load average at the end {meta['load_average_end']:.1f}); "
             f"784-600-10 MLP, batch 100, float32, minimum over {meta['epochs']} epochs "
             f"of {meta['steps']} steps.",
             "",
             "| rule | row | matrix products | step (ms) | x training mode "
             "| compile + first call (s) |",
             "|---|---|---|---|---|---|"]
    reference = {r["rule"]: r.get("step_min") for r in results if r["row"] == "training-mode"}
    for r in results:
        if "error" in r:
            lines.append(f"| {r['rule']} | {r['row']} | error: {r['error']} | | | |")
            continue
        ratio = r["step_min"] / reference[r["rule"]] if reference.get(r["rule"]) else float("nan")
        lines.append(f"| {r['rule']} | {r['row']} | {r.get('products', '')} | "
                     f"{r['step_min'] * 1e3:.2f} | {ratio:.2f} | {r['compile_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
