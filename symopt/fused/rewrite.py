"""Fusion as a compile-time rewrite: the fused, vectorised loop by default.

A rule builds plain, readable graphs; PyTensor's own fusion turns each parameter's update
into one elementwise loop (an ``Elemwise`` of a ``Composite``; tensors of one static
shape share one loop). When a function is compiled, these rewrites replace the loops of
symopt's rules:

- **C backends** (the C VM, ``mode="C"``; PyTensor 2's default, hence PyMC's): PyTensor's
  C code for such a loop is a scalar loop (gcc does not vectorise it), about 15 times
  slower than the roofline for Adam (benchmarks/README.md). :func:`flat_update` replaces
  each update by a one-tensor :class:`~symopt.fused.op.FusedUpdate`, whose C loop
  (:mod:`symopt.fused.c_code`) is vectorised and runs in place.
- **Many tensors** (C and Numba): :class:`GroupUpdates` then puts the updates of one rule
  into one node per chunk of tensors, so a model with a hundred parameters compiles a
  rule's kernel once, not a hundred loops (or, for tensors of one shape, one loop with
  hundreds of outputs). On Numba, whose own loop is at the roofline for one tensor, this
  happens only for a rule over eight tensors or more (:class:`FlatUpdatesNumba`), and
  for a rule whose loop branches on its scalars (RAdam), which Numba's own loop runs
  2.6 times slower (one-tensor nodes: :func:`_branches_on_scalars`), and for a tensor
  large enough to split over threads (Numba's own loop is serial).
- JAX and PyTorch keep PyTensor's loops (their compilers fuse on their own).

What is replaced is recognised from the compiled function's updates: a loop (or an
independent part of one, :func:`_pieces`) that reads one array (the gradient) and
writes shared variables that are its own inputs (the parameter and the rule's state, at
least one of them symopt state, so other libraries' loops are left alone), every array
of one dtype and number of dimensions, its other inputs scalars. Anything else stays as
it was. The loop computes what PyTensor's did, except that a float32 body is computed
in float32 where PyTensor's C code rounds its constants to double (as Numba's loop
already does): float64 results are identical, float32 ones differ from PyTensor's C
loop in the last bits. On Numba the loop body is the function PyTensor compiles for it.

Registered in PyTensor's rewrite database after PyTensor's fusion and before its
in-place pass, under ``fast_run`` and ``cxx_only`` for C and ``numba`` for Numba, all
also under ``symopt_fusion``: a mode that excludes it
(``get_mode("CVM").excluding("symopt_fusion")``) keeps PyTensor's loops.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import GraphRewriter, WalkingGraphRewriter, node_rewriter
from pytensor.graph.utils import InconsistencyError
from pytensor.tensor.elemwise import DimShuffle, Elemwise

from symopt.fused import op as fused_op
from symopt.fused.lowering import ancestors
from symopt.fused.plan import FUSE_MIN_TENSORS
from symopt.state import updated_by_symopt

__all__ = ["FlatUpdatesNumba", "GroupUpdates", "chunks", "flat_update"]


def _updated_inputs(fgraph, outputs, inputs):
    """For each of ``outputs``, the fgraph input (a shared variable) it updates, or None
    when one is not an update of one of ``inputs``."""
    mapping = getattr(fgraph, "update_mapping", None) or {}
    targets = []
    for out in outputs:
        target = None
        for client, index in fgraph.clients.get(out, ()):
            if _is_output(client, fgraph):
                position = _output_position(client, index)
                if position in mapping:
                    target = fgraph.inputs[mapping[position]]
        if target is None or target not in inputs:
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


def _zero_d(var):
    """A broadcastable scalar as the 0-d variable it was made from (a rule's step size,
    its counter's terms), so that every tensor's loop reads the same variable; else a
    new 0-d view of it."""
    while var.type.ndim and var.owner is not None and isinstance(var.owner.op, DimShuffle) \
            and _scalar_like(var.owner.inputs[0]):
        var = var.owner.inputs[0]
    return var.dimshuffle() if var.type.ndim else var


def _pieces(node):
    """The independent parts of an elementwise loop, as ``(scalar op, inputs, outputs)``.

    PyTensor fuses the loops of tensors of one shape into one loop (every parameter of
    a model whose tensors all have one static shape, for example); its outputs fall
    apart into groups that share no array input, one per parameter. Scalars (a step
    size) do not join groups: each part reads them.
    """
    scalar_op = node.op.scalar_op
    inner = scalar_op.inputs
    arrays = {i for i, x in enumerate(node.inputs) if not _scalar_like(x)}
    index = {v: i for i, v in enumerate(inner)}
    reads = [sorted(index[v] for v in ancestors([out]) if v in index)
             for out in scalar_op.outputs]
    parent = list(range(len(reads)))

    def root(j):
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    owner: dict[int, int] = {}
    for j, used in enumerate(reads):
        for i in used:
            if i in arrays:
                if i in owner:
                    parent[root(j)] = root(owner[i])
                else:
                    owner[i] = j
    parts: dict[int, list[int]] = {}
    for j in range(len(reads)):
        parts.setdefault(root(j), []).append(j)
    if len(parts) == 1:
        return [(scalar_op, list(node.inputs), list(node.outputs))]
    pieces = []
    for outs in parts.values():
        ins = sorted({i for j in outs for i in reads[j]})
        try:
            piece = ps.Composite([inner[i] for i in ins], [scalar_op.outputs[j] for j in outs])
        except Exception:  # noqa: BLE001 - a part PyTensor cannot make a loop of: keep it whole
            return [(scalar_op, list(node.inputs), list(node.outputs))]
        pieces.append((piece, [node.inputs[i] for i in ins], [node.outputs[j] for j in outs]))
    return pieces


def _one_tensor(fgraph, piece, c_code):
    """The one-tensor :class:`FusedUpdate` for a part of a loop that updates shared
    variables, as ``(op, inputs, outputs it replaces)``; None when ``piece`` (from
    :func:`_pieces`) is not such an update (or, with ``c_code``, some part of its body
    has no C code)."""
    scalar_op, node_inputs, node_outputs = piece
    if not isinstance(scalar_op, ps.Composite):
        return None
    targets = _updated_inputs(fgraph, node_outputs, node_inputs)
    if targets is None or len(set(targets)) != len(targets):
        return None
    if not any(updated_by_symopt(t) for t in targets):
        return None  # not a symopt rule's loop: other libraries' loops are left alone
    if len(set(node_inputs)) != len(node_inputs):
        return None
    arrays = [x for x in node_inputs if not _scalar_like(x)]
    reads = [x for x in arrays if x not in targets]
    first = targets[0]
    same = all(x.type.dtype == first.type.dtype and x.type.ndim == first.type.ndim
               and not any(x.type.broadcastable) for x in arrays)
    if len(reads) != 1 or not same or first.type.ndim == 0:
        return None
    if not all(target.type.is_super(out.type)
               for out, target in zip(node_outputs, targets, strict=True)):
        return None
    if c_code and not scalar_op.c_code_cache_version():
        return None

    # the body with its inputs as FusedUpdate reads them: parameter, gradient, states,
    # scalars; its outputs: new parameter, new states
    position = {x: i for i, x in enumerate(node_inputs)}
    scalars = [x for x in node_inputs if _scalar_like(x)]
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
    inputs = [*order[:len(targets) + 1], *(_zero_d(x) for x in scalars)]
    return op, inputs, list(node_outputs)


def _same_scalar(var):
    """What makes two scalar inputs the same: a constant's value, a view's op and
    input (each loop made its own 0-d view of a loop's result), else the variable."""
    if isinstance(var, Constant):
        return var.signature()
    if var.owner is not None and isinstance(var.owner.op, DimShuffle):
        return var.owner.op, var.owner.inputs[0]
    return var


def _apply(op, inputs):
    """The outputs of ``op`` on ``inputs`` and a constant token (no group check first)."""
    new = op(*inputs, pt.constant(np.zeros((), dtype="int8")))
    return new if isinstance(new, list) else [new]


def _flattened(fgraph, node, c_code):
    """The replacements of ``node``'s outputs when a part of its loop is a symopt update:
    each such part a one-tensor FusedUpdate, each other part a loop of its own; None
    when no part is one."""
    if not isinstance(node.op.scalar_op, ps.Composite):
        return None
    pieces = _pieces(node)
    found = [_one_tensor(fgraph, piece, c_code) for piece in pieces]
    if all(f is None for f in found):
        return None
    replace = {}
    for piece, one in zip(pieces, found, strict=True):
        if one is None:  # the part that is not an update stays PyTensor's loop
            scalar_op, inputs, outputs = piece
            new = Elemwise(scalar_op)(*inputs, return_list=True)
        else:
            op, inputs, outputs = one
            new = _apply(op, inputs)
        replace.update(zip(outputs, new, strict=True))
    return replace


@node_rewriter([Elemwise])
def flat_update(fgraph, node):
    """The symopt update loops of ``node`` as vectorised one-tensor FusedUpdates."""
    if not pytensor.config.cxx:
        return False
    return _flattened(fgraph, node, c_code=True) or False


class _ReplaceValidate(GraphRewriter):
    """A whole-graph rewrite that replaces with ``fgraph.replace_all_validate``."""

    def add_requirements(self, fgraph):
        from pytensor.graph.features import ReplaceValidate

        fgraph.attach_feature(ReplaceValidate())


class FlatUpdatesNumba(_ReplaceValidate):
    """On Numba, :func:`flat_update` for the loops of a rule over
    :data:`~symopt.fused.plan.FUSE_MIN_TENSORS` tensors or more, so that
    :class:`GroupUpdates` groups them. Numba's own loop runs at the roofline for one
    tensor; what grouping saves is the calls (Adam over 20 tensors of 1e4: 0.134 ms a
    step against 0.258 ms) and, with hundreds of tensors, compiling one loop per tensor.
    A smaller model keeps PyTensor's loops: a few microseconds a step are not worth
    Numba compiling a node for each new combination of its tensors' dimensions. The
    exceptions, taken for any number of tensors: a body that branches on its scalars
    (:func:`_branches_on_scalars`), which PyTensor's loop runs 2.6 times slower, and a
    tensor of :data:`~symopt.fused.op.PARALLEL_MIN` elements or more when Numba has more
    than one thread (``NUMBA_NUM_THREADS``, all cores by default), which FusedUpdate's
    loop splits over them (PyTensor's Numba loop is serial: at 2 threads and 1e6 float32,
    AdaBelief 193 us against 326 us, Yogi 183 against 335, the roofline 157; on one
    thread the two loops are within 5 %)."""

    def apply(self, fgraph):
        nodes = [n for n in fgraph.toposort() if isinstance(n.op, Elemwise)
                 and isinstance(n.op.scalar_op, ps.Composite)]
        found = {n: _flattened(fgraph, n, c_code=False) for n in nodes}
        found = {n: r for n, r in found.items() if r}
        # the one-tensor updates each node would become, counted per rule (the key by
        # which GroupUpdates groups them): only a rule with enough tensors is taken
        keys = {n: {_group_key(v.owner) for v in r.values()
                    if isinstance(v.owner.op, fused_op.FusedUpdate)} for n, r in found.items()}
        count = Counter(key for n in found for key in keys[n])
        # a tensor large enough for threads, when Numba has more than one (FusedUpdate's
        # parallel loop; Numba's own loop is serial, and as fast on one thread)
        import numba

        threads = numba.config.NUMBA_NUM_THREADS > 1
        parallel = {n: threads and any(v.owner.op.parallel for v in r.values()
                                       if isinstance(v.owner.op, fused_op.FusedUpdate))
                    for n, r in found.items()}
        for node, replace in found.items():
            if not parallel[node] and not any(
                    count[key] >= FUSE_MIN_TENSORS or _branches_on_scalars(key[0], key[1])
                    for key in keys[node]):
                continue
            try:
                fgraph.replace_all_validate(list(replace.items()), reason="symopt_flat_update")
            except InconsistencyError:
                continue


def _branches_on_scalars(body, n_states):
    """Whether a one-tensor loop body (parameter, gradient, ``n_states`` states, then
    scalars) picks, by a condition of its scalars alone, between values it computes, as
    RAdam's rectification does. PyTensor's Numba loop reads that condition from a
    broadcast array at every element (its in-place outputs could alias it), branches
    there and is not vectorised: RAdam over 1e6 float32 takes 811 us a step, 305 us in
    FusedUpdate's loop, which passes the scalars as arguments (the roofline: 324 us).
    A pick between an input and a constant (Rprop's first step) is vectorised as it is."""
    scalars = set(body.fgraph.inputs[2 + n_states:])
    for apply in body.fgraph.apply_nodes:
        if isinstance(apply.op, ps.Switch) \
                and any(branch.owner is not None for branch in apply.inputs[1:]):
            leaves = [v for v in ancestors([apply.inputs[0]]) if v.owner is None
                      and not isinstance(v, Constant)]
            if leaves and set(leaves) <= scalars:
                return True
    return False


def _group_key(node):
    """What one-tensor FusedUpdate nodes must share to be grouped: the loop body, the
    number of state arrays, the dtype and the scalar inputs."""
    op = node.op
    scalars = tuple(_same_scalar(x) for x in op.split(node.inputs)[3])
    return op.scalar_op, op.n_states, node.inputs[0].type.dtype, scalars


def _only_updates(fgraph, node):
    """Whether every output of ``node`` goes only to the function's outputs (nothing in
    the graph reads it, so no node of the graph can depend on it)."""
    return all(_is_output(client, fgraph)
               for out in node.outputs for client, _ in fgraph.clients.get(out, ()))


def chunks(n, size):
    """Chunk lengths for ``n`` tensors: ``size`` (a power of two) while they last, then
    the binary digits of the rest (37 tensors, ``size`` 16: 16, 16, 4, 1), so a rule
    has at most ``log2(size) + 1`` kernels, whatever the model."""
    lengths = [size] * (n // size)
    rest = n % size
    lengths += [1 << b for b in reversed(range(rest.bit_length())) if rest >> b & 1]
    return lengths


class GroupUpdates(_ReplaceValidate):
    """The one-tensor update loops of a rule, grouped: one :class:`FusedUpdate` node per
    ``chunk`` tensors.

    The loops that share the body, the dtype and the scalar inputs (the rule's step
    size, its step counter's terms) become nodes over up to ``chunk`` tensors, each
    tensor with its own state arrays (``shapes=None``: every call checks that each
    gradient and state array has its parameter's shape, before it writes anything). The
    chunk lengths are powers of two (:func:`chunks`) and nothing about the shapes is in
    a node's code, so a rule has at most three kernels (4, 2 and 1 tensors), compiled
    once whatever the model and then read from PyTensor's on-disk cache.

    Why 4: measured for Adam over 20 tensors of 1e4 (benchmarks/README.md), a node
    over 16 tensors took gcc 14 s and Numba 8 s to compile, one over 4 about 2 s, and
    the step was no slower (C 0.123 ms with 4, 0.159 ms with 16; Numba 0.133 ms
    either way, against 0.258 ms for PyTensor's 20 loops). Only loops whose results go
    only to the function's outputs are grouped, so grouping cannot make a cycle.

    ``min_tensors``: a rule over fewer tensors keeps its one-tensor nodes (on Numba,
    where a node of its own is compiled for each chunk length and each combination of
    its tensors' dimensions, and a one-tensor node's step is as fast).
    """

    def __init__(self, chunk=4, min_tensors=2):
        super().__init__()
        self.chunk = chunk
        self.min_tensors = min_tensors

    def apply(self, fgraph):
        groups: dict[tuple, list] = {}
        for node in fgraph.toposort():
            op = node.op
            if (isinstance(op, fused_op.FusedUpdate) and op.shapes is None
                    and not op.inplace and op.n_tensors == 1
                    and _only_updates(fgraph, node)):
                groups.setdefault(_group_key(node), []).append(
                    (op, node.inputs[:-1], node.outputs))
        for members in groups.values():
            if len(members) < self.min_tensors:
                continue
            start = 0
            for length in chunks(len(members), self.chunk):
                if length > 1:
                    _group(fgraph, members[start:start + length])
                start += length


def _group(fgraph, members):
    """Replace one-tensor updates, ``(op, inputs, outputs)``, by one node over them."""
    parts = [op.split([*inputs, None]) for op, inputs, _ in members]
    first = members[0][0]
    op = fused_op.FusedUpdate(first.scalar_op, len(members), first.n_states, 0,
                              any(op.parallel for op, _, _ in members), shapes=None,
                              buffer_size=None)
    new = _apply(op, [*(x for part in parts for x in part[0]),
                      *(x for part in parts for x in part[1]),
                      *(x for part in parts for x in part[2]), *parts[0][3]])
    # the group's outputs: the parameters, then each tensor's states, tensor by tensor
    old = [out[0] for _, _, out in members] + [x for _, _, out in members for x in out[1:]]
    try:
        fgraph.replace_all_validate(list(zip(old, new, strict=True)),
                                    reason="symopt_group_updates")
    except InconsistencyError:  # a graph the group would break keeps its nodes
        return


# C backends (the C VM, mode="C"): every symopt update loop becomes a vectorised
# FusedUpdate, then those of a rule are grouped. Numba (which excludes cxx_only): the
# same for a rule over FUSE_MIN_TENSORS tensors or more (a rule whose body branches on
# its scalars, and a tensor large enough for Numba's threads: one-tensor nodes for any
# number of tensors). JAX and PyTorch keep
# PyTensor's loops. The tag "symopt_fusion" turns all of it off:
# get_mode(...).excluding("symopt_fusion").
optdb.register("symopt_flat_update", WalkingGraphRewriter(flat_update),
               "fast_run", "cxx_only", "symopt_fusion", position=49.4)
optdb.register("symopt_flat_update_numba", FlatUpdatesNumba(),
               "numba", "symopt_fusion", position=49.4)
optdb.register("symopt_group_updates", GroupUpdates(),
               "fast_run", "cxx_only", "symopt_fusion", position=49.45)
optdb.register("symopt_group_updates_numba", GroupUpdates(min_tensors=FUSE_MIN_TENSORS),
               "numba", "symopt_fusion", position=49.45)
