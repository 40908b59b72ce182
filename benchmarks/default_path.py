"""The default path's update step, with and without the C backends' rewrite.

Adam over one float32 vector of 1e6 elements, no ``fuse=`` flag, one thread, side by
side in one process (interleaved repeats, the minimum kept): PyTensor 3's default
(Numba) and the C VM as symopt compiles them by default (``symopt.fused.rewrite`` swaps
a loop for the vectorised one where PyTensor's is slow, ``symopt.fused.window`` sums
adagrad_window's window in one pass) and each with those rewrites excluded (PyTensor's
own code: the "before"), against the in-place roofline (a NumPy pass that reads and
writes the same bytes).

    .venv/bin/python benchmarks/default_path.py --out benchmarks/results/default_path

writes ``default_path.json`` and ``default_path.md``. The load average is recorded: on a
shared machine the ratios hold better than the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402
from pytensor.compile.mode import get_mode  # noqa: E402

import symopt  # noqa: E402

SIZE = 10**6


def _functions(rule):
    modes = {"numba (default)": "NUMBA",
             "numba, rewrite excluded": get_mode("NUMBA").excluding("symopt_fusion"),
             "C VM (default: rewritten)": get_mode("CVM"),
             "C VM, rewrite excluded": get_mode("CVM").excluding("symopt_fusion")}
    out = {}
    with pytensor.config.change_flags(floatX="float32"):
        for label, mode in modes.items():
            w = pytensor.shared(np.ones(SIZE, dtype="float32"), name="W")
            g = pt.vector("g", dtype="float32")
            start = time.perf_counter()
            f = pytensor.function([g], [], updates=symopt.RULES[rule]([g], [w]), mode=mode)
            f(np.zeros(SIZE, dtype="float32"))
            out[label] = (f, time.perf_counter() - start)
    return out


def _roofline(grad, state_sizes):
    """A pass that reads the gradient and reads and writes the parameter and its state
    arrays in place: the memory traffic of the step, with no arithmetic to speak of.
    ``state_sizes``: each state array's size in parameter sizes (adagrad_window's window
    of the last ten squares: 10; such an array is read and written as one flat pass)."""
    arrays = [np.ones(SIZE * k, dtype="float32") for k in [1, *state_sizes]]
    one = np.float32(1)

    def run():
        for a in arrays:
            np.add(a, grad if a.size == SIZE else one, out=a)

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/default_path")
    parser.add_argument("--rules", default="adam,rmsprop,momentum")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--report-only", action="store_true",
                        help="write the Markdown again from OUT.json, measure nothing")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        write_report(Path(args.out), saved["meta"], saved["rows"])
        return
    grad = np.random.default_rng(0).random(SIZE, dtype=np.float32)
    rows = []
    for rule in args.rules.split(","):
        functions = _functions(rule)
        state = symopt.get_state(symopt.RULES[rule](
            [pt.vector(dtype="float32")],
            [pytensor.shared(np.ones(3, dtype="float32"), name="W")]))
        state_sizes = [var.get_value().size // 3 for name, var in state.items()
                       if name.startswith("W.")]
        timed = {label: f for label, (f, _) in functions.items()}
        timed["roofline (NumPy, in place)"] = _roofline(grad, state_sizes)
        best = dict.fromkeys(timed, float("inf"))
        for _ in range(args.repeats):
            for label, f in timed.items():
                start = time.perf_counter()
                for _ in range(args.calls):
                    f(grad) if label in functions else f()
                best[label] = min(best[label], (time.perf_counter() - start) / args.calls)
        roof = best["roofline (NumPy, in place)"]
        for label, seconds in best.items():
            rows.append({"rule": rule, "path": label, "step_us": seconds * 1e6,
                         "vs_roofline": seconds / roof,
                         "compile_s": functions[label][1] if label in functions else None})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"size": SIZE, "dtype": "float32", "threads": 1, "repeats": args.repeats,
            "calls": args.calls, "load_average": os.getloadavg(),
            "cpu": platform.processor() or platform.machine(),
            "pytensor": pytensor.__version__, "date": time.strftime("%Y-%m-%d")}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    write_report(out, meta, rows)


#: The summary's columns: a title, the path, and whether the step is shown too.
SUMMARY = [("Numba (default): step, x roofline", "numba (default)", True),
           ("Numba, rewrites excluded: x roofline", "numba, rewrite excluded", False),
           ("C VM (default): step, x roofline", "C VM (default: rewritten)", True),
           ("C VM, rewrites excluded: x roofline", "C VM, rewrite excluded", False)]


def write_report(out, meta, rows):
    """The run's Markdown: every measurement, then one line per rule (the summary that
    benchmarks/README.md copies)."""
    lines = [f"# Default path, {SIZE:.0e} float32 parameters, 1 thread",
             "", f"Made by `benchmarks/default_path.py` on {meta['date']} (PyTensor "
             f"{meta['pytensor']}, load average {meta['load_average'][0]:.1f}: a shared "
             "machine; the ratios hold better than the times).", "",
             "| rule | path | step (us) | x roofline | compile + first call (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        compile_s = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
        lines.append(f"| {r['rule']} | {r['path']} | {r['step_us']:.0f} | "
                     f"{r['vs_roofline']:.2f} | {compile_s} |")
    by_rule: dict = {}
    for r in rows:
        by_rule.setdefault(r["rule"], {})[r["path"]] = r
    if all(label in paths for paths in by_rule.values() for _, label, _ in SUMMARY):
        lines += ["", "## Summary", "",
                  "| rule | " + " | ".join(title for title, _, _ in SUMMARY)
                  + " | roofline (us) |", "|---" * (len(SUMMARY) + 2) + "|"]
        for rule, paths in by_rule.items():
            cells = [(f"{paths[label]['step_us']:.0f} us, " if with_step else "")
                     + f"{paths[label]['vs_roofline']:.2f}" for _, label, with_step in SUMMARY]
            roof = paths["roofline (NumPy, in place)"]["step_us"]
            lines.append(f"| {rule} | " + " | ".join(cells) + f" | {roof:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
