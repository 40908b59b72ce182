"""Optimizer state: names, tags, ``get_state``, and save/load that resumes bit for bit."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest

import symopt
from symopt.lab.rulebook import ROWS, state_names
from symopt.state import StateTag, state_tag

from .toys import Quadratic, step_function, values


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=4)




@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_state_names_and_tags(problem, name):
    W, b = params = problem.shared()
    updates = symopt.RULES[name](problem.loss(params), params)
    assert [var.name for var, _ in updates] == ["W", "b"] + state_names(name)
    state = symopt.get_state(updates)
    assert list(state) == state_names(name)
    assert list(symopt.get_state(updates, include_params=True)) == ["W", "b"] + state_names(name)
    for key, var in state.items():
        tag = state_tag(var)
        owner, role = key.rsplit(".", 1)
        assert tag.role == role
        if role == "t":
            assert tag.param is None and tag.rule == owner == name
            assert var.dtype == "int64" and var.get_value() == 0
        else:
            assert tag.param is {"W": W, "b": b}[owner]
            if role == "window":  # adagrad_window: the parameter's type and a last axis
                window = var.type.shape[-1]
                assert window == 10 and var.get_value().shape[-1] == window
                assert var.type == tag.param.type.clone(shape=tag.param.type.shape + (window,))
            else:
                assert var.type == tag.param.type
            np.testing.assert_array_equal(var.get_value(), 0)
    assert state_tag(W) is None


def test_tag_contents_and_centred_momentum_rmsprop_state(problem):
    W, b = params = problem.shared()
    updates = symopt.rmsprop(problem.loss(params), params, momentum=0.9, centered=True)
    assert list(symopt.get_state(updates)) == [
        "W.mean_square", "W.mean_grad", "b.mean_square", "b.mean_grad", "W.velocity",
        "b.velocity"]
    velocity = symopt.get_state(updates)["W.velocity"]
    assert state_tag(velocity) == StateTag(rule="momentum", role="velocity", param=W)


def test_rprop_step_sizes_start_at_the_learning_rate(problem):
    params = problem.shared()
    updates = symopt.rprop(problem.loss(params), params, learning_rate=0.25)
    state = symopt.get_state(updates)
    step_function(updates)()
    np.testing.assert_array_equal(state["b.step_size"].get_value(), [0.25, 0.25])
    assert state["rprop.t"].get_value() == 1


def test_counter_counts_steps_exactly(problem):
    params = problem.shared()
    updates = symopt.adam(problem.loss(params), params)
    counter = symopt.get_state(updates)["adam.t"]
    step = step_function(updates)
    for _ in range(7):
        step()
    assert counter.get_value() == 7 and counter.get_value().dtype == np.int64


def test_two_parameters_with_one_name_get_distinct_keys():
    a = pytensor.shared(np.ones(2), name="w")
    b = pytensor.shared(np.ones(3), name="w")
    c = pytensor.shared(np.ones(1))
    updates = symopt.momentum(((a**2).sum() + (b**2).sum() + (c**2).sum()), [a, b, c])
    keys = list(symopt.get_state(updates, include_params=True))
    assert keys == ["w", "w#2", "unnamed", "w.velocity", "w.velocity#2", "param.velocity"]


# --------------------------------------------------------------------------------------
# save_state / load_state
# --------------------------------------------------------------------------------------

RESUME_CASES = [  # (rule, hyperparameters, wrapped in skip_nonfinite): the rows' own,
    (name, row.resume, False) for name, row in ROWS.items() if row.resume is not None
] + [("adam", ROWS["adam"].resume, True)]  # and Adam behind the NaN guard


def build(problem, name, kwargs, guard=False):
    params = problem.shared()
    updates = symopt.RULES[name](problem.loss(params), params, **kwargs)
    if guard:
        updates = symopt.skip_nonfinite(updates)
    return params, updates


@pytest.mark.parametrize("name, kwargs, guard", RESUME_CASES,
                         ids=[c[0] + ("+skip_nonfinite" if c[2] else "") for c in RESUME_CASES])
def test_save_then_load_into_a_rebuilt_graph_resumes_bit_for_bit(problem, tmp_path, name,
                                                                 kwargs, guard):
    path = tmp_path / "state.npz"
    params, updates = build(problem, name, kwargs, guard)
    step = step_function(updates)
    for _ in range(10):
        step()
    symopt.save_state(updates, path)
    saved_keys = sorted(np.load(path).files)
    assert saved_keys == sorted(symopt.get_state(updates, include_params=True))
    for _ in range(10):
        step()
    continuous = values(params)

    # a fresh graph: new shared variables, new compile; only the file links the two
    fresh_params, fresh_updates = build(problem, name, kwargs, guard)
    symopt.load_state(fresh_updates, path)
    fresh_step = step_function(fresh_updates)
    for _ in range(10):
        fresh_step()
    for got, expected in zip(values(fresh_params), continuous):
        np.testing.assert_array_equal(got, expected)

    # and the optimizer state mattered: parameters alone do not resume the run
    bare_params, bare_updates = build(problem, name, kwargs, guard)
    with np.load(path) as saved:
        for p in bare_params:
            p.set_value(saved[p.name])
    bare_step = step_function(bare_updates)
    for _ in range(10):
        bare_step()
    assert any(not np.allclose(a, b, rtol=1e-8) for a, b in zip(values(bare_params), continuous))


def test_load_state_without_parameters_leaves_them_alone(problem, tmp_path):
    path = tmp_path / "state.npz"
    params, updates = build(problem, "momentum", {"learning_rate": 0.1})
    step_function(updates)()
    symopt.save_state(updates, path, include_params=False)
    assert sorted(np.load(path).files) == ["W.velocity", "b.velocity"]
    fresh_params, fresh_updates = build(problem, "momentum", {"learning_rate": 0.1})
    symopt.load_state(fresh_updates, path, include_params=False)
    np.testing.assert_array_equal(symopt.get_state(fresh_updates)["W.velocity"].get_value(),
                                  symopt.get_state(updates)["W.velocity"].get_value())
    np.testing.assert_array_equal(fresh_params[0].get_value(), problem.initial()[0])


def test_load_state_errors(problem, tmp_path):
    _, updates = build(problem, "adam", {})
    with pytest.raises(FileNotFoundError, match="no optimizer state file at .*missing.npz"):
        symopt.load_state(updates, tmp_path / "missing.npz")

    path = tmp_path / "adam.npz"
    symopt.save_state(updates, path)
    _, momentum_updates = build(problem, "momentum", {})
    with pytest.raises(ValueError, match=r"does not match.*missing \['W.velocity'.*"
                                         r"unexpected \['W.m'"):
        symopt.load_state(momentum_updates, path)

    W = pytensor.shared(np.zeros((2, 3)), name="W")
    b = pytensor.shared(np.zeros(2), name="b")
    loss = (W**2).sum() + (b**2).sum()
    with pytest.raises(ValueError, match=r"saved 'W' has shape \(3, 2\).*shape \(2, 3\)"):
        symopt.load_state(symopt.adam(loss, [W, b]), path)

    W32 = pytensor.shared(np.zeros((3, 2), dtype="float32"), name="W")
    b32 = pytensor.shared(np.zeros(2, dtype="float32"), name="b")
    loss32 = (W32**2).sum() + (b32**2).sum()
    with pytest.raises(ValueError, match="dtype float64.*dtype float32"):
        symopt.load_state(symopt.adam(loss32, [W32, b32]), path)
    # nothing was half-loaded by the failed attempts
    np.testing.assert_array_equal(W32.get_value(), 0)
