"""Lowering an elementwise update to the scalar loop body of :class:`FusedUpdate`.

The transform is applied once to flat stand-ins for the parameters; its outputs are
rewritten by PyTensor's own algebraic rewrites (the ones every compiled function gets,
without fusion or in-place ones) and turned into one scalar
:class:`~pytensor.scalar.basic.Composite`: the loop body computes what the per-tensor
path computes, operation for operation.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.scalar as ps
from pytensor.graph.basic import Constant, clone_get_equiv
from pytensor.graph.fg import FunctionGraph
from pytensor.tensor.elemwise import DimShuffle, Elemwise

try:  # PyTensor 3
    from pytensor.graph.traversal import ancestors, graph_inputs, toposort
except ImportError:  # PyTensor 2
    from pytensor.graph.basic import (  # type: ignore[no-redef]
        ancestors,
        graph_inputs,
        io_toposort,
    )

    def toposort(outputs):  # type: ignore[misc]
        return io_toposort(list(graph_inputs(outputs)), outputs)

__all__ = ["NotFusable", "ancestors", "loop_body", "rebuilt", "rewritten", "toposort"]


class NotFusable(ValueError):
    """A transform cannot run as one fused elementwise loop; the message says why."""


def rewritten(outputs):
    """``outputs`` after PyTensor's algebraic rewrites, without fusion or in-place ones.

    These are the rewrites every compiled function applies, so the loop body computes
    the same operations, in the same order, as the per-tensor path's fused loops.
    """
    roots = [v for v in graph_inputs(outputs) if not isinstance(v, Constant)]
    equiv = clone_get_equiv(roots, outputs, copy_inputs=False, copy_orphans=False)
    fgraph = FunctionGraph(roots, [equiv[o] for o in outputs], clone=False)
    mode = pytensor.compile.mode.get_default_mode().excluding("fusion", "inplace")
    mode.optimizer.rewrite(fgraph)
    return list(fgraph.outputs)


def loop_body(outputs, vector_inputs):
    """The scalar composite that computes ``outputs`` element by element.

    Returns the composite (inputs: one scalar per vector input, then the scalar inputs)
    and the 0-d tensors to pass as its scalar inputs.
    """
    outputs = rewritten(outputs)
    leaves = {v: ps.get_scalar_type(v.dtype)() for v in vector_inputs}
    scalar_leaves = OrderedDict()  # 0-d tensor -> scalar placeholder
    done = {}

    def scalar_of(var):
        if var in leaves:
            return leaves[var]
        if isinstance(var, Constant) and all(var.type.broadcastable):
            return ps.constant(np.asarray(var.data).reshape(()).astype(var.dtype))
        if var.ndim == 0 or all(var.type.broadcastable):
            zero_d = var
            if var.ndim:
                owner = var.owner
                if (owner is not None and isinstance(owner.op, DimShuffle)
                        and owner.inputs[0].ndim == 0):
                    zero_d = owner.inputs[0]
                else:
                    zero_d = var.reshape(())
            if zero_d not in scalar_leaves:
                scalar_leaves[zero_d] = ps.get_scalar_type(zero_d.dtype)()
            return scalar_leaves[zero_d]
        node = var.owner
        if node is None or not isinstance(node.op, Elemwise):
            what = "an input" if node is None else type(node.op).__name__
            raise NotFusable(f"the update is not elementwise: it uses {what} ({var})")
        if node not in done:
            scalar_inputs = [scalar_of(x) for x in node.inputs]
            done[node] = node.op.scalar_op.make_node(*scalar_inputs).outputs
        return done[node][node.outputs.index(var)]

    body = [scalar_of(o) for o in outputs]
    inputs = [leaves[v] for v in vector_inputs] + list(scalar_leaves.values())
    body = [ps.identity(b) if b in inputs or isinstance(b, ps.ScalarConstant) else b
            for b in body]
    for b, o in zip(body, outputs, strict=True):
        if b.type.dtype != o.dtype:
            raise NotFusable(f"the update changes dtype ({o.dtype} expected, got {b.type.dtype})")
    return ps.Composite(inputs, body), list(scalar_leaves)


def rebuilt(outputs, new, replace=None):
    """A copy of the scalar graph ``outputs`` over the variables ``new`` maps its leaves to;
    ``replace(op, inputs)`` may give an apply node's new output instead of the op's own."""
    new = dict(new)
    for apply in toposort(outputs):
        inputs = [new.get(x, x) for x in apply.inputs]
        outs = replace(apply.op, inputs) if replace else None
        new.update(zip(apply.outputs, outs or apply.op.make_node(*inputs).outputs, strict=True))
    return [new.get(o, o) for o in outputs]
