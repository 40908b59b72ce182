r"""The problems a sweep trains on: the lab's, and users' own, behind one interface.

A sweep compiles one training function per (problem, rule, dtype, backend) on each
worker and reuses it for every learning rate and seed, so a problem's *graph* may not
depend on the seed: a :class:`SweepProblem` is a loss built once, and per-seed values
(the starting point, the order of the mini-batches) are handed out by its ``start`` and
``batches`` functions.

Problems are named by a *spec*:

- a lab problem (:data:`symopt.lab.problems.PROBLEMS`): ``toy``, ``quadratic``,
  ``rosenbrock``, ``logistic``, ``mlp``, ``quadratic_deep``;
- a user problem, ``package.module:function``: the function is imported and called as
  ``function(dtype="float64")`` (or ``"float32"``) and returns one of

  * a :class:`SweepProblem`;
  * a pair ``(loss, params)``: a scalar loss and the list of shared variables it is
    minimised over, a deterministic problem started from the params' values as built
    (every seed gives the same run);
  * a :class:`symopt.lab.problems.Problem` (the lab's own kind).

  It is called once per worker process (and once on the client, to check that it builds
  before any run starts), so it must be importable there: installed, or on the workers'
  ``PYTHONPATH``. It must not depend on a seed; seeds reach the problem through
  ``SweepProblem.start`` and ``SweepProblem.batches``.

What a seed means for the lab's problems: ``toy`` and ``rosenbrock`` are deterministic
(every seed gives the same run); ``quadratic`` draws its matrix and minimiser from the
seed (as ``make_problem("quadratic", seed=...)`` does; here they are shared variables, so
all seeds share one graph); ``quadratic_deep`` keeps DeepOBS's fixed Hessian and data and
orders the mini-batches by the seed; ``logistic`` and ``mlp`` draw the initial weights
and the order of the mini-batches from it.

Examples
--------
A user problem, in a module ``my_problems.py`` that the workers can import:

>>> import numpy as np, pytensor, pytensor.tensor as pt
>>> def ridge(dtype="float64"):
...     rng = np.random.default_rng(0)
...     x, y = rng.normal(size=(50, 3)).astype(dtype), rng.normal(size=50).astype(dtype)
...     w = pytensor.shared(np.zeros(3, dtype=dtype), name="w")
...     loss = pt.mean((pt.dot(x, w) - y) ** 2) + 0.1 * pt.sum(w ** 2)
...     return loss, [w]
>>> problem = as_sweep_problem(ridge("float64"), "my_problems:ridge")
>>> [p.name for p in problem.params], problem.deterministic
(['w'], True)

and ``symopt sweep --problem my_problems:ridge ...``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import graph_replace

from symopt.lab.problems import IMAGE_PROBLEMS, PROBLEMS, Problem, make_problem

__all__ = [
    "ProblemBuildError",
    "SweepProblem",
    "as_sweep_problem",
    "build_problem",
    "is_user_problem",
    "problem_names",
]


class ProblemBuildError(RuntimeError):
    """A problem could not be built: unknown, not importable, or its function failed."""


@dataclass
class SweepProblem:
    """A loss over shared variables, built once, and what each seed changes.

    Parameters
    ----------
    loss : scalar TensorVariable
        The loss, a function of ``params`` (and of ``inputs``, when it has data).
    params : list of SharedVariable
        The variables the rules update.
    inputs : list of TensorVariable
        Symbolic inputs fed at every step (a mini-batch), in order; empty for a loss
        without data.
    start : callable, optional
        ``start(seed)`` returns ``{shared_variable: value}``: the values set before a run
        with that seed, for the parameters and any other shared variable of the loss (a
        seeded matrix). By default every run starts from the params' values as built.
    batches : callable, optional
        ``batches(seed, steps)`` yields ``steps`` tuples of input values, one per step;
        required when there are ``inputs``.
    evaluation : mapping of str to tuple, optional
        Whole data sets by name (``"train"``, ``"test"``), each a tuple of input values:
        after training, the loss and ``metrics`` are evaluated on each, and the first
        set's loss is the run's final loss. The loss and metrics must be means over the
        examples (rows), since large sets are evaluated in chunks of
        ``evaluation_chunk`` rows and averaged.
    metrics : mapping of str to TensorVariable, optional
        Further scalars evaluated on each evaluation set (an accuracy).
    evaluation_chunk : int or None, default 10000
        Rows per evaluation call; None evaluates each set in one call.
    name : str
        For messages.

    Without ``evaluation``, a loss without inputs is evaluated at the final parameters;
    a loss with inputs but no evaluation sets reports the mean of its last mini-batch
    losses (the last tenth of the steps) as its final loss.
    """

    loss: object
    params: list
    inputs: list = field(default_factory=list)
    start: Callable[[int], Mapping] | None = None
    batches: Callable[[int, int], Iterable[tuple]] | None = None
    evaluation: Mapping[str, tuple] = field(default_factory=dict)
    metrics: Mapping[str, object] = field(default_factory=dict)
    evaluation_chunk: int | None = 10000
    name: str = ""

    def __post_init__(self):
        what = f"problem {self.name!r}" if self.name else "the problem"
        self.params = list(self.params)
        if not self.params:
            raise ValueError(f"{what} has no params")
        for i, p in enumerate(self.params):
            if not isinstance(p, SharedVariable):
                raise TypeError(f"{what}: params[{i}] is a {type(p).__name__}, not a shared "
                                "variable (make one with pytensor.shared)")
        if getattr(self.loss, "ndim", None) != 0:
            ndim = getattr(self.loss, "ndim", "?")
            raise ValueError(f"{what}: the loss must be a scalar tensor, got "
                             f"{type(self.loss).__name__} with ndim={ndim}")
        self.inputs = list(self.inputs)
        if self.inputs and self.batches is None:
            raise ValueError(f"{what} has inputs but no batches(seed, steps) to feed them")

    @property
    def deterministic(self):
        """True when every seed gives the same run (no data, no seeded start)."""
        return not self.inputs and self.start is None

    def start_values(self, seed):
        """``{shared_variable: value}`` to set before a run with ``seed``."""
        if self.start is None:
            return {}
        return dict(self.start(seed))

    def cost_at(self, tensors):
        """The loss with ``params`` replaced by ``tensors`` (for rules that look ahead)."""
        tensors = list(tensors)
        if all(t is p for t, p in zip(tensors, self.params)):
            return self.loss
        return graph_replace(self.loss, dict(zip(self.params, tensors)))


def is_user_problem(spec):
    """Whether ``spec`` names a user problem (``package.module:function``)."""
    return ":" in spec


def problem_names():
    """The lab's problem names, for messages and ``--help``."""
    return sorted(PROBLEMS)


def _from_lab(name, dtype, data):
    """A lab problem whose graph is the seed-0 instance's; other seeds give their starts
    and mini-batches."""
    options = {"data": data} if name in IMAGE_PROBLEMS else {}

    @lru_cache(maxsize=4)
    def instance(seed):
        return make_problem(name, dtype, seed, **options)

    base = instance(0)
    params = base.new_params()
    deterministic = not base.inputs and name != "quadratic"

    def start(seed):
        return {p: value for p, (_, value) in zip(params, instance(seed).initial)}

    def batches(seed, steps):
        return instance(seed).batches(steps)

    metrics = base.metrics(params, base.inputs) if base.metrics else {}
    return SweepProblem(base.cost(params, base.inputs), params, base.inputs,
                        start=None if deterministic else start,
                        batches=batches if base.inputs else None,
                        evaluation=base.evaluation, metrics=metrics, name=name)


def _quadratic(dtype):
    """The lab's quadratic with its matrix and minimiser as shared variables, so that each
    seed's instance (as ``make_problem("quadratic", seed=s)`` draws it) runs in one graph."""
    base = make_problem("quadratic", dtype, 0)
    a = pytensor.shared(base.arrays["a"], name="quadratic.a")
    x_star = pytensor.shared(base.arrays["x_star"], name="quadratic.x_star")
    [x] = base.new_params()
    d = x - x_star
    loss = pt.constant(np.asarray(0.5, dtype=dtype)) * pt.dot(d, pt.dot(a, d))

    def start(seed):
        instance = make_problem("quadratic", dtype, seed)
        return {x: instance.initial[0][1], a: instance.arrays["a"],
                x_star: instance.arrays["x_star"]}

    return SweepProblem(loss, [x], start=start, name="quadratic")


def as_sweep_problem(built, spec=""):
    """What a user's problem function returned, as a :class:`SweepProblem`."""
    if isinstance(built, SweepProblem):
        if not built.name:
            built.name = spec
        return built
    if isinstance(built, Problem):
        params = built.new_params()
        metrics = built.metrics(params, built.inputs) if built.metrics else {}
        return SweepProblem(built.cost(params, built.inputs), params, built.inputs,
                            batches=(lambda seed, steps: built.batches(steps))
                            if built.inputs else None,
                            evaluation=built.evaluation, metrics=metrics, name=spec)
    if isinstance(built, tuple) and len(built) == 2:
        loss, params = built
        return SweepProblem(loss, params, name=spec)
    raise TypeError(f"problem {spec!r} returned a {type(built).__name__}; a problem function "
                    "returns a SweepProblem, a (loss, params) pair or a lab Problem")


def _import_function(spec):
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"a user problem is 'package.module:function', got {spec!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no function {function_name!r}") \
            from None


def build_problem(spec, dtype="float64", data="embedded"):
    """Build the problem ``spec`` (a lab name or ``package.module:function``) in ``dtype``.

    Raises
    ------
    ProblemBuildError
        With the problem's name and the cause (unknown name, import error, the function's
        own exception, or a result that is not a problem), whatever went wrong.
    """
    try:
        if is_user_problem(spec):
            return as_sweep_problem(_import_function(spec)(dtype=dtype), spec)
        if spec not in PROBLEMS:
            raise ValueError(f"unknown problem; the lab's are {', '.join(problem_names())}, "
                             "or give your own as package.module:function")
        if spec == "quadratic":
            return _quadratic(dtype)
        return _from_lab(spec, dtype, data)
    except Exception as err:  # any failure, reported once with the problem's name
        raise ProblemBuildError(f"problem {spec!r} failed to build: "
                                f"{type(err).__name__}: {err}") from err
