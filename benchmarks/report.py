"""Turn ``results.json`` into CSV files and a Markdown report.

    python benchmarks/report.py benchmarks/results/results.json   # rewrites results.md

Ratios: ``xR`` is a time over the roofline time (bytes moved / best bandwidth measured
at the same working-set size and thread count); ``xT`` is a time over the best
torch.optim variant's (for-loop, foreach or fused) at the same size and thread count.
Both use the minimum over repeats; the medians are in the cells and in the CSV files.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

UPDATE_ORDER = ["symopt-numba", "symopt-c", "symopt-numba-fused", "symopt-c-fused",
                "torch-forloop", "torch-foreach", "torch-fused",
                "optax", "numpy"]
TORCH = ("torch-forloop", "torch-foreach", "torch-fused")
SIZE_ORDER = {"1e5": 0, "1e6": 1, "1e7": 2, "mlp": 3}
TARGET = {"symopt-numba": 1.2, "symopt-c": 2.0, "symopt-numba-fused": 1.2, "symopt-c-fused": 2.0}
GRAPH_CONFIGS = ("symopt-numba", "symopt-c", "symopt-numba-fused", "symopt-c-fused",
                 "symopt-numba-nofusion", "symopt-numba-noinplace")


def geomean(values):
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else float("nan")


def us(seconds):
    return f"{seconds * 1e6:,.0f}" if seconds >= 1e-4 else f"{seconds * 1e6:.1f}"


def fmt(x, digits=2):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- merging

def merge_timings(rows, key):
    """Merge repeated measurements (rounds): min of mins, median of all samples."""
    groups = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    merged = {}
    for k, rs in groups.items():
        base = dict(rs[0])
        timed = [r for r in rs if "min" in r]
        if timed:
            times = [t for r in timed for t in r["times"]]
            base.update(min=min(r["min"] for r in timed), median=statistics.median(times),
                        times=times, rounds=len(timed))
        timed = [r for r in rs if "cpu_min" in r]
        if timed:
            times = [t for r in timed for t in r["cpu_times"]]
            base.update(cpu_min=min(r["cpu_min"] for r in timed),
                        cpu_median=statistics.median(times), cpu_times=times)
        merged[k] = base
    return merged


def bandwidths(results, clock="wall"):
    """Best GB/s by (threads, working-set bytes), over all bandwidth runs.

    The roof for *t* threads is the best measured with at most *t* threads (a process
    allowed two cores can always run on one). In CPU time, only 1-thread runs count.
    """
    best, kernels = {}, defaultdict(list)
    for r in results:
        if r.get("bench") != "bandwidth":
            continue
        for ws, d in r["gbps"].items():
            key = (r["threads"], int(ws))
            kernels[key].append({**{k: v for k, v in d.items() if k != "cpu"},
                                 "cpu_best": d.get("cpu", {}).get("best", float("nan"))})
            if clock == "cpu":
                if r["threads"] != 1 or "cpu" not in d:
                    continue
                d = d["cpu"]
            best[key] = max(best.get(key, 0.0), d["best"])
    for (threads, ws) in list(best):
        for (t2, ws2), v in list(best.items()):
            if ws2 == ws and t2 < threads:
                best[(threads, ws)] = max(best[(threads, ws)], v)
    return best, kernels


def roofline(r, bw):
    ws = (2 + r["state_arrays"]) * r["n"] * 4
    gbps = bw.get((r["threads"], ws))
    return r["bytes"] / (gbps * 1e9) if gbps else None


# --------------------------------------------------------------------------- sections

def update_section(results, bw, phase="update", clock="wall"):
    MIN, MED = ("min", "median") if clock == "wall" else ("cpu_min", "cpu_median")
    rows = [r for r in results if r.get("bench") == "update" and r.get("phase") == phase
            and (clock == "wall" or r.get("threads") == 1)]
    merged = merge_timings(rows, lambda r: (r["config"], r["threads"], r["size"], r["rule"]))
    lines, csv_rows, summary = [], [], []
    threads_sizes = sorted({(k[1], k[2]) for k in merged},
                           key=lambda t: (t[0], SIZE_ORDER.get(t[1], 9)))
    configs = [c for c in UPDATE_ORDER if any(k[0] == c for k in merged)]
    configs += sorted({k[0] for k in merged} - set(configs))
    rules = list(dict.fromkeys(k[3] for k in merged))
    for threads, size in threads_sizes:
        body = []
        for rule in rules:
            here = {c: merged.get((c, threads, size, rule)) for c in configs}
            any_row = next((r for r in here.values() if r), None)
            if any_row is None:
                continue
            roof = roofline(any_row, bw)
            torch_best = min((here[c][MIN] for c in TORCH if here.get(c) and MIN in here[c]),
                             default=None)
            cells = [rule, us(roof) if roof else "-"]
            for c in configs:
                r = here.get(c)
                if not r or MIN not in r:
                    cells.append("n/a" if r else "-")
                    continue
                x_roof = r[MIN] / roof if roof else None
                x_torch = r[MIN] / torch_best if torch_best else None
                cells.append(f"{us(r[MIN])} / {us(r[MED])} ({fmt(x_roof)}xR, "
                             f"{fmt(x_torch)}xT)")
                csv_rows.append({"phase": phase, "clock": clock, "config": c,
                                 "threads": threads, "size": size,
                                 "n": r["n"], "rule": rule, "bytes": r["bytes"],
                                 "min_s": r[MIN], "median_s": r[MED],
                                 "roofline_s": roof, "x_roofline_min": x_roof,
                                 "x_roofline_median": r[MED] / roof if roof else None,
                                 "x_torch_min": x_torch, "rounds": r.get("rounds", 1),
                                 "compile_s": r.get("compile_s")})
            body.append(cells)
        lines.append(f"\n#### {threads} thread{'s' if threads > 1 else ''}, "
                     f"{size_label(size)}{', CPU time' if clock == 'cpu' else ''}\n")
        lines.append(table(["rule", "roofline us"] + configs, body))
    # summary: geometric mean and worst ratio per config
    by = defaultdict(list)
    for row in csv_rows:
        by[(row["config"], row["threads"], row["size"])].append(row)
    for (c, threads, size), rs in sorted(by.items(), key=lambda kv: (
            kv[0][1], SIZE_ORDER.get(kv[0][2], 9),
            configs.index(kv[0][0]) if kv[0][0] in configs else 99)):
        xr = [r["x_roofline_min"] for r in rs if r["x_roofline_min"]]
        xt = [r["x_torch_min"] for r in rs if r["x_torch_min"]]
        worst = max(rs, key=lambda r: r["x_roofline_min"] or 0)
        target = TARGET.get(c)
        met = sum(1 for x in xr if target and x <= target)
        summary.append([c, threads, size_label(size), fmt(geomean(xr)),
                        f"{fmt(worst['x_roofline_min'])} ({worst['rule']})", fmt(geomean(xt)),
                        f"{met}/{len(xr)} <= {target}" if target else ""])
    summary_md = table(["config", "threads", "size", "geomean xR", "worst xR", "geomean xT",
                        "issue target"], summary)
    return "\n".join(lines), summary_md, csv_rows, merged


def size_label(size):
    return "MLP 784-600-10 tensors (477,010 params, 4 tensors)" if size == "mlp" \
        else f"{float(size):.0e} params"


def graph_section(merged):
    rows = []
    seen = set()
    for (c, _threads, size, rule), r in sorted(merged.items()):
        g = r.get("graph")
        if not g or (c, rule) in seen or size != "mlp" or c not in GRAPH_CONFIGS:
            continue
        seen.add((c, rule))
        rows.append([c, rule, g["n_params"], g["elemwise_loops"], g["param_sized_nodes"],
                     "yes" if g["all_inplace"] else "NO", ", ".join(g["ops"]),
                     ", ".join(g["float64"]) or "none", fmt(r.get("compile_s"), 2)])
    return table(["config", "rule", "tensors", "Elemwise loops", "param-sized nodes",
                  "all in place", "scalar ops", "float64 vars", "compile s"], rows)


def mlp_section(results, phase="mlp", clock="wall"):
    MIN, MED = ("min", "median") if clock == "wall" else ("cpu_min", "cpu_median")
    rows = [r for r in results if r.get("bench") == "mlp" and r.get("phase") == phase
            and (clock == "wall" or r.get("threads") == 1)]
    merged = merge_timings(rows, lambda r: (r["config"], r["rule"], r["threads"]))
    body, csv_rows = [], []
    keys = sorted(merged, key=lambda k: (k[1], k[2], k[0]))
    for cfg, rule, threads in keys:
        r = merged[(cfg, rule, threads)]
        if MIN not in r:
            continue
        torch_best = min((merged[(t, rule, threads)][MIN] for t in TORCH
                          if (t, rule, threads) in merged and MIN in merged[(t, rule, threads)]),
                         default=None)
        jax = merged.get(("jax", rule, threads), {}).get(MIN)
        x_torch = r[MIN] / torch_best if torch_best else None
        x_jax = r[MIN] / jax if jax else None
        step = r[MIN] / 600
        body.append([rule, threads, cfg, f"{r[MIN]:.2f} / {r[MED]:.2f}",
                     us(step), fmt(x_torch), fmt(x_jax),
                     "yes" if r.get("extrapolated") else "", fmt(r.get("final_loss"), 3)])
        csv_rows.append({"phase": phase, "clock": clock, "config": cfg, "rule": rule,
                         "threads": threads, "epoch_min_s": r[MIN], "epoch_median_s": r[MED],
                         "step_min_s": step, "x_torch_best": x_torch, "x_jax": x_jax,
                         "steps_timed": r.get("steps_timed"),
                         "compile_s": r.get("compile_s"), "peak_rss_mib": r.get("peak_rss_mib"),
                         "final_loss": r.get("final_loss")})
    md = table(["rule", "threads", "config", "epoch s (min / median)", "step us (min)",
                "x torch best", "x JAX", "extrapolated", "loss after"], body)
    return md, csv_rows, merged


def memory_section(results):
    """Peak RSS per (config, rule) at 1 thread: the lowest over its training runs.

    A run whose PyTensor cache was cold also holds LLVM's or gcc's memory while it
    compiles; taking the lowest run keeps the training run's own peak.
    """
    runs = defaultdict(list)
    for r in results:
        if r.get("bench") == "mlp" and r.get("threads") == 1 and "peak_rss_mib" in r:
            runs[(r["config"], r["rule"])].append(r)
    best = {k: min(rs, key=lambda r: r["peak_rss_mib"]) for k, rs in runs.items()}
    body = []
    for (cfg, rule), r in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        torch = best.get(("torch-forloop", rule), {}).get("peak_rss_mib")
        rss = r.get("rss_mib", {})
        body.append([rule, cfg, f"{r['peak_rss_mib']:.0f}",
                     f"{rss.get('imported_and_built', 0):.0f}", f"{rss.get('data', 0):.0f}",
                     f"{r['peak_rss_mib'] - rss.get('data', 0):.0f}",
                     fmt(r["peak_rss_mib"] / torch) if torch else "-", len(runs[(cfg, rule)])])
    return table(["rule", "config", "peak RSS MiB (ru_maxrss)", "after import+build",
                  "after data", "peak - after data", "x torch", "runs"], body)


def compile_section(results):
    rows = [r for r in results if r.get("bench") == "compile"]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["config"], r["rule"], r["cache"])].append(r)
    body, csv_rows = [], []
    for cfg, rule in sorted({(k[0], k[1]) for k in groups}):
        cold, warm = groups.get((cfg, rule, "cold"), []), groups.get((cfg, rule, "warm"), [])

        def med(rs, key):
            vals = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(vals) if vals else None
        body.append([cfg, rule, fmt(med(cold, "compile_s")), fmt(med(cold, "compile_cpu_s")),
                     fmt(med(warm, "compile_s")), fmt(med(warm, "compile_cpu_s")),
                     fmt(med(cold, "recompile_function_s")), fmt(med(cold, "import_s")),
                     fmt(med(cold, "build_s")), fmt(med(cold, "process_s")),
                     fmt(med(warm, "process_s")), len(cold)])
        for r in cold + warm:
            csv_rows.append({k: r.get(k) for k in ("config", "rule", "cache", "repeat", "compile_s",
                                                 "compile_cpu_s", "process_cpu_s",
                                                 "function_s", "first_call_s", "import_s",
                                                 "build_s", "recompile_function_s",
                                                 "process_s")})
    md = table(["config", "rule", "cold compile s", "cold compile CPU s", "warm compile s",
                "warm compile CPU s", "in-process recompile s",
                "import s", "graph build s", "cold process s", "warm process s", "runs"], body)
    return md, csv_rows


def lever_section(update_merged, mlp_merged, meta):
    """Each lever config against its baseline from the same lever pass, both clocks."""
    body = []
    base_of = meta.get("update_lever_base", {})
    by = defaultdict(lambda: {"min": [], "cpu_min": []})
    for (cfg, threads, size, rule), r in update_merged.items():
        base = base_of.get(cfg)
        b = update_merged.get((base, threads, size, rule)) if base else None
        for key in ("min", "cpu_min"):
            if b and key in r and key in b:
                by[(cfg, base, threads, size)][key].append(r[key] / b[key])
    for (cfg, base, threads, size), ratios in sorted(
            by.items(), key=lambda kv: (kv[0][0], kv[0][2], SIZE_ORDER.get(kv[0][3], 9))):
        w, c = ratios["min"], ratios["cpu_min"]
        body.append(["update step", cfg, base, threads, size_label(size), fmt(geomean(w)),
                     f"{fmt(min(w))} .. {fmt(max(w))}" if w else "-",
                     fmt(geomean(c)) if threads == 1 else "-"])
    base_of = meta.get("mlp_lever_base", {})
    for (cfg, rule, threads), r in sorted(mlp_merged.items()):
        base = base_of.get(cfg)
        b = mlp_merged.get((base, rule, threads)) if base else None
        if b and "min" in r and "min" in b:
            cpu = (fmt(r["cpu_min"] / b["cpu_min"]) if threads == 1 and "cpu_min" in r
                   and "cpu_min" in b else "-")
            body.append(["MLP epoch", cfg, base, threads, rule, fmt(r["min"] / b["min"]), "",
                         cpu])
    return table(["benchmark", "lever config", "baseline", "threads", "size / rule",
                  "wall: lever / baseline (geomean over rules)", "range",
                  "CPU time: lever / baseline"], body)


def many_section(results):
    """Adam over many tensors: symopt's paths, cold and warm, against the peers."""
    rows = [x for x in results if x.get("bench") == "many" and "min" in x]
    if not rows:
        return "(not run)\n", []
    header = ["framework", "backend", "layout", "threads", "k x size", "cache", "compile s",
              "peak MiB", "step min ms", "step median ms"]
    body = [[x["framework"], x["backend"], x["layout"], x.get("threads", 1),
             f"{x['k']} x {x['size']}", x.get("cache", ""), fmt(x["compile_s"]),
             f"{x['peak_rss_mib']:.0f}", fmt(x["min"] * 1e3, 3), fmt(x["median"] * 1e3, 3)]
            for x in rows]
    csv_rows = [dict(zip(header, line)) for line in body]
    return table(header, body), csv_rows


def bandwidth_section(kernels):
    body = []
    for (threads, ws), ds in sorted(kernels.items()):
        cpu = [d["cpu_best"] for d in ds if math.isfinite(d.get("cpu_best", float("nan")))]
        body.append([threads, f"{ws / 1e6:.1f}"] +
                    [fmt(max(d[k] for d in ds), 1) for k in ("copy", "axpy", "triad", "best")] +
                    [fmt(max(cpu), 1) if cpu and threads == 1 else "-", len(ds)])
    return table(["threads", "working set MB", "copy GB/s", "axpy (in place) GB/s",
                  "triad GB/s", "best GB/s", "best GB/s in CPU time", "runs"], body)


def write_csv(path, rows):
    if not rows:
        return
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def write_all(payload, out: Path):
    out = Path(out)
    meta, results = payload["meta"], payload["results"]
    bw, kernels = bandwidths(results)
    up_md, up_summary, up_csv, up_merged = update_section(results, bw, "update")
    bw_cpu, _ = bandwidths(results, "cpu")
    cpu_md, cpu_summary, cpu_csv, _ = update_section(results, bw_cpu, "update", "cpu")
    lev_md, lev_summary, lev_csv, lev_merged = update_section(results, bw, "levers")
    graph_md = graph_section({**lev_merged, **up_merged})
    mlp_md, mlp_csv, mlp_merged = mlp_section(results, "mlp")
    mlp_cpu_md, mlp_cpu_csv, _ = mlp_section(results, "mlp", "cpu")
    mlev_md, mlev_csv, mlev_merged = mlp_section(results, "mlp-levers")
    comp_md, comp_csv = compile_section(results)
    many_md, many_csv = many_section(results)
    errors = [r for r in results if r.get("bench") == "error"]
    before, after = meta.get("machine_before", {}), meta.get("machine_after", {})
    parts = [
        "# symopt benchmark results\n",
        f"Machine: {before.get('cpu')}, {before.get('cores')} cores; Python "
        f"{before.get('python')}. Started {before.get('time')}, "
        f"load average {fmt_load(before.get('loadavg'))}; finished {after.get('time')}, "
        f"load average {fmt_load(after.get('loadavg'))}. "
        + ("QUICK run (small sizes, few repeats): numbers are provisional."
         if meta.get("quick") else ""),
        f"\nVersions: {versions(results)}\n",
        *[f"Note: {n}\n" for n in meta.get("notes", [])],
        "Cells of the update tables: `min / median` microseconds per step, then the minimum "
        "as a multiple of the roofline (`xR`) and of the best torch.optim variant (`xT`).\n",
        "## Memory bandwidth (the roofline's denominator)\n", bandwidth_section(kernels),
        "\n## 1. Update step alone: summary (wall clock)\n", up_summary,
        "\n## 1. Update step alone, 1 thread: summary in CPU time (robust to machine load)\n",
        cpu_summary,
        "\n## 2. MLP training step (784-600-10, batch 100, float32), wall clock\n", mlp_md,
        "\n## 2. MLP training step, 1 thread, CPU time (robust to machine load)\n", mlp_cpu_md,
        "\n## 3. Compile time of the MLP training function\n", comp_md,
        "\n## 4. Memory: peak resident set of a training run (1 thread)\n",
        memory_section(results),
        "\n## 5. Many tensors: Adam over k tensors, float32 (cache: cold or warm compile)\n",
        many_md,
        "\n## Levers, one at a time\n", lever_section(lev_merged, mlev_merged, meta),
        "\n### Compiled update graphs (symopt, MLP-shaped tensors)\n", graph_md,
        "\n### Lever runs: update step\n", lev_summary, lev_md,
        "\n### Lever runs: MLP\n", mlev_md,
        "\n## 1. Update step alone: every rule, wall clock\n", up_md,
        "\n## 1. Update step alone: every rule, 1 thread, CPU time\n", cpu_md,
    ]
    if errors:
        parts += ["\n## Failed workers\n"] + [
            f"- `{e['script']} {' '.join(e['argv'])}` (threads {e['threads']}): "
            f"`{e['stderr'].strip().splitlines()[-1] if e['stderr'].strip() else '?'}`"
            for e in errors]
    (out / "results.md").write_text("\n".join(parts) + "\n")
    write_csv(out / "update.csv", up_csv + cpu_csv + lev_csv)
    write_csv(out / "mlp.csv", mlp_csv + mlp_cpu_csv + mlev_csv)
    write_csv(out / "compile.csv", comp_csv)
    write_csv(out / "many.csv", many_csv)
    write_csv(out / "bandwidth.csv", [
        {"threads": t, "working_set_bytes": ws, **{k: max(d[k] for d in ds) for k in ds[0]}}
        for (t, ws), ds in sorted(kernels.items())])


def fmt_load(load):
    return ", ".join(f"{x:.2f}" for x in load) if load else "?"


def versions(results):
    v = {}
    for r in results:
        v.update(r.get("versions", {}))
    return ", ".join(f"{k} {val}" for k, val in sorted(v.items()))


if __name__ == "__main__":
    default = Path(__file__).parent / "results" / "results.json"
    path = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    write_all(json.loads(path.read_text()), path.parent)
    print(f"wrote {path.parent / 'results.md'}")
