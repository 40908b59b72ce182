r"""The course note's optimisation study: mini-batch GD, momentum and Adam on two moons.

The note (Deep learning note 2, part 2) compares mini-batch gradient descent, gradient
descent with momentum (beta 0.9) and Adam on a small "moons" data set, and finds that
momentum barely helps at a small learning rate while Adam clearly does better; it then
recommends learning-rate decay and normalising the inputs with the *training set's*
mean and variance, applied unchanged to the validation and test sets.

This script generates the two interleaved half-moons with NumPy (``make_moons``), and:

1. trains the same network (2-5-2-2, ReLU, softmax output, mini-batches of 64, as the
   course's assignment) with :func:`symopt.sgd`, :func:`symopt.momentum` and
   :func:`symopt.adam` at the assignment's learning rate 0.0007, and draws the cost per
   mini-batch (its oscillations) and per epoch;
2. learning-rate decay (:mod:`symopt.schedules`): mini-batch GD at a large rate, constant
   against the note's exponential decay :math:`0.95^{epoch} \eta_0` and 1/t decay
   :math:`\eta_0 / (1 + d \cdot epoch)`;
3. input normalisation (:func:`symopt.lab.data.standardize`): the moons measured in "raw
   units" (the second feature scaled by 100 and shifted by 500) trained as they are and
   standardised with the training set's statistics.

Outputs in ``--out``: ``optimizers.png``, ``decay.png``, ``normalisation.png``, the
histories in ``histories/``, and ``results.md`` / ``.csv`` / ``.json``.

    python examples/course_note.py
    python examples/course_note.py --quick
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symopt.lab import kit

ASSIGNMENT_LR = 0.0007


def make_moons(n: int, noise: float = 0.2, seed: int = 0):
    """Two interleaved half circles with Gaussian noise: ``x`` float32 (n, 2), ``y`` int64."""
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    t_upper = rng.uniform(0, np.pi, n_upper)
    t_lower = rng.uniform(0, np.pi, n - n_upper)
    upper = np.stack([np.cos(t_upper), np.sin(t_upper)], axis=1)
    lower = np.stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, size=(n, 2))
    y = np.concatenate([np.zeros(n_upper), np.ones(n - n_upper)])
    order = rng.permutation(n)
    return x[order].astype("float32"), y[order].astype("int64")


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/course_note", epochs=1000)
    parser.add_argument("--n", type=int, default=None,
                        help=("examples generated (default 900: 600 train, 150 validation, "
                              "150 test)"))
    parser.add_argument("--parts", default="optimizers,decay,normalisation")
    return parser.parse_args(argv)


def _split(x, y):
    """Two thirds for training, a sixth each for validation and test."""
    n = len(y)
    a = int(2 * n / 3)
    b = a + (n - a) // 2
    return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])


def _train(label, updates_fn, train, valid, test, epochs, args, out, **kw):
    from symopt.lab import nn

    net = nn.MLP([2, 5, 2, 2], activation="relu", seed=args.seed)
    return kit.fit_classifier(net, updates_fn, train, valid_data=valid, test_data=test,
                              epochs=epochs, batch_size=64, seed=args.seed, progress=False,
                              meta={"label": label}, log=None,
                              save_to=out / "histories" / "".join(
                                  c if c.isalnum() else "_" for c in label), **kw)


def optimizers(args, out, data, epochs):
    import symopt
    from symopt.lab.history import plot_histories

    rules = {
        "mini-batch GD": lambda loss, params: symopt.sgd(loss, params, ASSIGNMENT_LR),
        "momentum (0.9)": lambda loss, params: symopt.momentum(loss, params, ASSIGNMENT_LR, 0.9),
        "Adam": lambda loss, params: symopt.adam(loss, params, ASSIGNMENT_LR),
    }
    steps = epochs * -(-len(data[0][1]) // 64)
    every = max(1, steps // 2000)  # at most about 2000 step records per run
    runs = {label: _train(label, rule, *data, epochs, args, out, record_steps=every)
            for label, rule in rules.items()}
    plot_histories(runs, ["loss"], out / "optimizers_steps.png", table="steps",
                   figsize_per_plot=(9.0, 4.0),
                   title=f"cost per mini-batch (batch 64; one step in {every} shown), "
                         f"learning rate {ASSIGNMENT_LR}")
    plot_histories(runs, ["train_loss", "valid_accuracy"], out / "optimizers.png",
                   title=f"two moons, 2-5-2-2 ReLU network, learning rate {ASSIGNMENT_LR}")
    return [kit.final_row(label, h, part="optimizers", learning_rate=ASSIGNMENT_LR)
            for label, h in runs.items()]


def decay(args, out, data, epochs):
    import symopt
    from symopt.lab.history import plot_histories
    from symopt.schedules import Constant, ExponentialDecay, InverseTimeDecay

    lr0 = 0.5
    schedules = {
        f"constant {lr0}": Constant(lr0),
        f"0.95^epoch x {lr0}": ExponentialDecay(lr0, rate=0.95, minimum=1e-3),
        f"{lr0} / (1 + 0.05 epoch)": InverseTimeDecay(lr0, rate=0.05),
    }
    runs = {}
    for label, schedule in schedules.items():
        runs[label] = _train(label, lambda loss, params, s=schedule: symopt.sgd(
            loss, params, s.variable), *data, epochs, args, out, schedule=schedule)
    plot_histories(runs, ["train_loss", "valid_loss", "learning_rate", "valid_accuracy"],
                   out / "decay.png", logy=["train_loss", "valid_loss", "learning_rate"],
                   title="learning-rate decay, mini-batch GD")
    rows = []
    for label, h in runs.items():
        loss = h["train_loss"]
        tail = loss[-max(2, len(loss) // 5):]
        rows.append(kit.final_row(label, h, part="decay", learning_rate=lr0,
                                  final_learning_rate=h.last("learning_rate"),
                                  train_loss_spread_last_fifth=float(tail.max() - tail.min())))
    return rows


def normalisation(args, out, data, epochs):
    import symopt
    from symopt.lab.data import standardize
    from symopt.lab.history import plot_histories

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data
    scale = np.array([1.0, 100.0], dtype="float32")
    shift = np.array([0.0, 500.0], dtype="float32")
    raw = [(x * scale + shift, y) for x, y in data]
    x_tr_n, x_va_n, x_te_n = standardize(raw[0][0], raw[1][0], raw[2][0])
    # The validation and test sets get the training set's statistics, not their own:
    mean, std = raw[0][0].mean(axis=0), raw[0][0].std(axis=0)
    assert np.allclose(x_va_n, (raw[1][0] - mean) / std, atol=1e-4)
    normalised = [(x_tr_n, y_tr), (x_va_n, y_va), (x_te_n, y_te)]
    rule = lambda loss, params: symopt.adam(loss, params, 0.01)  # noqa: E731
    runs = {"raw units": _train("raw units", rule, *raw, epochs, args, out),
            "standardised (training mean/std)": _train(
                "standardised (training mean/std)", rule, *normalised, epochs, args, out)}
    plot_histories(runs, ["train_loss", "valid_accuracy"], out / "normalisation.png",
                   title="input normalisation (second feature x100 + 500), Adam 0.01")
    return [kit.final_row(label, h, part="normalisation", learning_rate=0.01,
                          feature_mean_train=str(
                              np.round(x.mean(axis=0).astype(float), 3).tolist()),
                          feature_std_train=str(np.round(x.std(axis=0).astype(float), 3).tolist()))
            for (label, h), x in zip(runs.items(), (raw[0][0], x_tr_n))]


def main(argv=None) -> dict:
    args = parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (40 if args.quick else 1000)
    out = Path(args.out)
    (out / "histories").mkdir(parents=True, exist_ok=True)
    x, y = make_moons(args.n or (300 if args.quick else 900), seed=args.seed)
    data = _split(x, y)
    parts = [p.strip() for p in args.parts.split(",")]
    rows = []
    if "optimizers" in parts:
        rows += optimizers(args, out, data, epochs)
    if "decay" in parts:
        rows += decay(args, out, data, max(1, epochs // 5))
    if "normalisation" in parts:
        rows += normalisation(args, out, data, max(1, epochs // 5))
    columns = ["part", "rule", "learning_rate", "epochs", "train_loss", "valid_loss",
               "valid_accuracy", "test_accuracy", "final_learning_rate",
               "train_loss_spread_last_fifth", "feature_mean_train", "feature_std_train"]
    kit.write_rows(rows, out / "results", columns=columns,
                   title="Course note: optimisers, learning-rate decay, input normalisation",
                   notes=f"Two moons (noise 0.2): {len(data[0][1])} training, {len(data[1][1])} "
                         f"validation, {len(data[2][1])} test points; 2-5-2-2 ReLU network, "
                         f"batch 64. Optimisers for {epochs} epochs, decay and normalisation "
                         f"for {max(1, epochs // 5)}.")
    print(kit.markdown_table(rows, ["part", "rule", "epochs", "train_loss", "valid_accuracy",
                                    "test_accuracy"]))
    return {"rows": rows, "out": out}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
