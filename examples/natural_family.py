r"""The end of Misra's lecture: the natural-gradient family against Adam, and the Adam paper's MLP.

Three parts, each training from the same initial weights (seed ``--seed``) on the same
mini-batches, and recording the training cost against iterations and against wall-clock
time (compilation excluded: every compiled function has run once before the clock starts;
PRONG's re-estimations are inside the clock):

- ``mlp``: a tanh MLP (``--hidden``) classifying the images, trained by Adam, by
  ``symopt.natural_gradient`` (Fisher-vector products and conjugate gradient),
  ``symopt.kfac`` (sampled Fisher), ``symopt.shampoo`` and ``symopt.soap``; and, as
  Desjardins et al. (2015) compare it, PRONG (:mod:`symopt.lab.prong`: SGD on the
  whitened network, re-whitened every ``--prong-every`` steps from ``--prong-samples``
  images) against the same network under plain SGD and with batch normalisation;
- ``autoencoder``: Martens's (2010) benchmark, a deep autoencoder of the images
  (``--autoencoder`` sizes, tanh, a logistic output, each image's cross-entropy summed
  over its pixels), trained by Adam, the natural gradient, K-FAC (Bernoulli Fisher),
  Shampoo and SOAP;
- ``adam-paper``: the Adam paper's multilayer-network experiment (Kingma & Ba, 2015,
  section 6.2: two hidden layers of ReLU units with dropout), training cost against
  iterations for AdaGrad, RMSProp, SGD with Nesterov momentum, AdaDelta and Adam.

The training cost is evaluated every ``--eval-every`` steps on ``--eval-size`` training
images without dropout (the cost each rule minimises, on a fixed sample). Outputs in
``--out``, per part: ``<part>.png`` (against iterations and against seconds),
``<part>.md`` / ``.csv`` / ``.json`` (final cost, seconds per step, its ratio to Adam's)
and ``<part>_curves.json``.

    python examples/natural_family.py --out docs/results/natural_family
    python examples/natural_family.py --quick --out /tmp/nf     # little data, few steps
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

from symopt.lab import kit

PARTS = ("mlp", "autoencoder", "adam-paper")

#: PyTensor modes by name: the C backend's virtual machine by default, since PyTensor's
#: Numba backend computes the transposed products of these networks' gradients many
#: times slower (see docs/results, second-order methods), which would hide the methods'
#: own costs in the wall-clock comparison.
MODES = {"c": "CVM", "numba": "NUMBA"}

#: The settings of each method (the cheapest first, the natural gradient last).
MLP_METHODS = {
    "adam": {"learning_rate": 1e-3},
    "sgd": {"learning_rate": 0.1},
    "sgd + batch norm": {"learning_rate": 0.1},
    "prong (sgd)": {"learning_rate": 0.1},
    "kfac": {"learning_rate": 0.05, "damping": 1e-2, "update_every": 10},
    "shampoo": {"learning_rate": 1e-3, "update_every": 10},
    "soap": {"learning_rate": 3e-3, "update_every": 10},
    "natural gradient": {"learning_rate": 0.5, "damping": 1e-2, "cg_iters": 10},
}
AUTOENCODER_METHODS = {
    "adam": {"learning_rate": 1e-3},
    "kfac": {"learning_rate": 0.02, "damping": 1e-2, "update_every": 10},
    "shampoo": {"learning_rate": 1e-3, "update_every": 10},
    "soap": {"learning_rate": 3e-3, "update_every": 10},
    "natural gradient": {"learning_rate": 0.5, "damping": 1e-2, "cg_iters": 10},
}
ADAM_PAPER_METHODS = {
    "adagrad": {"learning_rate": 0.01},
    "rmsprop": {"learning_rate": 1e-3},
    "nesterov_momentum": {"learning_rate": 0.01, "momentum": 0.9},
    "adadelta": {"learning_rate": 1.0},
    "adam": {"learning_rate": 1e-3},
}


class Task:
    """A model on the image data: its symbolic inputs, cost and the training batches."""

    def __init__(self, part, images, args):
        import pytensor.tensor as pt

        self.part, self.args = part, args
        self.x = pt.matrix("x", dtype="float32")
        self.y = pt.lvector("y")
        self.train_x, self.train_y = images.x_train, images.y_train
        rng = np.random.default_rng(args.seed + 1)
        sample = rng.choice(len(self.train_x), min(args.eval_size, len(self.train_x)),
                            replace=False)
        self.eval_x, self.eval_y = self.train_x[sample], self.train_y[sample]

    def batches(self, steps):
        """The same ``steps`` mini-batches for every method."""
        rng = np.random.default_rng(self.args.seed + 2)
        n, size = len(self.train_x), self.args.batch_size
        order = np.empty(0, dtype=np.int64)
        for _ in range(steps):
            if len(order) < size:
                order = np.concatenate([order, rng.permutation(n)])
            index, order = order[:size], order[size:]
            yield self.train_x[index], self.train_y[index]

    def network(self, method):
        """``(net, logits_train, logits_eval)`` for ``method``."""
        from symopt.lab import nn
        from symopt.lab.prong import WhitenedMLP

        args = self.args
        if self.part == "autoencoder":
            sizes = [784, *args.autoencoder, 784]
            net = nn.MLP(sizes, activation="tanh", output_activation="linear", seed=args.seed)
        elif self.part == "adam-paper":
            net = nn.MLP([784, args.paper_hidden, args.paper_hidden, 10], activation="relu",
                         output_activation="linear", dropout=0.5, input_dropout=0.2,
                         seed=args.seed)
        elif method == "prong (sgd)":
            net = WhitenedMLP([784, *args.hidden, 10], activation="tanh",
                              output_activation="linear", seed=args.seed)
        else:
            net = nn.MLP([784, *args.hidden, 10], activation="tanh", output_activation="linear",
                         batch_norm=method == "sgd + batch norm", seed=args.seed)
        # the training graph last: K-FAC takes the layers' inputs of the latest graph
        logits_eval = net.output(self.x, training=False)
        return net, net.output(self.x, training=True), logits_eval

    def cost(self, logits):
        """The mean negative log-likelihood of the mini-batch."""
        import pytensor.tensor as pt

        from symopt.lab import nn

        if self.part == "autoencoder":  # Bernoulli pixels: summed over the image
            return nn.binary_crossentropy_with_logits(logits, self.x) * np.float32(784)
        return nn.categorical_crossentropy_from_log_probs(
            pt.special.log_softmax(logits, axis=-1), self.y)

    def inputs(self):
        return [self.x] if self.part == "autoencoder" else [self.x, self.y]

    def feed(self, bx, by):
        return (bx,) if self.part == "autoencoder" else (bx, by)


def updates_for(method, settings, task, net, logits, loss):
    """The update pairs of ``method`` (plus the network's own, dropout's and BN's)."""
    import symopt
    from symopt.lab import nn

    if method in ("natural gradient",):
        updates = symopt.natural_gradient(loss, net.params, outputs=logits, **settings)
    elif method == "kfac":
        fisher = "bernoulli" if task.part == "autoencoder" else "categorical"
        updates = symopt.kfac(loss, nn.kfac_layers(net), fisher=fisher, outputs=logits,
                              seed=task.args.seed, **settings)
        trained = {p for p, _ in updates}
        others = [p for p in net.params if p not in trained]
        if others:  # not dense weights: none in these networks
            updates += symopt.adam(loss, others)
    elif method.startswith("sgd") or method == "prong (sgd)":
        updates = symopt.sgd(loss, net.params, **settings)
    else:
        updates = symopt.RULES[method](loss, net.params, **settings)
    return list(updates) + list(net.extra_updates)


def run_method(method, settings, task, steps, eval_every):
    """Train one method; its curve (steps, seconds, training cost) and timings."""
    import pytensor

    from symopt.lab.prong import PRONG

    args = task.args
    net, logits, logits_eval = task.network(method)
    loss = task.cost(logits)
    started = time.perf_counter()
    updates = updates_for(method, settings, task, net, logits, loss)
    mode = MODES[args.backend]
    step = pytensor.function(task.inputs(), loss, updates=updates, mode=mode)
    evaluate = pytensor.function(task.inputs(), task.cost(logits_eval), mode=mode)
    prong = None
    if method == "prong (sgd)":
        prong = PRONG(net, task.x, every=args.prong_every, n_samples=args.prong_samples,
                      epsilon=args.prong_epsilon, seed=args.seed)
    # run each compiled function once (compilation and first-call costs), then restart
    start = [(v, copy.deepcopy(v.get_value())) for v, _ in updates]  # random generators too
    bx, by = next(task.batches(1))
    step(*task.feed(bx, by))
    evaluate(*task.feed(task.eval_x, task.eval_y))
    for var, value in start:
        var.set_value(copy.deepcopy(value))
    compile_seconds = time.perf_counter() - started
    feed_eval = task.feed(task.eval_x, task.eval_y)
    curve = {"step": [0], "seconds": [0.0], "cost": [float(evaluate(*feed_eval))],
             "batch_cost": []}
    seconds = 0.0
    for t, (bx, by) in enumerate(task.batches(steps), start=1):
        tick = time.perf_counter()
        if prong is not None:
            prong.step(t - 1, task.train_x)
        curve["batch_cost"].append(float(step(*task.feed(bx, by))))
        seconds += time.perf_counter() - tick
        if t % eval_every == 0 or t == steps:
            cost = float(evaluate(*feed_eval))
            curve["step"].append(t)
            curve["seconds"].append(seconds)
            curve["cost"].append(cost)
            if not np.isfinite(cost):
                print(f"  {method}: the cost is {cost} at step {t}; stopping", flush=True)
                break
    print(f"  {method}: cost {curve['cost'][0]:.4f} -> {curve['cost'][-1]:.4f} in "
          f"{curve['step'][-1]} steps, {seconds:.1f} s (+{compile_seconds:.0f} s compiling)",
          flush=True)
    return {"curve": curve, "settings": settings, "seconds": seconds,
            "compile_seconds": compile_seconds,
            "reparametrisations": prong.count if prong is not None else None}


def plot(results, path, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    by_step, by_time = fig.subplots(1, 2)
    for method, result in results.items():
        c = result["curve"]
        style = "--" if method.startswith("sgd") else "-"
        by_step.plot(c["step"], c["cost"], style, label=method)
        by_time.plot(c["seconds"], c["cost"], style, label=method)
    for ax, label in ((by_step, "iteration"), (by_time, "seconds (compilation excluded)")):
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("training cost")
        ax.grid(True, alpha=0.3)
    by_step.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)


PART_TITLES = {
    "mlp": "MLP {sizes}: the natural-gradient family, PRONG, and Adam",
    "autoencoder": "deep autoencoder {sizes} (Martens 2010)",
    "adam-paper": "the Adam paper's MLP {sizes} with dropout",
}


def run_part(part, images, args):
    methods = {"mlp": MLP_METHODS, "autoencoder": AUTOENCODER_METHODS,
               "adam-paper": ADAM_PAPER_METHODS}[part]
    if args.methods:
        methods = {m: s for m, s in methods.items() if m in args.methods}
    task = Task(part, images, args)
    sizes = {"mlp": [784, *args.hidden, 10], "autoencoder": [784, *args.autoencoder, 784],
             "adam-paper": [784, args.paper_hidden, args.paper_hidden, 10]}[part]
    print(f"{part}: {'-'.join(map(str, sizes))}, {len(methods)} methods, {args.steps} steps",
          flush=True)
    results, failed = {}, {}
    rows = []
    for method, settings in methods.items():
        try:
            results[method] = run_method(method, settings, task, args.steps, args.eval_every)
        except Exception as err:  # one method's failure should not lose the others' runs
            print(f"  {method} FAILED: {type(err).__name__}: {err}", flush=True)
            failed[method] = f"{type(err).__name__}: {err}"
        rows = write_part(part, sizes, results, failed, methods, task, images, args)
    print(kit.markdown_table(rows, ["method", "final_cost", "best_cost", "ms_per_step",
                                    "per_step_vs_adam"]))
    return {"results": results, "rows": rows, "failed": failed}


def write_part(part, sizes, results, failed, methods, task, images, args):
    """The figure, the table and the curves of the methods run so far (rewritten after
    each method, so that a long run leaves its results behind whenever it stops)."""
    out = Path(args.out)
    title = PART_TITLES[part].format(sizes="-".join(map(str, sizes)))
    if results:
        plot(results, out / f"{part}.png", title)
    reference = results.get("adam")
    rows = []
    for method, r in results.items():
        c = r["curve"]
        per_step = r["seconds"] / max(c["step"][-1], 1)
        adam_per_step = (reference["seconds"] / reference["curve"]["step"][-1]
                         if reference else None)
        rows.append({"method": method, "settings": json.dumps(r["settings"]),
                     "steps": c["step"][-1], "initial_cost": c["cost"][0],
                     "final_cost": c["cost"][-1], "best_cost": float(np.nanmin(c["cost"])),
                     "ms_per_step": 1e3 * per_step,
                     "per_step_vs_adam": per_step / adam_per_step if adam_per_step else None,
                     "compile_seconds": r["compile_seconds"]})
    rows += [{"method": m, "settings": json.dumps(methods[m]), "failed": e}
             for m, e in failed.items()]
    notes = (f"{images.describe()}; training on {len(task.train_x)} images, mini-batches of "
             f"{args.batch_size}, {args.backend} backend; the cost is each image's negative "
             f"log-likelihood, averaged over {len(task.eval_x)} training images without "
             f"dropout, every {args.eval_every} steps. ms_per_step: wall-clock milliseconds "
             "of one training step on a shared 2-core machine (PRONG's re-whitening "
             "included), and its ratio to Adam's.")
    kit.write_rows(rows, out / part, title=title, notes=notes)
    (out / f"{part}_curves.json").write_text(json.dumps(
        {m: {**r["curve"], "settings": r["settings"]} for m, r in results.items()}) + "\n")
    return rows


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n")[0], out="results/natural_family")
    kit.add_data_argument(parser)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {PARTS}")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: only these methods of each part")
    parser.add_argument("--n-train", type=int, default=None, help="training images used")
    parser.add_argument("--steps", type=int, default=None, help="default 1000 (60 with --quick)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=None,
                        help="default 50 (20 with --quick)")
    parser.add_argument("--eval-size", type=int, default=2000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 100],
                        help="the MLP's hidden layers")
    parser.add_argument("--autoencoder", type=int, nargs="+", default=[200, 100, 30, 100, 200],
                        help="the autoencoder's hidden layers (Martens: 1000 500 250 30 ...)")
    parser.add_argument("--paper-hidden", type=int, default=256,
                        help="the Adam paper's MLP's hidden units (the paper: 1000)")
    parser.add_argument("--backend", default="c", choices=sorted(MODES))
    parser.add_argument("--prong-every", type=int, default=100, help="PRONG's T")
    parser.add_argument("--prong-samples", type=int, default=1000, help="PRONG's N_s")
    parser.add_argument("--prong-epsilon", type=float, default=0.1, help="PRONG's epsilon")
    args = parser.parse_args(argv)
    if args.quick:
        args.data = args.data or "embedded"
        args.n_train = args.n_train or 1000
        args.hidden = [32] if "--hidden" not in (argv or sys.argv[1:]) else args.hidden
        args.autoencoder = ([64, 16, 64] if "--autoencoder" not in (argv or sys.argv[1:])
                            else args.autoencoder)
        args.paper_hidden = 64 if "--paper-hidden" not in (argv or sys.argv[1:]) \
            else args.paper_hidden
        args.eval_size = min(args.eval_size, 500)
        args.prong_every = min(args.prong_every, 20)
        args.prong_samples = min(args.prong_samples, 500)
    args.steps = args.steps or (60 if args.quick else 1000)
    args.eval_every = args.eval_every or (20 if args.quick else 50)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {PARTS}")
    args.methods = args.methods.split(",") if args.methods else None
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    images = kit.load_image_split(args.data, n_train=args.n_train, seed=args.seed)
    print(images.describe(), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    return {part: run_part(part, images, args) for part in args.parts}


if __name__ == "__main__":
    with kit.limit_threads(1):
        main()
