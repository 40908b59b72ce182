"""Every rule on PyTensor's PyTorch backend (``mode="PYTORCH"``) against the default one.

PyTensor 3.0's PyTorch backend converts Pow, Mod and EQ to functions torch does not have
or that compare whole tensors; symopt._pytorch_backend mends the three, and every rule but
the two that draw random probes (PyTensor's PyTorch backend has no random generator)
then runs there. Each runs a few steps of a small quadratic, per tensor and with
``fuse=True`` (symopt.fused.pytorch_code), compiled once with the default mode and once
for PyTorch: the trajectories agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

pytest.importorskip("torch")
pytest.importorskip("pytensor.link.pytorch.dispatch")

import symopt  # noqa: E402
from symopt.fused import FusedUpdate  # noqa: E402
from symopt.lab.rulebook import ROWS  # noqa: E402

A = np.array([[2.0, 0.3], [0.3, 1.0]])
RANDOM_PROBES = {"sophia", "adahessian"}  # Hutchinson's probes: a random generator
RULES = sorted(set(symopt.RULES) - RANDOM_PROBES)
# SOAP's gradient, rotated into G^T G's eigenvectors, has a component of rounding noise in
# its null space, which Adam's step divides by about epsilon: each backend's noise moves
# the step by about 1e-8 of itself (as on JAX: tests/core/test_jax_backend.py).
# Shampoo's inverse fourth roots come from each backend's eigendecomposition: torch's
# LAPACK (MKL on an Intel CPU) and SciPy's OpenBLAS agree to about 4e-11 of the step
# there (to 1e-12 on AMD's), so its tolerance is that of two LAPACKs, not of one.
RTOL = {"soap": 1e-7, "shampoo": 1e-9}


def _trajectory(name, mode, steps=5, dtype="float64", fuse=None):
    """The rule's updated variables after each step; ``fuse``: the rulebook's
    hyperparameters for ``fuse=True`` (None: per tensor)."""
    W = pytensor.shared(np.array([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1]], dtype=dtype), name="W")
    b = pytensor.shared(np.array([0.4, -0.3, 0.9], dtype=dtype), name="b")
    cost = 0.5 * (W * pt.dot(A.astype(dtype), W)).sum() + 1.5 * (b ** 2).sum() \
        + 0.1 * (W.sum(axis=0) * b).sum()
    extra = {} if fuse is None else {**fuse, "fuse": True}
    updates = symopt.RULES[name](cost, [W, b], **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.compile's notes on graph breaks
        step = pytensor.function([], cost, updates=updates, mode=mode)
        return [[np.asarray(v.get_value()).copy() for v, _ in updates]
                for _ in range(steps) if step() is not None]


@pytest.mark.parametrize("name", RULES)
def test_every_rule_runs_on_pytorch_as_on_the_default_backend(name):
    expected = _trajectory(name, None)
    got = _trajectory(name, "PYTORCH")
    rtol = RTOL.get(name, 1e-12)
    for t, (x, y) in enumerate(zip(expected, got, strict=True)):
        for a, b in zip(x, y, strict=True):
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.max(np.abs(a)),
                                       err_msg=f"step {t + 1}")


def test_the_mended_ops_are_elementwise_and_numpys():
    """Pow, NumPy's mod (the divisor's sign) and an elementwise ==, on vectors."""
    x, y = pt.vector("x"), pt.vector("y")
    i = pt.lvector("i")
    f = pytensor.function([x, y, i], [x ** y, i % 3, pt.eq(x, y)], mode="PYTORCH")
    xs, ys, ints = np.array([2.0, 3.0, 0.5]), np.array([3.0, 3.0, -1.0]), np.array([-4, 5, 0])
    power, mod, equal = f(xs, ys, ints)
    np.testing.assert_array_equal(power, xs ** ys)
    np.testing.assert_array_equal(mod, ints % 3)
    np.testing.assert_array_equal(equal, xs == ys)


# --------------------------------------------------------------------------- fuse=True
# symopt.fused.pytorch_code: the fused update as whole-tensor code

FUSED = {name: row.fused for name, row in ROWS.items() if row.fused is not None}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(FUSED))
def test_every_fused_rule_runs_on_pytorch_as_on_the_default_backend(name, dtype):
    """One FusedUpdate over both parameters; float64 to rounding, float32 to a few ulps
    and in float32."""
    expected = _trajectory(name, None, dtype=dtype, fuse=FUSED[name])
    got = _trajectory(name, "PYTORCH", dtype=dtype, fuse=FUSED[name])
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for x, y in zip(expected, got, strict=True):
        for a, b in zip(x, y, strict=True):
            assert b.dtype == a.dtype
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.max(np.abs(a)))


def test_fused_shape_checks_on_pytorch():
    """A gradient of another shape is refused, naming it, before any write."""
    W = pytensor.shared(np.ones((2, 3)), name="W")
    b = pytensor.shared(np.ones(3), name="b")
    gW, gb = pt.matrix("gW"), pt.vector("gb")
    updates = symopt.adam([gW, gb], [W, b], 0.1, fuse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = pytensor.function([gW, gb], [], updates=updates, mode="PYTORCH")
        assert [n for n in step.maker.fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
        step(np.ones((2, 3)), np.ones(3))
        before = {v.name: np.array(v.get_value()) for v, _ in updates}
        with pytest.raises(ValueError, match=r"gradient of parameter 'b' has shape \(4,\)"):
            step(np.ones((2, 3)), np.ones(4))
    for v, _ in updates:
        np.testing.assert_array_equal(v.get_value(), before[v.name])
