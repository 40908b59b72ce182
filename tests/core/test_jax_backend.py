"""Every update form on PyTensor's JAX backend (``mode="JAX"``) against the default one.

Each form, per tensor, and every elementwise rule on the fused path, runs a few steps of
a small quadratic (a matrix and a vector parameter) compiled once with the default mode
and once with ``mode="JAX"``. The two compute the same operations, compiled by different
compilers (LLVM through Numba or gcc, and XLA), which may contract and reorder them: the
trajectories agree to rounding, rtol 1e-12 in float64 (the largest deviation seen is
near 1e-14). In float32 every result has exactly its variable's dtype.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

pytest.importorskip("jax")
pytest.importorskip("pytensor.link.jax.dispatch")  # PyTensor's JAX backend, for this jax

import symopt  # noqa: E402
from symopt.fused import FusedUpdate  # noqa: E402
from symopt.lab.forms import FORMS  # noqa: E402
from symopt.lab.rulebook import ROWS  # noqa: E402

STEPS = 5
LEARNING_RATE = 0.05
FUSED = {name: row.fused for name, row in ROWS.items() if row.fused is not None}
A = np.array([[2.0, 0.3], [0.3, 1.0]])
# SOAP rotates the 2 x 3 gradient into the eigenvectors of G^T G, one of which spans its
# null space: the gradient's component there is rounding noise (1e-16), which Adam's
# step divides by sqrt(v) + epsilon, about epsilon = 1e-8. Each compiler's noise so moves
# the step by about 1e-8 of itself (1.7e-9 measured), far above the other forms' 1e-14.
RTOL = {"soap": 1e-7}


def _problem(dtype, coupled=True):
    """A matrix and a vector parameter, and a cost coupling them (through a sum)."""
    W = pytensor.shared(np.array([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1]], dtype=dtype), name="W")
    b = pytensor.shared(np.array([0.4, -0.3, 0.9], dtype=dtype), name="b")

    def cost(params):
        W_, b_ = params
        cost = 0.5 * (W_ * pt.dot(A.astype(dtype), W_)).sum() + 1.5 * (b_ ** 2).sum()
        return cost + 0.1 * (W_.sum(axis=0) * b_).sum() if coupled else cost

    return [W, b], cost


def _trajectory(build, mode, dtype="float64", coupled=True):
    """The parameters and state after each of STEPS steps, and the compiled function."""
    params, cost = _problem(dtype, coupled)
    updates = build(cost, params)
    step = pytensor.function([], cost(params), updates=updates, mode=mode)
    variables = [v for v, _ in updates]
    values = []
    for _ in range(STEPS):
        step()
        values.append([np.asarray(v.get_value()) for v in variables])
    return values, variables, step


def _assert_agree(build, rtol=1e-12):
    expected, variables, _ = _trajectory(build, None)
    got, _, step = _trajectory(build, "JAX")
    for t, (x, y) in enumerate(zip(expected, got, strict=True)):
        for var, a, b in zip(variables, x, y, strict=True):
            # against the array's scale: an entry that cancels to near zero (a step that
            # takes a parameter to its minimum, a state entry of rounding noise) keeps
            # only the absolute rounding of the values it came from
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.max(np.abs(a)),
                                       err_msg=f"{var.name} at step {t + 1}")
    return step


def _form(name):
    return lambda cost, params: FORMS[name].build(cost, params, LEARNING_RATE)


def _fused(name):
    return lambda cost, params: symopt.RULES[name](cost(params), params, **FUSED[name],
                                                   fuse=True)


#: forms that draw random probes (Hutchinson's) in one draw of the parameters' total size:
#: PyTensor's JAX backend needs a draw's size static, and that sum of the parameters'
#: sizes is symbolic (so the probes have exactly their parameters' types)
RANDOM = {name for name in FORMS if "seed" in symopt.RULES.get(name, symopt.sgd)(
    learning_rate=0.1).hyperparameters}


@pytest.mark.parametrize("name", sorted(set(FORMS) - RANDOM))
def test_every_form_agrees_on_jax(name):
    _assert_agree(_form(name), rtol=RTOL.get(name, 1e-12))


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_forms_with_random_probes_are_a_known_limit_on_jax(name):
    """They fail on JAX while compiling, with JAX's message about a non-static shape
    (README, Known limits); if PyTensor learns to fold the size, this test says so."""
    assert RANDOM == {"adahessian", "sophia"}
    with pytest.raises(Exception, match="[Ss]hape|concrete|[Tt]racer"):
        _trajectory(_form(name), "JAX")


@pytest.mark.parametrize("name", list(FUSED))
def test_fused_rule_agrees_on_jax(name):
    step = _assert_agree(_fused(name))
    nodes = [n for n in step.maker.fgraph.toposort() if isinstance(n.op, FusedUpdate)]
    assert len(nodes) == 1 and nodes[0].op.n_tensors == 2


def _assert_float32_dtypes(build, x64, coupled=True):
    """In float32 every new value has its variable's dtype, the step counters int64 where
    JAX has 64-bit types, else int32 (as PyTensor has it: it turns them on when its JAX
    backend is imported under ``floatX="float64"``, off under ``"float32"``)."""
    import jax

    with pytensor.config.change_flags(floatX="float32"), jax.enable_x64(x64):
        values, variables, _ = _trajectory(build, "JAX", "float32", coupled)
    for var, value in zip(variables, values[-1], strict=True):
        if not hasattr(var.type, "dtype"):  # a random generator (Hutchinson's probes)
            continue
        want = var.type.dtype if var.type.dtype.startswith("float") else (
            "int64" if x64 else "int32")
        assert value.dtype == want, (var.name, value.dtype)
        assert np.all(np.isfinite(value)), var.name


# PyTensor's JAX code for a float32 sum asks for its float64 accumulator, which JAX
# without 64-bit types gives as float32, with a warning
@pytest.mark.filterwarnings("ignore:Explicitly requested dtype float64:UserWarning")
@pytest.mark.parametrize("name", sorted(set(FORMS) - RANDOM))
def test_float32_form_keeps_its_dtypes_on_jax(name):
    _assert_float32_dtypes(_form(name), x64=False)


@pytest.mark.parametrize("name", list(FUSED))
def test_float32_fused_rule_keeps_its_dtypes_on_jax(name):
    """With 64-bit types too, where PyTensor's JAX code widens a gradient through a sum
    (below): the fused update casts its results to its outputs' types."""
    _assert_float32_dtypes(_fused(name), x64=True)


@pytest.mark.xfail(strict=True, reason="PyTensor 3.0.7's JAX code for a sum or a mean "
                   "returns its accumulator's dtype (float64 for float32 input) when JAX has "
                   "64-bit types: a float32 gradient through a sum comes back float64")
def test_float32_gradient_through_a_sum_on_jax_with_64_bit_types():
    _assert_float32_dtypes(_form("sgd"), x64=True)


def test_fused_shape_checks_on_jax():
    """JAX traces again for inputs of a new shape, and the trace checks them: a resized
    parameter or a gradient of another shape is refused, naming it, before any write."""
    W = pytensor.shared(np.ones((2, 3)), name="W")
    b = pytensor.shared(np.ones(3), name="b")
    gW, gb = pt.matrix("gW"), pt.vector("gb")
    updates = symopt.adam([gW, gb], [W, b], 0.1, fuse=True)
    step = pytensor.function([gW, gb], [], updates=updates, mode="JAX")
    step(np.ones((2, 3)), np.ones(3))
    before = {v.name: np.array(v.get_value()) for v, _ in updates}
    with pytest.raises(ValueError, match=r"gradient of parameter 'b' has shape \(4,\); a "
                                         r"gradient must have its parameter's shape, \(3,\)"):
        step(np.ones((2, 3)), np.ones(4))
    W.set_value(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"parameter 'W' has shape \(3, 3\), but its fused "
                                         r"update was built for shape \(2, 3\)"):
        step(np.ones((3, 3)), np.ones(3))
    for v, _ in updates:
        if v is not W:
            np.testing.assert_array_equal(v.get_value(), before[v.name])


def test_registered_when_pytensor_loads_jax_not_before():
    """``import symopt`` loads no JAX; compiling for JAX afterwards finds symopt's Ops
    (the fused update, and Shampoo's periodic inverse root)."""
    code = ("import sys, numpy as np, pytensor, symopt\n"
            "assert 'jax' not in sys.modules\n"
            "W = pytensor.shared(np.eye(2) + 1, name='W')\n"
            "V = pytensor.shared(np.eye(2) - 1, name='V')\n"
            "updates = (symopt.adam(((W - 1) ** 2).sum(), [W], 0.1, fuse=True)\n"
            "           + symopt.shampoo(((V - 1) ** 2).sum(), [V], 0.1))\n"
            "f = pytensor.function([], [], updates=updates, mode='JAX')\n"
            "f()\n"
            "print(type(f.maker.linker).__name__, 'jax' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["JAXLinker", "True"]
