"""PyTensor's Numba linker alone: cold compile time against a function's updates.

No symopt: a function of ``k`` float32 vector inputs whose ``n`` updates are
``s_j <- g_(j mod k) + j``, compiled with ``mode="NUMBA"`` in an empty compile
directory and Numba cache (PyTensor's ``base_compiledir``), one thread. This is the
shape of a training function over many tensors (Adam over 100 tensors updates 300
shared variables), with nothing inside. Each row runs in a fresh process; variants:

- ``default``: as PyTensor compiles it;
- ``no-refprune``: ``NUMBA_LLVM_REFPRUNE_PASS=0`` (Numba's reference-count pruning in
  Python instead of its LLVM pass);
- ``no-gc``: Python's garbage collector off while compiling (``gc.disable()``).

    .venv/bin/python benchmarks/numba_linker.py --out benchmarks/results/numba_linker

writes ``numba_linker.json`` and ``numba_linker.md`` (about 8 minutes).

Where the time goes: ``--profile-summary RAW`` sums a py-spy profile (``py-spy record
--native -r 20 -f raw -o RAW -- python -c <the worker> 50 150 0``, cold) over the
compiler's stages (each stage counts the samples whose stack holds it; the stages nest,
so the rows do not add up)::

    python benchmarks/numba_linker.py --profile-summary RAW > results/numba_linker_profile.md
"""

from __future__ import annotations

import argparse
import json
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

SIZES = [(25, 25), (25, 75), (50, 50), (50, 150)]
VARIANTS = {"default": {}, "no-refprune": {"NUMBA_LLVM_REFPRUNE_PASS": "0"}, "no-gc": {}}

GRAPH = """
import numpy as np, pytensor, pytensor.tensor as pt
def build(k, n):
    gs = [pt.tensor(f"g{i}", dtype="float32", shape=(1000,)) for i in range(k)]
    ss = [pytensor.shared(np.zeros(1000, "float32"), name=f"s{j}") for j in range(n)]
    f = pytensor.function(gs, [], mode="NUMBA",
                          updates=[(s, gs[j % k] + np.float32(j)) for j, s in enumerate(ss)])
    return f, [np.ones(1000, "float32")] * k
"""
WORKER = GRAPH + """
import gc, resource, sys, time
k, n, no_gc = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if no_gc:
    gc.disable()
start = time.perf_counter()
f, args = build(k, n)
f(*args)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def graph_shape(k, n):
    """The compiled graph's nodes and its outputs, from PyTensor's rewrites alone (Numba
    compiles at the first call): the updates of one input are one loop with up to three
    outputs, so ``n = 3 k`` has the nodes of ``n = k`` and three times the outputs."""
    namespace: dict = {}
    exec(GRAPH, namespace)  # noqa: S102 - the benchmark's own graph, shared with WORKER
    f, _ = namespace["build"](k, n)
    return len(f.maker.fgraph.apply_nodes), len(f.maker.fgraph.outputs)


def measure(k, n, variant, timeout):
    with tempfile.TemporaryDirectory(prefix="symopt-linker-") as compiledir:
        env = _common.thread_env(1) | VARIANTS[variant]
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        env["PYTENSOR_FLAGS"] = ",".join(x for x in (flags, f"base_compiledir={compiledir}")
                                         if x)
        cmd = [sys.executable, "-c", WORKER, str(k), str(n), str(int(variant == "no-gc"))]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    seconds, rss = map(float, proc.stdout.split())
    return {"compile_s": seconds, "peak_rss_mib": rss}


#: The profile's stages: a title and the frame that marks it.
STAGES = [
    ("Numba's type inference (the outer function, and nested in it every node's own "
     "compile)", "TypeInferer.propagate"),
    ("Numba's lowering to LLVM IR", "BaseLower.lower"),
    ("LLVM function passes, per function as a module is added", "_optimize_functions"),
    ("LLVM module passes", "llvm::PassManager<llvm::Module"),
    ("Numba's RefPrune pass (function and module passes)", "RefPrunePass::run"),
    ("its per-basic-block pruning", "RefPrune::runPerBasicBlockPrune"),
    ("LLVM InstCombine", "llvm::InstCombinePass::run"),
    ("machine code (MCJIT: instruction selection, scheduling)", "llvm::MCJIT::emitObject"),
    ("Python's garbage collector", "gc_collect_main"),
]


def profile_summary(raw_path):
    """The share of a raw py-spy profile's samples in each of :data:`STAGES`."""
    total, counts = 0, dict.fromkeys([title for title, _ in STAGES], 0)
    for line in Path(raw_path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for title, frame in STAGES:
            if frame in stack:
                counts[title] += int(n)
    lines = ["# Where a cold Numba compile of 50 inputs and 150 updates goes", "",
             f"py-spy, {total} samples at 20 per second ({total / 20:.0f} s); see "
             "`benchmarks/numba_linker.py`. A sample counts in every stage its stack "
             "holds.", "", "| stage | samples | share |", "|---|---|---|"]
    lines += [f"| {title} | {n} | {n / total:.0%} |" for title, n in counts.items()]
    return "\n".join(lines) + "\n"


def report(meta, rows):
    lines = ["# PyTensor's Numba linker: cold compile against a function's updates", "",
             f"Made by `benchmarks/numba_linker.py` on {meta['date']} ({meta['machine']}, "
             f"PyTensor {meta['pytensor']}, Numba {meta['numba']}; load average at the end "
             f"{meta['load_average_end']:.1f}). A function of k float32 inputs with n "
             "updates, nothing else; cold compile plus first call, one thread.", "",
             "| inputs k | updates n | nodes | outputs | variant | cold compile + first call (s) "
             "| peak RSS (MiB) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cell = (f"{r['compile_s']:.1f} | {r['peak_rss_mib']:.0f}" if "compile_s" in r
                else f"{r['error']} | -")
        nodes, outputs = graph_shape(r["k"], r["n"])
        lines.append(f"| {r['k']} | {r['n']} | {nodes} | {outputs} | {r['variant']} | {cell} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "results" / "numba_linker"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--report-only", action="store_true",
                        help="write the Markdown again from OUT.json, measure nothing")
    parser.add_argument("--profile-summary", metavar="RAW",
                        help="summarise a raw py-spy profile instead of measuring")
    args = parser.parse_args(argv)
    if args.profile_summary:
        print(profile_summary(args.profile_summary), end="")
        return
    out = Path(args.out)
    if args.report_only:
        saved = json.loads(out.with_suffix(".json").read_text())
        out.with_suffix(".md").write_text(report(saved["meta"], saved["rows"]))
        return
    rows = []
    for k, n in SIZES:
        for variant in args.variants:
            print(f"[{time.strftime('%H:%M:%S')}] k={k} n={n} {variant}", flush=True)
            rows.append({"k": k, "n": n, "variant": variant,
                         **measure(k, n, variant, args.timeout)})
            print(f"   {rows[-1]}", flush=True)
    import numba
    import pytensor

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": platform.processor() or platform.machine(),
            "pytensor": pytensor.__version__, "numba": numba.__version__,
            "load_average_end": os.getloadavg()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(report(meta, rows))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
