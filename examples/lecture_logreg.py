"""The lecture's Adam results: logistic regression on images, and Rprop in full-batch mode.

The lecture ("Optimization for Deep Networks") shows the first experiment of the Adam
paper (Kingma & Ba, 2015, figure 1): multi-class logistic regression on MNIST images,
mini-batches of 128, training negative log-likelihood against iterations for Adam,
Adagrad, SGD with Nesterov momentum, RMSProp and AdaDelta. It also presents Rprop
(Riedmiller & Braun, 1993) and why it fails with mini-batches ("across mini-batches we
scale updates very differently"): Rprop is a full-batch method.

This script:

1. trains softmax regression (784 -> 10, zero initial weights) on the image data
   (:func:`symopt.lab.data.load_mnist`: the full Fashion-MNIST when installed, else the
   embedded subset) with :func:`symopt.adam` (1e-3), :func:`symopt.adagrad` (0.01),
   :func:`symopt.nesterov_momentum` (0.01, momentum 0.9), :func:`symopt.rmsprop` (1e-3)
   and :func:`symopt.adadelta` (1.0), mini-batches of 128;
2. trains the same model in full-batch mode (one step per pass over the training set)
   with :func:`symopt.rprop` against full-batch gradient descent and Adam, and, to show
   the lecture's point, Rprop on mini-batches of 128.

Outputs in ``--out``: ``minibatch.png``, ``fullbatch.png``, histories in
``histories/``, ``results.md`` / ``.csv`` / ``.json``.

    python examples/lecture_logreg.py
    python examples/lecture_logreg.py --quick --data embedded
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symopt.lab import kit

MINIBATCH_RULES = {
    # label: (rule name in symopt, learning rate, extra hyperparameters)
    "Adam": ("adam", 1e-3, {}),
    "Adagrad": ("adagrad", 1e-2, {}),
    "SGD Nesterov": ("nesterov_momentum", 1e-2, {"momentum": 0.9}),
    "RMSProp": ("rmsprop", 1e-3, {}),
    "AdaDelta": ("adadelta", 1.0, {}),
}
FULLBATCH_RULES = {
    "Rprop (full batch)": ("rprop", 1e-3, {}),
    "GD (full batch)": ("sgd", 0.5, {}),
    "Adam (full batch)": ("adam", 1e-2, {}),
}


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/lecture_logreg", epochs=20)
    kit.add_data_argument(parser)
    parser.add_argument("--iterations", type=int, default=None,
                        help="full-batch steps (default 100; 20 with --quick)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="use only this many training images")
    parser.add_argument("--parts", default="minibatch,fullbatch")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def logistic_regression():
    from symopt.lab import nn

    return nn.Dense(784, 10, activation="log_softmax", init=lambda shape, rng: np.zeros(shape),
                    name="logreg")


def _rule(name, lr, extra):
    import symopt

    rule = symopt.RULES[name]
    return lambda loss, params: rule(loss, params, learning_rate=lr, **extra)


def _run(label, spec, data, epochs, batch_size, args, out):
    name, lr, extra = spec
    print(f"{label}: {name}, learning rate {lr}, batch {batch_size}, {epochs} epochs", flush=True)
    h = kit.fit_classifier(
        logistic_regression(), _rule(name, lr, extra), (data.x_train, data.y_train),
        valid_data=(data.x_valid, data.y_valid), test_data=(data.x_test, data.y_test),
        epochs=epochs, batch_size=batch_size, seed=args.seed,
        record_steps=10 if batch_size < len(data.x_train) else True,
        meta={"label": label, "rule": name, "learning_rate": lr, **extra, "data": data.source},
        save_to=out / "histories" / "".join(c if c.isalnum() else "_" for c in label),
        progress=not args.no_progress, log=None)
    return h


def main(argv=None) -> dict:
    args = parse_args(argv)
    from symopt.lab.history import plot_histories

    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 20)
    iterations = args.iterations or (20 if args.quick else 100)
    sizes = dict(n_train=2000, n_valid=1000, n_test=1000) if args.quick else {}
    if args.n_train:
        sizes["n_train"] = args.n_train
    data = kit.load_image_split(args.data, seed=args.seed, **sizes)
    print(f"data: {data.describe()}", flush=True)
    out = Path(args.out)
    (out / "histories").mkdir(parents=True, exist_ok=True)
    parts = [p.strip() for p in args.parts.split(",")]
    rows, results = [], {}
    if "minibatch" in parts:
        runs = {label: _run(label, spec, data, epochs, 128, args, out)
                for label, spec in MINIBATCH_RULES.items()}
        plot_histories(runs, ["train_loss", "valid_loss", "valid_accuracy"], out / "minibatch.png",
                       ncols=3, logy=["train_loss", "valid_loss"],
                       title=f"logistic regression, mini-batches of 128, {data.source}\n"
                             "(the Adam paper's figure 1)")
        plot_histories(runs, ["loss"], out / "minibatch_steps.png", table="steps", logy=["loss"],
                       figsize_per_plot=(9.0, 4.0),
                       title="training NLL per mini-batch (every 10th iteration)")
        rows += [kit.final_row(label, h, mode="mini-batch 128",
                               learning_rate=MINIBATCH_RULES[label][1])
                 for label, h in runs.items()]
        results["minibatch"] = runs
    if "fullbatch" in parts:
        specs = dict(FULLBATCH_RULES)
        runs = {label: _run(label, spec, data, iterations, len(data.x_train), args, out)
                for label, spec in specs.items()}
        steps_per_epoch = int(np.ceil(len(data.x_train) / 128))
        mini_epochs = max(1, iterations // steps_per_epoch) if iterations >= steps_per_epoch else 1
        runs["Rprop (mini-batch 128)"] = _run("Rprop (mini-batch 128)", ("rprop", 1e-3, {}), data,
                                              mini_epochs, 128, args, out)
        plot_histories({k: v for k, v in runs.items() if "mini-batch" not in k},
                       ["train_loss", "valid_accuracy"], out / "fullbatch.png",
                       x="epoch", logy=["train_loss"],
                       title="full-batch mode: one step per pass over the training set")
        for label, h in runs.items():
            mode = "mini-batch 128" if "mini-batch" in label else "full batch"
            spec = specs.get(label, ("rprop", 1e-3, {}))
            rows.append(kit.final_row(label, h, mode=mode, learning_rate=spec[1]))
        results["fullbatch"] = runs
    kit.write_rows(rows, out / "results",
                   columns=["rule", "mode", "learning_rate", "epochs", "train_loss", "valid_loss",
                            "valid_accuracy", "test_accuracy", "seconds"],
                   title="Lecture: logistic regression, the Adam paper's rules, and Rprop",
                   notes=f"{data.describe()}. Softmax regression from zero weights. In full-batch "
                         "mode an epoch is one step. train_loss is the mean over the epoch's "
                         "mini-batches (the loss before each step).")
    print(kit.markdown_table(rows, ["rule", "mode", "epochs", "train_loss", "valid_accuracy",
                                    "test_accuracy"]))
    return {"rows": rows, "runs": results, "out": out, "data": data}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
