"""symopt.fused.modes: the training modes' rewrite choices do what their reasons say."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import get_mode
from pytensor.graph.basic import Constant
from pytensor.graph.fg import FunctionGraph

import symopt
from symopt.fused.lowering import graph_inputs  # PyTensor 2 and 3 keep it in different modules


def _mlp(rule=symopt.adam, seed=0):
    """A 784-600-10 MLP's inputs, loss and parameters, updated by ``rule`` (or None)."""
    rng = np.random.default_rng(seed)
    W1 = pytensor.shared(rng.normal(size=(784, 600)).astype("float32") / 28, name="W1")
    b1 = pytensor.shared(np.zeros(600, "float32"), name="b1")
    W2 = pytensor.shared(rng.normal(size=(600, 10)).astype("float32") / 25, name="W2")
    b2 = pytensor.shared(np.zeros(10, "float32"), name="b2")
    X, y = pt.matrix("X", dtype="float32"), pt.ivector("y")
    logp = pt.special.log_softmax(pt.maximum(X @ W1 + b1, 0) @ W2 + b2)
    loss = -logp[pt.arange(y.shape[0]), y].mean()
    params = [W1, b1, W2, b2]
    if rule is None:  # the same products, no symopt: the gradients by plain SGD
        updates = [(p, p - np.float32(1e-3) * g)
                   for p, g in zip(params, pytensor.grad(loss, params), strict=True)]
    else:
        updates = rule(loss, params, 1e-3)
    return [X, y], loss, params, updates


def _mlp_products(mode, rule=symopt.adam):
    """The matrix-product ops in a 784-600-10 MLP's training graph under ``mode``."""
    _, loss, _, updates = _mlp(rule)
    outputs = [loss] + [u for _, u in updates]
    inputs = [v for v in graph_inputs(outputs) if not isinstance(v, Constant)]
    fgraph = FunctionGraph(inputs, outputs, clone=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mode.optimizer.rewrite(fgraph)
    return Counter(type(n.op).__name__ for n in fgraph.apply_nodes
                   if "Dot" in type(n.op).__name__ or "Gemm" in type(n.op).__name__)


def test_each_product_is_computed_once_on_the_c_backends():
    # forward X W1 and h W2; backward h^T d, d W2^T and X^T dh: five products. PyTensor
    # alone (symopt's rewrites excluded) scales two of them in GEMMs of their own.
    pytensor_alone = _mlp_products(get_mode("CVM").excluding("symopt_fusion"))
    assert sum(pytensor_alone.values()) == 7 and pytensor_alone["Dot22Scalar"] == 2
    for mode in (get_mode("CVM"), get_mode("FAST_RUN"),
                 symopt.fused.modes.training_mode("c")):
        products = _mlp_products(mode)
        assert sum(products.values()) == 5 and "Dot22Scalar" not in products


def test_a_graph_without_symopt_keeps_pytensors_products():
    """symopt's reuse_product leaves graphs that update nothing of symopt's alone."""
    assert _mlp_products(get_mode("CVM"), rule=None) == \
        _mlp_products(get_mode("CVM").excluding("symopt_fusion"), rule=None)


def test_the_reused_product_trains_as_pytensors_scaled_one():
    """Ten Adam steps with the product reused equal PyTensor's Dot22Scalar steps (float32:
    the GEMM's alpha and the multiplication after it may round differently)."""
    rng = np.random.default_rng(1)
    data = [(rng.random((50, 784), dtype=np.float32),
             rng.integers(0, 10, 50, dtype=np.int32))] * 10  # one batch: the loss falls
    results = {}
    for name, mode in [("symopt", get_mode("CVM")),
                       ("pytensor", get_mode("CVM").excluding("symopt_fusion"))]:
        inputs, loss, params, updates = _mlp()
        step = pytensor.function(inputs, loss, updates=updates, mode=mode)
        losses = [float(step(X, y)) for X, y in data]
        results[name] = losses, [p.get_value() for p in params]
    np.testing.assert_allclose(results["symopt"][0], results["pytensor"][0], rtol=1e-5)
    for ours, theirs in zip(results["symopt"][1], results["pytensor"][1], strict=True):
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert results["symopt"][0][-1] < results["symopt"][0][0]


def test_default_backend_and_bad_backend():
    mode = symopt.fused.modes.training_mode()
    default = pytensor.compile.mode.get_default_mode()
    assert type(mode.linker).__name__ == type(default.linker).__name__
    with pytest.raises(ValueError, match="backend must be one of"):
        symopt.fused.modes.training_mode("gpu")


# --- BLAS for the C backend ---------------------------------------------------------------


def test_find_blas_prefers_openblas_and_links_outside_dirs(tmp_path):
    from symopt.fused.modes import find_blas

    assert find_blas([str(tmp_path)]) == ""
    (tmp_path / "libopenblas.so.0").touch()  # the runtime package alone: not linkable
    assert find_blas([str(tmp_path)]) == ""
    (tmp_path / "libblas.so").touch()
    assert find_blas([str(tmp_path)]) == f"-L{tmp_path} -Wl,-rpath,{tmp_path} -lblas"
    (tmp_path / "libopenblas.so").touch()
    assert find_blas([str(tmp_path)]) == f"-L{tmp_path} -Wl,-rpath,{tmp_path} -lopenblas"


def test_configure_blas_sets_the_flags_it_finds(monkeypatch):
    monkeypatch.setattr(symopt.fused.modes, "find_blas", lambda: "-lopenblas")
    with pytensor.config.change_flags(blas__ldflags=""):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert symopt.fused.modes.configure_blas() == "-lopenblas"
        assert pytensor.config.blas__ldflags == "-lopenblas"


def test_configure_blas_warns_when_there_is_none(monkeypatch):
    monkeypatch.setattr(symopt.fused.modes, "find_blas", lambda: "")
    with pytensor.config.change_flags(blas__ldflags=""):
        with pytest.warns(symopt.fused.modes.NoBlasWarning,
                          match="apt-get install libopenblas-dev"):
            assert symopt.fused.modes.training_mode("c") is not None
        assert pytensor.config.blas__ldflags == ""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            symopt.fused.modes.training_mode("numba")  # Numba needs no BLAS: no warning


def test_configure_blas_keeps_flags_already_set(monkeypatch):
    monkeypatch.setattr(symopt.fused.modes, "find_blas", lambda: pytest.fail("should not search"))
    with pytensor.config.change_flags(blas__ldflags="-lmyblas"):
        assert symopt.fused.modes.configure_blas() == "-lmyblas"
        assert pytensor.config.blas__ldflags == "-lmyblas"


def test_configured_blas_compiles_a_matrix_product_in_c():
    """On this machine (the scripts install Debian's OpenBLAS), the flags found link."""
    flags = symopt.fused.modes.find_blas()
    if not flags:
        pytest.skip("no BLAS installed here")
    with pytensor.config.change_flags(blas__ldflags=""):
        assert symopt.fused.modes.configure_blas() == flags
        A = pt.matrix("A", dtype="float64")
        f = pytensor.function([A], A @ A.T, mode="C")
        a = np.arange(6.0).reshape(2, 3)
        np.testing.assert_allclose(f(a), a @ a.T)
