"""symopt.fused.concat: a join of many vectors on Numba, written a few at a time in place.

The rewritten join equals ``np.concatenate`` bit for bit for any part lengths (empty
parts too) and both float dtypes; a join the rewrite does not take keeps PyTensor's
``Join``; the other backends keep ``Join``; parts that do not fit are refused before
anything is written.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytensor.tensor.basic import Join

import symopt
from symopt.fused.concat import CHUNK, MIN_PARTS, WriteVectors

numba_default = pytest.mark.skipif(int(pytensor.__version__.split(".")[0]) < 3,
                                   reason="Numba is the default backend from PyTensor 3")


def _ops(fn):
    return [node.op for node in fn.maker.fgraph.apply_nodes]


def _join(sizes, dtype):
    parts = [pt.tensor(f"x{i}", dtype=dtype, shape=(n,)) for i, n in enumerate(sizes)]
    return parts, pt.concatenate(parts)


@numba_default
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=MIN_PARTS, max_size=2 * MIN_PARTS + 3),
       dtype=st.sampled_from(["float32", "float64"]))
def test_a_long_join_on_numba_is_written_in_chunks_and_equals_concatenate(sizes, dtype):
    parts, joined = _join(sizes, dtype)
    fn = pytensor.function(parts, joined * 2, mode="NUMBA")
    writes = [op for op in _ops(fn) if isinstance(op, WriteVectors)]
    kept = [n for n in sizes if n]  # PyTensor's own rewrites may drop the empty parts
    if writes:
        assert not any(isinstance(op, Join) for op in _ops(fn))
        assert len(writes) in (-(-len(kept) // CHUNK), -(-len(sizes) // CHUNK))
        assert all(op.inplace for op in writes)
    else:
        assert len(kept) < MIN_PARTS
    rng = np.random.default_rng(len(sizes))
    values = [rng.normal(size=n).astype(dtype) for n in sizes]
    got = fn(*values)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, 2 * np.concatenate(values))


@numba_default
def test_strided_and_mixed_layout_parts_are_written_as_concatenate():
    """Parts that are strided views (every other element) among contiguous ones: each
    part type is copied by its own compiled loop, and the result is np.concatenate's."""
    inputs = [pt.tensor(f"x{i}", dtype="float32", shape=(6,)) for i in range(MIN_PARTS + 3)]
    parts = [x[::2] if i % 3 == 0 else x for i, x in enumerate(inputs)]
    fn = pytensor.function(inputs, pt.concatenate(parts), mode="NUMBA")
    assert any(isinstance(op, WriteVectors) for op in _ops(fn))
    rng = np.random.default_rng(1)
    values = [rng.normal(size=6).astype("float32") for _ in inputs]
    expected = np.concatenate([v[::2] if i % 3 == 0 else v for i, v in enumerate(values)])
    np.testing.assert_array_equal(fn(*values), expected)


@numba_default
@pytest.mark.parametrize("case", ["short", "unknown length", "matrices"])
def test_a_join_the_rewrite_does_not_take_keeps_pytensors_join(case):
    if case == "short":
        parts, joined = _join([3] * (MIN_PARTS - 1), "float64")
    elif case == "unknown length":
        parts = [pt.vector(f"x{i}", shape=(None,)) for i in range(MIN_PARTS)]
        joined = pt.concatenate(parts)
    else:
        parts = [pt.matrix(f"x{i}", shape=(2, 2)) for i in range(MIN_PARTS)]
        joined = pt.concatenate(parts)
    fn = pytensor.function(parts, joined, mode="NUMBA")
    assert any(isinstance(op, Join) for op in _ops(fn))
    assert not any(isinstance(op, WriteVectors) for op in _ops(fn))


def test_the_c_backend_keeps_join():
    parts, joined = _join([2] * MIN_PARTS, "float64")
    fn = pytensor.function(parts, joined, mode="CVM")
    assert any(isinstance(op, Join) for op in _ops(fn))


@pytest.mark.parametrize("mode", ["NUMBA", "CVM"])
def test_parts_that_do_not_fit_are_refused_before_anything_is_written(mode):
    if mode == "NUMBA" and int(pytensor.__version__.split(".")[0]) < 3:
        pytest.skip("no Numba backend by default on PyTensor 2")
    buffer = pytensor.shared(np.zeros(5), name="buffer")
    start = pt.scalar("start", dtype="int64")
    a, b = pt.vector("a"), pt.vector("b")
    write = pytensor.function([start, a, b], [], updates=[
        (buffer, WriteVectors()(buffer, start, a, b))], mode=mode)
    write(1, np.ones(2), np.full(2, 2.0))
    np.testing.assert_array_equal(buffer.get_value(), [0, 1, 1, 2, 2])
    for bad_start, size in [(2, 2), (-1, 1), (0, 4)]:
        with pytest.raises(ValueError, match="do not fit"):
            write(bad_start, np.ones(size), np.ones(size))
        np.testing.assert_array_equal(buffer.get_value(), [0, 1, 1, 2, 2])


def test_bad_inputs_are_refused_when_the_node_is_built():
    with pytest.raises(TypeError, match="vectors of one dtype"):
        WriteVectors()(pt.vector(dtype="float32"), np.int64(0), pt.vector(dtype="float64"))
    with pytest.raises(TypeError, match="vectors of one dtype"):
        WriteVectors()(pt.vector(), np.int64(0), pt.matrix())
    with pytest.raises(TypeError, match="start must be an int64 scalar"):
        WriteVectors()(pt.vector(), pt.vector(dtype="int64"), pt.vector())


@numba_default
def test_a_flat_vector_of_many_views_trains_as_on_the_c_backend():
    """The gradient of a FlatParameters vector of 20 views, joined in chunks on Numba,
    steps Adam as PyTensor's Join does on the C VM."""
    rng = np.random.default_rng(0)
    shapes = [(3, 2), (2,), (4,), (1, 3)] * 5
    values = [rng.normal(size=s) for s in shapes]
    results = {}
    for mode in ("NUMBA", "CVM"):
        flat = symopt.FlatParameters(values)
        loss = pt.add(*[(pt.sin(v) ** 2).sum() for v in flat.views])
        step = pytensor.function([], loss, updates=symopt.adam(loss, [flat.vector], 0.05),
                                 mode=mode)
        if mode == "NUMBA":
            assert any(isinstance(op, WriteVectors) for op in _ops(step))
        losses = [float(step()) for _ in range(20)]
        results[mode] = flat.vector.get_value(), losses
    np.testing.assert_allclose(results["NUMBA"][0], results["CVM"][0], rtol=1e-12)
    assert results["NUMBA"][1][-1] < 0.5 * results["NUMBA"][1][0]
