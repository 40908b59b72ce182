"""Adam over many tensors on the default path: before and after the grouping rewrite.

``symopt.adam(grads, params)`` with no flag over ``k`` float32 tensors of 1e4 elements,
gradients given as inputs, one thread, on Numba (PyTensor 3's default) and the C VM:

- ``default``: as symopt compiles it (``symopt.fused.rewrite``: the updates of a rule
  grouped, four tensors a node);
- ``before``: the same graph with symopt's rewrites excluded (``symopt_fusion``):
  PyTensor's own loops, what the default path was before them;
- ``fused``: ``fuse=True`` (state in flat buffers, ``symopt.fused``);
- ``flat``: the ``k`` tensors as views of one vector (``symopt.FlatParameters``), the
  loss ``sum(view * g)`` so that the gradient of each view is its input; the rule
  updates one vector, and the step includes placing the ``k`` gradients in it;
- ``vector``: the same number of elements as one vector (the fused loop on C, PyTensor's
  Numba loop), the target's reference;
- ``inputs-only``: a function that takes the ``k`` gradient arrays and does nothing, the
  price of passing them, which every row but ``vector`` pays.

Each configuration runs ``benchmarks/multi_tensor.py`` twice in a fresh PyTensor
compile directory (``base_compiledir``, which holds PyTensor's Numba cache too): "cold"
is compiling plus the first call in the empty directory, "warm" the same in a second
process. The step is the minimum over repeats.

    .venv/bin/python benchmarks/many_default.py --out benchmarks/results/many_default

writes ``many_default.json`` and ``many_default.md`` (about 20 minutes for k = 100: the
Numba rows without symopt's rewrites take minutes each to compile).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

ROWS = {  # label: multi_tensor.py arguments (besides --backend, --k)
    "default": ["--layout", "per-tensor"],
    "before": ["--layout", "per-tensor", "--exclude", "symopt_fusion"],
    "fused": ["--layout", "fused"],
    "flat": ["--layout", "flat"],
    "vector": ["--layout", "vector"],
    "inputs-only": ["--layout", "inputs-only"],
}
VECTOR = {"numba": ["--layout", "vector"], "c": ["--layout", "vector-fused"]}


def _run(argv, compiledir, timeout):
    env = _common.thread_env(1)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(x for x in (flags, f"base_compiledir={compiledir}") if x)
    cmd = [sys.executable, str(HERE / "multi_tensor.py"), *argv]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    found = _common.parse_results(proc.stdout)
    if proc.returncode or not found:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["no result"],
                "wall_s": time.perf_counter() - start}
    return found[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "many_default"))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=["numba", "c"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS))
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args(argv)
    results = []
    for backend in args.backends:
        for row in args.rows:
            extra = VECTOR[backend] if row == "vector" else ROWS[row]
            argv_ = ["--backend", backend, "--k", str(args.k), *extra]
            with tempfile.TemporaryDirectory(prefix="symopt-many-") as compiledir:
                print(f"[{time.strftime('%H:%M:%S')}] {backend} {row}: cold", flush=True)
                cold = _run(argv_, compiledir, args.timeout)
                print(f"[{time.strftime('%H:%M:%S')}] {backend} {row}: warm", flush=True)
                warm = _run(argv_, compiledir, args.timeout)
            results.append({"backend": backend, "row": row, "args": argv_,
                            "cold": cold, "warm": warm})
            print(f"   cold {cold.get('compile_s', cold.get('error'))}, "
                  f"warm {warm.get('compile_s', warm.get('error'))}, "
                  f"step {warm.get('min')}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "k": args.k,
            "machine": platform.processor() or platform.machine(),
            "load_average_end": os.getloadavg()[0]}
    _common.save_run(args.out, meta, results, report)


def report(meta, results):
    """The Markdown table of a run."""
    lines = [f"# Adam over {meta['k']} float32 tensors of 1e4, default path, 1 thread", "",
             f"Made by `benchmarks/many_default.py` on {meta['date']} (load average at "
             f"the end {meta['load_average_end']:.1f}).", "",
             "| backend | row | cold compile + first call (s) | peak RSS cold (MiB) | "
             "warm (s) | step (ms) | step, x vector |", "|---|---|---|---|---|---|---|"]
    vector = {r["backend"]: r["warm"].get("min") for r in results if r["row"] == "vector"}
    for r in results:
        cold, warm = r["cold"], r["warm"]
        ratio = (f"{warm['min'] / vector[r['backend']]:.2f}"
                 if "min" in warm and vector.get(r["backend"]) else "-")

        def num(d, key, scale=1.0, fmt="{:.1f}"):
            return fmt.format(d[key] * scale) if key in d else d.get("error", "-")

        lines.append(f"| {r['backend']} | {r['row']} | {num(cold, 'compile_s')} | "
                     f"{num(cold, 'peak_rss_mib', fmt='{:.0f}')} | {num(warm, 'compile_s')} | "
                     f"{num(warm, 'min', 1e3, '{:.3f}')} | {ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
