"""Fusion as a compile-time rewrite: the C backends get the vectorised loop by default.

A rule builds plain, readable graphs; PyTensor's own fusion turns each parameter's update
into one elementwise loop (an ``Elemwise`` of a ``Composite``). On Numba that loop is
vectorised and runs near the memory roofline. PyTensor's C code for it is not: it is a
scalar loop (gcc does not vectorise it), about 15 times slower than the roofline for
Adam (benchmarks/README.md). So when a function is compiled for a C backend (the C VM,
``mode="C"``; PyTensor 2's default, hence PyMC's), :func:`flat_update` replaces each
such update loop by a one-tensor :class:`~symopt.fused.op.FusedUpdate`, whose C loop
(:mod:`symopt.fused.c_code`) is vectorised and runs in place.

What is replaced is recognised from the compiled function's updates: a loop that reads
one array (the gradient) and writes shared variables that are its own inputs (the
parameter and the rule's state, at least one of them symopt state, so other libraries'
loops are left alone), every array of one dtype and shape, its other inputs scalars.
Anything else stays as it was. The loop computes what PyTensor's did, except that a
float32 body is computed in float32 where PyTensor's C code rounds its constants to
double (as Numba's loop already does): float64 results are identical, float32 ones
differ from PyTensor's C loop in the last bits.

Registered in PyTensor's rewrite database under the tags ``fast_run`` and ``cxx_only``
(so Numba and JAX, which exclude ``cxx_only``, keep their own loops), after PyTensor's
fusion and before its in-place pass. ``fast_run`` modes that exclude
``symopt_flat_update`` (``mode=get_mode("CVM").excluding("symopt_flat_update")``) keep
PyTensor's loop.
"""

from __future__ import annotations

import os

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.tensor.elemwise import Elemwise

from symopt.fused import op as fused_op
from symopt.state import state_tag

__all__ = ["flat_update"]


def _updated_inputs(fgraph, node):
    """For each output of ``node``, the fgraph input (a shared variable) it updates, or
    None when an output is not an update of one of the node's own inputs."""
    mapping = getattr(fgraph, "update_mapping", None) or {}
    targets = []
    for out in node.outputs:
        target = None
        for client, index in fgraph.clients.get(out, ()):
            if _is_output(client, fgraph):
                position = _output_position(client, index)
                if position in mapping:
                    target = fgraph.inputs[mapping[position]]
        if target is None or target not in node.inputs:
            return None
        targets.append(target)
    return targets


def _is_output(client, fgraph):
    """A client that is the function's output (PyTensor 2: "output"; 3: an Output node)."""
    return client == "output" or type(getattr(client, "op", None)).__name__ == "Output"


def _output_position(client, index):
    return index if client == "output" else client.op.idx if hasattr(client.op, "idx") \
        else index


def _scalar_like(var):
    return all(var.type.broadcastable)


@node_rewriter([Elemwise])
def flat_update(fgraph, node):
    """An update loop over shared variables, as one vectorised one-tensor FusedUpdate."""
    scalar_op = node.op.scalar_op
    if not isinstance(scalar_op, ps.Composite) or not pytensor.config.cxx:
        return False
    targets = _updated_inputs(fgraph, node)
    if targets is None or len(set(targets)) != len(targets):
        return False
    if not any(state_tag(t) is not None for t in targets):
        return False  # not a symopt rule's loop (or one without state: a plain axpy)
    if len(set(node.inputs)) != len(node.inputs):
        return False
    arrays = [x for x in node.inputs if not _scalar_like(x)]
    reads = [x for x in arrays if x not in targets]
    first = targets[0]
    same = all(x.type.dtype == first.type.dtype and x.type.ndim == first.type.ndim
               and not any(x.type.broadcastable) for x in arrays)
    if len(reads) != 1 or not same or first.type.ndim == 0:
        return False
    if any(out.type != target.type for out, target in zip(node.outputs, targets, strict=True)):
        return False
    if not scalar_op.c_code_cache_version():  # no C code for some part of the body
        return False

    # the body with its inputs as FusedUpdate reads them: parameter, gradient, states,
    # scalars; its outputs: new parameter, new states
    position = {x: i for i, x in enumerate(node.inputs)}
    scalars = [x for x in node.inputs if _scalar_like(x)]
    order = [targets[0], reads[0], *targets[1:], *scalars]
    body = ps.Composite([scalar_op.inputs[position[x]] for x in order], scalar_op.outputs)
    size = getattr(first, "get_value", None)
    size = size(borrow=True).size if size is not None else 0
    parallel = size >= fused_op.PARALLEL_MIN and (os.cpu_count() or 1) > 1
    # shapes=None: the node checks at every call that the gradient and the state have the
    # parameter's shape (no shape is fixed in its code, so one compiled loop serves every
    # shape); there is no group to check first, so its token is a constant
    op = fused_op.FusedUpdate(body, 1, len(targets) - 1, 0, parallel, shapes=None,
                              buffer_size=None)
    token = pt.constant(np.zeros((), dtype="int8"))
    new = op(*order[:len(targets) + 1], *(x.dimshuffle() for x in scalars), token)
    new = new if isinstance(new, list) else [new]
    return dict(zip(node.outputs, new, strict=True))


optdb.register(
    "symopt_flat_update",
    WalkingGraphRewriter(flat_update),
    "fast_run",
    "cxx_only",
    position=49.4,
)
