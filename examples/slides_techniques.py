"""The slides' techniques for training feedforward networks, each shown working with a number.

The lecture "Training Deep Feedforward Networks" starts from a small network (2
features, 4 sigmoid hidden units, 3 outputs) trained by gradient descent, then lists
the remedies for three problems. This script runs each remedy with symopt and measures
what it is for:

- the small network on generated data (three Gaussian blobs in the plane): its accuracy,
  and with the slides' l1 penalty (0.001) the sum of its absolute weights;
- overfitting, on an MLP (784-300-100-10, ReLU, momentum 0.9) trained on few images
  (``--n-train``): l1 and l2 penalties (:func:`symopt.l1`, :func:`symopt.l2`,
  :func:`symopt.regularize`; the weights' norm shrinks), max-norm after each step
  (:func:`symopt.apply_norm_constraint`; the largest incoming-weight norm stays at
  ``r``), dropout (the train-validation gap narrows), early stopping (the epoch it stops
  at and the validation loss it keeps), weight decay on the weights only
  (:func:`symopt.masked`) and gradient accumulation over 4 mini-batches
  (:func:`symopt.multi_steps`);
- vanishing and exploding gradients, on a deep MLP (784-100-100-100-100-10): sigmoid
  with a small N(0, 0.01) initialisation against Xavier (Glorot) initialisation, He
  initialisation with ReLU, leaky ReLU and ELU, batch normalisation (the ratio of the
  first to the last hidden layer's gradient norm, and the accuracy after a few epochs),
  gradient clipping by value (:func:`symopt.clip`) and by norm
  (:func:`symopt.clip_by_global_norm`) with a large learning rate (the largest step
  taken stays within the bound).

Outputs in ``--out``: ``small_network.*``, ``overfitting.*``, ``gradients.*`` (each a
table as Markdown, CSV and JSON, and a PNG of the curves), and the histories in
``histories/``.

    python examples/slides_techniques.py
    python examples/slides_techniques.py --quick
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from symopt.lab import kit


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/slides_techniques", epochs=20)
    kit.add_data_argument(parser)
    parser.add_argument("--n-train", type=int, default=None,
                        help="training images for the MLP studies "
                             "(default 5000, 1000 with --quick)")
    parser.add_argument("--parts", default="small,overfitting,gradients",
                        help="which studies to run, comma-separated")
    parser.add_argument("--only", default=None,
                        help="run only the MLP studies whose label contains one of these "
                             "comma-separated words (e.g. 'max-norm,clip by norm')")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def _chosen(studies: dict, only: str | None) -> dict:
    if not only:
        return studies
    words = [w.strip().lower() for w in only.split(",") if w.strip()]
    return {k: v for k, v in studies.items() if any(w in k.lower() for w in words)}


# ---------------------------------------------------------------------------------------
# The slides' small network
# ---------------------------------------------------------------------------------------


def blobs(n_per_class: int, seed: int):
    """Three Gaussian blobs in the plane, labels 0, 1, 2, float32 features."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
    x = np.concatenate([rng.normal(c, 0.9, size=(n_per_class, 2)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(len(y))
    return x[order].astype("float32"), y[order].astype("int64")


def small_network(args, out: Path, epochs: int) -> list[dict]:
    import symopt
    from symopt.lab import nn
    from symopt.lab.history import plot_histories

    x, y = blobs(100 if args.quick else 300, args.seed)
    n_train = int(0.8 * len(y))
    train, valid = (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
    runs, rows = {}, []
    for label, penalty in (("gradient descent", None),
                           ("+ l1 (0.001)",
                            lambda net: symopt.regularize(net.weights, symopt.l1, 0.001))):
        net = nn.MLP([2, 4, 3], activation="sigmoid", seed=args.seed)
        h = kit.fit_classifier(net, lambda loss, params: symopt.sgd(loss, params, 0.5), train,
                               valid_data=valid, epochs=epochs, batch_size=20, seed=args.seed,
                               penalty=penalty, meta={"label": label}, progress=False,
                               save_to=out / "histories" / f"small_{label[:4].strip('+ ')}",
                               log=None)
        runs[label] = h
        rows.append(kit.final_row(label, h, sum_abs_weights=float(
            sum(np.abs(w.get_value()).sum() for w in net.weights))))
    plot_histories(runs, ["train_loss", "valid_accuracy"], out / "small_network.png",
                   title="the slides' network: 2 features, 4 sigmoid hidden units, 3 outputs")
    kit.write_rows(rows, out / "small_network", title="The slides' small network on three blobs",
                   notes="SGD, learning rate 0.5, batch 20; l1 adds 0.001 * sum |w| of the "
                         "weights.")
    return rows


# ---------------------------------------------------------------------------------------
# Overfitting: penalties, max-norm, dropout, early stopping
# ---------------------------------------------------------------------------------------


def _weight_stats(net) -> dict:
    ws = [w.get_value() for w in net.weights]
    return {"sum_abs_weights": float(sum(np.abs(w).sum() for w in ws)),
            "sum_sq_weights": float(sum((w ** 2).sum() for w in ws)),
            "max_unit_norm": float(max(np.sqrt((w ** 2).sum(axis=0)).max() for w in ws))}


def overfitting(args, out: Path, data, epochs: int) -> list[dict]:
    import symopt
    from symopt.lab import nn
    from symopt.lab.history import plot_histories
    from symopt.lab.training import EarlyStopping

    sizes = [784, 64, 32, 10] if args.quick else [784, 300, 100, 10]
    def rule(loss, params):
        return symopt.momentum(loss, params, 0.01, 0.9)

    max_norm = 1.0
    studies = {
        "baseline": {},
        "l1 (1e-4)": {"penalty": lambda net: symopt.regularize(net.weights, symopt.l1, 1e-4)},
        "l2 (1e-3)": {"penalty": lambda net: symopt.regularize(net.weights, symopt.l2, 1e-3)},
        f"max-norm (r={max_norm})": {
            "post_updates": lambda updates, net: symopt.apply_norm_constraint(
                updates, net.weights, max_norm)},
        "dropout (0.5)": {"net": {"dropout": 0.5, "input_dropout": 0.2}},
        "early stopping": {"early_stopping": True},
        # the weight decay of AdamW-style training, on the weights only (not the biases)
        "weight decay (weights only, 1e-3)": {"rule": symopt.chain(
            symopt.masked(symopt.add_decayed_weights(1e-3), lambda p: p.ndim > 1),
            symopt.momentum(learning_rate=0.01, momentum=0.9))},
        # a batch of 400 on the memory of 100: the mean of 4 gradients, one step
        "accumulation (4 x 100)": {"rule": symopt.multi_steps(
            symopt.momentum(learning_rate=0.01, momentum=0.9), every=4)},
    }
    runs, rows = {}, []
    for label, options in _chosen(studies, args.only).items():
        net = nn.MLP(sizes, activation="relu", seed=args.seed, **options.get("net", {}))
        stopper = (EarlyStopping(monitor="valid_loss", patience=2 if args.quick else 3,
                                 restore_best=True) if options.get("early_stopping") else None)
        print(f"overfitting: {label}", flush=True)
        h = kit.fit_classifier(
            net, options.get("rule", rule), (data.x_train, data.y_train),
            valid_data=(data.x_valid, data.y_valid),
            test_data=(data.x_test, data.y_test), epochs=epochs, seed=args.seed,
            penalty=options.get("penalty"), post_updates=options.get("post_updates"),
            early_stopping=stopper, meta={"label": label}, progress=not args.no_progress,
            save_to=out / "histories" / f"overfitting_{label.split(' ')[0]}", log=None)
        runs[label] = h
        row = kit.final_row(label, h, **_weight_stats(net))
        gap = h["train_accuracy"][-1] - h["valid_accuracy"][-1]
        row["train_valid_gap"] = float(gap)
        if stopper is not None:
            row["best_epoch"] = stopper.best_epoch
            row["restored_valid_loss"] = stopper.best
        rows.append(row)
    if not runs:
        return rows
    plot_histories(runs, ["train_loss", "valid_loss", "train_accuracy", "valid_accuracy"],
                   out / "overfitting.png",
                   title=f"overfitting remedies, {'-'.join(map(str, sizes))} ReLU MLP, "
                         f"{len(data.x_train)} training images")
    kit.write_rows(
        rows, out / "overfitting",
        title="Overfitting: penalties, max-norm, dropout, early stopping",
        columns=["rule", "epochs", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy",
                 "train_valid_gap", "test_accuracy", "sum_abs_weights", "sum_sq_weights",
                 "max_unit_norm", "best_epoch", "restored_valid_loss", "stopped"],
        notes=f"{data.describe()}. Momentum 0.9, learning rate 0.01, batch 100. "
              "train_* are means over the last epoch's mini-batches (with dropout on, and "
              "including the penalty in train_loss); max_unit_norm is the largest L2 norm "
              "of a unit's incoming weights (max-norm keeps it at r); the early-stopping "
              "row reports the restored (best) parameters' test accuracy; weight decay "
              "adds 1e-3 * W to the weights' gradients only (symopt.masked), accumulation "
              "steps once per 4 mini-batches with their mean gradient (symopt.multi_steps).")
    return rows


# ---------------------------------------------------------------------------------------
# Vanishing and exploding gradients: init, activations, batch norm, clipping
# ---------------------------------------------------------------------------------------


def _small_normal(shape, rng):
    return rng.normal(0.0, 0.01, size=shape)


def gradients(args, out: Path, data, epochs: int) -> list[dict]:
    import symopt
    from symopt.lab import nn
    from symopt.lab.history import plot_histories

    hidden = [32, 32, 32, 32] if args.quick else [100, 100, 100, 100]
    sizes = [784, *hidden, 10]
    lr = 0.05
    big_lr = 0.5
    studies = {
        "sigmoid, N(0, 0.01) init": dict(activation="sigmoid", init=_small_normal),
        "sigmoid, Xavier init": dict(activation="sigmoid", init="glorot_normal"),
        "sigmoid + batch norm": dict(activation="sigmoid", init="glorot_normal", batch_norm=True),
        "ReLU, He init": dict(activation="relu", init="he_normal"),
        "leaky ReLU, He init": dict(activation="leaky_relu", init="he_normal"),
        "ELU, He init": dict(activation="elu", init="he_normal"),
        f"ReLU, lr {big_lr}, no clipping": dict(activation="relu", init="he_normal", lr=big_lr),
        f"ReLU, lr {big_lr}, clip by value 0.1": dict(activation="relu", init="he_normal",
                                                   lr=big_lr, clip=("value", 0.1)),
        f"ReLU, lr {big_lr}, clip by norm 1.0": dict(activation="relu", init="he_normal",
                                                  lr=big_lr, clip=("norm", 1.0)),
    }
    runs, rows = {}, []
    for label, options in _chosen(studies, args.only).items():
        options = dict(options)
        rate = options.pop("lr", lr)
        clip = options.pop("clip", None)
        net = nn.MLP(sizes, seed=args.seed, **options)
        norms = layer_grad_norms(net, data.x_train[:1000], data.y_train[:1000])
        if clip is None:
            rule = functools.partial(lambda loss, params, rate: symopt.sgd(loss, params, rate),
                                     rate=rate)
        else:
            transform = (symopt.clip(clip[1]) if clip[0] == "value"
                         else symopt.clip_by_global_norm(clip[1]))
            chained = symopt.chain(transform, symopt.sgd(learning_rate=rate))
            rule = functools.partial(symopt.apply, chained)
        print(f"gradients: {label}", flush=True)
        h = kit.fit_classifier(
            net, rule, (data.x_train, data.y_train), valid_data=(data.x_valid, data.y_valid),
            test_data=(data.x_test, data.y_test), epochs=epochs, seed=args.seed,
            monitor=True, record_steps=5, meta={"label": label, "learning_rate": rate},
            progress=not args.no_progress, log=None,
            save_to=out / "histories" / ("gradients_" + "".join(
                c if c.isalnum() else "_" for c in label).strip("_")))
        runs[label] = h
        row = kit.final_row(label, h, learning_rate=rate)
        steps = h.steps
        row["grad_norm_first_to_last"] = norms[0] / norms[-2]
        row["max_grad_norm"] = float(np.nanmax([s.get("grad_norm", np.nan) for s in steps]))
        row["max_update_norm"] = float(np.nanmax([s.get("update_norm", np.nan) for s in steps]))
        rows.append(row)
    if not runs:
        return rows
    plot_histories(runs, ["train_loss", "valid_accuracy"], out / "gradients.png",
                   logy=["train_loss"], figsize_per_plot=(6.0, 4.5),
                   title=f"vanishing/exploding gradients, {'-'.join(map(str, sizes))} MLP, SGD")
    kit.write_rows(
        rows, out / "gradients",
        title="Vanishing and exploding gradients: initialisation, activations, batch norm, "
              "clipping",
        columns=["rule", "learning_rate", "epochs", "train_loss", "valid_accuracy", "test_accuracy",
                 "grad_norm_first_to_last", "max_grad_norm", "max_update_norm", "stopped"],
        notes=f"{data.describe()}. Plain SGD (learning rate {lr}, or {big_lr} for the clipping "
              "rows), batch 100. grad_norm_first_to_last: the gradient norm of the first "
              "hidden layer's weights over the last one's, at the initial weights on the "
              "first 1000 training images (vanishing gradients: far below 1). "
              "max_update_norm: the largest step taken (in the clipping rows at most "
              "lr x 1.0 with clipping by norm); sampled every 5 steps.")
    return rows


def layer_grad_norms(net, x_values, y_values) -> list[float]:
    """The gradient norm of each weight matrix of ``net`` (first layer first) on one batch."""
    import pytensor
    import pytensor.tensor as pt

    from symopt.lab import nn

    x, y = pt.matrix("x", dtype=net.params[0].dtype), pt.lvector("y")
    loss = nn.categorical_crossentropy_from_log_probs(net.output(x, training=True), y)
    grads = pytensor.grad(loss, net.weights)
    f = pytensor.function([x, y], [pt.sqrt(pt.sqr(g).sum()) for g in grads])
    return [float(v) for v in f(x_values, y_values)]


def main(argv=None) -> dict:
    args = parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 20)
    out = Path(args.out)
    (out / "histories").mkdir(parents=True, exist_ok=True)
    parts = [p.strip() for p in args.parts.split(",")]
    n_train = args.n_train or (1000 if args.quick else 5000)
    sizes = dict(n_train=n_train, n_valid=500 if args.quick else 2000,
                 n_test=500 if args.quick else None)
    results = {}
    if "small" in parts:
        results["small"] = small_network(args, out, 30 if args.quick else 100)
    if "overfitting" in parts or "gradients" in parts:
        data = kit.load_image_split(args.data, seed=args.seed, **sizes)
        print(f"data: {data.describe()}", flush=True)
        if "overfitting" in parts:
            results["overfitting"] = overfitting(args, out, data, epochs)
        if "gradients" in parts:
            results["gradients"] = gradients(args, out, data, max(1, epochs // 2))
    for name, rows in results.items():
        print(f"\n{name}:")
        print(kit.markdown_table(rows))
    return {"results": results, "out": out}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
