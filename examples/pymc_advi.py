"""The update rules as PyMC's ADVI optimizer, on a hierarchical model and a logistic regression.

ADVI (``pm.fit(method="advi")``) maximises the ELBO by stochastic gradient steps: each
iteration estimates the gradient from one draw of the approximation, so every gradient is
noisy even on the full data. This script fits two PyMC models with each rule as
``obj_optimizer`` and compares the negative ELBO (``approx.hist``):

- **hierarchical**: a radon-like varying-intercept regression, made up here with NumPy
  (``--groups`` counties with 2 to 40 houses each, a floor effect, a non-centred
  county intercept); 3 + groups parameters of the posterior;
- **logistic**: a Bayesian logistic regression on ``--features`` correlated features
  (1000 observations), Normal priors.

Every rule runs ``--iterations`` iterations from the same start with the same random
seed; the table gives the mean -ELBO of the last ``--tail`` iterations (a one-draw
estimate per iteration: averaging is what makes them comparable), the best mean of a
window of that size, and the time. One more run per model shows the schedule recipe:
Adam whose rate halves when the windowed -ELBO stalls
(:class:`symopt.schedules.ReduceOnPlateau` through :class:`symopt.schedules.StepEvery`)
and stops once 4 windows in a row gain less than 0.5 on the best
(:class:`symopt.schedules.StopOnPlateau`). Written to ``--out``: ``results.md`` (and
``.csv``, ``.json``), a figure per model (``<model>.png``) and its runs' histories
(``<model>_histories.npz``, one float32 array per run).

Run it in the PyMC environment (PyMC pins PyTensor 2.38, C backend):

    .venv-pymc/bin/python examples/pymc_advi.py --out docs/results/pymc_advi
    .venv-pymc/bin/python examples/pymc_advi.py --out /tmp/advi --quick   # a few seconds
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from symopt.lab import kit

#: (label, rule name, hyperparameters): each rule at a learning rate that suits ADVI on
#: these models (the gradient-scale rules need a small one: the full-data gradient is
#: large), PyMC's defaults where PyMC has the rule.
RUNS = [
    ("sgd", "sgd", {"learning_rate": 2e-4}),
    ("momentum", "momentum", {"learning_rate": 2e-5, "momentum": 0.9}),
    ("adagrad", "adagrad", {"learning_rate": 0.1}),
    ("adagrad_window (PyMC's default)", "adagrad_window", {"learning_rate": 1e-3}),
    ("adagrad_window, learning rate 0.01", "adagrad_window", {"learning_rate": 0.01}),
    ("rmsprop", "rmsprop", {"learning_rate": 0.01}),
    ("adadelta", "adadelta", {"learning_rate": 1.0}),
    ("adam", "adam", {"learning_rate": 0.01}),
    ("adam, PyMC's epsilon form", "adam",
     {"learning_rate": 0.01, "epsilon_placement": "before_correction"}),
    ("adamax", "adamax", {"learning_rate": 0.01}),
    ("rprop (full batch)", "rprop", {"learning_rate": 0.01}),
]
QUICK_RUNS = ["adam", "rprop (full batch)"]
SCHEDULED = "adam, rate halved on plateau, early stop"


# ---------------------------------------------------------------------------------------
# the models


def radon_like(seed, groups=30):
    """Varying-intercept data: ``groups`` counties, log-radon against floor (0 or 1)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 41, size=groups)
    county = np.repeat(np.arange(groups), sizes)
    floor = (rng.random(county.size) < 0.3).astype("float64")
    county_effect = 1.5 + 0.4 * rng.normal(size=groups)
    y = county_effect[county] - 0.7 * floor + 0.75 * rng.normal(size=county.size)
    return county, floor, y


def hierarchical_model(seed, groups=30):
    import pymc as pm

    county, floor, y = radon_like(seed, groups)
    with pm.Model() as model:
        mu_a = pm.Normal("mu_a", 0.0, 10.0)
        sigma_a = pm.HalfNormal("sigma_a", 1.0)
        offset = pm.Normal("offset", 0.0, 1.0, shape=groups)
        b = pm.Normal("b", 0.0, 10.0)
        sigma_y = pm.HalfNormal("sigma_y", 1.0)
        a = mu_a + sigma_a * offset
        pm.Normal("y", a[county] + b * floor, sigma_y, observed=y)
    return model


def logistic_model(seed, features=10, n=1000):
    import pymc as pm

    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(n, features))
    X[:, 1::2] += 0.8 * X[:, ::2]  # correlated in pairs
    w = rng.normal(size=features)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w - 0.5)))).astype("int64")
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 2.0, shape=features)
        intercept = pm.Normal("intercept", 0.0, 5.0)
        pm.Bernoulli("y", logit_p=intercept + pm.math.dot(X, beta), observed=y)
    return model


MODELS = {"hierarchical": hierarchical_model, "logistic": logistic_model}


# ---------------------------------------------------------------------------------------
# fitting


def fit(model, optimizer, iterations, seed, callbacks=()):
    import pymc as pm

    start = time.perf_counter()
    with model:
        approx = pm.fit(iterations, method="advi", obj_optimizer=optimizer,
                        callbacks=list(callbacks), random_seed=seed, progressbar=False)
    return np.asarray(approx.hist, dtype="float64"), time.perf_counter() - start


def windowed(hist, tail):
    """The mean of the last ``tail`` values, and the best mean of ``tail`` in a row."""
    finite = np.where(np.isfinite(hist), hist, np.nan)
    last = float(np.nanmean(finite[-tail:]))
    if finite.size < tail:
        return last, last
    sums = np.convolve(np.nan_to_num(finite, nan=np.inf), np.ones(tail), mode="valid")
    return last, float(sums.min() / tail)


def run_model(name, args, runs):
    import symopt
    from symopt.schedules import ReduceOnPlateau, StepEvery, StopOnPlateau

    make = MODELS[name]
    kwargs = {"groups": args.groups} if name == "hierarchical" else {"features": args.features}
    curves, rows = {}, []
    for label, rule, hyper in runs:
        hist, seconds = fit(make(args.seed, **kwargs), symopt.RULES[rule](**hyper),
                            args.iterations, args.seed)
        curves[label] = hist
        last, best = windowed(hist, args.tail)
        rows.append({"model": name, "rule": label, "hyperparameters": _short(hyper),
                     "stochastic": symopt.RULES[rule].stochastic,
                     "final -ELBO": last, "best -ELBO": best,
                     "iterations": len(hist), "seconds": round(seconds, 1)})
        print(f"{name:12s} {label:38s} -ELBO {last:10.2f} (best {best:10.2f}) "
              f"{seconds:6.1f} s", flush=True)

    every = max(args.tail // 2, 10)
    lr = ReduceOnPlateau(0.05, factor=0.5, patience=2, min_delta=0.0)
    stop = StopOnPlateau(every=every, patience=4, min_delta=0.5)
    hist, seconds = fit(make(args.seed, **kwargs), symopt.adam(learning_rate=lr.variable),
                        args.iterations, args.seed,
                        callbacks=[StepEvery(lr, every=every), stop])
    curves[SCHEDULED] = hist
    last, best = windowed(hist, args.tail)
    rows.append({"model": name, "rule": SCHEDULED,
                 "hyperparameters": f"lr 0.05, x0.5 after 2 flat windows of {every}, "
                                    f"stop after 4 without a gain of 0.5",
                 "stochastic": True, "final -ELBO": last, "best -ELBO": best,
                 "iterations": len(hist), "seconds": round(seconds, 1)})
    print(f"{name:12s} {SCHEDULED:38s} -ELBO {last:10.2f} (best {best:10.2f}) "
          f"{seconds:6.1f} s, {len(hist)} iterations, rate {lr.value:g}", flush=True)
    return curves, rows


def _short(hyper):
    names = {"learning_rate": "lr", "momentum": "mu", "epsilon_placement": "epsilon"}
    return ", ".join(f"{names.get(k, k)} {v if not isinstance(v, str) else v.split('_')[0]}"
                     for k, v in hyper.items())


# ---------------------------------------------------------------------------------------
# figures and tables


def plot(curves, path, title, smooth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5))
    colors = plt.get_cmap("tab20").colors
    lows, highs, finals = [], [], []
    for k, (label, hist) in enumerate(curves.items()):
        kernel = np.ones(smooth) / smooth
        smoothed = np.convolve(hist, kernel, mode="valid") if hist.size >= smooth else hist
        x = np.arange(smoothed.size) + smooth
        style = "--" if "full batch" in label else (":" if label == SCHEDULED else "-")
        ax.plot(x, smoothed, style, lw=1.3, color=colors[(2 * k) % 20 + (2 * k) // 20],
                label=label)
        lows.append(np.nanmin(smoothed))
        highs.append(smoothed[min(smoothed.size - 1, smoothed.size // 10)])
        finals.append(smoothed[-1])
    # from the best level to where most rules are after a tenth of the run, and high
    # enough to show every rule's last level (Rprop's included)
    low = min(lows)
    high = max(np.nanpercentile(highs, 75), 1.02 * max(finals) - 0.02 * low)
    ax.set_ylim(low - 0.05 * (high - low), high)
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"-ELBO (mean of {smooth} iterations)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = kit.base_parser(__doc__.splitlines()[0], out="results/pymc_advi")
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--tail", type=int, default=1000,
                        help="iterations averaged for the final -ELBO")
    parser.add_argument("--groups", type=int, default=30)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    runs = RUNS
    if args.quick:
        args.iterations, args.tail = min(args.iterations, 400), min(args.tail, 100)
        runs = [run for run in RUNS if run[0] in QUICK_RUNS]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import pymc
    import pytensor

    rows = []
    with kit.limit_threads(1):
        for name in args.models:
            curves, model_rows = run_model(name, args, runs)
            rows += model_rows
            np.savez_compressed(out / f"{name}_histories.npz",  # float32: enough to redraw
                                **{k: v.astype("float32") for k, v in curves.items()})
            plot(curves, out / f"{name}.png",
                 f"ADVI on the {name} model: -ELBO of each rule "
                 f"({args.iterations} iterations)", smooth=max(args.tail // 10, 10))
    command = "python examples/pymc_advi.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    notes = (f"Made with `{command}` (PyMC {pymc.__version__}, PyTensor "
             f"{pytensor.__version__}, float64, one BLAS thread). Final -ELBO: mean of the "
             f"last {args.tail} iterations; best: the lowest mean of {args.tail} iterations "
             "in a row; seconds include compiling. 'stochastic' is "
             "`symopt.RULES[name].stochastic`: whether the rule suits noisy gradients.")
    kit.write_rows(rows, out / "results", title="ADVI with symopt's rules", notes=notes)
    return rows


if __name__ == "__main__":
    main()
