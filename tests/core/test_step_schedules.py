"""In-graph schedules: values against NumPy transcriptions and optax, and a resumed warm-up.

Every schedule is elementwise in its count, so one compiled function tabulates all of them
over counts 0..119. The NumPy transcriptions are written from the definitions (optax's
documentation, Loshchilov & Hutter 2017, Smith & Topin 2018). optax is called with Python
integer counts and float64 numbers, where it computes in float64 (with an int32 count it
divides in float32).
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt import schedules as S

from .toys import Quadratic

COUNTS = np.arange(120)
# PyTensor's rewrites reorder (v0 - v1) * (1 - k/K) + v1 a little: where the exact value is
# 0.0 it may give -1.4e-17; relative 1e-13 elsewhere
ATOL = 1e-16


def np_polynomial(n, init, end, power, steps, begin=0):
    k = min(max(n - begin, 0), steps)
    return (init - end) * (1 - k / steps) ** power + end


def np_cosine(n, init, steps, alpha=0.0, exponent=1.0):
    k = min(n, steps)
    return init * ((1 - alpha) * (0.5 * (1 + math.cos(math.pi * k / steps))) ** exponent + alpha)


def np_warmup_cosine(n, init, peak, warmup, total, end):
    if n < warmup:
        return np_polynomial(n, init, peak, 1, warmup)
    return np_cosine(n - warmup, peak, total - warmup, alpha=end / peak)


def np_exponential(n, init, steps, rate, begin=0, staircase=False, end=None):
    if n - begin <= 0:
        value = init
    else:
        p = (n - begin) / steps
        value = init * rate ** (math.floor(p) if staircase else p)
    if end is not None:
        value = max(value, end) if rate < 1 else min(value, end)
    return value


def np_one_cycle(n, steps, peak, pct=0.3, div=25.0, final_div=1e4):
    up = int(pct * steps)
    low, high, final = peak / div, peak, peak / (div * final_div)
    if n < up:
        return high + (low - high) / 2 * (math.cos(math.pi * n / max(up, 1)) + 1)
    if n < steps:
        frac = (n - up) / max(steps - up, 1)
        return final + (high - final) / 2 * (math.cos(math.pi * frac) + 1)
    return final


def sgdr_cycles():
    return [dict(init_value=0.0, peak_value=0.1, warmup_steps=5, decay_steps=30, end_value=1e-3),
            dict(init_value=0.01, peak_value=0.05, warmup_steps=0, decay_steps=40,
                 end_value=0.0)]


def np_sgdr(n):
    start, cycles = 0, sgdr_cycles()
    for c in cycles:
        if n < start + c["decay_steps"] or c is cycles[-1]:
            n -= start
            if n < c["warmup_steps"]:
                return np_polynomial(n, c["init_value"], c["peak_value"], 1, c["warmup_steps"])
            alpha = c["end_value"] / c["peak_value"]
            return np_cosine(n - c["warmup_steps"], c["peak_value"],
                             c["decay_steps"] - c["warmup_steps"], alpha)
        start += c["decay_steps"]


# name: (symopt schedule, NumPy reference, optax schedule or None)
CASES = {
    "constant": (lambda: S.constant(0.3), lambda n: 0.3,
                 lambda o: o.constant_schedule(0.3)),
    "linear": (lambda: S.linear(0.1, 0.01, 50, transition_begin=5),
               lambda n: np_polynomial(n, 0.1, 0.01, 1, 50, 5),
               lambda o: o.linear_schedule(0.1, 0.01, 50, transition_begin=5)),
    "polynomial": (lambda: S.polynomial(0.1, 0.01, 2.0, 50, 5),
                   lambda n: np_polynomial(n, 0.1, 0.01, 2.0, 50, 5),
                   lambda o: o.polynomial_schedule(0.1, 0.01, 2.0, 50, 5)),
    "exponential": (lambda: S.exponential_decay(0.1, 10, 0.5, transition_begin=5),
                    lambda n: np_exponential(n, 0.1, 10, 0.5, 5),
                    lambda o: o.exponential_decay(0.1, 10, 0.5, transition_begin=5)),
    "exponential_staircase": (
        lambda: S.exponential_decay(0.1, 10, 0.5, staircase=True, end_value=0.005),
        lambda n: np_exponential(n, 0.1, 10, 0.5, staircase=True, end=0.005),
        lambda o: o.exponential_decay(0.1, 10, 0.5, staircase=True, end_value=0.005)),
    "cosine": (lambda: S.cosine_decay(0.1, 50, alpha=0.1, exponent=2.0),
               lambda n: np_cosine(n, 0.1, 50, 0.1, 2.0),
               lambda o: o.cosine_decay_schedule(0.1, 50, alpha=0.1, exponent=2.0)),
    "warmup_cosine": (lambda: S.warmup_cosine_decay(0.0, 1e-3, 10, 60, end_value=1e-5),
                      lambda n: np_warmup_cosine(n, 0.0, 1e-3, 10, 60, 1e-5),
                      lambda o: o.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 60, 1e-5)),
    "piecewise": (lambda: S.piecewise_constant(0.1, {30: 0.1, 10: 0.5}),
                  lambda n: 0.1 * (0.5 if n >= 10 else 1) * (0.1 if n >= 30 else 1),
                  lambda o: o.piecewise_constant_schedule(0.1, {30: 0.1, 10: 0.5})),
    "sgdr": (lambda: S.sgdr(sgdr_cycles()), np_sgdr,
             lambda o: o.sgdr_schedule(sgdr_cycles())),
    "one_cycle": (lambda: S.one_cycle(80, 0.1), lambda n: np_one_cycle(n, 80, 0.1),
                  lambda o: o.cosine_onecycle_schedule(80, 0.1)),
    "join": (lambda: S.join([S.constant(0.1), S.linear(0.1, 0.0, 20)], [10]),
             lambda n: 0.1 if n < 10 else np_polynomial(n - 10, 0.1, 0.0, 1, 20),
             lambda o: o.join_schedules([o.constant_schedule(0.1),
                                         o.linear_schedule(0.1, 0.0, 20)], [10])),
}


@pytest.fixture(scope="module")
def table():
    """Every schedule at every count, from one compiled function."""
    counts = pt.lvector("counts")
    names = list(CASES)
    f = pytensor.function([counts], [CASES[n][0]()(counts) for n in names])
    return dict(zip(names, f(COUNTS)))


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_numpy(table, name):
    assert table[name].dtype == "float64"
    expected = [CASES[name][1](int(n)) for n in COUNTS]
    np.testing.assert_allclose(table[name], expected, rtol=1e-13, atol=ATOL)


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_optax(table, name):
    optax = pytest.importorskip("optax", reason="optax is an optional test dependency")
    import jax

    jax.config.update("jax_enable_x64", True)
    schedule = CASES[name][2](optax)
    expected = [float(schedule(int(n))) for n in COUNTS]
    np.testing.assert_allclose(table[name], expected, rtol=1e-13, atol=ATOL)


def test_float32_rule_with_a_schedule_keeps_its_types():
    with pytensor.config.change_flags(floatX="float32"):
        problem = Quadratic(dtype="float32")
        params = problem.shared()
        lr = S.warmup_cosine_decay(0.0, 1e-2, 5, 50)
        for rule in (symopt.sgd, symopt.adam, symopt.adamw, symopt.momentum, symopt.lion):
            updates = rule(problem.loss(params), params, learning_rate=lr)
            for var, expression in updates:
                assert expression.type == var.type, (rule, var)
            assert symopt.get_state(updates)["learning_rate.t"].dtype == "int64"


def test_a_checkpoint_taken_mid_warmup_resumes_on_the_same_trajectory(tmp_path):
    """Save after 3 steps of a 10-step warm-up, rebuild the graph, load, continue."""
    problem = Quadratic()

    def build():
        params = problem.shared()
        lr = S.warmup_cosine_decay(0.0, 0.05, 10, 40, end_value=1e-3)
        updates = symopt.adam(problem.loss(params), params, learning_rate=lr)
        return params, updates, pytensor.function([], [], updates=updates)

    params, updates, step = build()
    for _ in range(3):
        step()
    symopt.save_state(updates, tmp_path / "mid_warmup.npz")
    assert int(symopt.get_state(updates)["learning_rate.t"].get_value()) == 3
    straight = []
    for _ in range(6):
        step()
        straight.append([p.get_value() for p in params])

    params, updates, step = build()
    symopt.load_state(updates, tmp_path / "mid_warmup.npz")
    for want in straight:
        step()
        for p, w in zip(params, want, strict=True):
            assert np.array_equal(p.get_value(), w)


def test_schedule_errors():
    with pytest.raises(ValueError, match="decay_steps \\(10\\) must be greater than warmup"):
        S.warmup_cosine_decay(0.0, 1.0, 10, 10)
    with pytest.raises(ValueError, match="transition_steps must be >= 1"):
        S.linear(1.0, 0.0, 0)
    with pytest.raises(TypeError, match="warmup_steps must be an integer"):
        S.warmup_cosine_decay(0.0, 1.0, 2.5, 10)
    with pytest.raises(ValueError, match="one boundary fewer than schedules"):
        S.join([S.constant(1.0), S.constant(2.0)], [])
    with pytest.raises(ValueError, match="boundaries must increase"):
        S.join([S.constant(1.0)] * 3, [5, 5])
    with pytest.raises(ValueError, match="the scale at 10 must be >= 0"):
        S.piecewise_constant(1.0, {10: -0.5})
    with pytest.raises(ValueError, match="decay_rate must be > 0"):
        S.exponential_decay(1.0, 10, 0.0)
    with pytest.raises(TypeError, match="step count must be an integer"):
        S.constant(1.0)(pt.dscalar())
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        symopt.rprop(learning_rate=S.constant(1.0))
