r"""Small optimisation problems for comparing update forms, and a runner that records curves.

Problems (each in any float dtype, deterministic given its seed):

- ``toy``: the blog's :math:`f(x) = (x_1^2+x_2^2+x_3^2+x_4^2)^2` from :math:`x = 0.5`.
- ``quadratic``: :math:`\tfrac12 (x - x^*)^\top A (x - x^*)` in 10 dimensions with
  eigenvalues log-spaced from 1 to 1000 (condition number 1000) in a random basis.
- ``rosenbrock``: :math:`(1-x)^2 + 100 (y - x^2)^2` from :math:`(-1.2, 1)`.
- ``logistic``: softmax regression on the embedded Fashion-MNIST subset, mini-batches of
  100 in a seeded order (the Adam paper's first experiment, on this data).
- ``mlp``: the blog's 784-600-10 tanh MLP with a softmax output, same data and batches.
- ``quadratic_deep``: DeepOBS's noisy quadratic (Schneider et al. 2019), 100-dimensional,
  :math:`\tfrac12 (\theta - x)^\top Q (\theta - x)` averaged over mini-batches of 128
  data points :math:`x`, with a Hessian whose spectrum imitates a deep network's.

The image problems take ``data="embedded"`` (the subset shipped with symopt, the
default), ``data="full"`` (the full Fashion-MNIST under
:data:`symopt.lab.data.DEFAULT_DIRECTORY`) or a directory of IDX files. Problems with
data also carry ``evaluation`` sets (the whole training set, and the test set), on which
a study can measure the loss after training instead of on a single mini-batch.

:func:`run_forms` trains many forms side by side in one compiled function (each on its
own copy of the parameters), which costs one compilation for all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt

from symopt.lab.curves import Curve, environment_metadata
from symopt.lab.forms import FORMS

__all__ = ["IMAGE_PROBLEMS", "PROBLEMS", "QUADRATIC_DEEP", "FormsRun", "Problem", "make_problem",
           "run_forms"]

#: Backends by name. ``"c"`` runs each operation's generated C code in PyTensor's C
#: virtual machine (``mode="CVM"``, Theano's classic FAST_RUN). ``mode="C"`` (one C
#: module for the whole function) runs the same per-operation C code, but for two dozen
#: forms in one graph it writes a single 40,000-line module that takes gcc ten minutes,
#: and in PyTensor 3.0.7 it aborted on an internal assertion for the Rosenbrock graph.
MODES = {"numba": "NUMBA", "c": "CVM", "default": None}

#: Forms compiled into one function by :class:`FormsRun`. PyTensor's graph rewriting
#: grows faster than linearly with the size of a graph: with the C backend, its merge
#: pass retries every pair of the ``AllocEmpty`` buffers of the BLAS calls, and 27
#: forms of the quadratic took 87 s to rewrite where three functions of 9 take 9 s.
FORMS_PER_FUNCTION = 9


@dataclass
class Problem:
    """An optimisation problem: fresh parameters, a cost, and the data of each step.

    ``cost(params, inputs)`` is the scalar cost; ``metrics(params, inputs)`` extra
    per-step values (e.g. accuracy); ``batches(steps)`` yields the input values of each
    step (nothing for problems without data); ``arrays`` holds the problem's constants
    (the quadratic's matrix and minimiser), for re-implementing it elsewhere.
    """

    name: str
    dtype: str
    initial: list
    cost: Callable
    inputs: list = field(default_factory=list)
    batches: Callable | None = None
    metrics: Callable | None = None
    steps: int = 100
    learning_rates: dict = field(default_factory=dict)
    seed: int = 0
    arrays: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)

    def new_params(self, prefix=""):
        """Fresh shared variables holding the initial values."""
        return [pytensor.shared(value.copy(), name=f"{prefix}{name}")
                for name, value in self.initial]

    def step_inputs(self, steps):
        if self.batches is None:
            return [()] * steps
        return list(self.batches(steps))


def _toy(dtype, seed):
    return Problem(
        "toy", dtype, [("x", np.full(4, 0.5, dtype=dtype))],
        cost=lambda ps, _: pt.sqr(pt.sum(pt.sqr(ps[0]))),
        steps=200, learning_rates={"gradient": 0.01, "adaptive": 0.01, "unit": 1.0}, seed=seed,
    )


def _quadratic(dtype, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    a = (q * np.logspace(0, 3, 10)) @ q.T
    a = ((a + a.T) / 2).astype(dtype)
    x_star = rng.normal(size=10).astype(dtype)

    def cost(ps, _):
        d = ps[0] - x_star
        return pt.constant(np.asarray(0.5, dtype=dtype)) * pt.dot(d, pt.dot(a, d))

    return Problem("quadratic", dtype, [("x", np.zeros(10, dtype=dtype))], cost, steps=200,
                   learning_rates={"gradient": 1e-3, "adaptive": 0.01, "unit": 1.0}, seed=seed,
                   arrays={"a": a, "x_star": x_star})


def _rosenbrock(dtype, seed):
    def cost(ps, _):
        x, y = ps[0][0], ps[0][1]
        return pt.sqr(1 - x) + 100 * pt.sqr(y - pt.sqr(x))

    return Problem("rosenbrock", dtype, [("xy", np.array([-1.2, 1.0], dtype=dtype))], cost,
                   steps=300, learning_rates={"gradient": 1e-3, "adaptive": 0.02, "unit": 1.0},
                   seed=seed)


def _load_images(data):
    from symopt.lab.data import load_embedded_subset, load_mnist

    if data == "embedded":
        return load_embedded_subset()
    if data == "full":
        from symopt.lab.data import DEFAULT_DIRECTORY

        return load_mnist(DEFAULT_DIRECTORY)
    return load_mnist(data)


def _image_problem(name, dtype, seed, hidden, data="embedded"):
    images = _load_images(data)
    x_all, y_all = images.train_x.astype(dtype), images.train_y.astype("int64")
    rng = np.random.default_rng(seed)
    sizes = [784, *hidden, 10]
    initial = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = np.sqrt(6.0 / (n_in + n_out)) if hidden else 0.0
        initial.append((f"W{i}", rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype)))
        initial.append((f"b{i}", np.zeros(n_out, dtype=dtype)))
    x, y = pt.matrix("x", dtype=dtype), pt.vector("y", dtype="int64")

    def log_probs(ps, inputs):
        h = inputs[0]
        for i in range(0, len(ps) - 2, 2):
            h = pt.tanh(pt.dot(h, ps[i]) + ps[i + 1])
        return pt.special.log_softmax(pt.dot(h, ps[-2]) + ps[-1], axis=-1)

    def cost(ps, inputs):
        return -pt.mean(log_probs(ps, inputs)[pt.arange(inputs[1].shape[0]), inputs[1]])

    def metrics(ps, inputs):
        return {"accuracy": pt.mean(pt.eq(pt.argmax(log_probs(ps, inputs), axis=-1), inputs[1]))}

    def batches(steps, batch_size=100):
        order_rng = np.random.default_rng(seed)
        produced = 0
        while produced < steps:
            order = order_rng.permutation(len(x_all))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                idx = order[start:start + batch_size]
                yield x_all[idx], y_all[idx]
                produced += 1
                if produced == steps:
                    return

    return Problem(name, dtype, initial, cost, [x, y], batches, metrics, steps=100,
                   learning_rates={"gradient": 0.1 if not hidden else 0.01,
                                   "adaptive": 1e-3, "unit": 1.0}, seed=seed,
                   evaluation={"train": (x_all, y_all),
                               "test": (images.test_x.astype(dtype),
                                        images.test_y.astype("int64"))})


def _haar_rotation(rng, n):
    """An orthogonal matrix drawn uniformly (Haar measure): QR of a Gaussian matrix, with
    the signs of R's diagonal moved into Q (Mezzadri 2007, "How to generate random
    matrices from the classical compact groups")."""
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


#: The constants of DeepOBS's ``quadratic_deep`` (Schneider, Balles & Hennig 2019): the
#: dimension, how many eigenvalues fall in the bulk ``(0, 1)`` and how many in the outliers
#: ``(30, 60)``, the data's standard deviation, the data set's size and the batch size.
QUADRATIC_DEEP = {"dim": 100, "bulk": 90, "outliers": 10, "noise": 0.6, "examples": 1000,
                  "batch_size": 128}


def _quadratic_deep(dtype, seed):
    r"""DeepOBS's ``quadratic_deep``, re-implemented from its description.

    :math:`\tfrac12 (\theta - x)^\top Q (\theta - x)` averaged over a mini-batch of data
    points :math:`x \sim N(0, 0.6^2 I)` in 100 dimensions, :math:`\theta` starting at
    ones. :math:`Q = R^\top D R` with :math:`R` a random rotation and :math:`D` holding 90
    eigenvalues drawn uniformly from (0, 1) and 10 from (30, 60): most directions nearly
    flat, a few steep, the spectrum Chaudhari et al. (2017, Entropy-SGD) report for deep
    networks. The data set has 1000 points (and a test set of 1000 more); an epoch is 7
    mini-batches of 128 in a shuffled order, the remainder dropped.

    The Hessian and the data are fixed (drawn once with our own seed, as DeepOBS fixes
    its own: the numbers differ from DeepOBS's, their distribution is the same); the
    problem's ``seed`` orders the mini-batches.
    """
    c = QUADRATIC_DEEP
    rng = np.random.default_rng(20190313)
    eigenvalues = np.concatenate([rng.uniform(0.0, 1.0, c["bulk"]),
                                  rng.uniform(30.0, 60.0, c["outliers"])])
    rotation = _haar_rotation(rng, c["dim"])
    hessian = rotation.T @ (eigenvalues[:, None] * rotation)
    hessian = ((hessian + hessian.T) / 2).astype(dtype)
    train = rng.normal(0.0, c["noise"], (c["examples"], c["dim"])).astype(dtype)
    test = rng.normal(0.0, c["noise"], (c["examples"], c["dim"])).astype(dtype)
    x = pt.matrix("x", dtype=dtype)
    half = np.asarray(0.5, dtype=dtype)

    def cost(ps, inputs):
        d = ps[0] - inputs[0]
        return half * pt.mean(pt.sum(pt.dot(d, hessian) * d, axis=1))

    def batches(steps):
        order_rng = np.random.default_rng(seed)
        per_epoch = c["examples"] // c["batch_size"]
        produced = 0
        while produced < steps:
            order = order_rng.permutation(c["examples"])
            for i in range(per_epoch):
                yield (train[order[i * c["batch_size"]:(i + 1) * c["batch_size"]]],)
                produced += 1
                if produced == steps:
                    return

    return Problem("quadratic_deep", dtype, [("theta", np.ones(c["dim"], dtype=dtype))],
                   cost, [x], batches, steps=700,
                   learning_rates={"gradient": 0.01, "adaptive": 0.01, "unit": 1.0},
                   seed=seed, arrays={"hessian": hessian, "eigenvalues": eigenvalues},
                   evaluation={"train": (train,), "test": (test,)})


PROBLEMS = {
    "toy": _toy,
    "quadratic": _quadratic,
    "rosenbrock": _rosenbrock,
    "logistic": lambda dtype, seed, data="embedded": _image_problem("logistic", dtype, seed,
                                                                    [], data),
    "mlp": lambda dtype, seed, data="embedded": _image_problem("mlp", dtype, seed, [600], data),
    "quadratic_deep": _quadratic_deep,
}

#: The problems that read image data, and so take the ``data`` option.
IMAGE_PROBLEMS = ("logistic", "mlp")


def make_problem(name, dtype="float64", seed=0, **options):
    """Build the problem ``name`` (a key of :data:`PROBLEMS`) in ``dtype``.

    ``options``: ``data`` for the image problems (:data:`IMAGE_PROBLEMS`): ``"embedded"``
    (the default), ``"full"`` or a directory of IDX files.
    """
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose from {sorted(PROBLEMS)}")
    unknown = set(options) - ({"data"} if name in IMAGE_PROBLEMS else set())
    if unknown:
        raise ValueError(f"problem {name!r} takes no option {', '.join(sorted(unknown))}")
    return PROBLEMS[name](dtype, seed, **options)


class FormsRun:
    """Many forms trained side by side on one problem, compiled once, run many times.

    Each form gets its own copy of the problem's parameters; one compiled function per
    :data:`FORMS_PER_FUNCTION` forms (``mode`` from ``backend``, see :data:`MODES`)
    steps them. :meth:`run` resets
    every parameter and state variable to its start and trains, so the same compiled
    function serves the exact run, jittered replays (:class:`symopt.lab.curves.Jitter`)
    and runs with a deliberately changed gradient.

    The gradient each form sees passes through ``grad_scale(param, multiplier)``, with
    the multipliers shared variables of ones: the identity (multiplying by 1.0 is exact)
    until :meth:`run` is given a ``gradient_change``.
    """

    def __init__(self, problem, forms=None, backend="numba", learning_rates=None,
                 chunk=FORMS_PER_FUNCTION):
        self.problem, self.backend = problem, backend
        self.names = list(FORMS) if forms is None else list(forms)
        self.hyper, self.params, self.multipliers = {}, [], []
        self.functions, self.start = [], []
        for first in range(0, len(self.names), chunk):
            self._compile(self.names[first:first + chunk], first, learning_rates or {})

    def _compile(self, names, first, learning_rates):
        """One compiled function for ``names``, its outputs keyed ``(form, metric)``."""
        from pytensor.gradient import grad_scale

        problem = self.problem
        outputs, updates, keys = [], [], []
        for k, name in enumerate(names, start=first):
            form = FORMS[name]
            lr = learning_rates.get(name, problem.learning_rates[form.kind])
            params = problem.new_params(prefix=f"f{k}.")
            multipliers = [pytensor.shared(np.ones_like(p.get_value()), name=f"{p.name}.grad_scale")
                           for p in params]

            def cost_fn(ps, multipliers=multipliers):
                return problem.cost([grad_scale(p, m) for p, m in zip(ps, multipliers)],
                                    problem.inputs)

            form_updates = form.build(cost_fn, params, lr)
            updates += form_updates
            new_values = dict(form_updates)
            norm = pt.sqrt(sum(pt.sqr(new_values[p]).sum() for p in params))
            outputs += [problem.cost(params, problem.inputs), norm]
            keys += [(name, "loss"), (name, "param_norm")]
            for metric, expr in (problem.metrics(params, problem.inputs)
                                 if problem.metrics else {}).items():
                outputs.append(expr)
                keys.append((name, metric))
            self.hyper[name] = form.hyperparameters(lr)
            self.params += params
            self.multipliers += multipliers
        # (a deep copy: a rule's state may be a random generator, Sophia's probes')
        self.start += [(var, copy.deepcopy(var.get_value())) for var, _ in updates]
        fn = pytensor.function(problem.inputs, outputs, updates=updates, mode=MODES[self.backend])
        self.functions.append((fn, keys))

    def run(self, jitter=None, steps=None, gradient_change=0.0, seed=0):
        """Train every form from the start; return their curves, by form name.

        Parameters
        ----------
        jitter : symopt.lab.curves.Jitter, optional
            Called on the parameters before every step (rounding-sized perturbations).
        steps : int, optional
            By default the problem's.
        gradient_change : float
            Multiply each element of every gradient by ``1 + gradient_change * s``, ``s``
            a random sign drawn anew per element and step (seeded by ``seed``): a
            deliberate change of one part in ``1/gradient_change``, which the recorded
            curves must catch. (A fixed sign per element would be invisible to the rules
            that divide by a running scale of each element's own gradient, Adam's
            family and RMSProp, which are invariant to rescaling it.)
        """
        problem = self.problem
        steps = problem.steps if steps is None else steps
        for var, value in self.start:
            var.set_value(copy.deepcopy(value))
        signs = np.random.default_rng(seed)
        values = {name: {} for name in self.names}
        for batch in problem.step_inputs(steps):
            if jitter is not None:
                jitter(self.params)
            for m in self.multipliers:
                ones = np.ones_like(m.get_value(borrow=True))
                if gradient_change:
                    ones += gradient_change * signs.choice([-1.0, 1.0], ones.shape)
                m.set_value(ones.astype(m.dtype))
            for fn, keys in self.functions:
                for (name, metric), value in zip(keys, fn(*batch)):
                    values[name].setdefault(metric, []).append(float(value))
        env = environment_metadata()
        return {
            name: Curve(name, values[name], {
                "rule": name, "hyperparameters": self.hyper[name], "problem": problem.name,
                "seed": problem.seed, "dtype": problem.dtype, "backend": self.backend,
                "steps": steps, "versions": env,
            })
            for name in self.names
        }


def run_forms(problem, forms=None, backend="numba", steps=None, learning_rates=None):
    """Train each form on its own copy of ``problem``'s parameters; return their curves.

    All forms run in one compiled function (see :class:`FormsRun`). Each curve holds per
    step the cost before the step, the L2 norm of all parameters after it, and the
    problem's metrics.

    Returns
    -------
    dict of str to Curve
        Named ``<form>`` with metadata rule, hyperparameters, problem, seed, dtype,
        backend, steps and the versions.
    """
    return FormsRun(problem, forms, backend, learning_rates).run(steps=steps)
