"""Properties every rule keeps on any parameters, checked with Hypothesis.

Over the rules (each with the hyperparameters of its rulebook row's fused case), float32
and float64, parameters of every kind of shape at once (0-d, a vector of one element, of
none, of several, a matrix, a matrix with a broadcastable dimension, one with no rows),
the per-tensor and the fused paths, and the Numba and C backends:

- every update has exactly its shared variable's type;
- on finite gradients (of any scale, with exact zeros) nothing becomes NaN or infinite,
  and every parameter keeps its shape and dtype;
- the fused path agrees with the per-tensor path (float64: rtol 1e-12, Numba's fastmath;
  float32: rtol 1e-5, the fused loop computing float32 in float32 where PyTensor's C
  loops compute it in double; and an absolute tolerance in proportion to the gradients'
  scale, for values that cancel to near 0);
- a checkpoint saved mid-run and loaded back resumes bit for bit.

Compiling is what costs: one compiled function per (backend, dtype) holds every rule on
both paths (on Numba three of them: all of them take 20 GB to compile there), fed the
same gradients, and every example reuses it (the values are reset);
the examples are derandomized, so a warm run hits PyTensor's caches.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symopt
from symopt.fused import FusedUpdate
from symopt.lab.rulebook import ROWS

from .test_fused import numba_default

#: the elementwise rules, which take every shape and both paths (Shampoo's and SOAP's
#: factors, adagrad_window's window: their own tests)
RULE_NAMES = sorted(name for name in symopt.RULES if ROWS[name].fused is not None)
#: On Numba, a function of every rule on both paths (208 tensors) takes 20 GB to compile:
#: three rules there, a step counter, a sign and a decoupled weight decay between them
NUMBA_RULES = ["adam", "lion", "rprop"]
DTYPES = ("float32", "float64")

#: (shape, static shape) of the parameters every compiled case updates together: a
#: static shape of (1, 3) makes the first dimension broadcastable
SHAPES = [((), ()), ((1,), None), ((5,), None), ((0,), None), ((3, 4), None),
          ((1, 3), (1, 3)), ((0, 2), None), ((1, 1), None)]

#: rtol, and atol per unit of the gradients' scale: a parameter that passes near 0 keeps the
#: absolute error of the largest values its steps handle (momentum's velocity reaches 10
#: times the gradient), a few roundings of them
TOLERANCES = {"float64": (1e-12, 1e-14), "float32": (1e-5, 2e-6)}

STEPS = 4  # before the checkpoint, and again after it


def _params(dtype, tag, shapes=SHAPES):
    return [pytensor.shared(np.zeros(shape, dtype=dtype), name=f"{tag}{i}", shape=static)
            for i, (shape, static) in enumerate(shapes)]


def _rule(name, grads, params, fuse):
    return symopt.RULES[name](grads, params, **ROWS[name].fused, fuse=fuse)


# --------------------------------------------------------------------------------------
# exact types: graphs only, so many examples
# --------------------------------------------------------------------------------------

shapes_strategy = st.lists(
    st.tuples(st.lists(st.integers(0, 3), max_size=3).map(tuple), st.booleans()),
    min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(RULE_NAMES), dtype=st.sampled_from(DTYPES),
       drawn=shapes_strategy, fuse=st.sampled_from([False, True, "auto"]))
def test_every_update_has_exactly_its_variable_s_type(name, dtype, drawn, fuse):
    shapes = [(shape, shape if static else None) for shape, static in drawn]
    params = _params(dtype, "p", shapes)
    grads = [pt.tensor(f"g{i}", dtype=dtype, shape=p.type.shape) for i, p in enumerate(params)]
    updates = _rule(name, grads, params, fuse)
    assert [v for v, _ in updates[:len(params)]] == params
    for var, expr in updates:
        assert var.type == expr.type, (var.name, var.type, expr.type)


# --------------------------------------------------------------------------------------
# compiled: finite, shapes kept, fused == per-tensor, save/load resumes bit for bit
# --------------------------------------------------------------------------------------

_COMPILED = {}


class Case:
    """Every rule on both paths in one compiled function per (backend, dtype), all fed the
    same gradients (the function's inputs)."""

    def __init__(self, mode, dtype, rules):
        self.dtype, self.rules = dtype, rules
        self.grads = [pt.tensor(f"g{i}", dtype=dtype, shape=static or (None,) * len(shape))
                      for i, (shape, static) in enumerate(SHAPES)]
        self.params, self.updates = {}, {}
        for name in rules:
            for path, fuse in (("per_tensor", False), ("fused", True)):
                self.params[name, path] = _params(dtype, f"{name}_{path}")
                self.updates[name, path] = _rule(name, self.grads, self.params[name, path],
                                                 fuse)
        self.step = pytensor.function(self.grads, [], mode=mode,
                                      updates=[u for us in self.updates.values() for u in us])
        assert any(isinstance(n.op, FusedUpdate) for n in self.step.maker.fgraph.toposort())
        self.initial = {key: self.values(key) for key in self.updates}

    def state(self, key):
        return symopt.get_state(self.updates[key], include_params=True)

    def values(self, key):
        return {k: np.copy(v.get_value()) for k, v in self.state(key).items()}

    def reset(self, params):
        for key in self.updates:
            for name, var in self.state(key).items():
                var.set_value(np.copy(self.initial[key][name]))
            for var, value in zip(self.params[key], params, strict=True):
                var.set_value(np.copy(value))


def _case(mode, dtype):
    key = (str(mode), dtype)
    if key not in _COMPILED:
        _COMPILED[key] = Case(mode, dtype, NUMBA_RULES if mode == "NUMBA" else RULE_NAMES)
    return _COMPILED[key]


def _draw_values(seed, scale, zeros, dtype, steps):
    """Parameters and ``steps`` gradients for SHAPES: normal, times ``scale``, with a
    fraction ``zeros`` of the gradients' elements exactly zero."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=shape).astype(dtype) for shape, _ in SHAPES]
    grads = []
    for _ in range(steps):
        step = []
        for shape, _ in SHAPES:
            g = rng.normal(size=shape) * scale
            step.append(np.where(rng.random(size=shape) < zeros, 0.0, g).astype(dtype))
        grads.append(step)
    return params, grads


def _assert_agree(case, name, scale):
    """The rule's two paths, parameters and state by name (``adam_fused0.m`` is
    ``adam_per_tensor0.m``), for gradients of the given scale."""
    rtol, atol = TOLERANCES[case.dtype]
    a = {k.replace("_fused", ""): v for k, v in case.values((name, "fused")).items()}
    b = {k.replace("_per_tensor", ""): v for k, v in case.values((name, "per_tensor")).items()}
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=atol * max(1.0, scale),
                                   err_msg=f"fused against per-tensor: {key}")


def _check_properties(mode, directory, dtype, seed, scale, zeros):
    case = _case(mode, dtype)
    params, grads = _draw_values(seed, scale, zeros, dtype, 2 * STEPS)
    case.reset(params)
    for g in grads[:STEPS]:
        case.step(*g)
    for (name, path), updates in case.updates.items():
        symopt.save_state(updates, directory / f"{name}-{path}")
    for g in grads[STEPS:]:
        case.step(*g)
    # finite, and every parameter keeps its shape and dtype, on both paths
    for key, variables in case.params.items():
        for var, (shape, _) in zip(variables, SHAPES, strict=True):
            value = var.get_value()
            assert value.shape == shape and value.dtype == dtype, var.name
        for name, value in case.values(key).items():
            assert np.all(np.isfinite(value)), name
    for name in case.rules:
        _assert_agree(case, name, scale)

    # back to the checkpoint: the same steps give the same values, bit for bit
    after = {key: case.values(key) for key in case.updates}
    for (name, path), updates in case.updates.items():
        symopt.load_state(updates, directory / f"{name}-{path}")
    for g in grads[STEPS:]:
        case.step(*g)
    for key in case.updates:
        for name, value in case.values(key).items():
            np.testing.assert_array_equal(value, after[key][name], err_msg=f"resumed {name}")


values_strategy = {
    "seed": st.integers(0, 2**32 - 1),
    "scale": st.sampled_from([1e-3, 1e-1, 1.0, 30.0]),
    "zeros": st.sampled_from([0.0, 0.3, 1.0]),
}

compiled_settings = settings(max_examples=4, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.function_scoped_fixture])


@numba_default
@pytest.mark.parametrize("dtype", DTYPES)
@compiled_settings
@given(**values_strategy)
def test_properties_on_numba(tmp_path_factory, dtype, seed, scale, zeros):
    pytest.importorskip("numba")
    _check_properties("NUMBA", tmp_path_factory.mktemp("checkpoints"), dtype, seed, scale,
                      zeros)


@pytest.mark.parametrize("dtype", DTYPES)
@compiled_settings
@given(**values_strategy)
def test_properties_on_the_c_vm(tmp_path_factory, dtype, seed, scale, zeros):
    _check_properties("CVM", tmp_path_factory.mktemp("checkpoints"), dtype, seed, scale, zeros)
