"""Second-order methods next to Adam and Nesterov momentum, on logistic regression or an MLP.

Trains an L2-penalised logistic regression (or, with ``--hidden N``, a network with one
hidden layer of N tanh units and the same penalty on its weights) with

- mini-batch rules: ``symopt.adam``, ``symopt.nesterov_momentum``, ``symopt.esgd`` and
  ``symopt.vsgd`` (one iteration = one mini-batch step);
- full-batch SciPy solvers through ``symopt.minimize``: L-BFGS-B, CG, Newton-CG and
  trust-ncg (one iteration = one SciPy iteration);
- ``symopt.hessian_free`` with the Gauss-Newton matrix, on larger mini-batches (one
  iteration = one Hessian-free update, each with up to ``--hf-cg-iters`` CG steps);

and plots the full training cost minus a reference against iterations and against
wall-clock time (compilation excluded: every compiled function is run once before the
clock starts). For logistic regression the reference is the optimum (SciPy BFGS to a
gradient norm of 1e-10); the network's optimum is not known, so its reference is the
lowest cost any of the methods reached, and that method's curve ends at the plot's floor
(a tenth of the smallest positive difference). Every method starts from the same
parameters: zero for logistic regression, random weights (seed 0) for the network. The
script also times one step of ESGD against one step of RMSProp, the cost the
Hessian-vector product adds.

The data come from a pluggable source: ``--data synthetic`` (the default, NumPy),
``--data fashion-mnist`` (the images of ``symopt.lab.data``: the full set when installed,
otherwise the subset shipped with symopt) or ``--data package.module:function``, a
function taking the seed and returning ``(X, y)``. Labels with more than two values are
reduced to the two given by ``--classes``; features are standardised.

    python examples/second_order.py --out /tmp/second_order
    python examples/second_order.py --out /tmp/so --quick        # a few seconds
    python examples/second_order.py --out /tmp/fm --data fashion-mnist --classes 0 6
    python examples/second_order.py --out /tmp/mlp --data fashion-mnist --classes 0 6 \\
        --hidden 64
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
import time

import numpy as np

from symopt.lab import kit

# ---------------------------------------------------------------------------------------
# data sources


def synthetic(seed, n_samples=4000, n_features=20):
    """An ill-conditioned, noisy logistic-regression problem made with NumPy."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-1, 1, n_features)  # features over two orders of magnitude
    X = rng.normal(size=(n_samples, n_features)) * scales
    X[:, 1::2] += 0.5 * X[:, ::2]  # and correlated in pairs
    w = rng.normal(size=n_features) / scales
    y = (rng.random(n_samples) < 1 / (1 + np.exp(-(X @ w + 0.3)))).astype(np.float64)
    return X, y


def fashion_mnist(seed):
    """The training images of Fashion-MNIST from ``symopt.lab.data``: the full set when it is
    installed, otherwise the subset shipped with symopt."""
    try:
        from symopt.lab import data
    except ImportError as err:
        raise SystemExit(f"--data fashion-mnist needs symopt.lab.data: {err}") from None
    images = data.load_mnist()
    print(f"images: {images.source}")
    return images.train_x, images.train_y


def load_data(spec, seed, classes, n_samples, n_features):
    """``(X, y)`` with standardised features and 0/1 labels, from ``spec``."""
    if spec == "synthetic":
        return synthetic(seed, n_samples, n_features)
    if spec == "fashion-mnist":
        loader = fashion_mnist
    else:
        module_name, _, function_name = spec.partition(":")
        if not function_name:
            raise SystemExit("--data must be 'synthetic', 'fashion-mnist' or "
                             f"'module:function', got {spec!r}")
        try:
            loader = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as err:
            raise SystemExit(f"cannot load the data source {spec!r}: {err}") from None
    X, y = loader(seed)
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y)
    if set(np.unique(y)) - {0, 1}:
        keep = np.isin(y, classes)
        X, y = X[keep], (y[keep] == classes[1]).astype(np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X, y.astype(np.float64)


# ---------------------------------------------------------------------------------------
# the model, in PyTensor (to train) and in NumPy (to evaluate, outside the timings)


def numpy_cost(X, y, lam, hidden=0):
    """The training cost of ``build_model`` at ``theta``, its parameters laid end to end."""
    n = X.shape[1]

    def cost(theta):
        if hidden:
            W1, b1 = theta[: n * hidden].reshape(n, hidden), theta[n * hidden:][:hidden]
            w, b = theta[-hidden - 1:-1], theta[-1]
            z = np.tanh(X @ W1 + b1) @ w + b
            penalty = np.sum(W1 ** 2) + w @ w
        else:
            w, b = theta[:-1], theta[-1]
            z = X @ w + b
            penalty = w @ w
        return float(np.mean(np.logaddexp(0, z) - y * z) + 0.5 * lam * penalty)

    return cost


def logistic_optimum(X, y, lam):
    """The optimal cost of the logistic regression (SciPy BFGS, to a gradient of 1e-10)."""
    import scipy.optimize

    cost = numpy_cost(X, y, lam)

    def cost_and_grad(theta):
        w, b = theta[:-1], theta[-1]
        p = 1 / (1 + np.exp(-(X @ w + b)))
        return cost(theta), np.append(X.T @ (p - y) / len(y) + lam * w, np.mean(p - y))

    return scipy.optimize.minimize(cost_and_grad, np.zeros(X.shape[1] + 1), jac=True,
                                   method="BFGS", options={"gtol": 1e-10, "maxiter": 10000}).fun


def build_model(n_features, lam, hidden=0):
    """Logistic regression, or with ``hidden`` > 0 a one-hidden-layer tanh network."""
    import pytensor
    import pytensor.tensor as pt

    X, y = pt.dmatrix("X"), pt.dvector("y")
    if hidden:
        rng = np.random.default_rng(0)
        W1 = pytensor.shared(rng.normal(size=(n_features, hidden)) / np.sqrt(n_features),
                             name="W1")
        b1 = pytensor.shared(np.zeros(hidden), name="b1")
        w = pytensor.shared(rng.normal(size=hidden) / np.sqrt(hidden), name="w")
        b = pytensor.shared(np.asarray(0.0), name="b")
        params, weights = [W1, b1, w, b], [W1, w]
        z = pt.tanh(X @ W1 + b1) @ w + b
    else:
        w = pytensor.shared(np.zeros(n_features), name="w")
        b = pytensor.shared(np.asarray(0.0), name="b")
        params, weights = [w, b], [w]
        z = X @ w + b
    penalty = pt.add(*[(v ** 2).sum() for v in weights])
    loss = (pt.softplus(z) - y * z).mean() + 0.5 * lam * penalty
    return loss, z, params, [X, y]


def theta_of(params):
    """The parameters laid end to end, as ``symopt.minimize`` lays them."""
    return np.concatenate([p.get_value().ravel() for p in params])


class Trace:
    """(iteration, seconds, cost) points; time spent evaluating the cost is not counted."""

    def __init__(self, cost):
        self.cost, self.points, self.paused = cost, [], 0.0
        self.start = time.perf_counter()

    def record(self, iteration, theta):
        now = time.perf_counter()
        self.points.append((iteration, now - self.start - self.paused, self.cost(theta)))
        self.paused += time.perf_counter() - now


def snapshot(updates):
    """The values of every shared variable of ``updates`` (parameters and state)."""
    import symopt

    return {var: copy.deepcopy(var.get_value())
            for var in symopt.get_state(updates, include_params=True).values()}


def restore(values):
    for var, value in values.items():
        var.set_value(copy.deepcopy(value))


# ---------------------------------------------------------------------------------------
# the methods


def run_rule(name, make_rule, X, y, args, cost):
    """A mini-batch rule: one compiled step, ``--epochs`` passes over shuffled data."""
    import pytensor

    loss, _, params, inputs = build_model(X.shape[1], args.l2, args.hidden)
    updates = make_rule(loss, params)
    step = pytensor.function(inputs, loss, updates=updates)
    saved = snapshot(updates)
    step(X[: args.batch_size], y[: args.batch_size])  # compile (Numba) before the clock
    restore(saved)
    rng = np.random.default_rng(args.seed)
    n_batches = len(y) // args.batch_size
    trace = Trace(cost)
    trace.record(0, theta_of(params))
    iteration = 0
    for _ in range(args.epochs):
        order = rng.permutation(len(y))
        for k in range(n_batches):
            index = order[k * args.batch_size:(k + 1) * args.batch_size]
            step(X[index], y[index])
            iteration += 1
            if iteration % args.eval_every == 0:
                trace.record(iteration, theta_of(params))
    return trace


def run_scipy(method, X, y, args, cost):
    """A full-batch SciPy solver through symopt.minimize."""
    import symopt

    loss, _, params, inputs = build_model(X.shape[1], args.l2, args.hidden)
    options = {"maxiter": args.scipy_iters}
    start = {p: p.get_value() for p in params}
    symopt.minimize(loss, params, method=method, inputs=inputs, data=[X, y],
                    options={"maxiter": 1})  # compile (and cache) before the clock
    restore(start)
    trace = Trace(cost)
    trace.record(0, theta_of(params))
    count = [0]

    def callback(xk, *_):
        count[0] += 1
        trace.record(count[0], np.asarray(xk))

    symopt.minimize(loss, params, method=method, inputs=inputs, data=[X, y],
                    options=options, callback=callback)
    return trace


def run_hessian_free(X, y, args, cost):
    """Hessian-free with the Gauss-Newton matrix on mini-batches of ``--hf-batch-size``."""
    from symopt.second_order import HessianFree

    loss, z, params, inputs = build_model(X.shape[1], args.l2, args.hidden)
    start = {p: p.get_value() for p in params}
    HessianFree(loss, params, inputs, outputs=z).step(X[:10], y[:10])  # compile, cache
    restore(start)
    hf = HessianFree(loss, params, inputs, outputs=z, max_cg_iters=args.hf_cg_iters)
    rng = np.random.default_rng(args.seed)
    trace = Trace(cost)
    trace.record(0, theta_of(params))
    for k in range(1, args.hf_updates + 1):
        index = rng.choice(len(y), size=min(args.hf_batch_size, len(y)), replace=False)
        hf.step(X[index], y[index])
        trace.record(k, theta_of(params))
    return trace


def measure_step_cost(X, y, args, hidden=0):
    """Seconds per step of SGD, RMSProp, ESGD (product every step / every 20) and vSGD.

    "rmsprop + rng" is RMSProp whose compiled function also draws the random vector ESGD
    draws (and does nothing with it): the cost of holding a random generator, apart from
    the Hessian-vector product. The rules are timed in turn, ``--measure-repeats`` times,
    and the best time of each is kept, which evens out a machine that other work slows.
    """
    import pytensor
    import pytensor.tensor as pt

    import symopt

    def with_draw(loss, params):
        rng = pytensor.shared(np.random.default_rng(0), name="rng")
        size = pt.add(*[p.size for p in params])
        try:  # PyTensor 3
            next_rng, _ = pt.random.normal(0.0, 1.0, size=(size,), rng=rng,
                                           return_next_rng=True)
        except TypeError:  # PyTensor 2
            next_rng, _ = pt.random.normal(0.0, 1.0, size=(size,), rng=rng).owner.outputs
        return symopt.rmsprop(loss, params, 0.01) + [(rng, next_rng)]

    rules = {
        "sgd": lambda loss, p: symopt.sgd(loss, p, 0.1),
        "rmsprop": lambda loss, p: symopt.rmsprop(loss, p, 0.01),
        "rmsprop + rng": with_draw,
        "esgd(every=1)": lambda loss, p: symopt.esgd(loss, p, 0.1, every=1, seed=0),
        "esgd(every=20)": lambda loss, p: symopt.esgd(loss, p, 0.1, every=20, seed=0),
        "vsgd": lambda loss, p: symopt.vsgd(loss, p),
    }
    batch_x, batch_y = X[: args.batch_size], y[: args.batch_size]
    steps = {}
    for name, make in rules.items():
        loss, _, params, inputs = build_model(X.shape[1], args.l2, hidden)
        steps[name] = pytensor.function(inputs, loss, updates=make(loss, params))
        steps[name](batch_x, batch_y)  # compile
    seconds = dict.fromkeys(rules, np.inf)
    for _ in range(args.measure_repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.measure_steps):
                step(batch_x, batch_y)
            seconds[name] = min(seconds[name], (time.perf_counter() - start) / args.measure_steps)
    return seconds


# ---------------------------------------------------------------------------------------


def plot(traces, reference, out, title):
    """Cost minus ``reference``, clipped for the log scale at a tenth of its smallest
    positive value: the method that reached the reference ends just below the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {name: np.array(trace.points) for name, trace in traces.items()}
    gaps = [p[:, 2] - reference for p in points.values()]
    floor = 0.1 * min((g[g > 0].min() for g in gaps if (g > 0).any()), default=1.0)
    for axis, index, label, filename in [
        ("iterations", 0, "iteration (mini-batch step, SciPy iteration or HF update)",
         "cost_vs_iterations.png"),
        ("time", 1, "wall-clock seconds (compilation excluded; log scale)",
         "cost_vs_time.png"),
    ]:
        fig, ax = plt.subplots(figsize=(8, 5))
        for (name, p), gap in zip(points.items(), gaps):
            x = p[:, index] if axis == "iterations" else np.maximum(p[:, 1], 1e-5)
            ax.plot(x, np.maximum(gap, floor), label=name,
                    linestyle="--" if name.startswith(("L-BFGS", "CG", "Newton", "trust", "HF"))
                    else "-")
        ax.set_yscale("log")
        if axis == "iterations":
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(left=0)
        else:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(f"training cost - reference (floor {floor:.0e})")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, filename), dpi=120)
        plt.close(fig)


RULES = ("adam", "nesterov_momentum", "esgd", "vsgd")
SCIPY_METHODS = ("L-BFGS-B", "CG", "Newton-CG", "trust-ncg")
METHODS = RULES + SCIPY_METHODS + ("HF",)


def parse_args(argv=None):
    parser = kit.base_parser(__doc__.split("\n\n")[0], out="results/second_order",
                             epochs=10)
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic' (NumPy), 'fashion-mnist' (symopt.lab.data) or "
                             "'package.module:function' returning (X, y)")
    parser.add_argument("--classes", type=int, nargs=2, default=(0, 1),
                        help="the two labels to keep when the data have more "
                             "(Fashion-MNIST: 0 T-shirt, 6 shirt, ...)")
    parser.add_argument("--n-samples", type=int, default=4000, help="synthetic data only")
    parser.add_argument("--n-features", type=int, default=20, help="synthetic data only")
    parser.add_argument("--hidden", type=int, default=0,
                        help="train a network with this many tanh hidden units "
                             "(0: logistic regression)")
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--esgd-lr", type=float, default=0.2,
                        help="ESGD's learning rate (the paper tunes it per problem; "
                             "Fashion-MNIST needs a smaller one than the synthetic data)")
    parser.add_argument("--eval-every", type=int, default=10, help="mini-batch steps")
    parser.add_argument("--scipy-iters", type=int, default=200)
    parser.add_argument("--hf-batch-size", type=int, default=1000)
    parser.add_argument("--hf-updates", type=int, default=30)
    parser.add_argument("--hf-cg-iters", type=int, default=50)
    parser.add_argument("--measure-hidden", type=int, default=256,
                        help="also time the steps on a network with this many hidden "
                             "units (0: only on the logistic regression)")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                        metavar="METHOD", help=f"which to run, among {' '.join(METHODS)}")
    parser.add_argument("--measure-steps", type=int, default=500,
                        help="steps per timing of one step's cost (0: no timing)")
    parser.add_argument("--measure-repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 2 if args.quick else 10
    if args.quick:
        args.n_samples, args.scipy_iters = 600, 30
        args.hf_batch_size, args.hf_updates, args.hf_cg_iters = 300, 5, 10
        args.measure_steps = min(args.measure_steps, 50)
        args.measure_repeats, args.measure_hidden = 2, 0
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import symopt

    X, y = load_data(args.data, args.seed, args.classes, args.n_samples, args.n_features)
    cost = numpy_cost(X, y, args.l2, args.hidden)
    model = f"MLP({args.hidden} tanh units)" if args.hidden else "logistic regression"
    print(f"{model}, {len(y)} examples, {X.shape[1]} features")
    if not args.hidden:
        reference, reference_is = logistic_optimum(X, y, args.l2), "the optimum (SciPy BFGS)"
        print(f"optimum {reference:.8f} (SciPy BFGS)")

    rules = {
        "adam": lambda loss, p: symopt.adam(loss, p, learning_rate=1e-2),
        "nesterov_momentum": lambda loss, p: symopt.nesterov_momentum(loss, p, 1e-2, 0.9),
        "esgd": lambda loss, p: symopt.esgd(loss, p, learning_rate=args.esgd_lr,
                                            seed=args.seed),
        "vsgd": lambda loss, p: symopt.vsgd(loss, p),
    }
    traces = {}
    for name, make in rules.items():
        if name in args.methods:
            traces[name] = run_rule(name, make, X, y, args, cost)
    for method in SCIPY_METHODS:
        if method in args.methods:
            traces[method] = run_scipy(method, X, y, args, cost)
    if "HF" in args.methods:
        traces["HF (Gauss-Newton)"] = run_hessian_free(X, y, args, cost)

    if args.hidden:
        lowest = {name: np.nanmin([c for _, _, c in t.points]) for name, t in traces.items()}
        best = min(lowest, key=lowest.get)
        reference, reference_is = lowest[best], f"the lowest cost reached (by {best})"
        print(f"reference {reference:.8f}, {reference_is}")

    final = {}
    for name, trace in traces.items():
        iteration, seconds, value = trace.points[-1]
        final[name] = {"iterations": iteration, "seconds": seconds, "cost": value,
                       "cost_minus_reference": value - reference}
    rows = [{"method": name, **numbers} for name, numbers in final.items()]
    kit.write_rows(rows, os.path.join(args.out, "final"), title=f"{model}: final cost",
                   notes=f"Reference: {reference_is}, {reference:.8f}.")
    print(kit.markdown_table(rows, digits=6))
    plot(traces, reference, args.out,
         f"{model}, {len(y)} examples x {X.shape[1]} features ({args.data})\n"
         f"reference: {reference_is}, {reference:.6f}")

    step_cost = {}
    for hidden in ([0] if args.measure_steps else []) + (
            [args.measure_hidden] if args.measure_steps and args.measure_hidden else []):
        timed = f"MLP({hidden} tanh units)" if hidden else "logistic regression"
        seconds = measure_step_cost(X, y, args, hidden)
        step_cost[timed] = seconds
        print(f"\nseconds per mini-batch step, {timed} (batch of {args.batch_size}, "
              f"best of {args.measure_repeats} x {args.measure_steps} steps):")
        for name, value in seconds.items():
            print(f"  {name:<16} {value * 1e6:9.1f} us   x{value / seconds['rmsprop']:.2f} "
                  "RMSProp")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"data": args.data, "hidden": args.hidden, "reference": reference,
                   "reference_is": reference_is, "optimum": None if args.hidden else reference,
                   "final": final,
                   "traces": {k: v.points for k, v in traces.items()},
                   "seconds_per_step": step_cost}, f, indent=1)
    print(f"\nwrote {args.out}/cost_vs_iterations.png, cost_vs_time.png, results.json")
    return traces, step_cost


if __name__ == "__main__":
    with kit.limit_threads(1):
        sys.exit(main() and 0)
