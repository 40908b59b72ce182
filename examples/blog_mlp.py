"""The blog's MLP study: a 784-600-10 network trained with the script's sgd, momentum and nag.

The blog post trains a one-hidden-layer perceptron (784 inputs, 600 hidden units, a
10-class softmax) on MNIST with mini-batches of 100 for 100 epochs, with its script's
``sgd``, ``momentum`` and ``nag`` (learning rate 0.01, momentum 0.9), and shows four
plots: training cost, validation cost, training accuracy, validation accuracy. It finds
CM and NAG at 92 % and SGD at 89 % after 100 epochs.

Here the same network (tanh hidden layer and Glorot-uniform weights, as in the Theano
tutorial's ``mlp.py`` the blog's script comes from) is trained with those forms,
:mod:`symopt.texts.blog`, and with ``--rules book`` with the book's Adagrad, AdaDelta,
RMSProp and Adam (:mod:`symopt.texts.book`, their default learning rates), and with
``--rules modern`` as it is trained today: AdamW's weight decay on the weights only
(:func:`symopt.partition`) and Adam with a warm-up and cosine decay computed in the graph
(:func:`symopt.schedules.warmup_cosine_decay`). The data are
:func:`symopt.lab.data.load_mnist`'s: the full Fashion-MNIST when it is installed, else the
subset shipped with symopt (``--data DIR`` for other MNIST-format files); a sixth of
the training set (at most 10000 images) is held out for validation, and the test set is
scored once at the end.

The training cost and accuracy of an epoch are the means over its mini-batches (what
the training step returns, at no extra cost); the validation ones are computed after
the epoch.

Outputs in ``--out``: ``<group>/<rule>.json`` and ``.csv`` (the histories, rewritten
after every epoch), ``<group>.png`` (the blog's four plots, one line per rule), and
``<group>.md`` / ``.csv`` / ``.json`` (the final numbers).

    python examples/blog_mlp.py                     # the blog's three rules, 100 epochs
    python examples/blog_mlp.py --rules book        # the book's four adaptive rules
    python examples/blog_mlp.py --rules modern      # weight decay on weights only, warm-up + cosine
    python examples/blog_mlp.py --rules all --book-epochs 30
    python examples/blog_mlp.py --quick             # a few epochs on 2000 images
    python examples/blog_mlp.py --checkpoints ckpt  # resumable: rerun to continue or extend
    python examples/blog_mlp.py --replot            # redraw figures and tables, no training
"""

from __future__ import annotations

from pathlib import Path

from symopt.lab import kit

GROUPS = {
    "blog": ["blog.sgd", "blog.momentum", "blog.nag"],
    "book": ["book.adagrad", "book.adadelta", "book.rmsprop", "book.adam"],
    "modern": ["modern.adamw_weights_only", "modern.adam_warmup_cosine"],
}
BLOG_LEARNING_RATE = 0.01  # the script's default, for sgd, momentum and nag
MODERN_LEARNING_RATE = 1e-3  # the peak rate of the modern group's rules


def modern_rule(name: str, learning_rate: float, total_steps: int):
    """The modern group's rules: training as it is done today, with symopt's combinators.

    ``adamw_weights_only``: AdamW's decoupled weight decay (0.01) on the weight matrices,
    plain Adam on the biases (:func:`symopt.partition`); ``adam_warmup_cosine``: Adam with a
    linear warm-up over the first 5 % of the steps to ``learning_rate``, then a cosine decay
    to a hundredth of it at the last step, computed in the graph from a counter in the
    optimizer's state (so a resumed run continues the schedule).
    """
    import symopt

    if name == "modern.adamw_weights_only":
        return symopt.partition(
            {"decay": symopt.adamw(learning_rate=learning_rate, weight_decay=1e-2),
             "no_decay": symopt.adam(learning_rate=learning_rate)},
            labels=lambda p: "decay" if p.ndim > 1 else "no_decay")
    if name == "modern.adam_warmup_cosine":
        schedule = symopt.schedules.warmup_cosine_decay(
            init_value=0.0, peak_value=learning_rate, warmup_steps=max(1, total_steps // 20),
            decay_steps=total_steps, end_value=learning_rate / 100)
        return symopt.adam(learning_rate=schedule)
    raise KeyError(name)
PLOTS = ["train_loss", "valid_loss", "train_accuracy", "valid_accuracy"]


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/blog_mlp", epochs=100)
    kit.add_data_argument(parser)
    parser.add_argument("--rules", default="blog",
                        help="'blog' (sgd, momentum, nag), 'book' (adagrad, adadelta, rmsprop, "
                             "adam), 'all', or form names of symopt.lab.forms.FORMS, "
                             "comma-separated")
    parser.add_argument("--book-epochs", type=int, default=None,
                        help="epochs for the book's rules (default: --epochs)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="one learning rate for every rule (default: 0.01 for the blog's "
                             "rules, each book rule's own default)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden units (default 600)")
    parser.add_argument("--activation", default="tanh", help="hidden activation (symopt.lab.nn)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=None,
                        help="use only this many training images")
    parser.add_argument("--checkpoints", default=None,
                        help="directory for per-epoch checkpoints (parameters and optimizer "
                             "state, a few MB each); a rerun with the same settings resumes "
                             "from them, and more --epochs extend a finished run")
    parser.add_argument("--replot", action="store_true",
                        help="train nothing: redraw the figures and tables from the histories "
                             "already in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def selected_groups(rules: str) -> dict[str, list[str]]:
    """``--rules`` as ``{group: [form names]}``."""
    from symopt.lab.forms import FORMS

    if rules == "all":
        return dict(GROUPS)
    if rules in GROUPS:
        return {rules: GROUPS[rules]}
    names = [n.strip() for n in rules.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMS and n not in GROUPS["modern"]]
    if unknown:
        raise SystemExit(f"unknown rules {unknown}; choose 'blog', 'book', 'all' or from "
                         f"{sorted(FORMS) + GROUPS['modern']}")
    return {"rules": names}


def learning_rate_for(name: str, override: float | None) -> float:
    if override is not None:
        return override
    if name.startswith("blog."):
        return BLOG_LEARNING_RATE
    if name.startswith("modern."):
        return MODERN_LEARNING_RATE
    return kit.default_learning_rate(name)


def main(argv=None) -> dict:
    """Run the study.

    Returns ``{"groups": {group: {rule: History}}, "rows": [...], "out": Path}``.
    """
    args = parse_args(argv)
    from symopt.lab import nn
    from symopt.lab.history import History, plot_histories

    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 100)
    book_epochs = args.book_epochs if args.book_epochs is not None else epochs
    hidden = args.hidden or (100 if args.quick else 600)
    quick_sizes = dict(n_train=2000, n_valid=1000, n_test=1000) if args.quick else {}
    if args.n_train is not None:
        quick_sizes["n_train"] = args.n_train
    data = kit.load_image_split(args.data, seed=args.seed, **quick_sizes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoints:
        Path(args.checkpoints).mkdir(parents=True, exist_ok=True)
    print(f"data: {data.describe()}; network 784-{hidden}-10 ({args.activation}), "
          f"batch {args.batch_size}", flush=True)

    groups = selected_groups(args.rules)
    results: dict[str, dict] = {}
    rows = []
    for group, names in groups.items():
        (out / group).mkdir(exist_ok=True)
        runs = {}
        n_epochs = book_epochs if group == "book" else epochs
        for name in names:
            lr = learning_rate_for(name, args.learning_rate)
            label = name.split(".", 1)[1] if group in GROUPS else name
            if args.replot:
                history = History.from_json(out / group / f"{label.replace('/', '_')}.json")
                runs[label] = history
                rows.append(kit.final_row(label, history, group=group, learning_rate=lr))
                continue
            print(f"{name}: learning rate {lr}, {n_epochs} epochs", flush=True)
            net = nn.MLP([784, hidden, 10], activation=args.activation, init="glorot_uniform",
                         seed=args.seed)
            if name.startswith("modern."):
                batches = -(-len(data.x_train) // args.batch_size)
                rule = modern_rule(name, lr, n_epochs * batches)
            else:
                rule = kit.form_updates(name, lr)
            history = kit.fit_classifier(
                net, rule, (data.x_train, data.y_train),
                valid_data=(data.x_valid, data.y_valid), test_data=(data.x_test, data.y_test),
                epochs=n_epochs, batch_size=args.batch_size, seed=args.seed,
                meta={"label": label, "rule": name, "learning_rate": lr, "data": data.source,
                      "network": f"784-{hidden}-10 {args.activation}"},
                save_to=out / group / label.replace("/", "_"), progress=not args.no_progress,
                checkpoint=(Path(args.checkpoints) / f"{group}.{label}.npz"
                            if args.checkpoints else None))
            runs[label] = history
            rows.append(kit.final_row(label, history, group=group, learning_rate=lr))
        plot_histories(runs, PLOTS, out / f"{group}.png", ncols=2,
                       title=f"{group} rules, 784-{hidden}-10 {args.activation} MLP, batch "
                             f"{args.batch_size}\n{data.source}")
        results[group] = runs
        group_rows = [r for r in rows if r["group"] == group]
        kit.write_rows(group_rows, out / group,
                       title=f"Blog MLP, {group} rules: final numbers",
                       notes=f"Data: {data.describe()}. Network 784-{hidden}-10, "
                             f"{args.activation}, batch {args.batch_size}. Accuracies are "
                             "fractions; train_* are means over the last epoch's mini-batches.")
        print(kit.markdown_table(group_rows, ["rule", "epochs", "train_loss", "valid_loss",
                                              "valid_accuracy", "test_accuracy"]), flush=True)
    return {"groups": results, "rows": rows, "out": out, "data": data}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
