"""The rule's share of the MLP training function's cold compile.

``benchmarks/mlp.py`` compiles the 784-600-10 MLP's training function (Adam) cold, in an
empty compile directory, and again with ``--no-updates``: the same loss and its
gradients as outputs, no rule. The difference is what the rule adds; the rest is the
model's forward and backward graph, which symopt does not build. One thread, Numba
(PyTensor 3's default) and the C VM.

    .venv/bin/python benchmarks/rule_compile_share.py --out benchmarks/results/rule_compile_share

writes ``rule_compile_share.json`` and ``.md`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

ROWS = {"training function (Adam)": [], "loss and gradients only": ["--no-updates"]}


def cold_compile(mode, extra):
    with tempfile.TemporaryDirectory(prefix="symopt-share-") as compiledir:
        env = _common.thread_env(1)
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(x for x in (flags, f"base_compiledir={compiledir}")
                                         if x)
        cmd = [sys.executable, str(HERE / "mlp.py"), "--framework", "symopt", "--mode", mode,
               "--config", "share", "--rule", "adam", "--compile-only", *extra]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    found = _common.parse_results(proc.stdout)
    if proc.returncode or not found:
        return {"error": (proc.stderr.strip().splitlines() or ["no result"])[-1]}
    return {key: found[0][key] for key in ("compile_s", "n_nodes", "peak_rss_mib")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "rule_compile_share"))
    parser.add_argument("--modes", nargs="+", default=["NUMBA", "CVM"])
    args = parser.parse_args(argv)
    rows = []
    for mode in args.modes:
        for label, extra in ROWS.items():
            print(f"[{time.strftime('%H:%M:%S')}] {mode}: {label}", flush=True)
            rows.append({"mode": mode, "row": label, **cold_compile(mode, extra)})
            print(f"   {rows[-1]}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_end": os.getloadavg()[0]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# The rule's share of the MLP training function's cold compile", "",
             f"Made by `benchmarks/rule_compile_share.py` on {meta['date']} (load average "
             f"at the end {meta['load_average_end']:.1f}); 784-600-10 MLP, float32, one "
             "thread, an empty compile directory.", "",
             "| backend | graph | nodes | cold compile + first call (s) | peak RSS (MiB) |",
             "|---|---|---|---|---|"]
    for r in rows:
        cells = (f"{r['n_nodes']} | {r['compile_s']:.1f} | {r['peak_rss_mib']:.0f}"
                 if "compile_s" in r else f"- | {r['error']} | -")
        lines.append(f"| {r['mode']} | {r['row']} | {cells} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
