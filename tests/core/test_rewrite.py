"""The compile-time rewrite that gives the C backends the vectorised loop by default.

symopt.fused.rewrite swaps each parameter's update loop for a one-tensor FusedUpdate
when a function is compiled for a C backend. It may change how a loop is computed, never
what: float64 results are PyTensor's own, bit for bit; float32 ones are computed in
float32 (as on Numba) and stay within a few ulps of PyTensor's C loop.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import get_mode
from pytensor.tensor.elemwise import Elemwise

import symopt
from symopt.fused import FusedUpdate
from symopt.lab import rulebook

from .toys import ROUNDING_ONLY

# the elementwise rules with per-parameter state (not Shampoo, SOAP, adagrad_window: their
# loops read more than a gradient)
PYTENSOR_3 = int(pytensor.__version__.split(".")[0]) >= 3
# (on PyTensor 2.38 Lion's parameter loop reads the old momentum its sibling loop updates,
# two arrays read: PyTensor keeps it, and the one loop it fuses all rules into here)
STATEFUL = sorted(name for name in symopt.RULES
                  if rulebook.ROWS[name].roles and rulebook.ROWS[name].fused is not None
                  and (PYTENSOR_3 or name not in {"lion", "adan", "adopt"}))


def _modes():
    rewritten = get_mode("CVM")
    return {"rewritten": rewritten, "plain": rewritten.excluding("symopt_flat_update")}


def _train_all(dtype, mode, steps=4):
    """Every stateful rule on its own (5, 3) parameter, one compiled function; the
    parameters after ``steps`` steps, and the compiled graph."""
    rng = np.random.default_rng(7)
    start = rng.normal(size=(5, 3)).astype(dtype)
    grads = [rng.normal(size=(5, 3)).astype(dtype) for _ in range(steps)]
    g = pt.matrix("g", dtype=dtype)
    params, updates = {}, []
    for name in STATEFUL:
        params[name] = pytensor.shared(start.copy(), name=f"{name}.W")
        updates += list(symopt.RULES[name]([g], [params[name]]))
    f = pytensor.function([g], [], updates=updates, mode=mode)
    for value in grads:
        f(value)
    return {name: p.get_value() for name, p in params.items()}, f.maker.fgraph


_RUNS = {}


def _run(dtype, label):
    if (dtype, label) not in _RUNS:
        _RUNS[dtype, label] = _train_all(dtype, _modes()[label])
    return _RUNS[dtype, label]


def _loops(fgraph):
    """The elementwise loops over (5, 3) arrays, and the FusedUpdate nodes."""
    loops = [n for n in fgraph.apply_nodes if isinstance(n.op, Elemwise)
             and n.outputs[0].type.broadcastable == (False, False)]
    return loops, [n for n in fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


def test_every_stateful_rule_gets_the_vectorised_loop_on_the_c_vm():
    """(PyTensor fuses the rules' loops, which read the same gradient, into one; the
    rewrite takes that loop as it is: one array read, every other one updated.)"""
    loops, fused = _loops(_run("float64", "rewritten")[1])
    assert not loops and fused
    assert all(n.op.n_tensors == 1 and n.op.inplace for n in fused)
    loops, fused = _loops(_run("float64", "plain")[1])
    assert loops and not fused


# ROUNDING_ONLY (tests/core/toys.py): rules that agree with the per-tensor loop to rounding


@pytest.mark.parametrize("name", STATEFUL)
def test_float64_results_are_pytensors_own_bit_for_bit(name):
    rewritten, _ = _run("float64", "rewritten")
    plain, _ = _run("float64", "plain")
    if name in ROUNDING_ONLY:
        np.testing.assert_allclose(rewritten[name], plain[name], rtol=1e-14)
    else:
        np.testing.assert_array_equal(rewritten[name], plain[name])


@pytest.mark.parametrize("name", STATEFUL)
def test_float32_stays_float32_and_within_a_few_ulps(name):
    rewritten, _ = _run("float32", "rewritten")
    plain, _ = _run("float32", "plain")
    assert rewritten[name].dtype == np.float32
    # four steps of a rule, each rounding a little differently (float32 constants where
    # PyTensor's C code uses double ones): a few float32 ulps of the values' scale
    np.testing.assert_allclose(rewritten[name], plain[name], rtol=0, atol=4e-6 * 8)


def test_loops_of_other_libraries_are_left_alone():
    """A hand-written momentum (its state not symopt's) keeps PyTensor's loop."""
    W = pytensor.shared(np.ones(4), name="W")
    v = pytensor.shared(np.zeros(4), name="v")
    g = pt.vector("g")
    v_new = 0.9 * v - 0.1 * g
    f = pytensor.function([g], [], updates=[(v, v_new), (W, W + v_new)], mode="CVM")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
def test_numba_keeps_its_own_loop():
    W = pytensor.shared(np.ones(4), name="W")
    g = pt.vector("g")
    f = pytensor.function([g], [], updates=symopt.adam([g], [W]), mode="NUMBA")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


def test_a_gradient_of_the_wrong_size_is_refused_and_the_arrays_are_untouched():
    """(The step counter has been advanced by then, as with PyTensor's own loop: its
    increment runs before the loop. The fused path's FusedCheck reads the counters first.)"""
    W = pytensor.shared(np.ones(1000), name="W")
    g = pt.vector("g")
    updates = symopt.adam([g], [W])
    f = pytensor.function([g], [], updates=updates, mode="CVM")
    assert [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    state = {name: var.get_value().copy() for name, var in symopt.get_state(updates).items()}
    with pytest.raises(ValueError, match="parameter's shape"):
        f(np.ones(4))
    np.testing.assert_array_equal(W.get_value(), np.ones(1000))
    for name, var in symopt.get_state(updates).items():
        if name != "adam.t":
            np.testing.assert_array_equal(var.get_value(), state[name])
    f(np.ones(1000))  # and the right size still runs
    assert np.all(W.get_value() < 1)
