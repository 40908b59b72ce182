"""The compile-time rewrite that gives the C backends the vectorised loop by default.

symopt.fused.rewrite swaps each parameter's update loop for a one-tensor FusedUpdate
when a function is compiled for a C backend. It may change how a loop is computed, never
what: float64 results are PyTensor's own, bit for bit; float32 ones are computed in
float32 (as on Numba) and stay within a few ulps of PyTensor's C loop.
"""

from __future__ import annotations

import os

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytensor.compile.mode import get_mode
from pytensor.tensor.elemwise import Elemwise

import symopt
from symopt.fused import PARALLEL_MIN, FusedUpdate
from symopt.fused.rewrite import chunks
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
    return {"rewritten": rewritten, "plain": rewritten.excluding("symopt_fusion")}


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


def test_a_rule_without_state_gets_the_vectorised_loop_too():
    """sgd keeps no state: its parameter, marked by symopt.apply, is what the rewrite
    recognises; the result is PyTensor's own, bit for bit."""
    results = {}
    for label, mode in _modes().items():
        W = pytensor.shared(np.linspace(-1, 1, 7), name="W")
        g = pt.vector("g")
        f = pytensor.function([g], [], updates=symopt.sgd([g], [W], learning_rate=0.3),
                              mode=mode)
        f(np.arange(7.0))
        results[label] = W.get_value()
        fused = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
        assert [n.op.n_states for n in fused] == ([0] if label == "rewritten" else [])
    np.testing.assert_array_equal(results["rewritten"], results["plain"])
    np.testing.assert_allclose(results["plain"], np.linspace(-1, 1, 7) - 0.3 * np.arange(7),
                               rtol=1e-15)


def test_loops_of_other_libraries_are_left_alone():
    """A hand-written momentum (its state not symopt's) keeps PyTensor's loop."""
    W = pytensor.shared(np.ones(4), name="W")
    v = pytensor.shared(np.zeros(4), name="v")
    g = pt.vector("g")
    v_new = 0.9 * v - 0.1 * g
    f = pytensor.function([g], [], updates=[(v, v_new), (W, W + v_new)], mode="CVM")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
@pytest.mark.parametrize("k", [1, 7])
def test_numba_keeps_its_own_loops_below_eight_tensors(k):
    params = [pytensor.shared(np.ones(4), name=f"W{i}") for i in range(k)]
    grads = [pt.vector(f"g{i}") for i in range(k)]
    f = pytensor.function(grads, [], updates=symopt.adam(grads, params), mode="NUMBA")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
def test_numba_counts_the_tensors_of_each_rule_not_of_the_graph():
    """Three rules over four tensors each (twelve updates): Numba keeps its loops."""
    grads = [pt.vector(f"g{i}") for i in range(4)]
    updates = []
    for rule in (symopt.adam, symopt.rmsprop, symopt.momentum):
        params = [pytensor.shared(np.ones(4), name=f"{rule.__name__}{i}") for i in range(4)]
        updates += list(rule(grads, params))
    f = pytensor.function(grads, [], updates=updates, mode="NUMBA")
    assert not [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_takes_a_loop_that_branches_on_its_scalars_for_any_number_of_tensors(dtype):
    """RAdam's rectification picks, by its step counter alone, between two values the
    loop computes: Numba's own loop runs it 2.6x slower, so even one tensor gets a
    FusedUpdate (three tensors: three one-tensor nodes, not grouped below eight), and the
    parameters are those of Numba's loop. Rprop's first-step pick between a constant and
    an input is not such a branch: it keeps Numba's loop."""
    shapes = [(5,), (2, 3), (4,)]
    taken, fused, _ = _train_many(symopt.radam, shapes, dtype, get_mode("NUMBA"), steps=8)
    assert sorted(n.op.n_tensors for n in fused) == [1, 1, 1]
    plain, none, _ = _train_many(symopt.radam, shapes, dtype,
                                 get_mode("NUMBA").excluding("symopt_fusion"), steps=8)
    assert not none
    for a, b in zip(taken, plain, strict=True):
        assert a.dtype == np.dtype(dtype)
        # the same scalar body; fastmath lets LLVM contract each loop's multiply-adds
        np.testing.assert_allclose(a, b, rtol=4e-7 if dtype == "float32" else 1e-15)
    assert not _train_many(symopt.rprop, shapes, dtype, get_mode("NUMBA"))[1]


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="threads need two cores")
def test_numba_takes_a_tensor_large_enough_for_threads(monkeypatch):
    """Numba's own loop is serial: a tensor of PARALLEL_MIN elements gets FusedUpdate's
    loop, split over Numba's threads, with Numba's loop's result; a smaller one keeps
    Numba's loop."""
    import numba

    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)  # as on two cores
    results = {}
    for label, mode in [("symopt", get_mode("NUMBA")),
                        ("plain", get_mode("NUMBA").excluding("symopt_fusion"))]:
        rng = np.random.default_rng(11)
        W = pytensor.shared(rng.normal(size=PARALLEL_MIN), name="W")
        small = pytensor.shared(rng.normal(size=100), name="small")
        g, h = pt.vector("g"), pt.vector("h")
        f = pytensor.function([g, h], [], updates=symopt.adam([g, h], [W, small]), mode=mode)
        for _ in range(3):
            f(rng.normal(size=PARALLEL_MIN), rng.normal(size=100))
        fused = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
        if label == "symopt":
            assert [(n.op.n_tensors, n.op.parallel) for n in fused] == [(1, True)]
            assert fused[0].inputs[0] is W
        else:
            assert not fused
        results[label] = W.get_value(), small.get_value()
    for a, b in zip(results["symopt"], results["plain"], strict=True):
        # the same scalar body; fastmath lets LLVM contract each loop's multiply-adds
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


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


# --------------------------------------------------------------------------- many tensors
# symopt.fused.rewrite.GroupUpdates: the one-tensor loops of a rule, one node per chunk

MIXED = [(3, 4), (5,), (2, 3, 2), (7,), (1, 6)]


def _train_many(rule, shapes, dtype, mode, static=False, steps=3):
    """``rule`` over parameters of ``shapes``, gradients given; the parameters after
    ``steps`` steps, the compiled function's FusedUpdate nodes and the function."""
    rng = np.random.default_rng(3)
    params = [pytensor.shared(rng.normal(size=s).astype(dtype), name=f"p{i}")
              for i, s in enumerate(shapes)]
    grads = [pt.tensor(f"g{i}", dtype=dtype, shape=s if static else (None,) * len(s))
             for i, s in enumerate(shapes)]
    f = pytensor.function(grads, [], updates=rule(grads, params), mode=mode)
    for _ in range(steps):
        f(*[rng.normal(size=s).astype(dtype) for s in shapes])
    fused = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    return [p.get_value() for p in params], fused, f


def _backends():
    return ["CVM", "NUMBA"] if PYTENSOR_3 else ["CVM"]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_tensors_of_a_rule_are_grouped_in_chunks_and_computed_alike(backend, dtype):
    """20 parameters of five shapes: five nodes of 4 tensors, each in place, whose
    results are the one-tensor loops' bit for bit (and PyTensor's own in float64)."""
    shapes = MIXED * 4
    mode = get_mode(backend)
    grouped, fused, _ = _train_many(symopt.adam, shapes, dtype, mode)
    assert sorted(n.op.n_tensors for n in fused) == [4] * 5
    assert all(n.op.inplace and n.op.shapes is None for n in fused)
    plain, none, _ = _train_many(symopt.adam, shapes, dtype, mode.excluding("symopt_fusion"))
    assert not none
    for a, b in zip(grouped, plain, strict=True):
        assert a.dtype == np.dtype(dtype)
        if dtype == "float64" and backend == "CVM":
            np.testing.assert_array_equal(a, b)
        elif dtype == "float64":  # Numba's fastmath flags let LLVM contract each loop's
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)  # multiply-adds
        else:  # float32 constants where PyTensor's C code uses double ones
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    if backend == "CVM":
        ungrouped, ones, _ = _train_many(symopt.adam, shapes, dtype,
                                         mode.excluding("symopt_group_updates"))
        assert {n.op.n_tensors for n in ones} == {1}
        for a, b in zip(grouped, ungrouped, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", _backends())
def test_tensors_of_one_static_shape_are_split_out_of_pytensors_one_loop(backend):
    """PyTensor fuses the updates of tensors of one static shape into one loop that
    reads every gradient; its independent parts are the tensors' updates."""
    shapes = [(7,)] * 9
    grouped, fused, _ = _train_many(symopt.rmsprop, shapes, "float64", get_mode(backend),
                                    static=True)
    assert sorted(n.op.n_tensors for n in fused) == [1, 4, 4]  # chunks of 9
    plain, _, _ = _train_many(symopt.rmsprop, shapes, "float64",
                              get_mode(backend).excluding("symopt_fusion"), static=True)
    for a, b in zip(grouped, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("backend", _backends())
def test_a_wrong_gradient_in_a_group_is_refused_before_its_node_writes(backend):
    """The node of the wrong gradient writes none of its tensors (nodes that ran before
    it have stepped their own, as PyTensor's own loops would have)."""
    shapes = MIXED * 2
    params = [pytensor.shared(np.ones(s), name=f"p{i}") for i, s in enumerate(shapes)]
    grads = [pt.tensor(f"g{i}", shape=(None,) * len(s)) for i, s in enumerate(shapes)]
    updates = symopt.adam(grads, params)
    f = pytensor.function(grads, [], updates=updates, mode=backend)
    fused = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    assert sorted(n.op.n_tensors for n in fused) == [2, 4, 4]
    # the node of the last tensor, (1, 6): its parameters and their state
    (node,) = [n for n in fused if any(x.name == "p9" for x in n.inputs)]
    mine = [x for x in node.inputs if getattr(x, "name", None) and hasattr(x, "get_value")]
    assert len(mine) == 3 * node.op.n_tensors  # parameters, m and v
    before = {x.name: x.get_value().copy() for x in mine}
    values = [np.ones(s) for s in shapes]
    values[-1] = np.ones((1, 3))
    with pytest.raises(ValueError, match="parameter's shape"):
        f(*values)
    for x in mine:
        np.testing.assert_array_equal(x.get_value(), before[x.name])
    values[-1] = np.ones((1, 6))
    f(*values)  # the right shapes still run
    assert all(np.all(p.get_value() < 1) for p in params)


def test_loops_that_are_not_updates_stay_pytensors_beside_a_grouped_rule():
    """A hand-written decay on its own shared variable, fused by PyTensor into the same
    loop as symopt's updates (one static shape), stays an elementwise loop."""
    shapes = [(6,)] * 3
    grads = [pt.tensor(f"g{i}", shape=s) for i, s in enumerate(shapes)]
    h = pt.tensor("h", shape=(6,))
    results = {}
    for label, mode in [("rewritten", get_mode("CVM")),
                        ("plain", get_mode("CVM").excluding("symopt_fusion"))]:
        params = [pytensor.shared(np.full(s, 2.0), name=f"p{i}") for i, s in enumerate(shapes)]
        decay = pytensor.shared(np.ones(6), name="decay")
        updates = [*symopt.adagrad(grads, params), (decay, 0.5 * decay + h)]
        f = pytensor.function([*grads, h], [], updates=updates, mode=mode)
        f(*[np.full(s, 0.5) for s in shapes], np.full(6, 3.0))
        results[label] = [p.get_value() for p in params] + [decay.get_value()]
        if label == "rewritten":
            assert [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    for a, b in zip(results["rewritten"], results["plain"], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results["plain"][-1], np.full(6, 3.5))


@given(st.integers(0, 400), st.sampled_from([1, 2, 8, 16, 32]))
def test_chunks_cover_every_tensor_with_few_kernel_sizes(n, size):
    lengths = chunks(n, size)
    assert sum(lengths) == n
    assert all(length <= size and length & (length - 1) == 0 for length in lengths)
    assert len(set(lengths)) <= size.bit_length()
    assert lengths == sorted(lengths, reverse=True)
