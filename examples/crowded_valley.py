"""A small Crowded-Valley study: every rule at its default and tuned, read from a sweep.

Schmidt, Schneider & Hennig (2021), "Descending through a Crowded Valley", compared 15
optimizers on 8 DeepOBS problems and found that no optimizer dominates and that trying
several optimizers at their default settings does about as well as tuning one. This
script asks the same two questions of a ``symopt sweep`` (by default the one in
``docs/results/sweep``, made by)::

    symopt sweep --problem quadratic_deep,logistic,mlp --rules all \\
        --learning-rates default,log:1e-4:1:5 --seeds 0-4 --steps 200 --dtype float32 \\
        --curve-every 10 --workers 2 --out docs/results/sweep --progress lines
    python examples/crowded_valley.py docs/results/sweep

and writes, into the same directory, ``study.md`` (the tables), ``defaults_vs_tuned.png``
and the performance profiles of the rules at their defaults and tuned
(``profile_defaults.png``, ``profile_tuned.png``).

"Default" is the rule's own default learning rate (symopt's, which are Lasagne's:
Adagrad, RMSProp and AdaDelta at 1.0); "tuned" is the best learning rate of the grid by
the median over seeds of the final loss (on the whole training set for the problems with
data). A diverged run counts as an infinite loss.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from symopt.lab.sweep_grid import default_learning_rate
from symopt.lab.sweep_log import read_records
from symopt.lab.sweep_report import (
    _figure,
    _legend_outside,
    final_value,
    plot_performance_profile,
    rule_styles,
)


def _median(values):
    return float(np.median(values)) if values else math.inf


def collect(records):
    """``{problem: {rule: {lr: [records over seeds]}}}``."""
    table = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in records:
        c = r["config"]
        table[c["problem"]][c["rule"]][c["hyperparameters"]["learning_rate"]].append(r)
    return table


def analyse(table):
    """Per problem and rule: the result at the default and tuned, with their spreads."""
    results = {}
    for problem, by_rule in table.items():
        results[problem] = {}
        for rule, by_lr in by_rule.items():
            medians = {lr: _median([final_value(r) for r in runs]) for lr, runs in by_lr.items()}
            best_lr = min(medians, key=lambda lr: (medians[lr], lr))
            default = default_learning_rate(rule)
            at_default = [lr for lr in by_lr if math.isclose(lr, default, rel_tol=1e-9)]
            entry = {"default_lr": default, "tuned_lr": best_lr, "tuned": medians[best_lr],
                     "tuned_runs": by_lr[best_lr],
                     "default": medians[at_default[0]] if at_default else math.nan,
                     "default_runs": by_lr[at_default[0]] if at_default else []}
            results[problem][rule] = entry
    return results


def _spread(runs):
    finals = [final_value(r) for r in runs]
    if not finals:
        return ""
    low, high = min(finals), max(finals)
    return f"{_num(low)}-{_num(high)}"


def _num(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isinf(value):
        return "diverged"
    return f"{value:.4g}"


def _accuracy(runs):
    values = [r["metrics"].get("test_accuracy") for r in runs
              if r.get("metrics", {}).get("test_accuracy") is not None]
    return f"{np.median(values):.3f}" if values else ""


def write_tables(results, path, meta_lines):
    lines = ["# A small Crowded-Valley study", "", *meta_lines, ""]
    for problem, by_rule in results.items():
        lines += [f"## {problem}", "",
                  "| rule | default lr | final loss at default (seeds: min-max) | tuned lr | "
                  "tuned final loss (min-max) | test accuracy at default / tuned |",
                  "|---|---|---|---|---|---|"]
        for rule, e in sorted(by_rule.items(), key=lambda kv: kv[1]["tuned"]):
            lines.append(
                f"| {rule} | {e['default_lr']:g} | {_num(e['default'])} "
                f"({_spread(e['default_runs'])}) | {e['tuned_lr']:g} | {_num(e['tuned'])} "
                f"({_spread(e['tuned_runs'])}) | {_accuracy(e['default_runs'])} / "
                f"{_accuracy(e['tuned_runs'])} |")
        lines.append("")
    lines += ["## Several rules at their defaults against one rule tuned", "",
              "| problem | best at default (rule) | best tuned (rule) | Adam tuned | "
              "median over rules, tuned | rules whose tuned loss beats the best default "
              "by more than 2 % |",
              "|---|---|---|---|---|---|"]
    for problem, by_rule in results.items():
        best_default = min(by_rule, key=lambda r: by_rule[r]["default"]
                           if not math.isnan(by_rule[r]["default"]) else math.inf)
        best_tuned = min(by_rule, key=lambda r: by_rule[r]["tuned"])
        bd = by_rule[best_default]["default"]
        tuned = sorted(e["tuned"] for e in by_rule.values())
        beating = [r for r, e in by_rule.items() if e["tuned"] < bd / 1.02]
        lines.append(
            f"| {problem} | {_num(bd)} ({best_default}) | {_num(by_rule[best_tuned]['tuned'])} "
            f"({best_tuned}) | {_num(by_rule.get('adam', {}).get('tuned', math.nan))} | "
            f"{_num(float(np.median(tuned)))} | {len(beating)} of {len(by_rule)}"
            f"{': ' + ', '.join(sorted(beating)) if beating else ''} |")
    lines.append("")
    Path(path).write_text("\n".join(lines))
    return Path(path)


def plot_defaults_vs_tuned(results, path):
    """One panel per problem: each rule's final loss at its default (open) and tuned
    (filled); the dashed line is the best of all rules at their defaults."""
    problems = list(results)
    rules = sorted({rule for by_rule in results.values() for rule in by_rule})
    styles = rule_styles(rules)
    fig = _figure(width=4.0 * len(problems) + 1.5, height=4.8)
    axes = fig.subplots(1, len(problems), squeeze=False, sharey=True)[0]
    for ax, problem in zip(axes, problems):
        by_rule = results[problem]
        finite = [v for e in by_rule.values() for v in (e["default"], e["tuned"])
                  if math.isfinite(v)]
        top = max(finite) * 3 if finite else 1.0
        for i, rule in enumerate(rules):
            if rule not in by_rule:
                continue
            e, st = by_rule[rule], styles[rule]
            d = e["default"] if math.isfinite(e["default"]) else top
            ax.plot([d], [i], marker="x" if not math.isfinite(e["default"]) else "o",
                    markerfacecolor="none", color=st["color"], linestyle="none")
            ax.plot([e["tuned"]], [i], marker="o", color=st["color"], linestyle="none",
                    label=rule)
            ax.plot([min(d, e["tuned"]), max(d, e["tuned"])], [i, i], color=st["color"],
                    linewidth=0.8, alpha=0.6)
        best_default = min((e["default"] for e in by_rule.values()
                            if math.isfinite(e["default"])), default=None)
        if best_default is not None:
            ax.axvline(best_default, color="black", linestyle="--", linewidth=1)
        if finite and max(finite) / min(finite) >= 10:
            ax.set_xscale("log")
        ax.set_xlabel("final loss (median over seeds)")
        ax.set_title(problem)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rules)))
    axes[0].set_yticklabels(rules, fontsize="small")
    axes[0].set_ylabel("rule (open: at its default; filled: tuned; x: diverged)")
    _legend_outside(axes[-1])
    fig.suptitle("Each rule at its default and tuned; dashed: the best rule at its default")
    fig.savefig(path, bbox_inches="tight")
    return Path(path)


def last_grid(records, directory, all_records=False):
    """The records of the grid of the last sweep into ``directory`` (the keys its
    ``sweep.json`` lists), so that every rule is tuned over the same learning rates even
    when the results file holds other runs; all of them with ``all_records`` or without a
    ``sweep.json``."""
    meta = Path(directory) / "sweep.json"
    if all_records or not meta.exists():
        return records
    keys = set(json.loads(meta.read_text())["keys"])
    return [r for r in records if r["key"] in keys]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default="docs/results/sweep",
                        help="a sweep's output directory (with results.jsonl)")
    parser.add_argument("--all-records", action="store_true",
                        help="read every record in results.jsonl, not only the grid of the "
                             "last sweep in the directory (its sweep.json)")
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    records, problems = read_records(directory / "results.jsonl")
    for message in problems:
        print(message)
    records = last_grid(records, directory, args.all_records)
    if not records:
        raise SystemExit(f"no records in {directory / 'results.jsonl'}")
    results = analyse(collect(records))
    seeds = sorted({r["config"]["seed"] for r in records})
    steps = sorted({r["config"]["steps"] for r in records})
    meta = [f"{len(records)} runs: {len(results)} problems, "
            f"{len({r['config']['rule'] for r in records})} rules, seeds {seeds}, "
            f"{', '.join(map(str, steps))} steps each. Final loss: the median over seeds, on "
            "the whole training set for the problems with data."]
    write_tables(results, directory / "study.md", meta)
    plot_defaults_vs_tuned(results, directory / "defaults_vs_tuned.png")
    styles = rule_styles(sorted({r for by_rule in results.values() for r in by_rule}))
    for kind, name, words in (("default", "profile_defaults.png", "at its default"),
                              ("tuned", "profile_tuned.png", "tuned")):
        values = {p: {rule: (e[kind] if not math.isnan(e[kind]) else math.inf)
                      for rule, e in by_rule.items()} for p, by_rule in results.items()}
        plot_performance_profile(values, directory / name, styles,
                                 title=f"Performance profile over {len(values)} problems, "
                                       f"each rule {words}")
    print(f"wrote {directory / 'study.md'} and the figures")


if __name__ == "__main__":
    main()
