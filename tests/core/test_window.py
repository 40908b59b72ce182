"""adagrad_window's ring buffer in one pass: symopt.fused.window.WindowSum.

The op writes a slot of the window's last axis and sums that axis in double, slot by
slot; the rewrite puts it in symopt's graphs on the C backends and Numba. It must give
PyTensor's C result (and so PyMC's) bit for bit, on every backend, for any shape and
slot, and refuse a bad slot or value before it writes.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.compile.mode import Mode, get_mode

import symopt
from symopt.fused.window import WindowSum

PYTENSOR_3 = int(pytensor.__version__.split(".")[0]) >= 3
BACKENDS = ["CVM", "py"] + (["NUMBA"] if PYTENSOR_3 else [])


def _mode(backend):
    return Mode(linker="py", optimizer="fast_run") if backend == "py" else get_mode(backend)


def _reference(window, value, slot, square):
    """A NumPy transcription: write the slot, then add the row's entries in double,
    first to last, and round once to the window's dtype."""
    window = window.copy()
    window[..., slot] = value * value if square else value
    total = np.zeros(value.shape)
    for k in range(window.shape[-1]):
        total = total + window[..., k].astype(np.float64)
    return window, total.astype(window.dtype)


_FUNCTIONS: dict = {}


def _op_function(backend, dtype, ndim, square):
    """``f(window, value, slot) -> (new window, sum)`` through WindowSum itself."""
    key = backend, dtype, ndim, square
    if key not in _FUNCTIONS:
        window = pt.tensor("window", dtype=dtype, shape=(None,) * ndim)
        value = pt.tensor("value", dtype=dtype, shape=(None,) * (ndim - 1))
        slot = pt.scalar("slot", dtype="int64")
        _FUNCTIONS[key] = pytensor.function(
            [window, value, slot], WindowSum(square=square)(window, value, slot),
            mode=_mode(backend))
    return _FUNCTIONS[key]


@settings(max_examples=40, deadline=None)
@given(backend=st.sampled_from(BACKENDS), dtype=st.sampled_from(["float32", "float64"]),
       rows=st.lists(st.integers(0, 4), max_size=2), n=st.integers(1, 12),
       square=st.booleans(), data=st.data())
def test_the_op_is_the_reference_bit_for_bit(backend, dtype, rows, n, square, data):
    """Any row shape (none, empty ones too), window length, slot (negative counts from
    the end), dtype and backend: the new window and the sum are the transcription's."""
    slot = data.draw(st.integers(-n, n - 1), label="slot")
    rng = np.random.default_rng(len(rows) * 100 + n)
    window = rng.normal(size=(*rows, n)).astype(dtype)
    value = rng.normal(size=tuple(rows)).astype(dtype)
    new, total = _op_function(backend, dtype, len(rows) + 1, square)(window, value, slot)
    want_window, want_total = _reference(window, value, slot, square)
    assert new.dtype == total.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(new, want_window)
    np.testing.assert_array_equal(total, want_total)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_op_is_pytensors_own_c_sum_bit_for_bit(dtype):
    """On 1e4 rows of 10 the sum rounds where it rounds in PyTensor's C Sum (which
    accumulates a float32 sum in double too)."""
    rng = np.random.default_rng(5)
    window = rng.normal(size=(100, 100, 10)).astype(dtype) * 1e3
    value = rng.normal(size=(100, 100)).astype(dtype)
    w = pt.tensor3("w", dtype=dtype)
    v = pt.matrix("v", dtype=dtype)
    plain = pytensor.function([w, v], pt.set_subtensor(w[..., 7], v).sum(axis=-1),
                              mode=get_mode("CVM").excluding("symopt_fusion"))
    ours = _op_function("CVM", dtype, 3, False)
    np.testing.assert_array_equal(ours(window, value, 7)[1], plain(window, value))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_slot_or_value_is_refused_before_anything_is_written(backend):
    f = _op_function(backend, "float64", 2, False)
    window = np.arange(12.0).reshape(4, 3)
    with pytest.raises(IndexError, match="outside the window"):
        f(window, np.zeros(4), 3)
    with pytest.raises(IndexError, match="outside the window"):
        f(window, np.zeros(4), -4)
    with pytest.raises(ValueError, match="shape of the window's rows|window's rows"):
        f(window, np.zeros(5), 0)
    np.testing.assert_array_equal(window, np.arange(12.0).reshape(4, 3))


def test_make_node_names_what_is_wrong():
    with pytest.raises(TypeError, match="window must be a float32 or float64"):
        WindowSum()(pt.ivector(), pt.iscalar(), pt.lscalar())
    with pytest.raises(TypeError, match="value must be a float64 array of 1 axes"):
        WindowSum()(pt.matrix(), pt.matrix(), pt.lscalar())
    with pytest.raises(TypeError, match="slot must be an integer scalar"):
        WindowSum()(pt.matrix(), pt.vector(), pt.dscalar())


# --------------------------------------------------------------------------- in the rule

SHAPES = [(5, 3), (7,), ()]


def _train(dtype, mode, steps=13):
    """adagrad_window (a window of 4, so the slots wrap around) over three parameters;
    the parameters after ``steps`` steps, their windows, and the compiled graph."""
    rng = np.random.default_rng(0)
    params = [pytensor.shared(rng.normal(size=s).astype(dtype), name=f"W{i}")
              for i, s in enumerate(SHAPES)]
    grads = [pt.tensor(f"g{i}", dtype=dtype, shape=(None,) * len(s))
             for i, s in enumerate(SHAPES)]
    updates = symopt.adagrad_window(grads, params, 0.1, n_win=4)
    f = pytensor.function(grads, [], updates=updates, mode=mode)
    for _ in range(steps):
        f(*[rng.normal(size=s).astype(dtype) for s in SHAPES])
    windows = [v.get_value() for k, v in symopt.get_state(updates).items()
               if k.endswith(".window")]
    return [p.get_value() for p in params], windows, f.maker.fgraph


def _window_nodes(fgraph):
    return [n for n in fgraph.apply_nodes if isinstance(n.op, WindowSum)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_c_vm_gets_one_in_place_pass_and_pytensors_result_bit_for_bit(dtype):
    params, windows, fgraph = _train(dtype, get_mode("CVM"))
    nodes = _window_nodes(fgraph)
    assert len(nodes) == 3 and all(n.op.inplace and n.op.square for n in nodes)
    assert not [n for n in fgraph.apply_nodes if "SetSubtensor" in str(n.op)]
    plain_params, plain_windows, plain = _train(dtype, get_mode("CVM").excluding("symopt_fusion"))
    assert not _window_nodes(plain)
    for a, b in zip(params + windows, plain_params + plain_windows, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not PYTENSOR_3, reason="Numba is PyTensor 3's default backend")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numba_sums_the_window_as_the_c_backend_does(dtype):
    """PyTensor's Numba sum may reassociate (fastmath); WindowSum's does not, so in
    float64 Numba's parameters are now the C result's bit for bit. In float32 the
    parameter's loop itself rounds differently (float32 constants): within an ulp."""
    params, windows, fgraph = _train(dtype, get_mode("NUMBA"))
    assert len(_window_nodes(fgraph)) == 3
    c_params, c_windows, _ = _train(dtype, get_mode("CVM").excluding("symopt_fusion"))
    for a, b in zip(windows, c_windows, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(params, c_params, strict=True):
        assert a.dtype == np.dtype(dtype)
        if dtype == "float64":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=2e-7, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS[:1] + BACKENDS[2:])
def test_a_gradient_of_the_wrong_shape_leaves_the_window_as_it_was(backend):
    W = pytensor.shared(np.ones((4, 3)), name="W")
    g = pt.matrix("g")
    updates = symopt.adagrad_window([g], [W], n_win=3)
    f = pytensor.function([g], [], updates=updates, mode=backend)
    assert _window_nodes(f.maker.fgraph)
    f(np.ones((4, 3)))
    window = symopt.get_state(updates)["W.window"]
    before = window.get_value().copy()
    with pytest.raises(ValueError, match="gradient does not have its parameter's shape"):
        f(np.ones((5, 3)))
    np.testing.assert_array_equal(window.get_value(), before)
    np.testing.assert_array_equal(W.get_value()[0], W.get_value()[1])


def test_jax_keeps_the_plain_graph():
    pytest.importorskip("jax")
    W = pytensor.shared(np.ones(3), name="W")
    g = pt.vector("g")
    f = pytensor.function([g], [], updates=symopt.adagrad_window([g], [W]), mode="JAX")
    assert not _window_nodes(f.maker.fgraph)
    f(np.ones(3))
    np.testing.assert_allclose(W.get_value(), 1 - 1e-3 / np.sqrt(1.1))
