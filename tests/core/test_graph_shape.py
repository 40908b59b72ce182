"""The compiled shape of every rule's update, the guard for its speed (benchmarks/README.md).

Under ``floatX=float32`` the update of a parameter compiles to exactly one elementwise
loop over parameter-sized arrays, in place (a ``destroy_map``), with no float64 variable
anywhere; with ``fuse=True``, to one ``FusedUpdate`` node for up to 16 tensors. Timings
would be flaky in a test; this shape is what makes the step fast, and it is exact.
Numba compiles at the first call, so nothing here is run.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.tensor.elemwise import Elemwise

import symopt
from symopt.fused import FusedUpdate
from symopt.fused.window import WindowSum


def _compiled(name, n_params, fuse, mode):
    with pytensor.config.change_flags(floatX="float32"):
        params = [pytensor.shared(np.ones(1000, dtype="float32"), name=f"w{i}")
                  for i in range(n_params)]
        # gradients of the parameters' own type, as pytensor.grad gives them (a gradient
        # with a static shape the parameter does not declare changes the loop's output
        # type, and PyTensor then does not run it in place)
        grads = [pt.vector(f"g{i}", dtype="float32") for i in range(n_params)]
        updates = symopt.RULES[name](grads, params, fuse=fuse)
        return pytensor.function(grads, [], updates=updates, mode=mode).maker.fgraph


PYTENSOR_3 = int(pytensor.__version__.split(".")[0]) >= 3
MODES = ["NUMBA", "CVM"] if PYTENSOR_3 else ["CVM"]  # Numba is PyTensor 3's default
#: rules whose state update and parameter update are siblings (both read the old state,
#: neither reads the other's result): PyTensor 3 fuses them into one loop with two outputs,
#: PyTensor 2.38's fusion joins chains only, so there they stay two loops per parameter
#: (Lion's sign and momentum; Adan's kept gradient; ADOPT's second moment, updated after
#: the step that reads the old one)
SIBLINGS = {"lion", "adan", "adopt"}
# the rules whose every transform is elementwise; adagrad_window keeps a window per element
ELEMENTWISE = sorted(name for name, rule in symopt.RULES.items()
                     if rule(learning_rate=0.1).elementwise)
#: rules whose step looks across elements (norms, factored moments, matrix functions,
#: Hessian-vector products, a window): more than one loop per parameter, and no fused path
ACROSS = sorted(set(symopt.RULES) - set(ELEMENTWISE))


# rules whose loop picks between values it computes by a condition of scalars alone
# (the step counter): symopt.fused.rewrite takes them on Numba too
BRANCH_ON_SCALARS = {"adan", "adopt", "asgd", "radam", "schedule_free_adamw",
                     "schedule_free_sgd"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_one_in_place_loop_per_parameter_and_no_float64(name, mode):
    """One loop per parameter, in place. On the C VM a rule with per-parameter state gets
    the vectorised loop with no flag: symopt.fused.rewrite swaps PyTensor's scalar C loop
    for a FusedUpdate at compile time, the two parameters' in one node."""
    fgraph = _compiled(name, 2, False, mode)
    loops = [n for n in fgraph.apply_nodes
             if isinstance(n.op, Elemwise) and n.outputs[0].type.broadcastable == (False,)]
    fused = [n for n in fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    per_parameter = 2 if name in SIBLINGS and not PYTENSOR_3 else 1
    tensors = len(loops) + sum(n.op.n_tensors for n in fused)
    assert tensors == 2 * per_parameter, [str(n.op) for n in loops + fused]
    assert all(n.op.destroy_map for n in loops + fused)
    # (on PyTensor 2.38 Adan's loop reads the gradient and the kept one: not rewritten)
    rewritten = name != "adan" or PYTENSOR_3
    if mode == "CVM" and rewritten:
        assert [(n.op.n_tensors, n.op.inplace) for n in fused] == [(2, True)]
    elif mode == "NUMBA" and name in BRANCH_ON_SCALARS:  # one-tensor nodes, not grouped
        assert [(n.op.n_tensors, n.op.inplace) for n in fused] == [(1, True), (1, True)]
    else:
        assert not fused
    float64 = [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]
    assert not float64, float64


@pytest.mark.parametrize("mode", MODES)
def test_adagrad_window_writes_its_window_in_place_and_keeps_float32(mode):
    """The window's slot is written in place and summed in the same pass (WindowSum:
    symopt.fused.window), the parameter's loop runs in place, and no variable is float64
    (the sum over the window accumulates in double inside its loop, as PyTensor does for
    every float32 sum, and PyMC's too)."""
    fgraph = _compiled("adagrad_window", 2, False, mode)
    writes = [n for n in fgraph.apply_nodes if isinstance(n.op, WindowSum)]
    assert len(writes) == 2 and all(n.op.destroy_map and n.op.square for n in writes)
    assert not [n for n in fgraph.apply_nodes if "SetSubtensor" in str(n.op)]
    loops = [n for n in fgraph.apply_nodes
             if isinstance(n.op, Elemwise) and n.outputs[0].type.broadcastable == (False,)
             and n.op.destroy_map]
    assert len(loops) == 2
    assert not [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_fused_one_node_for_many_parameters(name):
    fgraph = _compiled(name, 12, True, MODES[0])
    fused = [n for n in fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    assert len(fused) == 1 and fused[0].op.inplace and fused[0].op.n_tensors == 12
    assert not [n for n in fgraph.apply_nodes
                if isinstance(n.op, Elemwise) and n.outputs[0].type.broadcastable == (False,)]
    assert not [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ACROSS)
def test_rules_across_elements_have_no_float64_and_exact_types(name, mode):
    """A matrix and a vector of float32 under a float32 loss (the rules that need the loss
    get it): no float64 variable anywhere in the compiled graph."""
    with pytensor.config.change_flags(floatX="float32"):
        W = pytensor.shared(np.ones((30, 20), dtype="float32"), name="W")
        b = pytensor.shared(np.zeros(20, dtype="float32"), name="b")
        x = pt.matrix("x", dtype="float32")
        loss = pt.sqr(pt.tanh(x @ W + b)).sum()
        updates = symopt.RULES[name](loss, [W, b], seed=0) if "seed" in _hyper(name) else \
            symopt.RULES[name](loss, [W, b])
        for var, expr in updates:
            assert var.type == expr.type, var.name
        fgraph = pytensor.function([x], [], updates=updates, mode=mode).maker.fgraph
    float64 = [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]
    assert not float64, float64


def _hyper(name):
    return symopt.RULES[name](learning_rate=0.1).hyperparameters
