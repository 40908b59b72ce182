"""symopt.modes: the training modes' rewrite choices do what their reasons say."""

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
from symopt.fused import graph_inputs  # PyTensor 2 and 3 keep it in different modules


def _mlp_products(mode):
    """The matrix-product ops in a 784-600-10 MLP's Adam training graph under ``mode``."""
    rng = np.random.default_rng(0)
    W1 = pytensor.shared(rng.normal(size=(784, 600)).astype("float32"), name="W1")
    b1 = pytensor.shared(np.zeros(600, "float32"), name="b1")
    W2 = pytensor.shared(rng.normal(size=(600, 10)).astype("float32"), name="W2")
    b2 = pytensor.shared(np.zeros(10, "float32"), name="b2")
    X, y = pt.matrix("X", dtype="float32"), pt.ivector("y")
    logp = pt.special.log_softmax(pt.maximum(X @ W1 + b1, 0) @ W2 + b2)
    loss = -logp[pt.arange(y.shape[0]), y].mean()
    outputs = [loss] + [u for _, u in symopt.adam(loss, [W1, b1, W2, b2], 1e-3)]
    inputs = [v for v in graph_inputs(outputs) if not isinstance(v, Constant)]
    fgraph = FunctionGraph(inputs, outputs, clone=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mode.optimizer.rewrite(fgraph)
    return Counter(type(n.op).__name__ for n in fgraph.apply_nodes
                   if "Dot" in type(n.op).__name__ or "Gemm" in type(n.op).__name__)


def test_c_training_mode_computes_each_product_once():
    # forward X W1 and h W2; backward h^T d, d W2^T and X^T dh: five products
    default = _mlp_products(get_mode("CVM"))
    ours = _mlp_products(symopt.modes.training_mode("c"))
    assert sum(default.values()) == 7 and default["Dot22Scalar"] == 2
    assert sum(ours.values()) == 5 and "Dot22Scalar" not in ours


def test_default_backend_and_bad_backend():
    mode = symopt.modes.training_mode()
    assert type(mode.linker).__name__ == type(pytensor.compile.mode.get_default_mode().linker).__name__
    with pytest.raises(ValueError, match="backend must be one of"):
        symopt.modes.training_mode("gpu")
