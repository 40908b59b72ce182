"""The main job: every update rule of symopt, and the texts' forms, on the image data.

``symopt compare`` (and ``examples/compare_rules.py``, which calls this module) trains
each form of :data:`symopt.lab.forms.FORMS` (the library's rules, the RMSProp variants
of the slides and of centring, then the blog script's and the book's forms) on the same
784-H-10 MLP (tanh, Glorot-uniform weights, the same initial values for every form)
with mini-batches of 100, and scores it on a validation set after every epoch and on
the test set at the end. The data are :func:`symopt.lab.data.load_mnist`'s: the full
Fashion-MNIST when installed, else the subset shipped with symopt (5000 training
images, of which 833 are held out for validation); ``--data`` points elsewhere.

Learning rates go by the form's kind (:class:`symopt.lab.forms.Form`): 0.01 for the
gradient-proportional rules (SGD, momentum, the blog's), 1e-3 for the adaptive ones,
1.0 for AdaDelta, except Adagrad at 0.01 (its steps shrink as the squares add up) and
Rprop, whose learning rate is its initial step, at 1e-3. ``--lr NAME=VALUE`` changes
one. The blog's toy forms (``blog.MomentumUpdate(...)``) take a gradient at another
point and are studied in ``examples/blog_toy.py``, not here.

Outputs in ``--out`` (``results/`` by default):

- ``comparison.md`` / ``.csv`` / ``.json``: one row per form, grouped (library, blog,
  book), with the final and best validation accuracy, the test accuracy, the losses,
  the compile time (the first call included) and the total time;
- ``library.png``, ``texts.png``: training and validation loss and accuracy per epoch,
  one line per form; ``summary.png``: the final validation accuracy of every form as
  bars;
- ``histories/<form>.json`` and ``.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from symopt.lab import kit

__all__ = [
    "KIND_LEARNING_RATES",
    "LEARNING_RATE_EXCEPTIONS",
    "add_arguments",
    "bar_chart",
    "default_forms",
    "group_of",
    "learning_rates",
    "main",
    "replot",
    "run",
    "write_figures",
    "selected",
]

#: The learning rate of each kind of form (:attr:`symopt.lab.forms.Form.kind`).
KIND_LEARNING_RATES = {"gradient": 0.01, "adaptive": 1e-3, "unit": 1.0}
#: Forms whose learning rate is not their kind's.
LEARNING_RATE_EXCEPTIONS = {"adagrad": 0.01, "book.adagrad": 0.01, "rprop": 1e-3,
                            # a diagonal Newton step, and a relative step: their defaults
                            "adahessian": 0.15, "adafactor": 1e-2}
PLOTS = ["train_loss", "valid_loss", "train_accuracy", "valid_accuracy"]
GROUP_COLOURS = {"library": "#1f77b4", "blog": "#ff7f0e", "book": "#2ca02c"}

EXAMPLES = """\
examples:
  symopt compare                                   # every form, 10 epochs
  symopt compare --data embedded --epochs 5        # the subset shipped with symopt
  symopt compare --rules adam,sgd,book.adam --lr sgd=0.1
  symopt compare --quick --rules adam,sgd          # a short run, to see that it works
"""


def group_of(name: str) -> str:
    """``"library"``, ``"blog"`` or ``"book"``: where the form comes from."""
    from symopt.lab.forms import FORMS

    return {"symopt": "library"}.get(FORMS[name].source, FORMS[name].source)


def default_forms() -> list[str]:
    """Every form except the blog's toy ``MomentumUpdate`` ones."""
    from symopt.lab.forms import FORMS

    return [n for n in FORMS if not n.startswith("blog.MomentumUpdate")]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the main job's options to ``parser`` (the command's and the example's)."""
    parser.add_argument("--out", default="results",
                        help="directory for figures, histories and tables")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 10; 2 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run on little data (1000 images, 100 hidden units), "
                             "to see that everything works")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data split, weights, batches")
    kit.add_data_argument(parser)
    parser.add_argument("--rules", default="all",
                        help="'all', 'library', 'texts', or form names, comma-separated")
    parser.add_argument("--lr", action="append", default=[], metavar="NAME=VALUE",
                        help="the learning rate of one form (repeatable)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden units (default 600; 100 with --quick)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="use only this many training images")
    parser.add_argument("--batch-size", type=int, default=100, help="mini-batch size")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the figures of the run already in OUT (from its "
                             "comparison.json and histories/), without training")
    parser.add_argument("--keep", action="store_true",
                        help="keep the forms already run in OUT with the same data, network, "
                             "epochs and learning rate (their histories/), and train only the "
                             "others: a new rule, or the rest of an interrupted run")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress display (by default a bar on a terminal, one line "
                             "per epoch with elapsed time and ETA in a log)")
    return parser


def selected(rules: str) -> list[str]:
    """The form names ``--rules`` asks for."""
    from symopt.lab.forms import FORMS

    forms = default_forms()
    if rules == "all":
        return forms
    if rules == "library":
        return [n for n in forms if group_of(n) == "library"]
    if rules == "texts":
        return [n for n in forms if group_of(n) != "library"]
    names = [n.strip() for n in rules.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMS]
    if unknown:
        raise SystemExit(f"unknown forms {unknown}; known: {sorted(FORMS)}")
    return names


def learning_rates(names: list[str], overrides: list[str]) -> dict[str, float]:
    """Each form's learning rate: its kind's, its exception, or ``NAME=VALUE`` overrides."""
    from symopt.lab.forms import FORMS

    rates = {n: LEARNING_RATE_EXCEPTIONS.get(n, KIND_LEARNING_RATES[FORMS[n].kind])
             for n in names}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in rates:
            raise SystemExit(f"--lr {item}: {name} is not among the forms run")
        rates[name] = float(value)
    return rates


def bar_chart(rows: list[dict], path: Path, title: str):
    """Final validation accuracy of every form as bars from zero, coloured by group,
    each labelled with its value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(max(6.5, 0.42 * len(rows) + 2.0), 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    values = np.array([r.get("valid_accuracy", np.nan) for r in rows], dtype=float)
    bars = ax.bar(range(len(rows)), np.nan_to_num(values, nan=0.0),
                  color=[GROUP_COLOURS.get(r["group"], "grey") for r in rows])
    for bar_, value in zip(bars, values, strict=True):
        text = f"{value:.3f}" if np.isfinite(value) else "n/a"
        ax.annotate(text, (bar_.get_x() + bar_.get_width() / 2, bar_.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    rotation=90, fontsize="x-small")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["rule"] for r in rows], rotation=60, ha="right", fontsize="small")
    ax.set_ylim(0.0, 1.12)  # from zero: bar lengths compare; room for the labels
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlabel("form")
    ax.set_ylabel("final validation accuracy (fraction correct)")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, axis="y", alpha=0.3)
    groups = [g for g in GROUP_COLOURS if any(r["group"] == g for r in rows)]
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in groups],
              title="group", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    return fig


def write_figures(histories: dict, rows: list[dict], out: Path, *, epochs: int, network: str,
                  data_source: str) -> None:
    """``library.png``, ``texts.png`` and ``summary.png`` in ``out`` from the runs."""
    from symopt.lab.history import plot_histories

    library = {n: h for n, h in histories.items() if group_of(n) == "library"}
    texts = {n: h for n, h in histories.items() if group_of(n) != "library"}
    for runs, filename, what in ((library, "library.png", "the library's rules"),
                                 (texts, "texts.png", "the blog's and the book's forms")):
        if runs:
            plot_histories(runs, PLOTS, out / filename, ncols=2, figsize_per_plot=(5.5, 3.8),
                           logy=["train_loss", "valid_loss"],
                           title=f"{what}: {network}\n{data_source}")
    bar_chart(rows, out / "summary.png",
              f"final validation accuracy after {epochs} epochs, {data_source}")


def replot(out: str | Path) -> None:
    """Redraw the figures of an earlier run from ``out/comparison.json`` and
    ``out/histories``, without training (``symopt compare --replot``)."""
    import json

    from symopt.lab.history import History

    out = Path(out)
    rows = json.loads((out / "comparison.json").read_text())
    histories = {}
    for row in rows:
        stem = "".join(c if c.isalnum() or c in ".-" else "_" for c in row["rule"])
        histories[row["rule"]] = History.from_json(out / "histories" / f"{stem}.json")
    meta = next(iter(histories.values())).meta
    write_figures(histories, rows, out, epochs=int(rows[0]["epochs"]),
                  network=meta.get("network", "MLP").replace(" tanh", "") + " MLP",
                  data_source=meta.get("data", ""))


#: the settings a history made before they were recorded was made with
_DEFAULT_SETTINGS = {"seed": 0, "batch_size": 100}


def _kept_history(path: Path, settings: dict, epochs: int):
    """The history at ``path`` if it was made with these ``settings`` and ``epochs``
    (``--keep``), else None."""
    from symopt.lab.history import History

    if not path.exists():
        return None
    history = History.from_json(path)
    meta = history.meta
    same = all(meta.get(key, _DEFAULT_SETTINGS.get(key)) == value
               for key, value in settings.items())
    return history if same and len(history) == epochs else None


def run(args: argparse.Namespace) -> dict:
    """Run the comparison with parsed options; return the histories by form, the rows,
    the output directory and the data (with ``--replot``, only redraw the figures)."""
    from symopt.lab import nn

    if getattr(args, "replot", False):
        replot(args.out)
        return {"out": Path(args.out)}
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 10)
    hidden = args.hidden or (100 if args.quick else 600)
    sizes = dict(n_train=1000, n_valid=500, n_test=500) if args.quick else {}
    if args.n_train:
        sizes["n_train"] = args.n_train
    data = kit.load_image_split(args.data, seed=args.seed, **sizes)
    names = selected(args.rules)
    rates = learning_rates(names, args.lr)
    out = Path(args.out)
    (out / "histories").mkdir(parents=True, exist_ok=True)
    print(f"data: {data.describe()}; 784-{hidden}-10 tanh MLP, batch {args.batch_size}, "
          f"{epochs} epochs, {len(names)} forms", flush=True)
    histories, rows = {}, []
    network = f"784-{hidden}-10 tanh"
    for i, name in enumerate(names, 1):
        lr = rates[name]
        stem = "".join(c if c.isalnum() or c in ".-" else "_" for c in name)
        settings = {"data": data.source, "network": network, "learning_rate": lr,
                    "seed": args.seed, "batch_size": args.batch_size}
        kept = (_kept_history(out / "histories" / f"{stem}.json", settings, epochs)
                if getattr(args, "keep", False) else None)
        if kept is not None:
            print(f"[{i}/{len(names)}] {name}: kept from {out / 'histories'}", flush=True)
            histories[name] = kept
            rows.append(kit.final_row(name, kept, group=group_of(name), learning_rate=lr,
                                      compile_seconds=kept.meta.get("compile_seconds")))
            continue
        print(f"[{i}/{len(names)}] {name}: learning rate {lr}", flush=True)
        net = nn.MLP([784, hidden, 10], activation="tanh", init="glorot_uniform",
                     seed=args.seed)
        history = kit.fit_classifier(
            net, kit.form_updates(name, lr), (data.x_train, data.y_train),
            valid_data=(data.x_valid, data.y_valid), test_data=(data.x_test, data.y_test),
            epochs=epochs, batch_size=args.batch_size, seed=args.seed,
            meta={"label": name, "rule": name, "group": group_of(name), "learning_rate": lr,
                  "data": data.source, "network": network},
            save_to=out / "histories" / stem, progress=not args.no_progress, log=None)
        histories[name] = history
        row = kit.final_row(name, history, group=group_of(name), learning_rate=lr,
                            compile_seconds=history.meta.get("compile_seconds"))
        rows.append(row)
        print(f"    valid accuracy {row.get('valid_accuracy', float('nan')):.4f}, "
              f"test accuracy {row.get('test_accuracy', float('nan')):.4f}, "
              f"compile {history.meta.get('compile_seconds', 0):.1f} s, "
              f"{row.get('seconds', 0):.0f} s in all", flush=True)
    write_figures(histories, rows, out, epochs=epochs, network=f"784-{hidden}-10 MLP",
                  data_source=data.source)
    ranked = sorted(rows,
                    key=lambda r: -np.nan_to_num(r.get("valid_accuracy", np.nan), nan=-1))
    best = ranked[0]
    notes = (f"{data.describe()}. Network 784-{hidden}-10 (tanh, Glorot-uniform, the same "
             f"initial weights for every form), batch {args.batch_size}, {epochs} epochs. "
             "train_* are means over the last epoch's mini-batches; valid_* after the last "
             "epoch; best_valid_accuracy over all epochs; test_* at the end; "
             "compile_seconds includes the first call of the compiled step (where Numba "
             "compiles); seconds is the whole run, compile included.\n\n"
             f"Best final validation accuracy: {best['rule']} ({best['valid_accuracy']:.4f}).")
    kit.write_rows(rows, out / "comparison",
                   columns=["group", "rule", "learning_rate", "epochs", "train_loss",
                            "train_accuracy", "valid_loss", "valid_accuracy",
                            "best_valid_accuracy", "best_epoch", "test_accuracy",
                            "compile_seconds", "seconds", "stopped"],
                   title="symopt: every rule on the image data", notes=notes)
    print(kit.markdown_table(rows, ["group", "rule", "learning_rate", "valid_accuracy",
                                    "test_accuracy", "compile_seconds", "seconds"]))
    return {"histories": histories, "rows": rows, "out": out, "data": data}


def main(argv=None) -> dict:
    """Parse ``argv`` and run the comparison on one BLAS thread (see :func:`run`)."""
    parser = argparse.ArgumentParser(
        prog="compare_rules", description=__doc__.split("\n")[0], epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    args = add_arguments(parser).parse_args(argv)
    with kit.limit_threads(1):
        return run(args)
