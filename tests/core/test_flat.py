"""symopt.FlatParameters: many parameters in one shared vector, each a view of it.

Every elementwise rule on the flat vector follows its NumPy transcription on the
parameters apart (an elementwise update is the same whatever the layout); a rule that
is not elementwise is refused; the values go in and out in the shapes and structure
given, and a bad value changes nothing.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symopt
from symopt.flat import flat_layout
from symopt.lab.rulebook import ROWS

from .toys import Quadratic, step_function

STEPS = 8
RULE_CASES = {name: row.fused for name, row in ROWS.items() if row.fused is not None}
RULES_PER_FUNCTION = 6


def _elementwise(name):
    return symopt.RULES[name]().elementwise


_RUNS: dict = {}


def _trajectories(dtype):
    """Each elementwise rule on its own flat copy of the quadratic's parameters and on a
    copy kept apart, six rules a compiled function: the values after each step, by rule,
    as ``(flat, apart)``."""
    if dtype not in _RUNS:
        problem = Quadratic(seed=0, dtype=dtype)
        names = sorted(RULE_CASES)
        out = {name: [] for name in names}
        for start in range(0, len(names), RULES_PER_FUNCTION):
            group = names[start:start + RULES_PER_FUNCTION]
            runs, updates = {}, []
            for name in group:
                flat = symopt.FlatParameters(problem.initial(), name=f"theta_{name}")
                apart = problem.shared(suffix=f"_{name}")
                for params, loss in (([flat.vector], problem.loss(flat.views)),
                                     (apart, problem.loss(apart))):
                    updates += symopt.RULES[name](loss, params, **RULE_CASES[name])
                runs[name] = flat, apart
            step = step_function(updates)
            for _ in range(STEPS):
                step()
                for name, (flat, apart) in runs.items():
                    out[name].append((flat.get_values(), [p.get_value() for p in apart]))
        _RUNS[dtype] = out
    return _RUNS[dtype]


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_elementwise_rule_on_a_flat_vector_follows_the_reference(name):
    """float64, against the rule's NumPy transcription on the parameters apart."""
    problem = Quadratic(seed=0)
    trajectory = _trajectories("float64")[name]
    ref = ROWS[name].reference(problem.initial(), **RULE_CASES[name])
    expected = problem.initial()
    for k, (got, _) in enumerate(trajectory, 1):
        expected = ref.step(expected, problem.grad(expected))
        for g, e, shape in zip(got, expected, Quadratic.shapes, strict=True):
            assert g.shape == shape and g.dtype == "float64"
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-13,
                                       err_msg=f"{name}, step {k}")
    assert np.abs(trajectory[-1][0][0] - problem.initial()[0]).max() > 1e-3  # it moved


@pytest.mark.parametrize("name", sorted(RULE_CASES))
def test_elementwise_rule_on_a_flat_vector_equals_it_apart_in_float32(name):
    """float32, against the same rule on the parameters apart in the same function: the
    same arithmetic element by element, to a few units in the last place (the loops are
    shaped differently, and Numba's fastmath may contract them differently)."""
    for k, (flat, apart) in enumerate(_trajectories("float32")[name], 1):
        for f, a in zip(flat, apart, strict=True):
            assert f.dtype == a.dtype == "float32" and f.shape == a.shape
            np.testing.assert_allclose(f, a, rtol=4e-7 * k, atol=1e-7 * k,
                                       err_msg=f"{name}, step {k}")


@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_a_rule_that_is_not_elementwise_refuses_a_flat_vector(name):
    flat = symopt.FlatParameters({"W": np.ones((3, 2)), "b": np.zeros(2)})
    loss = (flat.views["W"] ** 2).sum() + (flat.views["b"] ** 2).sum()
    if name == "kfac":  # takes layers, not parameters: its own check refuses a vector
        pytest.skip("kfac takes DenseLayer records")
    if _elementwise(name):
        assert symopt.RULES[name](loss, [flat.vector])  # builds
        return
    with pytest.raises(symopt.ParamError, match=rf"params\[0\] \('theta'\) is a "
                       rf"FlatParameters vector \(2 parameters\), and {name} is not "
                       "elementwise"):
        symopt.RULES[name](loss, [flat.vector])


def test_a_chain_that_is_not_elementwise_refuses_a_flat_vector():
    flat = symopt.FlatParameters([np.ones(3)])
    rule = symopt.chain(symopt.clip_by_global_norm(1.0), symopt.scale_by_adam(),
                        symopt.scale_by_learning_rate(0.1))
    with pytest.raises(symopt.ParamError, match="is not elementwise"):
        symopt.apply(rule, flat.views[0].sum(), [flat.vector])


def test_views_have_the_shapes_names_and_static_types_given():
    flat = symopt.FlatParameters({"W": np.zeros((3, 1), "float32"), "s": np.float32(2.0),
                                  "e": np.zeros(0, "float32")}, name="net")
    assert flat.vector.type.shape == (4,) and flat.vector.dtype == "float32"
    assert [v.type.shape for v in flat.views.values()] == [(3, 1), (), (0,)]
    assert [v.name for v in flat.views.values()] == ["net[W]", "net[s]", "net[e]"]
    assert flat.keys == ("W", "s", "e") and flat.offsets == (0, 3, 4)
    assert flat_layout(flat.vector) is flat and flat_layout(flat.views["W"]) is None
    assert repr(flat) == "FlatParameters('net': 3 parameters, 4 elements, float32)"
    evaluate = pytensor.function([], list(flat.views.values()))
    W, s, e = evaluate()
    assert W.shape == (3, 1) and s.shape == () and float(s) == 2.0 and e.shape == (0,)


@settings(max_examples=40, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(0, 4), max_size=3).map(tuple), min_size=1,
                       max_size=5),
       as_dict=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
def test_values_go_in_and_out_unchanged(shapes, as_dict, dtype):
    rng = np.random.default_rng(len(shapes))
    arrays = [rng.normal(size=s).astype(dtype) for s in shapes]
    values = {f"p{i}": a for i, a in enumerate(arrays)} if as_dict else arrays
    flat = symopt.FlatParameters(values)
    got = flat.get_values()
    got = list(got.values()) if as_dict else got
    assert len(flat) == len(arrays)
    for g, a in zip(got, arrays, strict=True):
        assert g.shape == a.shape and g.dtype == a.dtype
        np.testing.assert_array_equal(g, a)
    np.testing.assert_array_equal(flat.vector.get_value(),
                                  np.concatenate([a.ravel() for a in arrays]))
    doubled = ({k: 2 * v for k, v in values.items()} if as_dict else [2 * a for a in arrays])
    flat.set_values(doubled)
    np.testing.assert_array_equal(flat.vector.get_value(),
                                  2 * np.concatenate([a.ravel() for a in arrays]))


def test_a_bad_value_in_set_values_changes_nothing():
    flat = symopt.FlatParameters({"W": np.ones((2, 2)), "b": np.ones(2)})
    before = flat.vector.get_value()
    with pytest.raises(ValueError, match=r"values\['b'\] has shape \(3,\), the parameter \(2,\)"):
        flat.set_values({"W": np.zeros((2, 2)), "b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"keys \['W', 'b'\], got \['W'\]"):
        flat.set_values({"W": np.zeros((2, 2))})
    np.testing.assert_array_equal(flat.vector.get_value(), before)


@pytest.mark.parametrize("values, kwargs, error, message", [
    ([], {}, ValueError, "values is empty"),
    (np.ones(3), {}, TypeError, "values must be a list or a dict of arrays, got ndarray"),
    ([np.ones(2), np.ones(2, "float32")], {}, symopt.ParamError,
     r"different dtypes \(0: float64, 1: float32\).*pass dtype="),
    ([np.ones(2, int)], {}, symopt.ParamError, "dtype int64 is not one the rules update"),
    ([np.ones(2)], {"dtype": "float16"}, symopt.ParamError, "dtype float16"),
    ([np.array(["a"])], {}, TypeError, r"values\[0\] has dtype <U1, not a number"),
    ([pytensor.shared(np.ones(2))], {}, TypeError, r"values\[0\] is a shared variable"),
])
def test_bad_values_are_refused_with_a_clear_error(values, kwargs, error, message):
    with pytest.raises(error, match=message):
        symopt.FlatParameters(values, **kwargs)


def test_integer_values_take_the_dtype_given():
    flat = symopt.FlatParameters([np.arange(3), np.ones((1, 2), int)], dtype="float32")
    assert flat.vector.dtype == "float32"
    np.testing.assert_array_equal(flat.vector.get_value(), [0, 1, 2, 1, 1])


@pytest.mark.parametrize("mode", ["NUMBA", "CVM", "JAX"])
def test_the_flat_update_is_one_vector_in_place(mode):
    """A model of many views compiles to updates of one vector: three for Adam. (On JAX
    with 64-bit types, as under PyTensor's default floatX, a float32 mean comes back
    float64 from PyTensor's JAX code, separate parameters or flat: README, Known limits.)"""
    if mode == "JAX":
        jax = pytest.importorskip("jax")
        with pytensor.config.change_flags(floatX="float32"), jax.enable_x64(False):
            return _train_flat_mlp(mode)
    _train_flat_mlp(mode)


def _train_flat_mlp(mode):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (3, 2), (2,)]
    flat = symopt.FlatParameters([rng.normal(size=s).astype("float32") for s in shapes])
    x = pt.matrix("x", dtype="float32")
    h = pt.tanh(x @ flat.views[0] + flat.views[1])
    loss = ((h @ flat.views[2] + flat.views[3]) ** 2).mean()
    updates = symopt.adam(loss, [flat.vector], learning_rate=0.01)
    assert len(updates) == 4  # the vector, m, v and the step counter
    train = pytensor.function([x], loss, updates=updates, mode=mode)
    xs = rng.normal(size=(16, 4)).astype("float32")
    losses = [float(train(xs)) for _ in range(200)]
    assert losses[-1] < 0.1 * losses[0]
    assert flat.vector.get_value().dtype == "float32"
