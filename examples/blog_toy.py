r"""The blog's toy: minimise :math:`(x_1^2+x_2^2+x_3^2+x_4^2)^2` from :math:`x = 0.5`.

The blog runs its ``MomentumUpdate`` with learning rate 0.01 three ways: vanilla
(momentum 0), classical momentum (0.9), and NAG (0.9, the gradient taken at
:math:`x + \mu v`), in float32, and finds that "SGD is so slow that it needs almost 200
iterations to reach zero. CM and NAG are able to reach 0 within 10 iterations. We can
see a small ridge appear in Classical Momentum."

This script runs those three forms (``blog.MomentumUpdate(vanilla|cm|nag)`` of
:data:`symopt.lab.forms.FORMS`) with :func:`symopt.lab.problems.run_forms`, and, on the same
toy, every other form: the library's rules (second panel) and the blog script's and the
book's forms (third panel), each at the toy's learning rate for its kind (0.01, and 1.0
for AdaDelta). It counts the iterations each needs to bring the cost below a threshold
(0.005 by default, half a percent of the starting cost: "zero" on the blog's plot), and
measures CM's ridge: how far the cost climbs back after first reaching that threshold.
It checks the blog's finding and exits with status 1 if it does not hold.

Outputs in ``--out``: ``toy.png`` (cost against iteration, one panel per group),
``curves.json`` (every curve), ``iterations.md`` / ``.csv`` / ``.json`` (the counts).

    python examples/blog_toy.py
    python examples/blog_toy.py --rules blog --iterations 300
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from symopt.lab import kit

BLOG_FORMS = {"SGD": "blog.MomentumUpdate(vanilla)", "CM": "blog.MomentumUpdate(cm)",
              "NAG": "blog.MomentumUpdate(nag)"}


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0].replace(":math:", "").replace("`", ""),
                             out="results/blog_toy")
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations per form (default 300; 250 with --quick)")
    parser.add_argument("--threshold", type=float, default=5e-3,
                        help="the cost counted as reaching zero")
    parser.add_argument("--rules", choices=["blog", "all"], default="all",
                        help="only the blog's three forms, or every form")
    parser.add_argument("--dtype", default="float32", help="the blog's float32, or float64")
    parser.add_argument("--backend", default="numba", choices=["numba", "c", "default"])
    args = parser.parse_args(argv)
    if args.quick and args.rules == "all" and "--rules" not in (argv or sys.argv[1:]):
        args.rules = "blog"
    return args


def groups(rules: str) -> dict[str, list[str]]:
    from symopt.lab.forms import FORMS

    result = {"blog toy (MomentumUpdate)": list(BLOG_FORMS.values())}
    if rules == "all":
        result["library rules"] = [n for n, f in FORMS.items() if f.source == "symopt"]
        result["blog script and book forms"] = [
            n for n, f in FORMS.items() if f.source in ("blog", "book")
            and n not in BLOG_FORMS.values()]
    return result


def iterations_to(costs, threshold: float):
    """The first iteration (from 1) whose cost is below ``threshold``; None if never."""
    below = np.flatnonzero(np.asarray(costs) < threshold)
    return int(below[0]) + 1 if below.size else None


def ridge(costs, threshold: float) -> float:
    """How high the cost climbs again after first going below ``threshold`` (0 if never)."""
    costs = np.asarray(costs)
    first = iterations_to(costs, threshold)
    if first is None:
        return 0.0
    after = costs[first - 1:]
    return float(np.max(after) - after[0]) if np.all(np.isfinite(after)) else float("inf")


def check_blog_finding(counts: dict, ridges: dict, threshold: float) -> list[str]:
    """The blog's claims about SGD, CM and NAG; returns the ones that fail."""
    failures = []
    sgd, cm, nag = counts["SGD"], counts["CM"], counts["NAG"]
    if sgd is None or not 150 <= sgd <= 250:
        failures.append(f"SGD should need about 200 iterations (150-250), took {sgd}")
    for name, n in (("CM", cm), ("NAG", nag)):
        if n is None or n > 15:
            failures.append(f"{name} should reach ~0 within about 10 iterations (<= 15), took {n}")
    if not ridges["CM"] > threshold:
        failures.append(f"CM should show a ridge (the cost climbing back above {threshold}), "
                        f"climbed {ridges['CM']:.3g}")
    return failures


def plot(curves: dict, panels: dict, path: Path, threshold: float, iterations: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0 * len(panels), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    short = {v: k for k, v in BLOG_FORMS.items()}
    for i, (ax, (title, names)) in enumerate(zip(axes, panels.items())):
        for name in names:
            loss = np.asarray(curves[name].values["loss"])
            ax.plot(np.arange(1, len(loss) + 1), loss, label=short.get(name, name),
                    lw=2 if name in short else 1)
        if i == 0:  # the blog's plot: linear cost, the first 200 iterations
            ax.set_xlim(0, min(iterations, 200))
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.set_yscale("log")
            ax.set_ylim(1e-8, 10)
            ax.axhline(threshold, color="grey", ls=":", lw=1)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small" if len(names) > 6 else "small",
                  ncol=2 if len(names) > 8 else 1)
    fig.suptitle("(x1²+x2²+x3²+x4²)² from x = 0.5, learning rate 0.01"
                 + (" (AdaDelta 1.0)" if len(panels) > 1 else ""))
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> dict:
    """Run the toy; return the curves, the counts, the ridges and the failed claims."""
    args = parse_args(argv)
    from symopt.lab.curves import save_curves
    from symopt.lab.forms import FORMS
    from symopt.lab.problems import make_problem, run_forms

    iterations = args.iterations or (250 if args.quick else 300)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    panels = groups(args.rules)
    problem = make_problem("toy", args.dtype, seed=args.seed)
    names = [n for ns in panels.values() for n in ns]
    curves = run_forms(problem, names, backend=args.backend, steps=iterations)
    short = {v: k for k, v in BLOG_FORMS.items()}
    rows = []
    for group, ns in panels.items():
        for name in ns:
            loss = curves[name].values["loss"]
            lr = curves[name].metadata["hyperparameters"]["learning_rate"]
            rows.append({"group": group, "form": name, "kind": FORMS[name].kind,
                         "learning_rate": lr,
                         "iterations_to_threshold": iterations_to(loss, args.threshold),
                         "ridge_after_threshold": ridge(loss, args.threshold),
                         f"cost_at_{iterations}": loss[-1]})
    counts = {short[r["form"]]: r["iterations_to_threshold"] for r in rows if r["form"] in short}
    ridges = {short[r["form"]]: r["ridge_after_threshold"] for r in rows if r["form"] in short}
    failures = check_blog_finding(counts, ridges, args.threshold)
    plot(curves, panels, out / "toy.png", args.threshold, iterations)
    save_curves(out / "curves.json", list(curves.values()))
    verdict = ("The blog's finding holds: " if not failures else "The blog's finding FAILS: ")
    verdict += (f"SGD needs {counts['SGD']} iterations, CM {counts['CM']} and NAG {counts['NAG']}; "
                f"CM's ridge climbs {ridges['CM']:.4f} (NAG's {ridges['NAG']:.4f}).")
    notes = (f"Iterations until the cost is below {args.threshold} (the start is 1.0); "
             "ridge: how far the cost climbs back after first getting there. "
             f"{args.dtype}, {args.backend} backend, {iterations} iterations.\n\n{verdict}\n"
             + "".join(f"\n- {f}" for f in failures))
    kit.write_rows(rows, out / "iterations", title="The blog's toy: iterations to reach ~0",
                   notes=notes)
    print(kit.markdown_table(rows, ["form", "learning_rate", "iterations_to_threshold",
                                    "ridge_after_threshold"]))
    print(verdict)
    for f in failures:
        print("  -", f)
    return {"curves": curves, "counts": counts, "ridges": ridges, "failures": failures,
            "rows": rows, "out": out}


if __name__ == "__main__":
    with kit.limit_threads(1):
        sys.exit(1 if main()["failures"] else 0)
