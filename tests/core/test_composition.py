"""Composition: momentum on top of a rule, ``chain``, configured rules, precomputed gradients.

Where the library promises bit-for-bit equality, the two update lists go into one compiled
function (on two copies of the parameters) and the values are compared with
``assert_array_equal``; each comparison also checks the run against the NumPy reference,
so that two equal but wrong graphs cannot pass.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytest

import symopt
from symopt.blocks import (
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)
from symopt.grads import get_or_compute_grads
from symopt.lab import reference
from symopt.lab.rulebook import ROWS
from symopt.transform import apply, chain

from .toys import Quadratic, step_function, values

STEPS = 10


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=1)


def two_copies(problem):
    return problem.shared("_a"), problem.shared("_b")


def run_side_by_side(updates, first, second, check=None, steps=STEPS):
    """Step both update lists in one function; after each step the values must be equal."""
    step = step_function(updates)
    for k in range(1, steps + 1):
        step()
        for a, b in zip(values(first), values(second)):
            np.testing.assert_array_equal(a, b, err_msg=f"step {k}")
        if check is not None:
            check(k, values(first))


def reference_check(problem, rule, rtol=1e-12):
    expected = [problem.initial()]

    def check(k, got):
        expected[0] = rule.step(expected[0], problem.grad(expected[0]))
        for g, e in zip(got, expected[0]):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=1e-13, err_msg=f"step {k}")

    return check


def test_apply_momentum_on_sgd_is_momentum_bit_for_bit(problem):
    a, b = two_copies(problem)
    ups = (symopt.apply_momentum(symopt.sgd(problem.loss(a), a, 0.05), momentum=0.8)
           + symopt.momentum(problem.loss(b), b, 0.05, 0.8))
    run_side_by_side(ups, a, b, reference_check(problem, reference.Momentum(
        problem.initial(), 0.05, 0.8)))


def test_apply_nesterov_momentum_on_sgd_is_nesterov_momentum_bit_for_bit(problem):
    a, b = two_copies(problem)
    ups = (symopt.apply_nesterov_momentum(symopt.sgd(problem.loss(a), a, 0.05), momentum=0.8)
           + symopt.nesterov_momentum(problem.loss(b), b, 0.05, 0.8))
    run_side_by_side(ups, a, b, reference_check(problem, reference.NesterovMomentum(
        problem.initial(), 0.05, 0.8)))


def test_apply_momentum_on_adam_adds_a_velocity_to_adams_step(problem):
    """Only the parameters get a velocity (not adam's state); the step is adam's step."""
    params = problem.shared()
    updates = symopt.apply_momentum(symopt.adam(problem.loss(params), params, 0.05),
                                    momentum=0.5)
    names = [var.name for var, _ in updates]
    assert names == ["W", "b", "W.m", "W.v", "b.m", "b.v", "adam.t", "W.velocity", "b.velocity"]
    step = step_function(updates)

    adam = reference.Adam(problem.initial(), 0.05)
    velocity = [np.zeros_like(x) for x in problem.initial()]
    expected = problem.initial()
    for k in range(1, STEPS + 1):
        step()
        adam_step = [new - old for new, old in
                     zip(adam.step(expected, problem.grad(expected)), expected)]
        velocity = [0.5 * v + s for v, s in zip(velocity, adam_step)]
        expected = [x + v for x, v in zip(expected, velocity)]
        for g, e in zip(values(params), expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-13, err_msg=f"step {k}")


def test_apply_momentum_on_a_lasagne_style_dict_of_handwritten_updates(problem):
    """``p - lr * g`` is not literally ``p + s``: the step is recovered as ``expr - p``."""
    params = problem.shared()
    grads = pytensor.grad(problem.loss(params), params)
    handmade = OrderedDict((p, p - 0.05 * g) for p, g in zip(params, grads))
    updates = symopt.apply_momentum(handmade, momentum=0.8)
    assert isinstance(updates, OrderedDict)
    assert [var.name for var in updates] == ["W", "b", "W.velocity", "b.velocity"]
    step = step_function(updates)
    check = reference_check(problem, reference.Momentum(problem.initial(), 0.05, 0.8))
    for k in range(1, STEPS + 1):
        step()
        check(k, values(params))


def test_apply_momentum_to_some_parameters_only(problem):
    W, b = problem.shared()
    updates = symopt.apply_momentum(symopt.sgd(problem.loss([W, b]), [W, b], 0.1), [W], 0.9)
    assert [var.name for var, _ in updates] == ["W", "b", "W.velocity"]
    with pytest.raises(ValueError, match="has no update"):
        symopt.apply_momentum([(W, W * 0.5)], [W, b])


def test_chain_equals_applying_each_transform_by_hand(problem):
    a, b = two_copies(problem)
    chained = chain(symopt.clip(0.5), scale_by_rms(rho=0.8), scale_by_learning_rate(0.02),
                    trace(0.9))
    by_chain = apply(chained, problem.loss(a), a)

    steps = get_or_compute_grads(problem.loss(b), b)
    state = []
    for block in (symopt.clip(0.5), scale_by_rms(rho=0.8), scale_by_learning_rate(0.02),
                  trace(0.9)):
        steps, block_state = block.transform(steps, b)
        state += block_state
    by_hand = [(p, p + s) for p, s in zip(b, steps)] + state

    assert [v.name for v, _ in by_chain] == [v.name.replace("_b", "_a") for v, _ in by_hand]

    clipped_rmsprop = reference.RMSProp(problem.initial(), 0.02, rho=0.8, momentum=0.9)
    clipped_rmsprop.prepare = lambda grads: [np.clip(g, -0.5, 0.5) for g in grads]
    run_side_by_side(by_chain + by_hand, a, b, reference_check(problem, clipped_rmsprop))


def test_rules_are_their_chains(problem):
    """``rmsprop(momentum=mu)`` is ``chain(scale_by_rms, scale_by_learning_rate, trace)``
    and ``adam`` is ``chain(scale_by_adam, scale_by_learning_rate)``, bit for bit."""
    a, b = two_copies(problem)
    ups = (symopt.rmsprop(problem.loss(a), a, 0.02, 0.8, momentum=0.9)
           + apply(chain(scale_by_rms(0.8), scale_by_learning_rate(0.02), trace(0.9)),
                   problem.loss(b), b))
    run_side_by_side(ups, a, b)
    a, b = two_copies(problem)
    ups = (symopt.adam(problem.loss(a), a, 0.05)
           + apply(chain(scale_by_adam(), scale_by_learning_rate(0.05)), problem.loss(b), b))
    run_side_by_side(ups, a, b)


def test_chain_with_a_configured_rule(problem):
    """``chain(clip_by_global_norm(1.0), adam(learning_rate=0.01))`` clips all gradients
    together, then runs adam; by hand: ``adam(total_norm_constraint(grads, 1.0), ...)``."""
    a, b = two_copies(problem)
    by_chain = apply(chain(symopt.clip_by_global_norm(1.0), symopt.adam(learning_rate=0.01)),
                     problem.loss(a), a)
    clipped = symopt.total_norm_constraint(pytensor.grad(problem.loss(b), b), 1.0)
    by_hand = symopt.adam(clipped, b, learning_rate=0.01)

    def clip(grads):
        norm = np.sqrt(sum(np.sum(g**2) for g in grads))
        assert norm > 1.0  # the clip is active on this problem
        return [g * min(norm, 1.0) / (norm + 1e-7) for g in grads]

    adam = reference.Adam(problem.initial(), 0.01)
    adam.prepare = clip
    run_side_by_side(by_chain + by_hand, a, b, reference_check(problem, adam))


def test_configured_rule_equals_the_direct_call(problem):
    opt = symopt.adam(learning_rate=0.01, beta2=0.99)
    assert isinstance(opt, symopt.ConfiguredRule)
    assert repr(opt) == ("adam(learning_rate=0.01, beta1=0.9, beta2=0.99, epsilon=1e-08, "
                         "epsilon_placement='after_correction')")
    assert opt.hyperparameters["beta2"] == 0.99
    a, b = two_copies(problem)
    ups = opt(problem.loss(a), a) + symopt.adam(problem.loss(b), b, learning_rate=0.01,
                                               beta2=0.99)
    run_side_by_side(ups, a, b, reference_check(problem, reference.Adam(
        problem.initial(), 0.01, beta2=0.99)))


def test_a_configured_rule_applied_twice_keeps_separate_state(problem):
    opt = symopt.momentum(learning_rate=0.1)
    a, b = two_copies(problem)
    first, second = opt(problem.loss(a), a), opt(problem.loss(b), b)
    state_a = {id(v) for v, _ in first} - {id(p) for p in a}
    state_b = {id(v) for v, _ in second} - {id(p) for p in b}
    assert len(state_a) == 2 and not state_a & state_b


@pytest.mark.parametrize("name", ["momentum", "rprop"])
def test_precomputed_gradients_equal_the_loss(problem, name):
    a, b = two_copies(problem)
    grads = pytensor.grad(problem.loss(b), b)
    ups = (symopt.RULES[name](problem.loss(a), a, learning_rate=0.05)
           + symopt.RULES[name](grads, b, learning_rate=0.05))
    run_side_by_side(ups, a, b, reference_check(problem, ROWS[name].reference(
        problem.initial(), learning_rate=0.05)))


def test_a_chain_is_a_rule(problem):
    """``chain(...)`` called with ``(loss, params)`` gives the updates ``apply`` gives."""
    a, b = two_copies(problem)
    rule = chain(symopt.clip_by_global_norm(0.5), symopt.adam(learning_rate=0.05))
    ups = rule(problem.loss(a), a) + apply(rule, problem.loss(b), b)
    clipped_adam = reference.Adam(problem.initial(), 0.05)

    def clip_by_global_norm(grads, max_norm=0.5, epsilon=1e-7):
        norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
        return [g * min(norm, max_norm) / (norm + epsilon) for g in grads]

    clipped_adam.prepare = clip_by_global_norm
    run_side_by_side(ups, a, b, reference_check(problem, clipped_adam))
    assert "clip_by_global_norm" in repr(rule) and not rule.elementwise


def test_second_order_configured_rules_keep_their_fuse_and_accept_it_when_called(problem):
    """esgd(..., fuse="auto") keeps fuse; LossRule(...)(loss, params, fuse=False) works."""
    params = problem.shared()
    configured = symopt.esgd(learning_rate=0.1, fuse="auto", seed=0)
    assert configured.fuse == "auto"
    updates = configured(problem.loss(params), params, fuse=False)
    assert [v.name for v, _ in updates[:2]] == ["W", "b"]
    with pytest.raises(TypeError, match="needs the loss itself"):
        configured(get_or_compute_grads(problem.loss(params), params), params)
