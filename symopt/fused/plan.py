"""Planning the fused path: which tensors go together, and what ``fuse="auto"`` picks.

:func:`fused_apply` groups the parameters by dtype, runs the transform once on a flat
stand-in per dtype, lowers its updates to one scalar loop body
(:mod:`symopt.fused.lowering`) and builds one :class:`~symopt.fused.op.FusedUpdate` node
per :data:`CHUNK` tensors, their state in flat buffers tagged with the parameters they
hold (so :func:`symopt.get_state` hands out each parameter's slice under its per-tensor
name), all of them after one :class:`~symopt.fused.op.FusedCheck` of the group's shapes.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import pytensor
import pytensor.tensor as pt
from pytensor.tensor.type import TensorType

from symopt._checks import like_param
from symopt.fused import op as fused_op
from symopt.fused.lowering import NotFusable, ancestors, loop_body
from symopt.fused.op import FusedCheck, FusedUpdate
from symopt.state import StateTag, state_tag

__all__ = ["CHUNK", "FUSE_MIN_TENSORS", "auto_min_tensors", "default_backend_is_c",
           "fused_apply"]

#: With Numba the default backend, ``fuse="auto"`` fuses a dtype group of at least this
#: many tensors (below it the two paths run alike); with a C backend the default, it fuses
#: any group, the fused C loop being the fast one (see :func:`default_backend_is_c`).
FUSE_MIN_TENSORS = 8

#: Tensors per :class:`FusedUpdate` node (see :func:`_group_updates`).
CHUNK = 16

def default_backend_is_c():
    """Whether PyTensor's default mode runs C code: the C VM (PyTensor 2's default, so
    PyMC's) or the all-C linker, with a C++ compiler present."""
    from pytensor.link.c.basic import CLinker

    linker = pytensor.compile.mode.get_default_mode().linker
    uses_c = isinstance(linker, CLinker) or getattr(linker, "c_thunks", False)
    return bool(uses_c and pytensor.config.cxx)


def auto_min_tensors():
    """How many tensors of one dtype ``fuse="auto"`` fuses, for the default backend."""
    return 1 if default_backend_is_c() else FUSE_MIN_TENSORS


# ---------------------------------------------------------------------------------------
# building the fused updates


def fused_apply(transform, grads, params):
    """Updates for ``params`` with :class:`FusedUpdate` nodes, one group per dtype.

    ``transform`` is a :class:`symopt.Transform` that declares itself elementwise (else
    :class:`NotFusable` says which one does not); ``grads`` are the gradients, one per
    parameter (already checked). The transform runs once, on one flat stand-in
    parameter per dtype, so its scalar state (a step counter) is one variable, as on the
    per-tensor path.
    """
    if not transform.elementwise:
        raise NotFusable(
            f"{transform!r} is not elementwise: it looks across elements (a global norm, "
            "a guard over all steps, a window of past values per element, or a function "
            "not declared elementwise), which one "
            "fused loop cannot compute; use fuse=False or 'auto', or declare a function "
            "of your own with symopt.Transform(fn, elementwise=True)")
    groups = OrderedDict()
    for p, g in zip(params, grads, strict=True):
        groups.setdefault(p.dtype, []).append((p, like_param(g, p)))
    flat_params, flat_grads = [], []
    for dtype, members in groups.items():
        # Vectors of unknown static length (a length of 1 would make them broadcastable,
        # and PyTensor's rewrites would treat them as scalars); the buffers' length is
        # the tag's.
        flat = pt.tensor(dtype=dtype, shape=(None,), name=f"fused_{dtype}")
        flat.tag.symopt_length = sum(p.get_value(borrow=True).size for p, _ in members)
        flat_params.append(flat)
        flat_grads.append(pt.tensor(dtype=dtype, shape=(None,), name=f"fused_{dtype}.grad"))
    updates, scalar_state = _fuse(transform, list(groups.values()), flat_params, flat_grads)
    return updates + scalar_state


def _fuse(transform, groups, flat_params, flat_grads):
    steps, state = transform.transform(flat_grads, flat_params)

    # the state buffers of each stand-in, and the scalar state (step counters)
    buffers = {id(flat): [] for flat in flat_params}
    scalar_state = []
    for var, value in state:
        tag = state_tag(var)
        if tag is not None and id(tag.param) in buffers:
            buffers[id(tag.param)].append((var, value))
        else:
            scalar_state.append((var, value))
    stand_ins = set(flat_params) | set(flat_grads) | {v for pairs in buffers.values()
                                                      for v, _ in pairs}
    updates = []
    for members, flat_param, flat_grad, step in zip(groups, flat_params, flat_grads, steps,
                                                    strict=True):
        params = [p for p, _ in members]
        group_buffers = buffers[id(flat_param)]
        for var, _ in group_buffers:
            tag = state_tag(var)
            var.tag.symopt_state = StateTag(
                rule=tag.rule, role=tag.role, members=tuple(params),
                member_shapes=tuple(p.get_value(borrow=True).shape for p in params))
        updates += _group_updates(members, flat_param, flat_grad, step, group_buffers,
                                  stand_ins, [var for var, _ in scalar_state
                                              if isinstance(var.type, TensorType)])
    return updates, scalar_state


def _group_updates(members, flat_param, flat_grad, step, buffer_pairs, stand_ins, counters):
    """The updates of one dtype group: a :class:`FusedCheck` of the whole group (which
    reads the ``counters``, the scalar state), then one :class:`FusedUpdate` node per chunk."""
    params = [p for p, _ in members]
    grads = [g for _, g in members]
    buffers = [var for var, _ in buffer_pairs]
    outputs = [flat_param + step] + [value for _, value in buffer_pairs]
    composite, scalar_inputs = loop_body(outputs, [flat_param, flat_grad] + buffers)
    if any(a in stand_ins for a in ancestors(scalar_inputs)):
        raise NotFusable(
            "a transform declared elementwise reduces across elements (a norm, a sum or "
            "a test over all steps), which one elementwise loop cannot compute; its "
            "declaration is wrong"
        )

    # One node per chunk of tensors, the buffers passed from node to node: a C function
    # with hundreds of arguments takes gcc minutes, a few of sixteen take seconds.
    shapes = [p.get_value(borrow=True).shape for p in params]
    sizes = [p.get_value(borrow=True).size for p in params]
    names = [f"parameter {p.name!r}" if p.name else f"an unnamed {p.dtype} parameter (number "
             f"{i} of its dtype's group)" for i, p in enumerate(params)]
    buffer_names = [f"state buffer {b.name!r}" for b in buffers]
    buffer_size = flat_param.tag.symopt_length
    # every node of the group waits for the check of all of it: none writes before it
    token = FusedCheck(shapes, buffer_size, names + buffer_names, len(buffers))(
        *params, *grads, *buffers, *counters)
    updates, current, offset = [], buffers, 0
    for start in range(0, len(params), CHUNK):
        chunk = slice(start, start + CHUNK)
        n = len(params[chunk])
        parallel = max(sizes[chunk]) >= fused_op.PARALLEL_MIN and (os.cpu_count() or 1) > 1
        op = FusedUpdate(composite, n, len(buffers), offset, parallel, shapes=shapes[chunk],
                         buffer_size=buffer_size, names=names[chunk] + buffer_names)
        out = op(*params[chunk], *grads[chunk], *current, *scalar_inputs, token)
        out = out if isinstance(out, list) else [out]
        updates += [(p, like_param(new, p)) for p, new in zip(params[chunk], out[:n], strict=True)]
        current = out[n:]
        offset += sum(sizes[chunk])
    updates += [(b, b.type.filter_variable(new)) for b, new in zip(buffers, current, strict=True)]
    return updates
