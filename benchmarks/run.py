"""Run symopt's benchmarks and write the results as JSON, CSV and Markdown.

Every measurement runs in its own worker process (``bandwidth.py``, ``update_step.py``,
``mlp.py``, ``multi_tensor.py``), started with its thread count fixed in the environment and its CPU
affinity (see ``_common.thread_env``). This driver only starts workers, collects their
``BENCH_RESULT`` lines and hands them to ``report.py``.

    python benchmarks/run.py                 # everything (long: over an hour)
    python benchmarks/run.py --quick         # small sizes, few repeats (minutes)
    python benchmarks/run.py --only update levers --threads 1

Results go to ``benchmarks/results/`` (``results.json``, ``*.csv``, ``results.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
import report  # noqa: E402

BLAS = "blas__ldflags=-lopenblas"

# name -> (worker arguments, extra PYTENSOR_FLAGS)
UPDATE_CONFIGS = {
    "symopt-numba": (["--framework", "symopt", "--mode", "NUMBA"], ""),
    "symopt-c": (["--framework", "symopt", "--mode", "C"], BLAS),
    "symopt-numba-fused": (["--framework", "symopt", "--mode", "NUMBA", "--fuse"], ""),
    "symopt-c-fused": (["--framework", "symopt", "--mode", "C", "--fuse"], BLAS),
    "torch-forloop": (["--framework", "torch", "--variant", "forloop"], ""),
    "torch-foreach": (["--framework", "torch", "--variant", "foreach"], ""),
    "torch-fused": (["--framework", "torch", "--variant", "fused"], ""),
    "optax": (["--framework", "optax"], ""),
    "numpy": (["--framework", "numpy"], ""),
}

# Levers on the update step: each is compared with its baseline, one change at a time.
UPDATE_LEVERS = {
    "symopt-numba-nofusion": (["--framework", "symopt", "--mode", "NUMBA", "--exclude",
                               "fusion"], ""),
    "symopt-numba-noinplace": (["--framework", "symopt", "--mode", "NUMBA", "--exclude",
                                "inplace"], ""),
    "symopt-numba-nofastmath": (["--framework", "symopt", "--mode", "NUMBA"],
                                "numba__fastmath=False"),
    "symopt-numba-static": (["--framework", "symopt", "--mode", "NUMBA", "--static-shapes"], ""),
    "symopt-c-static": (["--framework", "symopt", "--mode", "C", "--static-shapes"], BLAS),
    "symopt-c-fastmath": (["--framework", "symopt", "--mode", "C"],
                          BLAS + ",gcc__cxxflags=-ffast-math"),
    "symopt-c-march": (["--framework", "symopt", "--mode", "C"],
                       BLAS + ",gcc__cxxflags=-O3 -march=native"),
    "symopt-c-openmp": (["--framework", "symopt", "--mode", "C"], BLAS + ",openmp=True"),
    "symopt-c-f32lit": (["--framework", "symopt", "--mode", "C", "--c-float32-literals"], BLAS),
    "symopt-c-f32lit-static": (["--framework", "symopt", "--mode", "C", "--c-float32-literals",
                                "--static-shapes"], BLAS),
    "symopt-cvm": (["--framework", "symopt", "--mode", "CVM"], BLAS),
}
UPDATE_LEVER_BASE = {
    "symopt-numba-nofusion": "symopt-numba", "symopt-numba-noinplace": "symopt-numba",
    "symopt-numba-nofastmath": "symopt-numba", "symopt-numba-static": "symopt-numba",
    "symopt-c-static": "symopt-c", "symopt-c-fastmath": "symopt-c",
    "symopt-c-march": "symopt-c", "symopt-c-openmp": "symopt-c", "symopt-cvm": "symopt-c",
    "symopt-c-f32lit": "symopt-c", "symopt-c-f32lit-static": "symopt-c",
}

MLP_CONFIGS = {
    "symopt-numba": (["--framework", "symopt", "--mode", "NUMBA"], ""),
    "symopt-cvm": (["--framework", "symopt", "--mode", "CVM"], BLAS),
    # the C VM at its best: symopt.fused.modes.training_mode("c") and the fused C update loop
    "symopt-cvm-fused": (["--framework", "symopt", "--mode", "CVM", "--fuse", "--exclude",
                          "local_dot22_to_dot22scalar"], BLAS),
    "symopt-numba-fused": (["--framework", "symopt", "--mode", "NUMBA", "--fuse"], ""),
    "torch-forloop": (["--framework", "torch", "--variant", "forloop"], ""),
    "torch-foreach": (["--framework", "torch", "--variant", "foreach"], ""),
    "torch-fused": (["--framework", "torch", "--variant", "fused"], ""),
    "jax": (["--framework", "jax"], ""),
}
MLP_LEVERS = {
    "symopt-cvm-noblas": (["--framework", "symopt", "--mode", "CVM"], ""),
    "symopt-c-onehot": (["--framework", "symopt", "--mode", "C", "--loss", "onehot"], BLAS),
    "symopt-numba-onehot": (["--framework", "symopt", "--mode", "NUMBA", "--loss", "onehot"],
                            ""),
    "symopt-numba-f32acc": (["--framework", "symopt", "--mode", "NUMBA", "--float32-acc"], ""),
    "symopt-numba-static": (["--framework", "symopt", "--mode", "NUMBA", "--static-shapes"], ""),
    "symopt-cvm-fastmath": (["--framework", "symopt", "--mode", "CVM"],
                            BLAS + ",gcc__cxxflags=-ffast-math"),
    "symopt-cvm-f32lit": (["--framework", "symopt", "--mode", "CVM", "--c-float32-literals"],
                          BLAS),
    # symopt.fused.modes.training_mode("c"): without the rewrite that computes two GEMMs twice
    "symopt-cvm-training-mode": (["--framework", "symopt", "--mode", "CVM", "--exclude",
                                  "local_dot22_to_dot22scalar"], BLAS),
}
MLP_LEVER_BASE = {
    "symopt-cvm-noblas": "symopt-cvm", "symopt-c-onehot": "symopt-cvm",
    "symopt-numba-onehot": "symopt-numba", "symopt-numba-f32acc": "symopt-numba",
    "symopt-numba-static": "symopt-numba", "symopt-cvm-fastmath": "symopt-cvm",
    "symopt-cvm-f32lit": "symopt-cvm", "symopt-cvm-training-mode": "symopt-cvm",
}

COMPILE_CONFIGS = {  # CPU time includes gcc's (finished child processes)
    "symopt-numba": (["--framework", "symopt", "--mode", "NUMBA"], ""),
    "symopt-cvm": (["--framework", "symopt", "--mode", "CVM"], BLAS),
    "symopt-c-onehot": (["--framework", "symopt", "--mode", "C", "--loss", "onehot"], BLAS),
    "symopt-cvm-fused": MLP_CONFIGS["symopt-cvm-fused"],
    "jax": (["--framework", "jax"], ""),
}


class Runner:
    def __init__(self, args):
        self.args = args
        self.python = args.python
        self.cache_root = Path(args.cache)
        self.results = []
        self.phase = ""
        self.log = open(Path(args.out) / "run.log", "a")

    def worker(self, script, argv, *, threads, flags="", cache=None, env_extra=None,
               timeout=3600):
        """Run one worker; return its results (and keep them)."""
        env = _common.thread_env(threads)
        compiledir = cache or self.cache_root / "default"
        pytensor_flags = f"base_compiledir={compiledir}"
        if flags:
            pytensor_flags += "," + flags
        env["PYTENSOR_FLAGS"] = pytensor_flags
        env.setdefault("NUMBA_CACHE_DIR", str(self.cache_root / "numba-packages"))
        env.update(env_extra or {})
        cmd = [self.python, str(HERE / script), *argv]
        label = f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] t={threads} " \
                f"{script} {' '.join(argv)} ({pytensor_flags})"
        print(label, flush=True)
        self.log.write(label + "\n")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print("   timed out", flush=True)
            return []
        self.log.write(proc.stdout + proc.stderr[-5000:] + "\n")
        self.log.flush()
        found = _common.parse_results(proc.stdout)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            print(f"   FAILED (exit {proc.returncode}): {' | '.join(tail)}", flush=True)
            found.append({"bench": "error", "script": script, "argv": argv,
                          "threads": threads, "flags": flags, "stderr": proc.stderr[-2000:]})
        print(f"   {len(found)} results in {time.perf_counter() - t0:.1f} s", flush=True)
        for r in found:
            r.setdefault("pytensor_flags", pytensor_flags)
            r.setdefault("phase", self.phase)
        self.results.extend(found)
        self.save()
        return found

    def save(self, meta=None):
        """Write what we have so far, so that a run cut short still leaves its data."""
        if meta is not None:
            self.meta = meta
        payload = {"meta": getattr(self, "meta", {}), "results": self.results}
        (Path(self.args.out) / "results.json").write_text(json.dumps(payload, indent=1))
        return payload

    # ----------------------------------------------------------------- benchmarks

    def bandwidth(self, sizes):
        ws = set()
        for size in sizes:
            n = 477_010 if size == "mlp" else int(float(size))
            for k in range(4):
                ws.add((2 + k) * n * 4)
        for threads in self.args.threads:
            # Parallel kernels on a loaded machine can crawl (a barrier waits for a thread
            # that has no core): bounded, and the roof for t threads falls back on fewer.
            self.worker("bandwidth.py", ["--bytes", *map(str, sorted(ws)), "--repeats",
                                         str(self.args.repeats)], threads=threads, timeout=300)

    def update(self, configs, sizes, rules, threads_list, rounds=1):
        for r in range(rounds):
            for threads in threads_list:
                names = list(configs)
                names = names[r % len(names):] + names[:r % len(names)]  # rotate each round
                for name in names:
                    argv, flags = configs[name]
                    self.worker("update_step.py",
                                [*argv, "--config", name, "--sizes", *sizes,
                                 "--rules", *rules, "--repeats", str(self.args.repeats),
                                 "--min-time", str(self.args.min_time)],
                                threads=threads, flags=flags, cache=self.cache_root / name)

    def mlp(self, configs, rules, threads_list, epochs, steps):
        for threads in threads_list:
            for name, (argv, flags) in configs.items():
                for rule in rules:
                    self.worker("mlp.py", [*argv, "--config", name, "--rule", rule,
                                           "--epochs", str(epochs), "--steps", str(steps)],
                                threads=threads, flags=flags, cache=self.cache_root / name)

    def compile(self, configs, rules, repeats):
        for name, (argv, flags) in configs.items():
            for rule in rules:
                for i in range(repeats):
                    fresh = Path(tempfile.mkdtemp(prefix="symopt-bench-cold-"))
                    try:
                        env = {"NUMBA_CACHE_DIR": str(fresh / "numba-packages")}
                        common = [*argv, "--config", name, "--rule", rule, "--compile-only"]
                        for r in self.worker("mlp.py", [*common, "--recompile"]
                                             if argv[1] == "symopt" else common,
                                             threads=1, flags=flags, cache=fresh,
                                             env_extra=env):
                            r["bench"], r["cache"], r["repeat"] = "compile", "cold", i
                        for r in self.worker("mlp.py", common, threads=1, flags=flags,
                                             cache=fresh, env_extra=env):
                            r["bench"], r["cache"], r["repeat"] = "compile", "warm", i
                    finally:
                        shutil.rmtree(fresh, ignore_errors=True)


    def many(self, tensors, size, repeats, *, backends=("numba", "c"), per_tensor=False,
             vector_fused=False, big=()):
        """Adam over many tensors (``multi_tensor.py``): symopt's fused and per-tensor
        paths, cold and warm, against one vector, torch.optim and optax."""
        def symopt_rows(backend, layout, k, n, cold, threads=1):
            fresh = Path(tempfile.mkdtemp(prefix="symopt-bench-many-")) if cold else None
            try:
                env = {"NUMBA_CACHE_DIR": str(fresh / "numba-packages")} if cold else None
                for phase in ("cold", "warm") if cold else ("warm",):
                    for row in self.worker(
                            "multi_tensor.py", ["--backend", backend, "--layout", layout,
                                                "--k", str(k), "--size", str(n),
                                                "--repeats", str(repeats)],
                            threads=threads, cache=fresh or self.cache_root / "many",
                            env_extra=env):
                        row.update(bench="many", cache=phase, threads=threads)
            finally:
                if fresh is not None:
                    shutil.rmtree(fresh, ignore_errors=True)

        def peer_rows(framework, layouts, k, n):
            for layout in layouts:
                for threads in (1, 2):
                    for row in self.worker("multi_tensor.py",
                                           ["--framework", framework, "--layout", layout,
                                            "--k", str(k), "--size", str(n),
                                            "--repeats", str(repeats)], threads=threads):
                        row.update(bench="many", cache="-")

        for k in tensors:
            for backend in backends:
                symopt_rows(backend, "vector", k, size, cold=True)
                symopt_rows(backend, "fused", k, size, cold=True)
                if vector_fused:
                    symopt_rows(backend, "vector-fused", k, size, cold=True)
                if per_tensor or k <= 100:
                    symopt_rows(backend, "per-tensor", k, size, cold=per_tensor)
                symopt_rows(backend, "inputs-only", k, size, cold=False)
            peer_rows("torch", ("foreach", "fused"), k, size)
            peer_rows("jax", ("jit",), k, size)
        for n in big:
            for backend in backends:
                for threads in (1, 2):
                    symopt_rows(backend, "fused", 1, int(n), cold=False, threads=threads)
            peer_rows("torch", ("fused",), 1, int(n))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats, to check that everything runs")
    parser.add_argument("--only", nargs="+",
                        choices=["update", "mlp", "compile", "levers", "many"],
                        default=["update", "mlp", "compile", "levers", "many"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", nargs="+", help="update-step sizes (default 1e5 1e6 1e7 mlp)")
    parser.add_argument("--rules", nargs="+", help="update-step rules (default: all)")
    parser.add_argument("--repeats", type=int, help="timed repeats per measurement")
    parser.add_argument("--min-time", type=float, help="seconds per timed repeat")
    parser.add_argument("--rounds", type=int, help="update step: passes over the configs")
    parser.add_argument("--epochs", type=int, help="MLP: timed epochs")
    parser.add_argument("--steps", type=int, help="MLP: steps per timed epoch (600 = full)")
    parser.add_argument("--compile-repeats", type=int)
    parser.add_argument("--many-tensors", type=int, nargs="+", help="many: tensor counts "
                        "(default 100 300)")
    parser.add_argument("--many-size", type=int, default=10_000,
                        help="many: elements per tensor")
    parser.add_argument("--per-tensor", action="store_true",
                        help="many: also compile the per-tensor path cold (minutes each)")
    parser.add_argument("--many-vector-fused", action="store_true",
                        help="many: also the same elements as one tensor, fused")
    parser.add_argument("--many-big", type=float, nargs="*",
                        help="many: one tensor of each size, 1 and 2 threads "
                             "(default 1e6 4e6 1e7)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                        "symopt-bench-cache"),
                        help="PyTensor compiledirs of the timing runs (one per config)")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    quick = args.quick
    defaults = {"sizes": ["1e5", "1e6", "mlp"] if quick else ["1e5", "1e6", "1e7", "mlp"],
                "repeats": 3 if quick else 7, "min_time": 0.02 if quick else 0.1,
                "rounds": 1 if quick else 2, "epochs": 1 if quick else 3,
                "steps": 60 if quick else 600, "compile_repeats": 1 if quick else 3,
                "many_tensors": [20] if quick else [100, 300],
                "many_big": [1e6] if quick else [1e6, 4e6, 1e7]}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    import symopt

    # the rules that need the loss are timed whole by probe_cost.py, not here
    rules = args.rules or [n for n, r in symopt.RULES.items() if not r.needs_loss]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runner = Runner(args)
    meta = {"machine_before": _common.machine(), "args": vars(args), "quick": quick,
            "update_lever_base": UPDATE_LEVER_BASE, "mlp_lever_base": MLP_LEVER_BASE}
    runner.save(meta)
    t0 = time.perf_counter()

    lever_sizes = ["1e6", "mlp"] if quick else ["1e6", "1e7", "mlp"]
    bw_sizes = sorted(set(args.sizes if "update" in args.only else []) | set(lever_sizes))
    if "update" in args.only or "levers" in args.only:
        runner.phase = "bandwidth"
        runner.bandwidth(bw_sizes)
    if "update" in args.only:
        runner.phase = "update"
        runner.update(UPDATE_CONFIGS, args.sizes, rules, args.threads, args.rounds)
    if "levers" in args.only:
        runner.phase = "levers"
        base = {k: UPDATE_CONFIGS[k] for k in ("symopt-numba", "symopt-c")}
        runner.update({**base, **{k: v for k, v in UPDATE_LEVERS.items()
                                  if k != "symopt-c-openmp"}},
                      lever_sizes, rules, [1], args.rounds)
        if 2 in args.threads:
            runner.update({"symopt-c": UPDATE_CONFIGS["symopt-c"],
                           "symopt-c-openmp": UPDATE_LEVERS["symopt-c-openmp"]},
                          lever_sizes, rules, [2], args.rounds)
    if "update" in args.only or "levers" in args.only:
        runner.phase = "bandwidth"
        runner.bandwidth(bw_sizes)
    if "mlp" in args.only:
        runner.phase = "mlp"
        runner.mlp(MLP_CONFIGS, ["momentum", "adam"], args.threads, args.epochs, args.steps)
    if "levers" in args.only:
        runner.phase = "mlp-levers"
        runner.mlp({"symopt-numba": MLP_CONFIGS["symopt-numba"],
                    "symopt-cvm": MLP_CONFIGS["symopt-cvm"], **MLP_LEVERS},
                   ["momentum", "adam"], [1], args.epochs, args.steps)
    if "compile" in args.only:
        runner.phase = "compile"
        runner.compile(COMPILE_CONFIGS, ["momentum", "adam"], args.compile_repeats)
    if "many" in args.only:
        runner.phase = "many"
        runner.many(args.many_tensors, args.many_size, 5 if quick else 20,
                    per_tensor=args.per_tensor, vector_fused=args.many_vector_fused,
                    big=args.many_big)

    meta["machine_after"] = _common.machine()
    meta["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    report.write_all(runner.save(meta), out)
    print(f"wrote {out / 'results.md'} ({meta['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
