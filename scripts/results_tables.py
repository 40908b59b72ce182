"""The README's results and performance tables, generated from the committed result files.

Every number in those tables is read here from a file in the repository (the examples'
runs in ``docs/results/``, the benchmark runs in ``benchmarks/results/``), never typed:

    python scripts/results_tables.py            # rewrite the README's generated tables
    python scripts/results_tables.py --check    # exit 1 when the README is out of date
    python scripts/results_tables.py --print    # show the tables, change nothing

In the README each generated table sits between ``<!-- results_tables.py: NAME -->`` and
``<!-- end NAME -->``; the documentation (``docs/performance.rst``) includes the same
tables in reStructuredText. Standard library only, so it runs before anything is
installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path("docs/results")
BENCH = Path("benchmarks/results")


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def _json(root: Path, path: Path):
    return json.loads((root / path).read_text())


def _csv(root: Path, path: Path) -> list[dict]:
    with open(root / path, newline="") as f:
        return list(csv.DictReader(f))


def _geomean(values) -> float:
    values = [float(v) for v in values]
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _by(rows, **match):
    """The one row whose fields equal ``match`` (as strings)."""
    found = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in match.items())]
    if len(found) != 1:
        raise LookupError(f"{len(found)} rows match {match}")
    return found[0]


def ms(seconds) -> str:
    return f"{float(seconds) * 1e3:.2f}"


def acc(value) -> str:
    return f"{float(value):.3f}"


# ---------------------------------------------------------------------------------------
# The tables: each returns (header, rows, sources)
# ---------------------------------------------------------------------------------------


def studies(root: Path):
    """The examples' highlights, one row per study."""
    toy = {r["form"]: r for r in _json(root, RESULTS / "blog_toy/iterations.json")}
    vanilla, cm, nag = (toy[f"blog.MomentumUpdate({k})"] for k in ("vanilla", "cm", "nag"))
    blog = {r["rule"]: r for r in _json(root, RESULTS / "blog_mlp/blog.json")}
    book = {r["rule"]: r for r in _json(root, RESULTS / "blog_mlp/book.json")}
    lecture = _json(root, RESULTS / "lecture_logreg/results.json")
    minibatch = sorted((r for r in lecture if r["mode"] == "mini-batch 128"
                        and not r["rule"].startswith("Rprop")), key=lambda r: r["train_loss"])
    rprop_mb = next(r for r in lecture if r["rule"] == "Rprop (mini-batch 128)")
    rprop = next(r for r in lecture if r["rule"] == "Rprop (full batch)")
    course = {(r["part"], r["rule"]): r for r in _json(root, RESULTS / "course_note/results.json")}
    main = _json(root, RESULTS / "compare_rules/comparison.json")
    ranked = sorted(main, key=lambda r: -r["valid_accuracy"])
    leaders = [r["rule"] for r in ranked if r["valid_accuracy"] == ranked[0]["valid_accuracy"]]
    last = [r["rule"] for r in ranked if r["valid_accuracy"] == ranked[-1]["valid_accuracy"]]
    blog_epochs = blog["sgd"]["epochs"]
    book_epochs = next(iter(book.values()))["epochs"]
    rows = [
        ["blog toy, iterations to cost < 0.005 from 1.0",
         f"SGD {vanilla['iterations_to_threshold']}, CM {cm['iterations_to_threshold']}, "
         f"NAG {nag['iterations_to_threshold']}; after getting there CM climbs back by "
         f"{cm['ridge_after_threshold']:.3f} (the blog's ridge), NAG by "
         f"{nag['ridge_after_threshold']:.4f}"],
        [f"blog MLP 784-600-10, full Fashion-MNIST, {blog_epochs} epochs",
         "test accuracy " + ", ".join(f"{name.upper() if name != 'momentum' else 'CM'} "
                                      f"{acc(blog[name]['test_accuracy'])}"
                                      for name in ("sgd", "momentum", "nag"))],
        [f"the book's rules on the same MLP, {book_epochs} epochs",
         "test accuracy " + ", ".join(f"{name.removeprefix('book.')} "
                                      f"{acc(r['test_accuracy'])}" for name, r in book.items())],
        [f"lecture: logistic regression, {minibatch[0]['epochs']} epochs",
         "training NLL " + " < ".join(f"{r['rule']} {acc(r['train_loss'])}" for r in minibatch)
         + f"; full-batch Rprop {acc(rprop['train_loss'])} after {rprop['epochs']} steps "
         f"(on mini-batches {rprop_mb['train_loss']:.2f} after {rprop_mb['epochs']} epoch)"],
        ["course note: two moons, test accuracy",
         ", ".join(f"{rule} {acc(course[('optimizers', rule)]['test_accuracy'])}"
                   for rule in ("mini-batch GD", "momentum (0.9)", "Adam"))
         + "; inputs in raw units "
         f"{acc(course[('normalisation', 'raw units')]['test_accuracy'])}, standardised "
         + acc(course[("normalisation", "standardised (training mean/std)")]["test_accuracy"])],
        [f"main job (`symopt compare`), embedded subset, {len(main)} forms, "
         f"{main[0]['epochs']} epochs",
         f"best validation accuracy {acc(ranked[0]['valid_accuracy'])} ({', '.join(leaders)}), "
         f"last {acc(ranked[-1]['valid_accuracy'])} ({', '.join(last)})"
         + ("; each text form scores exactly as the library rule it transcribes"
            if all(_same_as_library(r, main) for r in main if r["group"] != "library")
            else "")],
    ]
    family = {part: sorted(_json(root, RESULTS / f"natural_family/{part}.json"),
                           key=lambda r: r["final_cost"])
              for part in ("mlp", "autoencoder", "adam-paper")}

    def ranking(part, cost=True):
        return " < ".join(f"{r['method']} {r['final_cost']:.3g}"
                          + (f" ({r['per_step_vs_adam']:.1f}x)" if cost else "")
                          for r in family[part])

    rows += [
        [f"the natural-gradient family vs Adam, {family['mlp'][0]['steps']} steps, embedded "
         "subset: final training cost (step time in Adam steps)",
         f"MLP 784-100-100-10: {ranking('mlp')}; deep autoencoder: {ranking('autoencoder')}"],
        [f"the Adam paper's dropout MLP, {family['adam-paper'][0]['steps']} steps",
         "training cost " + ranking("adam-paper", cost=False)],
    ]
    sources = ["docs/results/blog_toy/iterations.json", "docs/results/blog_mlp/blog.json",
               "docs/results/blog_mlp/book.json", "docs/results/lecture_logreg/results.json",
               "docs/results/course_note/results.json",
               "docs/results/compare_rules/comparison.json",
               "docs/results/natural_family/mlp.json",
               "docs/results/natural_family/autoencoder.json",
               "docs/results/natural_family/adam-paper.json"]
    return ["study", "result"], rows, sources


_LIBRARY_OF = {"blog.sgd": "sgd", "blog.momentum": "momentum", "blog.nag": "nesterov_momentum",
               "book.sgd": "sgd", "book.momentum": "momentum", "book.nag": "nesterov_momentum",
               "book.adagrad": "adagrad", "book.adadelta": "adadelta",
               "book.rmsprop": "rmsprop", "book.adam": "adam"}


def _same_as_library(row, rows) -> bool:
    """Whether a text form's final validation accuracy is its library rule's."""
    rule = _LIBRARY_OF.get(row["rule"])
    twin = next((r for r in rows if r["rule"] == rule), None)
    return twin is not None and twin["valid_accuracy"] == row["valid_accuracy"]


def main_job(root: Path):
    """Every form of the main job's committed run."""
    rows = [[r["group"], f"`{r['rule']}`", f"{r['learning_rate']:g}", acc(r["valid_accuracy"]),
             acc(r["best_valid_accuracy"]), acc(r["test_accuracy"])]
            for r in _json(root, RESULTS / "compare_rules/comparison.json")]
    return (["group", "form", "learning rate", "final valid accuracy", "best valid accuracy",
             "test accuracy"], rows, ["docs/results/compare_rules/comparison.json"])


def performance(root: Path):
    """Update step against the roofline and torch, MLP step, compile time, memory."""
    update = [r for r in _csv(root, BENCH / "update.csv") if r["clock"] == "wall"]
    mlp = _csv(root, BENCH / "mlp.csv")
    mlp2 = _csv(root, BENCH / "archive/idle-mlp-2/mlp.csv")
    compile_rows = _csv(root, BENCH / "compile.csv")

    def roofline(config, threads):
        sel = [r for r in update if r["config"] == config and r["threads"] == str(threads)
               and r["size"] == "1e7"]
        return _geomean(r["x_roofline_min"] for r in sel), max(
            float(r["x_roofline_min"]) for r in sel), len(sel)

    rows = []
    for config, label in (("symopt-numba-fused", "Numba, `fuse=True`"),
                          ("symopt-numba", "Numba, per tensor"),
                          ("symopt-c-fused", "C, `fuse=True`"),
                          ("symopt-c", "C, per tensor (PyTensor's loops)"),
                          ("torch-fused", "torch.optim's fused kernels")):
        (g1, w1, n1), (g2, _, _) = roofline(config, 1), roofline(config, 2)
        rows.append([f"update step, 1e7 float32 parameters: {label}",
                     f"{g1:.2f}x the memory roofline (geomean of {n1} rules, worst "
                     f"{w1:.2f}x) on 1 thread, {g2:.2f}x on 2"])

    def best(rows_, rule, threads, prefix):
        sel = [r for r in rows_ if r["rule"] == rule and r["threads"] == str(threads)
               and r["config"].startswith(prefix)]
        return min(float(r["step_min_s"]) for r in sel)

    for rule in ("adam", "momentum"):
        parts = []
        for name, rows_ in (("run 1", mlp), ("run 2", mlp2)):
            parts.append(name + ": " + ", ".join(
                f"{who} {ms(best(rows_, rule, 1, prefix))} / {ms(best(rows_, rule, 2, prefix))}"
                for who, prefix in (("symopt", "symopt"), ("torch.optim best", "torch"),
                                    ("JAX", "jax"))))
        rows.append([f"MLP step (784-600-10, batch 100), {rule}, ms on 1 / 2 threads",
                     "; ".join(parts)])
    cold = [r for r in compile_rows if r["cache"] == "cold"]
    warm = [r for r in compile_rows if r["cache"] == "warm"]

    def span(sel, prefix, onehot=False):
        values = [float(r["compile_s"]) for r in sel if r["config"].startswith(prefix)
                  and r["config"].endswith("onehot") == onehot]
        return f"{min(values):.1f}-{max(values):.1f} s"

    rows.append(["compile of the MLP training function, first call included",
                 f"symopt cold {span(cold, 'symopt')} (Numba or gcc), warm "
                 f"{span(warm, 'symopt')}; all-C linker cold {span(cold, 'symopt', onehot=True)}; "
                 f"JAX {span(cold, 'jax')}"])
    mem = {prefix: [float(r["peak_rss_mib"]) for r in mlp if r["config"].startswith(prefix)]
           for prefix in ("symopt-numba", "torch", "jax")}
    rows.append(["peak memory of a training run (MiB)",
                 ", ".join(f"{name} {min(v):.0f}-{max(v):.0f}" for name, v in
                           (("symopt (Numba, per tensor and fused)", mem["symopt-numba"]),
                            ("PyTorch", mem["torch"]), ("JAX", mem["jax"])))])
    sources = ["benchmarks/results/update.csv", "benchmarks/results/mlp.csv",
               "benchmarks/results/archive/idle-mlp-2/mlp.csv", "benchmarks/results/compile.csv"]
    return ["measure", "result"], rows, sources


def many_tensors(root: Path):
    """Adam over 100 (and 300) tensors of 1e4 float32 elements, one thread unless said."""
    numba = _json(root, BENCH / "archive/multi_tensor.json")["rows"]
    c = _json(root, BENCH / "archive/multi_tensor_c_s3.json")["rows"]
    c300 = _json(root, BENCH / "archive/multi_tensor_c300_s3.json")["rows"]
    peers = _json(root, BENCH / "archive/multi_tensor_peers.json")["rows"]

    def sym(rows_, backend, layout, phase, k=100):
        return _by(rows_, framework="symopt", backend=backend, layout=layout, phase=phase,
                   k=k, size=10000)

    def peer(framework, backend, threads, k=100):
        return _by(peers, framework=framework, backend=backend, threads=threads, k=k,
                   size=10000)

    rows = []
    for name, rows_, backend in (("Numba", numba, "numba"), ("C VM", c, "c")):
        per = sym(rows_, backend, "per-tensor", "warm")
        fused_cold, fused_warm = (sym(rows_, backend, "fused", p) for p in ("cold", "warm"))
        rows.append([f"{name}: step", f"{ms(per['min'])} ms", f"{ms(fused_warm['min'])} ms"])
        rows.append([f"{name}: compile, peak memory",
                     f"{per['compile_s']:.0f} s ({per['phase']} cache), "
                     f"{per['peak_rss_mib'] / 1024:.1f} GB",
                     f"{fused_cold['compile_s']:.0f} s (cold cache), "
                     f"{fused_cold['peak_rss_mib'] / 1024:.1f} GB"])
        rows.append([f"{name}: warm compile", "-", f"{fused_warm['compile_s']:.1f} s"])
    c300_cold, c300_warm = (sym(c300, "c", "fused", p, k=300) for p in ("cold", "warm"))
    rows.append(["C VM, 300 tensors: step; cold / warm compile", "-",
                 f"{ms(c300_warm['min'])} ms; {c300_cold['compile_s']:.0f} s / "
                 f"{c300_warm['compile_s']:.1f} s"])
    for label, framework, backend in (("torch.optim fused Adam", "torch", "fused"),
                                      ("optax, one jitted step", "jax", "optax")):
        one, two = peer(framework, backend, 1), peer(framework, backend, 2)
        rows.append([f"{label}: step on 1 / 2 threads", "-",
                     f"{ms(one['min'])} / {ms(two['min'])} ms"])
    t300 = peer("torch", "fused", 2, k=300)
    rows.append(["torch.optim fused Adam, 300 tensors, 2 threads: step", "-",
                 f"{ms(t300['min'])} ms"])
    sources = [f"benchmarks/results/archive/{n}.json" for n in
               ("multi_tensor", "multi_tensor_c_s3", "multi_tensor_c300_s3",
                "multi_tensor_peers")]
    return ["Adam, 100 x 1e4 float32 tensors, 1 thread", "per-tensor", "fused"], rows, sources


TABLES = {"studies": studies, "main_job": main_job, "performance": performance,
          "many_tensors": many_tensors}


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------


def markdown(header, rows, sources) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    lines += ["", "Generated by `scripts/results_tables.py` from "
              + ", ".join(f"[{s.split('/')[-1]}]({s})" for s in sources) + "."]
    return "\n".join(lines)


def _rst_cell(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"``\1``", text)


def rst(header, rows, sources) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {_rst_cell(row[0])}")
        lines += [f"     - {_rst_cell(cell)}" for cell in row[1:]]
    lines += ["", "Generated by ``scripts/results_tables.py`` from "
              + ", ".join(f"``{s}``" for s in sources) + ".", ""]
    return "\n".join(lines)


def rst_tables(root: Path = ROOT) -> dict[str, str]:
    """Every table in reStructuredText, by name (for the documentation)."""
    return {name: rst(*make(root)) for name, make in TABLES.items()}


def update_readme(text: str, root: Path = ROOT) -> str:
    """``text`` with every generated block rewritten."""
    for name, make in TABLES.items():
        pattern = re.compile(
            rf"(<!-- results_tables.py: {name} -->\n)(?:.*?\n)?(<!-- end {name} -->)", re.S)
        if pattern.search(text):
            table = markdown(*make(root))
            text = pattern.sub(lambda m, table=table: m.group(1) + table + "\n" + m.group(2),
                               text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the README's tables differ from the files")
    parser.add_argument("--print", action="store_true", help="print the tables only")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    if args.print:
        for name, make in TABLES.items():
            print(f"## {name}\n\n{markdown(*make(ROOT))}\n")
        return 0
    old = args.readme.read_text()
    new = update_readme(old)
    if args.check:
        if new != old:
            print(f"{args.readme} is out of date: run python scripts/results_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new)
        print(f"rewrote the generated tables in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
