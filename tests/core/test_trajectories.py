"""Every rule, step by step, against its NumPy transcription (:mod:`symopt.lab.reference`).

Each case of the rulebook (:data:`symopt.lab.rulebook.ROWS`) runs ``STEPS`` steps on the
fixed random quadratic of :class:`toys.Quadratic` (a 3 x 2 matrix and a vector) in
float64 and compares both parameters after every step, on the per-tensor path and on the
fused multi-tensor path (:mod:`symopt.fused`) for the elementwise rules. All cases of a
rule and path are compiled into one function, each on its own copy of the parameters
(:func:`toys.run_together`): one compilation for every case of a rule. A rule that needs
the loss (SAM, Sophia, AdaHessian) draws its second gradient or its Hessian-vector
products from the graph; its transcription gets them from the problem, in NumPy.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import reference
from symopt.lab.rulebook import ROWS

from .toys import Quadratic, case_id, run_together, step_function, values

STEPS = 12
RTOL, ATOL = 1e-12, 1e-13

CASES = [(name, kwargs) for name, row in ROWS.items() for kwargs in row.cases]
# the fused path takes the elementwise rules only (a row with ``fused=None`` is not)
FUSED_CASES = [case for case in CASES if ROWS[case[0]].fused is not None]
PATH_CASES = [pytest.param(case, False, id=f"{case_id(case)}-per-tensor") for case in CASES] + [
    pytest.param(case, True, id=f"{case_id(case)}-fused") for case in FUSED_CASES]


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=0)


def assert_params_close(got, expected, where, rtol=RTOL, atol=ATOL):
    for g, e, name in zip(got, expected, Quadratic.names):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"{name}, {where}")


@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_defaults_are_the_documented_ones(name):
    """The reference classes carry the defaults the papers and docstrings give."""
    ours = inspect.signature(symopt.RULES[name]).parameters
    theirs = inspect.signature(ROWS[name].reference.__init__).parameters
    ours = {k: p.default for k, p in ours.items()
            if k not in ("loss_or_grads", "params", "fuse")}
    theirs = {k: p.default for k, p in theirs.items() if k not in ("self", "params")}
    if name == "rmsprop":  # the reference spells out TensorFlow's momentum and centred form
        assert theirs.pop("momentum") == 0.0 and theirs.pop("centered") is False
        assert ours.pop("momentum") == 0.0 and ours.pop("centered") is False
    assert ours == theirs


FUSE = pytest.mark.parametrize("fuse", [False, True], ids=["per-tensor", "fused"])


def _trajectories(problem, fuse):
    """Every case's parameters after each step, all cases stepped by one function."""
    def build(case):
        name, kwargs = case
        params = problem.shared()
        return params, symopt.RULES[name](problem.loss(params), params, **kwargs, fuse=fuse)

    return run_together(("trajectories", fuse), FUSED_CASES if fuse else CASES, build, STEPS)


def reference_for(problem, name, kwargs):
    """The rule's NumPy transcription; a rule that needs the loss also gets the problem's
    gradient and Hessian-vector product, in NumPy."""
    ref = ROWS[name].reference(problem.initial(), **kwargs)
    if symopt.RULES[name].needs_loss:
        ref.gradient = problem.grad
        ref.hessian_vector_product = problem.hessian_vector_product
    return ref


@pytest.mark.parametrize("case, fuse", PATH_CASES)
def test_rule_follows_reference_trajectory(problem, case, fuse):
    name, kwargs = case
    trajectory = _trajectories(problem, fuse)[case_id(case)]
    ref = reference_for(problem, name, kwargs)
    expected = problem.initial()
    for k, got in enumerate(trajectory, 1):
        expected = ref.step(expected, problem.grad(expected))
        assert_params_close(got, expected, f"step {k}")

    # the run moved, and went through the branches that make the rule what it is
    assert np.abs(trajectory[-1][0] - problem.initial()[0]).max() > 1e-3
    if name == "rprop":
        assert ref.flips > 0, "no sign flip: the eta- branch was not exercised"
    if name == "amsgrad":
        assert ref.max_was_active, "v_max never exceeded v: same as adam on this run"
    if name == "radam":
        assert 0 < ref.rectified < STEPS, "one of the two branches was not exercised"
    if name == "adafactor" and "d" in kwargs:
        assert 0 < ref.clipped < 2 * STEPS, "the update was always or never clipped"
    if name == "adopt" and "clip_value_fn" in kwargs:
        assert ref.clipped > 0, "no element was clipped"
    if name == "sophia" and "gamma" in kwargs:
        assert 0 < ref.clipped < STEPS * 8, "all or no elements at the clip"


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov_momentum", "adam", "rmsprop",
                                  "rprop"])
@FUSE
def test_shared_learning_rate_changed_between_calls(problem, name, fuse):
    """One compiled function; a new learning rate takes effect at the next call."""
    learning_rate = pytensor.shared(0.1, name="lr")
    params = problem.shared()
    step = step_function(symopt.RULES[name](problem.loss(params), params,
                                            learning_rate=learning_rate, fuse=fuse))
    ref = ROWS[name].reference(problem.initial(), learning_rate=0.1)
    expected = problem.initial()
    for k in range(1, STEPS + 1):
        if k == STEPS // 2:
            learning_rate.set_value(0.02)
            # rprop's learning rate is only the initial step size, read at the first step
            if name != "rprop":
                ref.learning_rate = 0.02
        step()
        expected = ref.step(expected, problem.grad(expected))
        assert_params_close(values(params), expected, f"step {k}")


def test_symbolic_hyperparameters_given_at_each_call(problem):
    """Learning rate and momentum as inputs of the compiled function."""
    learning_rate, momentum = pt.dscalar("lr"), pt.dscalar("mu")
    params = problem.shared()
    updates = symopt.nesterov_momentum(problem.loss(params), params, learning_rate, momentum)
    step = step_function(updates, inputs=[learning_rate, momentum])
    ref = reference.NesterovMomentum(problem.initial())
    expected = problem.initial()
    schedule = [(0.05, 0.9)] * 4 + [(0.02, 0.5)] * 4 + [(0.01, 0.0)] * 4
    for k, (lr, mu) in enumerate(schedule, 1):
        step(lr, mu)
        ref.learning_rate, ref.momentum = lr, mu
        expected = ref.step(expected, problem.grad(expected))
        assert_params_close(values(params), expected, f"step {k}")


def test_shared_adam_hyperparameters(problem):
    """beta1, beta2 and epsilon may be shared too; changing beta1 changes the run."""
    beta1 = pytensor.shared(0.9, name="beta1")
    beta2 = pytensor.shared(0.99, name="beta2")
    epsilon = pytensor.shared(1e-4, name="epsilon")
    params = problem.shared()
    step = step_function(symopt.adam(problem.loss(params), params, 0.05, beta1, beta2, epsilon))
    ref = reference.Adam(problem.initial(), 0.05, 0.9, 0.99, 1e-4)
    expected = problem.initial()
    for k in range(1, STEPS + 1):
        if k == STEPS // 2:
            beta1.set_value(0.5)
            ref.beta1 = 0.5
        step()
        expected = ref.step(expected, problem.grad(expected))
        assert_params_close(values(params), expected, f"step {k}")
