"""The recorded curves agree with PyMC's own update rules, where PyMC computes the same rule.

Like ``tests/curves/test_peers.py`` for torch.optim and optax, and with the same
tolerance and horizon (relative 1e-7 on the loss over 50 float64 steps; see there). PyMC's
rules are Lasagne's; the pairings are the ``"pymc"`` peers of the rows of
:data:`symopt.lab.rulebook.ROWS` (sgd, momentum, nesterov_momentum, adagrad, rmsprop,
adadelta and adamax). PyMC's adam adds epsilon before the bias correction, so it is not
paired with symopt's Algorithm-1 Adam.
"""

from pathlib import Path

import numpy as np
import pytensor
import pytest

pm = pytest.importorskip("pymc", reason="PyMC is not installed in this environment")

from symopt.lab.curves import load_curves  # noqa: E402
from symopt.lab.forms import FORMS  # noqa: E402
from symopt.lab.problems import make_problem  # noqa: E402
from symopt.lab.rulebook import ROWS, peer  # noqa: E402

pytestmark = pytest.mark.pymc

RECORDED = Path(__file__).parents[1] / "curves" / "recorded"
STEPS, RTOL, ATOL = 50, 1e-7, 1e-14

PAIRED = [name for name, form in FORMS.items()
          if form.source == "symopt" and "pymc" in ROWS[form.target.__name__].peers]


@pytest.mark.parametrize("problem_name", ["toy", "quadratic", "rosenbrock"])
@pytest.mark.parametrize("form", PAIRED)
def test_recorded_curve_agrees_with_pymc(problem_name, form):
    curve = load_curves(RECORDED / f"{problem_name}-float64-numba.json")[form]
    problem = make_problem(problem_name, "float64")
    params = problem.new_params()
    cost = problem.cost(params, [])
    rule = peer("pymc", FORMS[form].target.__name__, pm, curve.metadata["hyperparameters"])
    if rule is None:
        pytest.skip(f"PyMC has no {form}")
    step = pytensor.function([], cost, updates=rule(cost, params))
    losses = [float(step()) for _ in range(STEPS)]
    np.testing.assert_allclose(losses, curve.values["loss"][:STEPS], rtol=RTOL, atol=ATOL)
