"""The small problems the core tests optimise, each in PyTensor and in NumPy."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt


class Quadratic:
    r"""A fixed random quadratic :math:`\tfrac12 x^\top A x - c^\top x` over two parameters.

    ``x`` is ``W`` (3 x 2) and ``b`` (2,) flattened and joined; ``A`` is symmetric positive
    definite (eigenvalues in about [0.5, 3.5]), so the minimum is ``A^{-1} c``.
    """

    shapes = ((3, 2), (2,))
    names = ("W", "b")

    def __init__(self, seed=0, dtype="float64"):
        rng = np.random.default_rng(seed)
        n = sum(int(np.prod(s)) for s in self.shapes)
        q = rng.normal(size=(n, n))
        self.A = q.T @ q / n + 0.5 * np.eye(n)
        self.c = rng.normal(size=n)
        self.x0 = [rng.normal(size=s) for s in self.shapes]
        self.dtype = dtype

    def _split(self, x):
        out, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(x[start:start + size].reshape(shape))
            start += size
        return out

    def grad(self, params):
        """The gradient in NumPy, computed in float64 and returned in the problem's dtype."""
        x = np.concatenate([np.asarray(p, dtype="float64").ravel() for p in params])
        return [g.astype(self.dtype) for g in self._split(self.A @ x - self.c)]

    def hessian_vector_product(self, params, vectors):
        """:math:`A v` in NumPy (the Hessian is :math:`A` everywhere), in the problem's dtype."""
        v = np.concatenate([np.asarray(x, dtype="float64").ravel() for x in vectors])
        return [h.astype(self.dtype) for h in self._split(self.A @ v)]

    @property
    def solution(self):
        return self._split(np.linalg.solve(self.A, self.c))

    def initial(self):
        return [x.astype(self.dtype) for x in self.x0]

    def shared(self, suffix=""):
        """Fresh shared variables at the starting point, named ``W`` and ``b`` (+ suffix)."""
        return [pytensor.shared(x, name=name + suffix)
                for x, name in zip(self.initial(), self.names)]

    def loss(self, params):
        x = pt.concatenate([p.flatten() for p in params])
        A = pt.constant(self.A.astype(self.dtype))
        c = pt.constant(self.c.astype(self.dtype))
        return 0.5 * pt.dot(x, pt.dot(A, x)) - pt.dot(c, x)


class Rosenbrock:
    r"""Rosenbrock's valley :math:`(1-x)^2 + 100\,(y-x^2)^2` on one vector ``xy``.

    The run starts at the classic (-1.2, 1); the minimum is (1, 1).
    """

    start = (-1.2, 1.0)
    solution = (1.0, 1.0)

    def __init__(self, dtype="float64"):
        self.dtype = dtype

    def shared(self, name="xy"):
        return [pytensor.shared(np.array(self.start, dtype=self.dtype), name=name)]

    def loss(self, params):
        [xy] = params
        x, y = xy[0], xy[1]
        return (1 - x) ** 2 + 100 * (y - x**2) ** 2

    def grad(self, params):
        [xy] = params
        x, y = np.asarray(xy, dtype="float64")
        g = np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])
        return [g.astype(self.dtype)]

    def hessian_vector_product(self, params, vectors):
        [xy], [v] = params, vectors
        x, y = np.asarray(xy, dtype="float64")
        hessian = np.array([[2 - 400 * y + 1200 * x**2, -400 * x], [-400 * x, 200.0]])
        return [(hessian @ np.asarray(v, dtype="float64")).astype(self.dtype)]


def values(params):
    """Copies of the current values of shared variables."""
    return [p.get_value() for p in params]


def step_function(updates, inputs=()):
    """A compiled training step with no outputs."""
    return pytensor.function(list(inputs), [], updates=updates)


_TOGETHER = {}


class _Together:
    """The trajectories of many cases, each group of cases stepped by one compiled function,
    compiled (and run) the first time one of its cases is asked for."""

    def __init__(self, cases, build, steps, ids, group_of):
        self.build, self.steps = build, steps
        self.group_of = {}
        self.groups = {}
        for case, i in zip(cases, ids, strict=True):
            group = group_of(case)
            self.group_of[i] = group
            self.groups.setdefault(group, []).append((i, case))
        self.done = {}

    def __getitem__(self, case_id):
        group = self.group_of[case_id]
        if group not in self.done:
            members = self.groups[group]
            built = [self.build(case) for _, case in members]
            step = step_function([u for _, updates in built for u in updates])
            trajectories = {i: [] for i, _ in members}
            for _ in range(self.steps):
                step()
                for (i, _), (params, _) in zip(members, built, strict=True):
                    trajectories[i].append(values(params))
            self.done[group] = trajectories
        return self.done[group][case_id]


def run_together(key, cases, build, steps, ids=None, group_of=None):
    """Step many independent cases in one compiled function per group; their values after
    each step.

    ``build(case)`` returns ``(params, updates)`` for one case, on parameters of its own.
    The cases of a group (``group_of(case)``, by default the rule's name, ``case[0]``) are
    compiled into one function, and run once per ``key`` in a test process the first time
    a test asks for one of them: ``run_together(...)[case id]`` is the list of values after
    step 1, after step 2, ... One compilation serves every case of a rule; grouping by rule
    keeps each compilation small (Numba's memory grows with the graph: all 30 rules in one
    function took over 10 GB) and lets ``-k`` compile only what it selects.
    """
    if key not in _TOGETHER:
        ids = ids or [case_id(c) for c in cases]
        _TOGETHER[key] = _Together(cases, build, steps, ids, group_of or (lambda c: c[0]))
    return _TOGETHER[key]


def case_id(case):
    """A test id from a rule's name and hyperparameters (a function by its name, so the
    id is the same in every process, as pytest-xdist needs)."""
    name, kwargs = case
    return name + "".join(f"-{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items())


#: rules whose first step picks an initial value with a switch (yogi's accumulator,
#: ADOPT's first second moment, Adan's kept gradient, the schedule-free weights): their
#: fused and rewritten C loops agree with PyTensor's per-tensor loops to rounding, not bit
#: for bit (measured on the C VM: at most 16 ulps of a parameter after 10 steps). The
#: cause is not pinned down: turning off gcc's FMA contraction, -fno-trapping-math or the
#: select form of sign does not make them equal, so it is either PyTensor's rewrites
#: ordering that branch's arithmetic differently or gcc's scheduling of it.
ROUNDING_ONLY = {"yogi", "adopt", "adan", "schedule_free_sgd", "schedule_free_adamw"}
