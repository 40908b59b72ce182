r"""What a user looks at after a sweep: a summary table and figures.

From the records of a sweep (:mod:`symopt.lab.sweep_log`):

- :func:`summary_rows`: for each problem and rule, the best setting (the learning rate,
  and any other hyperparameter the grid varied) by the median over seeds of the final
  loss, with the spread over seeds (min and max) and the number of diverged runs;
  written as Markdown and CSV by :func:`write_report`;
- :func:`plot_learning_rates`: final loss against learning rate, one line per rule (the
  median over seeds, a band from the best to the worst seed), diverged settings marked;
- :func:`plot_curves`: the loss curves of each rule at its best setting (median and band
  over seeds);
- :func:`performance_profile` and :func:`plot_performance_profile`: in the style of
  Dolan & Moré (2002) and AlgoPerf (Dahl et al. 2023), for each rule the fraction of
  problems on which its result is within a factor :math:`\tau` of the best rule's, as a
  function of :math:`\tau \ge 1`: a rule whose curve rises first and highest is best
  most often and never far behind.

A diverged run counts as an infinite final loss: it loses every comparison.

Matplotlib draws without pyplot (an Agg canvas), so nothing changes the global backend.
Each rule keeps one colour, line style and marker in every figure (:func:`rule_styles`),
distinct for any number of rules, and legends sit outside the axes.

Examples
--------
>>> taus, fractions = performance_profile({"p1": {"a": 1.0, "b": 2.0},
...                                        "p2": {"a": 3.0, "b": 1.5}}, taus=[1, 2, 4])
>>> fractions
{'a': [0.5, 1.0, 1.0], 'b': [0.5, 1.0, 1.0]}
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = [
    "final_value",
    "markdown_summary",
    "performance_profile",
    "plot_curves",
    "plot_learning_rates",
    "plot_performance_profile",
    "rule_styles",
    "settings_by_rule",
    "summary_rows",
    "write_csv",
    "write_report",
]

# Matplotlib's tab10, then ColorBrewer's Dark2 and two more: 20 colours; the second ten
# rules are drawn dashed, so they differ from the first ten in hue and in line.
_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf",
            "#000000", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
            "#a6761d", "#666666", "#00008b"]
_LINESTYLES = ["-", "--", "-.", ":"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h"]


def rule_styles(rules):
    """A colour, line style and marker for each rule, in the order given: 20 colours,
    a line style per block of ten rules (solid, dashed, dash-dot, dotted) and 11 markers:
    no two of the first 40 rules share colour and line style, and beyond that the
    markers still tell them apart."""
    return {rule: {"color": _COLOURS[i % 20], "linestyle": _LINESTYLES[(i // 10) % 4],
                   "marker": _MARKERS[i % 11]}
            for i, rule in enumerate(rules)}


def final_value(record):
    """A run's final loss for comparisons: infinite when it diverged or has none."""
    value = record.get("final_loss")
    if record.get("diverged") or value is None or not math.isfinite(value):
        return math.inf
    return float(value)


def _tuned_names(records):
    """Hyperparameters (but the learning rate) that take more than one value."""
    values = defaultdict(set)
    for r in records:
        for name, value in r["config"]["hyperparameters"].items():
            values[name].add(json.dumps(value))
    return sorted(n for n, v in values.items() if len(v) > 1 and n != "learning_rate")


def settings_by_rule(records):
    """``{problem: {rule: {setting: [records over seeds]}}}``, a setting being the sorted
    tuple of the rule's hyperparameters (learning rate included)."""
    grouped = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in records:
        c = r["config"]
        setting = tuple(sorted((k, json.dumps(v)) for k, v in c["hyperparameters"].items()))
        grouped[c["problem"]][c["rule"]][setting].append(r)
    return grouped


def _median(values):
    return float(np.median(values)) if values else math.inf


def _best_setting(settings):
    """The setting with the lowest median final loss (ties: the first in order)."""
    return min(settings, key=lambda s: (_median([final_value(r) for r in settings[s]]), s))


def _setting_dict(setting):
    return {k: json.loads(v) for k, v in setting}


def summary_rows(records, defaults=None):
    """One row per problem and rule: the best setting and its results over seeds.

    ``defaults`` maps rule names to their default learning rates; where the grid ran a
    rule at its default, the row also gives the median there.
    """
    rows = []
    grouped = settings_by_rule(records)
    for problem in grouped:
        for rule, settings in grouped[problem].items():
            best = _best_setting(settings)
            runs = settings[best]
            finals = [final_value(r) for r in runs]
            finite = [v for v in finals if math.isfinite(v)]
            all_runs = [r for rs in settings.values() for r in rs]
            tuned = _tuned_names(all_runs)
            hyper = _setting_dict(best)
            row = {
                "problem": problem, "rule": rule,
                "learning_rate": hyper["learning_rate"],
                "tuned": ", ".join(f"{n}={hyper[n]}" for n in tuned if n in hyper),
                "median_final_loss": _median(finals),
                "min_final_loss": min(finals) if finals else math.inf,
                "max_final_loss": max(finals) if finals else math.inf,
                "seeds": len(runs),
                "diverged_at_best": sum(1 for r in runs if r.get("diverged")),
                "settings": len(settings),
                "diverged_runs": sum(1 for r in all_runs if r.get("diverged")),
                "runs": len(all_runs),
                "median_best_loss": _median([r["best_loss"] for r in runs
                                             if r.get("best_loss") is not None]),
            }
            if not finite:
                row["median_final_loss"] = math.inf
            metrics = sorted({m for r in runs for m in r.get("metrics", {})})
            for m in metrics:
                values = [r["metrics"][m] for r in runs
                          if r.get("metrics", {}).get(m) is not None]
                row[f"median_{m}"] = _median(values) if values else None
            if defaults and rule in defaults:
                at_default = [s for s in settings
                              if math.isclose(_setting_dict(s)["learning_rate"], defaults[rule],
                                              rel_tol=1e-9)]
                if at_default:
                    row["default_learning_rate"] = defaults[rule]
                    row["median_at_default"] = min(
                        _median([final_value(r) for r in settings[s]]) for s in at_default)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

_COLUMNS = ["problem", "rule", "learning_rate", "tuned", "median_final_loss",
            "min_final_loss", "max_final_loss", "seeds", "diverged_at_best",
            "default_learning_rate", "median_at_default", "diverged_runs", "runs"]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isinf(value):
            return "diverged" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _columns(rows):
    extra = sorted({k for row in rows for k in row} - set(_COLUMNS) - {"settings"})
    present = [c for c in _COLUMNS if any(c in row and row[c] not in ("", None) for row in rows)]
    return present + [c for c in extra if c.startswith("median_")]


def markdown_summary(rows, title="Sweep summary", notes=""):
    """The summary rows as a Markdown table, problem by problem."""
    columns = _columns(rows)
    lines = [f"# {title}", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    lines += ["", "Best setting of each rule by the median over seeds of the final loss; "
              "min and max over the same seeds. *diverged*: the median (or every seed) "
              "diverged. *median_at_default*: the median at the rule's default learning "
              "rate, where the grid ran it."]
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def write_csv(rows, path):
    columns = _columns(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("inf" if isinstance(row.get(c), float)
                                 and math.isinf(row[c]) else row.get(c, ""))
                             for c in columns})
    return Path(path)


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------


def _figure(width=7.5, height=4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _spans_decades(values):
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) >= 10


def _legend_outside(ax, **kwargs):
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize="small", **kwargs)


def plot_learning_rates(records, problem, path, styles=None, title=None):
    """Final loss against learning rate for each rule on ``problem``: the median over
    seeds (of the best setting of any other gridded hyperparameter), a band from the
    best to the worst seed, and an x at the top where the median diverged."""
    grouped = settings_by_rule(records)[problem]
    styles = styles or rule_styles(list(grouped))
    fig = _figure()
    ax = fig.add_subplot()
    lines, everything = {}, []
    for rule, settings in grouped.items():
        by_lr = defaultdict(list)
        for s in settings:
            by_lr[_setting_dict(s)["learning_rate"]].append(s)
        xs, med, low, high = [], [], [], []
        for lr in sorted(by_lr):
            best = _best_setting({s: settings[s] for s in by_lr[lr]})
            finals = [final_value(r) for r in settings[best]]
            xs.append(lr)
            med.append(_median(finals))
            low.append(min(finals))
            high.append(max(finals))
        lines[rule] = (xs, med, low, high)
        everything += [v for v in low + high + med if math.isfinite(v)]
    if not everything:
        everything = [1.0]
    logy = _spans_decades(everything)
    top = max(everything) * (3 if logy else 1.1)
    for rule, (xs, med, low, high) in lines.items():
        st = styles[rule]
        xs_np = np.array(xs, dtype=float)
        med_np = np.array(med)
        finite = np.isfinite(med_np)
        ax.plot(xs_np[finite], med_np[finite], color=st["color"], linestyle=st["linestyle"],
                marker=st["marker"], markersize=4, label=rule)
        band = np.isfinite(np.array(low))
        ax.fill_between(xs_np[band], np.array(low)[band],
                        np.minimum(np.array(high)[band], top), color=st["color"], alpha=0.12)
        if (~finite).any():
            ax.plot(xs_np[~finite], np.full((~finite).sum(), top), linestyle="none",
                    marker="x", color=st["color"], markersize=7)
    if all(x > 0 for xs, *_ in lines.values() for x in xs):
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final loss (median over seeds; band: best to worst seed)")
    ax.set_title(title or f"{problem}: final loss against learning rate (x: diverged)")
    ax.grid(True, which="major", alpha=0.3)
    _legend_outside(ax)
    fig.savefig(path, bbox_inches="tight")
    return Path(path)


def _curve_matrix(runs):
    """Steps and losses of runs' curves, NaN where a run stopped (diverged) early."""
    longest = max(runs, key=lambda r: len(r["curve"]["step"]))
    steps = longest["curve"]["step"]
    values = np.full((len(runs), len(steps)), np.nan)
    for i, r in enumerate(runs):
        losses = [np.nan if v is None else v for v in r["curve"]["loss"]]
        values[i, :len(losses)] = losses[:len(steps)]
    return np.array(steps), values


def plot_curves(records, problem, path, styles=None, title=None):
    """The loss curve of each rule at its best setting on ``problem``: the median over
    seeds, and a band from the lowest to the highest seed at each step."""
    grouped = settings_by_rule(records)[problem]
    styles = styles or rule_styles(list(grouped))
    fig = _figure()
    ax = fig.add_subplot()
    everything, kinds = [], set()
    for rule, settings in grouped.items():
        best = _best_setting(settings)
        runs = settings[best]
        steps, values = _curve_matrix(runs)
        kinds.update(r["curve"].get("kind", "per step") for r in runs)
        with np.errstate(all="ignore"):
            ok = np.isfinite(values).any(axis=0)
            if not ok.any():
                continue
            med = np.nanmedian(values[:, ok], axis=0)
            low, high = np.nanmin(values[:, ok], axis=0), np.nanmax(values[:, ok], axis=0)
        st = styles[rule]
        lr = _setting_dict(best)["learning_rate"]
        ax.plot(steps[ok], med, color=st["color"], linestyle=st["linestyle"],
                label=f"{rule} (lr {lr:.3g})")
        ax.fill_between(steps[ok], low, high, color=st["color"], alpha=0.12)
        everything += list(low) + list(high)
    if _spans_decades(everything):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    what = "loss" if kinds <= {"per step", "sampled"} else "mini-batch loss (" + \
        ", ".join(sorted(kinds)) + ")"
    ax.set_ylabel(f"{what}; median over seeds")
    ax.set_title(title or f"{problem}: each rule at its best learning rate")
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    fig.savefig(path, bbox_inches="tight")
    return Path(path)


def performance_profile(results, taus=None):
    r"""Performance profiles of rules over problems.

    Parameters
    ----------
    results : mapping
        ``{problem: {rule: value}}``, lower is better, positive (a final loss); ``inf``
        for a rule that failed. Problems whose best value is not positive are left out
        (a ratio to zero or a negative loss means nothing).
    taus : sequence of float, optional
        Where to evaluate; by default 200 points log-spaced from 1 to the largest finite
        ratio (at least 10).

    Returns
    -------
    taus : list of float
    fractions : dict of str to list of float
        For each rule, :math:`\rho(\tau)`, the fraction of problems on which its value is
        at most :math:`\tau` times the best rule's.
    """
    ratios = defaultdict(list)
    rules = sorted({rule for by_rule in results.values() for rule in by_rule})
    used = 0
    for by_rule in results.values():
        best = min(by_rule.values())
        if not (math.isfinite(best) and best > 0):
            continue
        used += 1
        for rule in rules:
            ratios[rule].append(by_rule.get(rule, math.inf) / best)
    if taus is None:
        finite = [r for rs in ratios.values() for r in rs if math.isfinite(r)]
        top = max(10.0, max(finite, default=1.0) * 1.2)
        taus = list(np.logspace(0, math.log10(top), 200))
    taus = [float(t) for t in taus]
    fractions = {rule: [sum(r <= t * (1 + 1e-12) for r in ratios[rule]) / used if used else 0.0
                        for t in taus] for rule in rules}
    return taus, fractions


def plot_performance_profile(results, path, styles=None, title=None):
    """Draw :func:`performance_profile` of ``results`` (``{problem: {rule: value}}``)."""
    taus, fractions = performance_profile(results)
    styles = styles or rule_styles(sorted(fractions))
    fig = _figure()
    ax = fig.add_subplot()
    for rule in [r for r in styles if r in fractions] + [r for r in fractions
                                                          if r not in styles]:
        fr = fractions[rule]
        st = styles.get(rule, {"color": None, "linestyle": "-"})
        ax.step(taus, fr, where="post", color=st["color"], linestyle=st["linestyle"],
                label=rule, linewidth=1.6)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(r"$\tau$: within this factor of the best rule's final loss")
    ax.set_ylabel("fraction of problems")
    usable = sum(1 for by_rule in results.values()
                 if math.isfinite(min(by_rule.values())) and min(by_rule.values()) > 0)
    ax.set_title(title or f"Performance profile over {usable} problems")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    fig.savefig(path, bbox_inches="tight")
    return Path(path)


def _safe(name):
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_report(records, directory, *, defaults=None, command=None, figures=True):
    """Write ``summary.md``, ``summary.csv`` and the figures for ``records`` to
    ``directory``; return the paths written, by name.

    Figures need Matplotlib; without it only the tables are written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(records, defaults)
    notes = f"Made by:\n\n```\n{command}\n```" if command else ""
    paths = {"summary.md": directory / "summary.md", "summary.csv": directory / "summary.csv"}
    paths["summary.md"].write_text(markdown_summary(rows, notes=notes))
    write_csv(rows, paths["summary.csv"])
    if not figures or not records:
        return paths
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return paths
    grouped = settings_by_rule(records)
    rules = list(dict.fromkeys(r["config"]["rule"] for r in records))
    styles = rule_styles(rules)
    for problem in grouped:
        name = f"learning_rates_{_safe(problem)}.png"
        paths[name] = plot_learning_rates(records, problem, directory / name, styles)
        name = f"curves_{_safe(problem)}.png"
        paths[name] = plot_curves(records, problem, directory / name, styles)
    if len(grouped) >= 2:
        results = {row["problem"]: {} for row in rows}
        for row in rows:
            results[row["problem"]][row["rule"]] = row["median_final_loss"]
        paths["profile.png"] = plot_performance_profile(results, directory / "profile.png",
                                                        styles)
    return paths

