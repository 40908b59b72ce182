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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_one_in_place_loop_per_parameter_and_no_float64(name, mode):
    fgraph = _compiled(name, 2, False, mode)
    loops = [n for n in fgraph.apply_nodes
             if isinstance(n.op, Elemwise) and n.outputs[0].type.broadcastable == (False,)]
    assert len(loops) == 2, [str(n.op) for n in loops]
    assert all(n.op.destroy_map for n in loops)
    float64 = [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]
    assert not float64, float64


ELEMENTWISE = sorted(name for name in symopt.RULES
                     if symopt.RULES[name](learning_rate=0.1).elementwise)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_fused_one_node_for_many_parameters(name):
    fgraph = _compiled(name, 12, True, MODES[0])
    fused = [n for n in fgraph.apply_nodes if isinstance(n.op, FusedUpdate)]
    assert len(fused) == 1 and fused[0].op.inplace and fused[0].op.n_tensors == 12
    assert not [n for n in fgraph.apply_nodes
                if isinstance(n.op, Elemwise) and n.outputs[0].type.broadcastable == (False,)]
    assert not [v for v in fgraph.variables if getattr(v.type, "dtype", "") == "float64"]
