"""The fused multi-tensor path (:mod:`symopt.fused`) against the per-tensor path.

Both paths run the same rewritten scalar graph, so on PyTensor's C backend they agree
bit for bit in float64 (to rounding for a parameter with a broadcastable dimension, see
``BROADCASTABLE``); in float32 to rounding, the fused loop computing in float32 where
PyTensor's own C loops compute in double. Numba's default ``fastmath`` flags let LLVM
contract and reassociate differently in two differently shaped loops, so there they
agree to rounding (rtol 1e-12 in float64) and bit for bit with ``numba__fastmath=False``.
The trajectories against the NumPy references are in ``test_trajectories.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytensor
import pytensor.scalar as pscalar
import pytensor.tensor as pt
import pytest

import symopt
from symopt.fused import CHUNK, FusedUpdate, NotFusable
from symopt.lab.rulebook import ROWS

from .toys import ROUNDING_ONLY

SHAPES = [(3, 4), (4,), (2, 2, 2), (5,)]
# a broadcastable dimension: PyTensor's own loop for it is shaped differently, and gcc
# contracts a * b + c into a fused multiply-add in one loop and not in the other
BROADCASTABLE = SHAPES + [(1, 3)]
STEPS = 10

# every elementwise rule, with the hyperparameters of its row that exercise the most
# branches (a row without them is a rule the fused path refuses, tested below)
RULE_CASES = {name: row.fused for name, row in ROWS.items() if row.fused is not None}
NOT_FUSABLE = sorted(name for name, row in ROWS.items() if row.fused is None)


# PyTensor 2's default backend is C; the Numba comparisons (slow to compile there) run
# on PyTensor 3, whose default backend Numba is.
numba_default = pytest.mark.skipif(int(pytensor.__version__.split(".")[0]) < 3,
                                   reason="Numba is the default backend from PyTensor 3")


#: rules per compiled function: Numba's memory and time grow with a function's graph (the
#: per-tensor path of 20 rules on 4 tensors each took about 10 GB in one function)
RULES_PER_FUNCTION = 6


def _run_all_rules(fuse, dtype, mode, shapes=SHAPES, steps=STEPS):
    """Every rule on its own copy of SHAPES, gradients as inputs, a few rules per compiled
    function; the compiled functions are returned third, for their graphs."""
    rng = np.random.default_rng(0)
    groups, params = [], {}
    for k, (name, kwargs) in enumerate(RULE_CASES.items()):
        if k % RULES_PER_FUNCTION == 0:
            groups.append(([], []))
        inputs, updates = groups[-1]
        ps = [pytensor.shared(rng.normal(size=s).astype(dtype), name=f"{name}{i}")
              for i, s in enumerate(shapes)]
        gs = [pt.tensor(f"g_{name}{i}", dtype=dtype, shape=s) for i, s in enumerate(shapes)]
        updates += symopt.RULES[name](gs, ps, **kwargs, fuse=fuse)
        inputs += gs
        params[name] = ps
    steps_fns = [pytensor.function(inputs, [], updates=updates, mode=mode)
                 for inputs, updates in groups]
    rng = np.random.default_rng(1)
    for _ in range(steps):
        for (inputs, _), step in zip(groups, steps_fns):
            step(*[rng.normal(size=x.type.shape).astype(dtype) for x in inputs])
    state = {k: v.get_value() for inputs, updates in groups
             for k, v in symopt.get_state(updates).items()}
    return {n: [p.get_value() for p in ps] for n, ps in params.items()}, state, steps_fns


def state_tag_rule(key):
    """The rule a state key of :func:`_run_all_rules` belongs to (``yogi0.m``: yogi)."""
    owner = key.rsplit(".", 1)[0]
    return owner.rstrip("0123456789")


def _fused_nodes(functions):
    return [n for f in functions for n in f.maker.fgraph.toposort()
            if isinstance(n.op, FusedUpdate)]


# ROUNDING_ONLY (tests/core/toys.py): rules that agree with the per-tensor loop to rounding


def _assert_same(a, b, rtol=None, atol=0.0):
    params_a, state_a = a[:2]
    params_b, state_b = b[:2]
    assert sorted(state_a) == sorted(state_b)
    for name in params_a:
        for i, (x, y) in enumerate(zip(params_a[name], params_b[name], strict=True)):
            assert x.dtype == y.dtype and x.shape == y.shape
            if rtol is None and name in ROUNDING_ONLY:
                np.testing.assert_allclose(x, y, rtol=1e-13, err_msg=f"{name} param {i}")
            elif rtol is None:
                np.testing.assert_array_equal(x, y, err_msg=f"{name} param {i}")
            else:
                np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{name} param {i}")
    for key in state_a:
        if rtol is None and state_tag_rule(key) in ROUNDING_ONLY:
            np.testing.assert_allclose(state_a[key], state_b[key], rtol=1e-13, atol=1e-300,
                                       err_msg=key)
        elif rtol is None:
            np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)
        else:
            np.testing.assert_allclose(state_a[key], state_b[key], rtol=rtol, atol=atol or 1e-300,
                                       err_msg=key)


def test_c_backend_bit_for_bit():
    fused = _run_all_rules(True, "float64", "CVM")
    per_tensor = _run_all_rules(False, "float64", "CVM")
    _assert_same(fused, per_tensor)
    nodes = _fused_nodes(fused[2])
    assert len(nodes) == len(RULE_CASES) and all(n.op.inplace for n in nodes)


def _c_loop(node):
    """The C function that loops over one tensor's elements."""
    return node.op.c_support_code_apply(node, "node")


def test_c_backend_float32_in_float32():
    """PyTensor's C loops print a float32 constant as a double literal (``(0.999) * x``),
    so they compute in double and round back; the fused loop computes in float32, as
    the graph says (and 1.5-4x faster: benchmarks/README.md). The two agree to rounding."""
    fused = _run_all_rules(True, "float32", "CVM")
    _assert_same(fused, _run_all_rules(False, "float32", "CVM"), rtol=1e-5, atol=1e-7)
    nodes = _fused_nodes(fused[2])
    assert len(nodes) == len(RULE_CASES)
    # how PyTensor prints a float constant: (0.999), (1e-08); integers, (0), are exact
    decimal = re.compile(r"\(-?\d+(\.\d*(e[-+]?\d+)?|e[-+]?\d+)\)")
    for node in nodes:
        code = _c_loop(node)
        body = code[code.index("for (npy_intp j"):]
        assert not decimal.search(body), (node.op.scalar_op, decimal.search(body))
        constants = re.findall(r"const npy_float32 node_k\d+ = (\S+);", code)
        assert constants and all(c.startswith(("0x", "-0x")) and c.endswith("f") for c in constants)


def test_c_literal_is_exact():
    from symopt.fused.c_code import c_literal as _c_literal

    for value in [0.999, 1e-8, -0.001, 2.0, 0.1 + 0.2]:
        for dtype in ["float32", "float64"]:
            c = pscalar.constant(np.asarray(value, dtype=dtype))
            literal = _c_literal(c)
            assert literal.endswith("f") == (dtype == "float32")
            assert np.asarray(float.fromhex(literal.rstrip("f")), dtype=dtype) == c.data
    assert _c_literal(pscalar.constant(np.float32(np.inf))) == "INFINITY"
    assert _c_literal(pscalar.constant(np.float64(-np.inf))) == "-INFINITY"
    assert _c_literal(pscalar.constant(np.float64(np.nan))) == "NAN"


def test_c_backend_to_rounding_with_a_broadcastable_dimension():
    _assert_same(_run_all_rules(True, "float64", "CVM", BROADCASTABLE),
                 _run_all_rules(False, "float64", "CVM", BROADCASTABLE), rtol=1e-13)


@numba_default
def test_numba_backend_bit_for_bit_without_fastmath():
    pytest.importorskip("numba")
    with pytensor.config.change_flags(numba__fastmath=False):
        _assert_same(_run_all_rules(True, "float64", "NUMBA"),
                     _run_all_rules(False, "float64", "NUMBA"))


@numba_default
def test_numba_backend_to_rounding_with_fastmath():
    pytest.importorskip("numba")
    _assert_same(_run_all_rules(True, "float64", "NUMBA"),
                 _run_all_rules(False, "float64", "NUMBA"), rtol=1e-12)


def _many(k, dtype="float64", size=3, name="w"):
    rng = np.random.default_rng(k)
    return [pytensor.shared(rng.normal(size=(size,)).astype(dtype), name=f"{name}{i}")
            for i in range(k)]


def _loss(params):
    return sum(((p - 0.5 * i) ** 2).sum() * (1 + i % 3) for i, p in enumerate(params))


def test_one_node_per_chunk_and_state_in_flat_buffers():
    params = _many(CHUNK + 4)
    updates = symopt.adam(_loss(params), params, fuse=True)
    step = pytensor.function([], [], updates=updates, mode="CVM")
    nodes = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, FusedUpdate)]
    assert [n.op.n_tensors for n in nodes] == [CHUNK, 4]
    assert [n.op.offset for n in nodes] == [0, 3 * CHUNK]
    buffers = [v for v, _ in updates if v.name in ("fused_float64.m", "fused_float64.v")]
    assert [b.get_value().shape for b in buffers] == [(3 * (CHUNK + 4),)] * 2
    # the checkpoint keys are the per-tensor path's
    assert list(symopt.get_state(updates)) == (
        [f"w{i}.m" for i in range(CHUNK + 4)] + [f"w{i}.v" for i in range(CHUNK + 4)]
        + ["adam.t"])
    for _ in range(3):
        step()
    state = symopt.get_state(updates)
    flat_m = buffers[0].get_value()
    np.testing.assert_array_equal(state["w5.m"].get_value(), flat_m[15:18])
    assert np.abs(flat_m).min() > 0


@pytest.mark.parametrize("save_fused", [True, False], ids=["fused-to-per-tensor",
                                                          "per-tensor-to-fused"])
def test_a_checkpoint_moves_between_the_paths(tmp_path, save_fused):
    def build(fuse):
        params = _many(10)
        updates = symopt.rmsprop(_loss(params), params, 0.01, momentum=0.9, fuse=fuse)
        return params, updates, pytensor.function([], [], updates=updates, mode="CVM")

    params_a, updates_a, step_a = build(save_fused)
    for _ in range(4):
        step_a()
    symopt.save_state(updates_a, tmp_path / "state.npz")
    for _ in range(4):
        step_a()

    params_b, updates_b, step_b = build(not save_fused)
    symopt.load_state(updates_b, tmp_path / "state.npz")
    for _ in range(4):
        step_b()
    # to rounding: the per-tensor path fuses each gradient's arithmetic into its update
    for a, b in zip(params_a, params_b, strict=True):
        np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-13)
    state_a, state_b = symopt.get_state(updates_a), symopt.get_state(updates_b)
    assert list(state_a) == list(state_b)
    for key in state_a:
        np.testing.assert_allclose(state_a[key].get_value(), state_b[key].get_value(),
                                   rtol=1e-13, err_msg=key)


def test_a_parameter_that_is_its_own_gradient_is_not_overwritten_early():
    """loss = sum(p^2)/2 has gradient p: the update cannot run in place on p."""
    modes = ("CVM", "NUMBA") if int(pytensor.__version__.split(".")[0]) >= 3 else ("CVM",)
    for mode in modes:
        results = []
        for fuse in (True, False):
            params = _many(3)
            loss = sum((p ** 2).sum() / 2 for p in params)
            step = pytensor.function([], loss, updates=symopt.momentum(loss, params, 0.1,
                                                                       fuse=fuse), mode=mode)
            results.append([float(step()) for _ in range(5)] + [params[0].get_value()])
        np.testing.assert_allclose(results[0][-1], results[1][-1], rtol=1e-14)
        assert results[0][:5] == pytest.approx(results[1][:5], rel=1e-14)


def test_non_contiguous_gradients_and_exact_float32_types():
    with pytensor.config.change_flags(floatX="float32"):
        w = pytensor.shared(np.ones((3, 2), dtype="float32"), name="W")
        b = pytensor.shared(np.zeros(2, dtype="float32"), name="b")
        x = pt.matrix("x", dtype="float32")
        loss = ((x.T @ w + b) ** 2).sum()  # gradients that are transposes, not contiguous
        updates = symopt.adam(loss, [w, b], 0.01, fuse=True)
        for var, expr in updates:
            assert var.type == expr.type, var.name
        x_value = np.arange(6, dtype="float32").reshape(3, 2)
        expected = []
        for fuse in (False, True):
            w.set_value(np.ones((3, 2), dtype="float32"))
            b.set_value(np.zeros(2, dtype="float32"))
            ups = symopt.adam(loss, [w, b], 0.01, fuse=fuse)
            step = pytensor.function([x], loss, updates=ups, mode="CVM")
            expected.append([float(step(x_value)) for _ in range(5)] + [w.get_value()])
        np.testing.assert_array_equal(expected[0][-1], expected[1][-1])
        assert expected[0][:5] == expected[1][:5]


def test_each_dtype_gets_its_own_node():
    params = _many(3, "float64") + _many(2, "float32", name="f")
    updates = symopt.adagrad(_loss(params), params, fuse=True)
    step = pytensor.function([], [], updates=updates, mode="CVM")
    nodes = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, FusedUpdate)]
    assert sorted(n.inputs[0].dtype for n in nodes) == ["float32", "float64"]
    for var, expr in updates:
        assert var.type == expr.type


def test_mixed_dtypes_share_one_step_counter_like_the_per_tensor_path():
    def state_keys(fuse):
        params = _many(3, "float64") + _many(2, "float32", name="f")
        return sorted(symopt.get_state(symopt.adam(_loss(params), params, fuse=fuse)))

    assert state_keys(True) == state_keys(False)
    assert state_keys(True).count("adam.t") == 1


def test_the_rules_that_look_across_elements_say_so():
    """The rules whose step needs more than each element (a tensor's norm, a factored
    moment, a matrix function, a global inner product, a window of past values, the loss
    itself)."""
    assert NOT_FUSABLE == ["adafactor", "adagrad_window", "adahessian", "lamb", "lars", "muon",
                           "novograd", "prodigy", "sam", "shampoo", "soap", "sophia"]


@pytest.mark.parametrize("name", NOT_FUSABLE)
def test_a_rule_across_elements_is_refused_and_auto_keeps_it_per_tensor(name):
    """fuse=True raises NotFusable, before building anything; "auto" (which would fuse
    this many tensors) takes the per-tensor path, which computes what fuse=False does."""
    kwargs = ROWS[name].cases[0]
    assert not symopt.RULES[name](**kwargs).elementwise
    params = _many(symopt.fused.FUSE_MIN_TENSORS) + [
        pytensor.shared(np.linspace(-1, 1, 6).reshape(3, 2), name="M")]
    loss = _loss(params)
    with pytest.raises(NotFusable, match="is not elementwise: it looks across elements"):
        symopt.RULES[name](loss, params, **kwargs, fuse=True)
    with pytest.raises(NotFusable, match="is not elementwise"):
        symopt.RULES[name](**kwargs, fuse=True)(loss, params)
    results = []
    for fuse in ("auto", False):
        for p, value in zip(params, _many(len(params) - 1)):
            p.set_value(value.get_value())
        params[-1].set_value(np.linspace(-1, 1, 6).reshape(3, 2))
        updates = symopt.RULES[name](loss, params, **kwargs, fuse=fuse)
        assert not _fused(updates)
        step = pytensor.function([], [], updates=updates, mode="CVM")
        for _ in range(3):
            step()
        results.append([p.get_value() for p in params])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def _flat_buffers(step):
    """The fused path's nodes (state in flat buffers) of a compiled function; the C
    backends' rewrite puts FusedUpdate nodes over the per-tensor state too."""
    return [n for n in step.maker.fgraph.toposort()
            if isinstance(n.op, FusedUpdate) and n.op.shapes is not None]


def test_a_rule_whose_state_is_not_parameter_shaped_is_not_fused():
    """adagrad_window keeps a window per element: fuse=True refuses it before building
    anything, "auto" keeps the per-tensor path, which follows the reference."""
    name = "adagrad_window"
    params = _many(10)
    with pytest.raises(NotFusable, match="is not elementwise"):
        symopt.RULES[name](_loss(params), params, learning_rate=0.1, fuse=True)
    assert not symopt.RULES[name](learning_rate=0.1).elementwise
    updates = symopt.RULES[name](_loss(params), params, learning_rate=0.1, fuse="auto")
    step = pytensor.function([], [], updates=updates, mode="CVM")
    assert not _flat_buffers(step)
    reference = ROWS[name].reference([p.get_value() for p in params], learning_rate=0.1)
    expected = [p.get_value() for p in params]
    for _ in range(3):
        step()
        grads = [2 * (x - 0.5 * i) * (1 + i % 3) for i, x in enumerate(expected)]
        expected = reference.step(expected, grads)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.get_value(), e, rtol=1e-12)


def test_a_transform_across_elements_is_not_fused():
    params = _many(10)
    rule = symopt.chain(symopt.clip_by_global_norm(1.0), symopt.sgd(learning_rate=0.1))
    with pytest.raises(NotFusable, match="is not elementwise: it looks across elements"):
        symopt.apply(rule, _loss(params), params, fuse=True)
    # "auto" falls back to the per-tensor path, which clips by the global norm
    updates = symopt.apply(rule, _loss(params), params, fuse="auto")
    step = pytensor.function([], [], updates=updates, mode="CVM")
    assert not _flat_buffers(step)
    before = np.concatenate([p.get_value() for p in params])
    step()
    moved = np.concatenate([p.get_value() for p in params]) - before
    assert np.linalg.norm(moved) == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize("default_mode", ["NUMBA", "CVM", "C", "FAST_COMPILE"])
def test_auto_fuses_many_tensors_and_any_on_c(default_mode):
    """With Numba (or Python) the default, "auto" fuses 8 tensors or more; with a C
    backend the default, whose fused loop is the fast one, any number."""
    few, many = _many(3), _many(symopt.fused.FUSE_MIN_TENSORS)
    on_c = default_mode in ("CVM", "C")
    with pytensor.config.change_flags(mode=default_mode):
        assert symopt.fused.default_backend_is_c() == on_c
        for params, fused in ((few, on_c), (many, True)):
            updates = symopt.adam(_loss(params), params, fuse="auto")
            kinds = {type(expr.owner.op) for _, expr in updates[:len(params)]}
            assert (FusedUpdate in kinds) == fused


def test_bad_fuse_value():
    params = _many(2)
    with pytest.raises(ValueError, match="fuse must be True, False or 'auto'"):
        symopt.adam(_loss(params), params, fuse="yes")


def _fused(updates):
    return any(isinstance(expr.owner.op, FusedUpdate) for _, expr in updates
               if expr.owner is not None)


def test_configured_rule_fuses_too():
    params = _many(4)
    assert _fused(symopt.adam(learning_rate=0.01)(_loss(params), params, fuse=True))
    # configured with fuse=True (what pm.fit's obj_optimizer gets): fused when called
    configured = symopt.adam(learning_rate=0.01, fuse=True)
    assert configured.fuse is True
    assert _fused(configured(_loss(params), params))
    assert not _fused(configured(_loss(params), params, fuse=False))
    assert not _fused(symopt.adam(learning_rate=0.01)(_loss(params), params))


@pytest.mark.parametrize("mode", [pytest.param("NUMBA", marks=numba_default), "CVM"])
def test_large_tensors_use_all_threads(monkeypatch, mode):
    """Above PARALLEL_MIN elements the loop runs on Numba's threads (a prange loop) or
    OpenMP's (C); same numbers."""
    results = []
    with pytensor.config.change_flags(numba__fastmath=False):
        for parallel_min in (64, 10**9):
            monkeypatch.setattr(symopt.fused.op, "PARALLEL_MIN", parallel_min)
            params = _many(3, size=100)
            updates = symopt.adam(_loss(params), params, 0.01, fuse=True)
            step = pytensor.function([], [], updates=updates, mode=mode)
            ops = [n.op for n in step.maker.fgraph.toposort() if isinstance(n.op, FusedUpdate)]
            assert ops and all(op.parallel == (parallel_min == 64) for op in ops)
            openmp = symopt.fused.c_code.openmp()
            assert all(("-fopenmp" in op.c_compile_args()) == (op.parallel and openmp)
                       for op in ops)
            for _ in range(5):
                step()
            results.append([p.get_value() for p in params])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_openmp_the_c_loop_is_serial(monkeypatch):
    monkeypatch.setattr(symopt.fused.c_code, "openmp", lambda: False)
    monkeypatch.setattr(symopt.fused.op, "PARALLEL_MIN", 64)
    params = _many(2, size=100)
    updates = symopt.adam(_loss(params), params, 0.01, fuse=True)
    node = next(expr.owner for _, expr in updates
                if expr.owner is not None and isinstance(expr.owner.op, FusedUpdate))
    assert node.op.parallel
    assert "-fopenmp" not in node.op.c_compile_args()
    assert "omp" not in node.op.c_support_code_apply(node, "node")


@pytest.mark.parametrize("mode", [pytest.param("NUMBA", marks=numba_default), "CVM"])
def test_one_stateless_tensor(mode):
    """A node with one output (sgd on one tensor) returns the array, not a 1-tuple."""
    p0 = np.linspace(-1, 1, 7).astype("float32")
    g0 = np.linspace(2, 3, 7).astype("float32")
    p = pytensor.shared(p0.copy(), name="p")
    g = pytensor.shared(g0, name="g")
    step = pytensor.function([], [], updates=symopt.sgd([g], [p], 0.25, fuse=True), mode=mode)
    for _ in range(3):
        step()
    value = p.get_value()
    assert isinstance(value, np.ndarray) and value.dtype == np.float32
    expected = p0
    for _ in range(3):
        expected = expected - np.float32(0.25) * g0
    np.testing.assert_array_equal(value, expected)


# --------------------------------------------------------------------------------------
# Memory safety: every call checks the shapes the buffers were laid out for
# --------------------------------------------------------------------------------------

# a Python-only mode: FusedUpdate.perform and FusedCheck.perform
PY_MODE = pytensor.compile.mode.Mode(linker="py", optimizer="fast_run")
CHECK_MODES = [pytest.param("NUMBA", marks=numba_default), "CVM", pytest.param(PY_MODE, id="py")]


def _adam_on_inputs(mode):
    """Adam, fused, on W (3, 2) and b (2,) with gradients as inputs; one step taken."""
    W = pytensor.shared(np.ones((3, 2)), name="W")
    b = pytensor.shared(np.full(2, 0.5), name="b")
    gW, gb = pt.dmatrix("gW"), pt.dvector("gb")
    updates = symopt.adam([gW, gb], [W, b], 0.1, fuse=True)
    step = pytensor.function([gW, gb], [], updates=updates, mode=mode)
    step(np.ones((3, 2)), np.ones(2))
    return W, b, updates, step


def _values(updates):
    return {k: np.copy(v.get_value()) for k, v in
            symopt.get_state(updates, include_params=True).items()}


def _assert_unchanged(updates, before):
    after = _values(updates)
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


@pytest.mark.parametrize("mode", CHECK_MODES)
def test_wrong_gradient_shapes_are_refused_and_change_nothing(mode):
    """A gradient too short, too long, or of another shape with the same number of
    dimensions: each read or wrote outside the buffers before; now each is refused before
    anything is written, the step counter included."""
    W, b, updates, step = _adam_on_inputs(mode)
    before = _values(updates)
    assert int(before["adam.t"]) == 1
    cases = [
        ((np.ones((3, 2)), np.ones(1)), r"the gradient of parameter 'b' has shape \(1,\); "
                                        r"a gradient must have its parameter's shape, \(2,\)"),
        ((np.ones((3, 2)), np.ones(4)), r"the gradient of parameter 'b' has shape \(4,\)"),
        ((np.ones((1, 2)), np.ones(2)), r"the gradient of parameter 'W' has shape \(1, 2\); "
                                        r"a gradient must have its parameter's shape, \(3, 2\)"),
        ((np.ones((4, 2)), np.ones(2)), r"the gradient of parameter 'W' has shape \(4, 2\)"),
    ]
    for grads, message in cases:
        with pytest.raises(ValueError, match=message):
            step(*grads)
        _assert_unchanged(updates, before)
    step(np.ones((3, 2)), np.ones(2))  # and the function still works
    assert int(symopt.get_state(updates)["adam.t"].get_value()) == 2


@pytest.mark.parametrize("mode", CHECK_MODES)
def test_a_parameter_given_a_new_shape_is_refused(mode):
    """W.set_value() with a larger array wrote W over b's slice of the flat buffers and
    past their end (exit 139); a smaller one left elements of the buffers stale."""
    W, b, updates, step = _adam_on_inputs(mode)
    for value in (np.ones((30, 2)), np.ones((2, 2))):
        W.set_value(value)
        before = _values(updates)
        with pytest.raises(ValueError, match=rf"parameter 'W' has shape \({value.shape[0]}, 2\), "
                                             r"but its fused update was built for shape \(3, 2\) "
                                             r"\(its slot in the flat state buffers\)"):
            step(np.ones(value.shape), np.ones(2))
        _assert_unchanged(updates, before)


@pytest.mark.parametrize("mode", CHECK_MODES)
def test_a_state_buffer_of_another_length_is_refused(mode):
    W, b, updates, step = _adam_on_inputs(mode)
    [buffer] = [v for v, _ in updates if v.name == "fused_float64.m"]
    buffer.set_value(np.zeros(5))
    before = _values({v: e for v, e in updates if v is not buffer}.items())
    with pytest.raises(ValueError, match=r"state buffer 'fused_float64.m' has shape \(5,\), but "
                                         r"its fused update was built for shape \(8,\)"):
        step(np.ones((3, 2)), np.ones(2))
    _assert_unchanged({v: e for v, e in updates if v is not buffer}.items(), before)


@pytest.mark.parametrize("mode", [pytest.param("NUMBA", marks=numba_default), "CVM"])
def test_a_wrong_shape_in_a_later_chunk_changes_no_earlier_tensor(mode):
    """Nodes of 16 tensors run one after the other; the group's check runs before all."""
    params = _many(CHUNK + 2)
    grads = [pt.dvector(f"g{i}") for i in range(len(params))]
    updates = symopt.momentum(grads, params, 0.1, fuse=True)
    step = pytensor.function(grads, [], updates=updates, mode=mode)
    nodes = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, FusedUpdate)]
    assert len(nodes) == 2
    step(*[np.ones(3)] * len(params))
    before = _values(updates)
    with pytest.raises(ValueError, match=rf"the gradient of parameter 'w{CHUNK + 1}' has "
                                         r"shape \(2,\)"):
        step(*[np.ones(3)] * (len(params) - 1), np.ones(2))
    _assert_unchanged(updates, before)


@pytest.mark.parametrize("mode", CHECK_MODES)
def test_each_node_checks_its_own_tensors_too(mode):
    """The node alone, without the group's check (as someone building it by hand would
    use it), refuses a wrong gradient too: in its C code, its Numba code and perform."""
    W = pytensor.shared(np.ones((3, 2)), name="W")
    g = pt.dmatrix("g")
    updates = symopt.sgd([g], [W], 0.1, fuse=True)
    [node] = [e.owner for _, e in updates if e.owner is not None
              and isinstance(e.owner.op, FusedUpdate)]
    alone = node.op(*node.inputs[:-1], pt.constant(np.int8(0)))
    step = pytensor.function([g], alone, mode=mode)
    assert not any(isinstance(n.op, symopt.fused.FusedCheck)
                   for n in step.maker.fgraph.toposort())
    np.testing.assert_array_equal(step(np.ones((3, 2))), np.full((3, 2), 0.9))
    with pytest.raises(ValueError, match=r"the gradient of parameter 'W' has shape \(2, 2\)"):
        step(np.ones((2, 2)))
    np.testing.assert_array_equal(W.get_value(), np.ones((3, 2)))


def test_a_name_that_c_must_escape():
    name = 'W"%s\\ é'  # a name C and Python must escape
    W = pytensor.shared(np.ones((3, 2)), name=name)
    g = pt.dmatrix("g")
    updates = symopt.sgd([g], [W], 0.1, fuse=True)
    step = pytensor.function([g], [], updates=updates, mode="CVM")
    with pytest.raises(ValueError, match=re.escape(f"parameter {name!r} has shape (2, 2)")):
        step(np.ones((2, 2)))


# --------------------------------------------------------------------------------------
# 0-d parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [pytest.param("NUMBA", marks=numba_default), "CVM"])
def test_zero_d_parameters_on_the_fused_path(mode):
    """A 0-d parameter came back with shape (1,) from the fused Numba loop, and the next
    step failed; a lone 0-d parameter (a group of one element) could not be fused at all.
    Every rule, fuse=True on one 0-d parameter and "auto" on eight (which fuses them on
    either backend), in one compiled function, against the NumPy transcriptions."""
    n = symopt.fused.FUSE_MIN_TENSORS
    inits = [0.5 + 0.25 * i for i in range(n)]
    scales = [1.0 + i for i in range(n)]

    def loss(ps):  # sum of (1 + i) (p_i - 0.1 i)^2: its gradient is 2 (1 + i) (p_i - 0.1 i)
        return sum(c * (p - 0.1 * i) ** 2 for i, (c, p) in enumerate(zip(scales, ps)))

    def grad(values):
        return [np.asarray(2 * c * (v - 0.1 * i)) for i, (c, v) in
                enumerate(zip(scales, values))]

    runs, updates = {}, []
    for name, kwargs in RULE_CASES.items():
        rule = symopt.RULES[name]
        one = [pytensor.shared(np.float64(inits[0]), name=f"{name}_one")]
        auto = [pytensor.shared(np.float64(v), name=f"{name}_auto{i}") for i, v in
                enumerate(inits)]
        fused_one = rule(loss(one), one, **kwargs, fuse=True)
        fused_auto = rule(loss(auto), auto, **kwargs, fuse="auto")
        assert _fused(fused_one) and _fused(fused_auto)
        for var, expr in fused_one + fused_auto:
            assert var.type == expr.type, var.name
        runs[name] = (one, auto)
        updates += fused_one + fused_auto
    step = pytensor.function([], [], updates=updates, mode=mode)
    trajectories = {name: [] for name in runs}
    for _ in range(STEPS):
        step()
        for name, (one, auto) in runs.items():
            trajectories[name].append([p.get_value() for p in one + auto])
    for name, kwargs in RULE_CASES.items():
        expected_one = [np.asarray(inits[0])]
        expected_auto = [np.asarray(v) for v in inits]
        ref_one = ROWS[name].reference(expected_one, **kwargs)
        ref_auto = ROWS[name].reference(expected_auto, **kwargs)
        for k, got in enumerate(trajectories[name], 1):
            expected_one = ref_one.step(expected_one, grad(expected_one)[:1])
            expected_auto = ref_auto.step(expected_auto, grad(expected_auto))
            for i, (value, expected) in enumerate(zip(got, expected_one + expected_auto)):
                assert value.shape == () and value.dtype == np.float64, (name, k, i)
                np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-13,
                                           err_msg=f"{name}, step {k}, parameter {i}")
        assert got[0] != inits[0], name
