"""How close this machine's curves come to their recorded envelopes.

For every recorded case, runs the forms exactly (as the curve tests do) and reports,
per case, the largest ``|new - recorded| / tolerance`` over all forms, metrics and steps
(below 1 passes; the recorded margin is 100, so a value near 0.01 means this machine
differs from the recording about as much as the recording's own jittered replays did),
and which form came closest. Used to check the envelopes under other BLAS kernels:

    OPENBLAS_CORETYPE=Haswell .venv/bin/python scripts/curve_margins.py \
        --out tests/curves/margins/haswell.md

(set ``OPENBLAS_CORETYPE`` by hand like this, never in tests or CI).
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np

from symopt.lab.curves import load_curves
from symopt.lab.problems import FormsRun, make_problem

RECORDED = Path(__file__).resolve().parents[1] / "tests" / "curves" / "recorded"


def ratio(recorded, new):
    """The largest deviation of ``new`` from ``recorded`` in units of its tolerance."""
    worst = 0.0
    for metric in ("loss", "param_norm"):  # what the curve tests compare
        values = recorded.values[metric]
        a, b = np.asarray(values), np.asarray(new.values[metric])
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - b)
        # as the curve tests (symopt.lab.curves): a run that diverged the same way is the
        # same curve, NaN where NaN was recorded, the same infinity where one was
        same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
        diff = np.where(same, 0.0, diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(diff == 0, 0.0, diff / np.asarray(recorded.tolerance[metric]))
        worst = max(worst, float(np.nanmax(np.where(np.isnan(q), np.inf, q))))
    return worst


def cpu():
    """The CPU's model name and widest vector extension, from /proc/cpuinfo (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model} with {vector}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="toy,quadratic,rosenbrock",
                        help="comma-separated (add logistic,mlp for the image problems)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    rows = []
    for problem in args.problems.split(","):
        for dtype in ("float64", "float32"):
            for backend in ("numba", "c"):
                path = RECORDED / f"{problem}-{dtype}-{backend}.json"
                recorded = load_curves(path)
                curves = FormsRun(make_problem(problem, dtype), backend=backend).run()
                ratios = {name: ratio(recorded[name], c) for name, c in curves.items()}
                name = max(ratios, key=ratios.get)
                rows.append(f"| {path.stem} | {ratios[name]:.3g} | {name} |")
                print(rows[-1], flush=True)
    kernel = os.environ.get("OPENBLAS_CORETYPE") or "the CPU's own"
    text = "\n".join([
        f"# Deviation from the recorded envelopes: OpenBLAS kernel {kernel}",
        "",
        f"Machine: {cpu()}; made by `scripts/curve_margins.py`. A case passes below 1.",
        "",
        "| case | largest deviation / tolerance | closest form |",
        "|---|---|---|",
        *rows,
        "",
    ])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return rows


if __name__ == "__main__":
    main()
