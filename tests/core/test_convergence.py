"""Every rule in ``symopt.RULES`` converges on a quadratic and on Rosenbrock, in float64
and in float32, with the settings of its row in :data:`symopt.lab.rulebook.ROWS`.

The quadratic is :class:`toys.Quadratic` (two parameters, 8 unknowns, Hessian eigenvalues
in about [0.5, 3.5]); Rosenbrock's valley starts at (-1.2, 1). A run passes when every
coordinate is within ``QUADRATIC_TOL`` (``ROSENBROCK_TOL``) of the minimum after the given
number of steps. Settings were chosen so that, in a NumPy run of the same equations, the
error stays below a third of the tolerance over the whole second half of the run. At the
time of writing:

| rule              | quadratic: settings      | steps | Rosenbrock: settings      | steps |
|-------------------|--------------------------|-------|---------------------------|-------|
| sgd               | lr 0.3                   |   150 | lr 1.5e-3                 | 20000 |
| momentum          | lr 0.03                  |   500 | lr 3e-3                   |  1000 |
| nesterov_momentum | lr 0.1                   |   300 | lr 1e-3                   |  3000 |
| adagrad           | lr 1.0                   |   200 | lr 0.3                    | 20000 |
| rmsprop           | lr 0.03, eps 1e-2        |   500 | lr 1e-3, eps 1e-2         | 20000 |
| adadelta          | lr 0.3                   |  7000 | lr 0.02                   | 30000 |
| adam              | lr 0.1, eps 0.1          |   500 | lr 3e-3, eps 0.1          | 20000 |
| adamax            | lr 0.3, eps 0.1          |   500 | lr 3e-3, eps 0.1          | 15000 |
| amsgrad           | lr 0.3                   |   500 | lr 0.03                   | 10000 |
| nadam             | lr 0.1, eps 0.1          |   500 | lr 3e-3, eps 0.1          | 20000 |
| adamw             | lr 0.3, eps 0.1, wd 1e-5 |   500 | lr 3e-3, eps 0.1, wd 1e-5 | 20000 |
| rprop             | initial step 0.1         |   150 | initial step 0.01         | 10000 |

(lr: learning_rate, eps: epsilon, wd: weight_decay; other hyperparameters at defaults.)

Why some epsilons are large: with a constant learning rate and epsilon 1e-8, Adam-like
rules do not settle on a deterministic problem; once the gradient is tiny their step is
about ``lr`` again and they leave the minimum (Adam reaches 1e-11 on the quadratic by
step 1000 and is back at 3e-2 by step 3000). An epsilon that dominates ``sqrt(v)`` near
the minimum turns the last phase into plain gradient descent, which does settle; RMSProp
is the same with epsilon inside the root. AdaDelta keeps hovering on Rosenbrock (about
4e-3 from the minimum); the decoupled weight decay of AdamW moves its fixed point by
about ``wd``, hence the small ``wd``.

Each dtype compiles one function that steps every rule on both problems at once
(separate calls of the rules, so separate state and counters); each problem's
parameters are read at its rule's own step count.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytest

import symopt
from symopt.lab.rulebook import ROWS

from .toys import Quadratic, Rosenbrock, step_function

QUADRATIC_TOL = 1e-3
ROSENBROCK_TOL = 1e-2

def _distance(params, solution):
    return max(float(np.max(np.abs(np.asarray(p, dtype="float64") - s)))
               for p, s in zip(params, solution))


_RUNS = {}


def _converged(dtype):
    """Every rule's parameters on both problems at its step counts, from one function."""
    if dtype not in _RUNS:
        quadratic, rosenbrock = Quadratic(dtype=dtype), Rosenbrock(dtype=dtype)
        updates, problems = [], {}
        with pytensor.config.change_flags(floatX=dtype):
            for name, row in ROWS.items():
                quad_params, rosen_params = quadratic.shared(), rosenbrock.shared()
                (quad_kwargs, quad_steps) = row.quadratic
                (rosen_kwargs, rosen_steps) = row.rosenbrock
                rule = symopt.RULES[name]
                updates += rule(quadratic.loss(quad_params), quad_params, **quad_kwargs)
                updates += rule(rosenbrock.loss(rosen_params), rosen_params, **rosen_kwargs)
                problems[name] = {quad_steps: ("quadratic", quad_params),
                                  rosen_steps: ("rosenbrock", rosen_params)}
            step = step_function(updates)
        reached = {name: {} for name in ROWS}
        last = max(k for snapshots in problems.values() for k in snapshots)
        for k in range(1, last + 1):
            step()
            for name, snapshots in problems.items():
                if k in snapshots:
                    which, params = snapshots[k]
                    reached[name][which] = [p.get_value() for p in params]
        _RUNS[dtype] = (quadratic, rosenbrock, reached)
    return _RUNS[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_rule_converges(name, dtype):
    quadratic, rosenbrock, reached = _converged(dtype)
    reached = reached[name]
    quad_steps, rosen_steps = ROWS[name].quadratic[1], ROWS[name].rosenbrock[1]
    for values in reached.values():
        assert all(v.dtype == dtype for v in values)
    quad_error = _distance(reached["quadratic"], quadratic.solution)
    rosen_error = _distance(reached["rosenbrock"], [np.array(rosenbrock.solution)])
    assert quad_error < QUADRATIC_TOL, (
        f"{name} ({dtype}) quadratic: {quad_error:.2e} after {quad_steps}")
    assert rosen_error < ROSENBROCK_TOL, (
        f"{name} ({dtype}) Rosenbrock: {rosen_error:.2e} after {rosen_steps}")
