"""Many vectors joined into one on Numba, a few at a time, in place.

PyTensor's Numba code for ``Join`` is ``np.concatenate(tensors)``, one call that takes
every part. Numba passes each array to a compiled call as seven machine arguments, and
LLVM's optimisation of a call grows with the square of its arguments: with PyTensor's
``Join`` the 100 gradients of a :class:`symopt.FlatParameters` vector took most of a
30 s cold compile (measured while writing this; a Numba function calling another with
100 arrays compiles in 19 s, with 50 in 7 s).

:func:`join_in_chunks` is the compile-time rewrite that replaces a ``Join`` of
:data:`MIN_PARTS` vectors or more, of static lengths, along their one axis, by an empty
vector of the total length and a chain of :class:`WriteVectors` nodes, each writing
:data:`CHUNK` parts at their static offset, in place: each element is written once, and
no call takes more than :data:`CHUNK` arrays. On Numba only (tag ``symopt_fusion``, as
the other rewrites of this package); the C backends, JAX and PyTorch keep ``Join``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.tensor.basic import Join

from symopt._backend_hooks import register_numba

__all__ = ["CHUNK", "MIN_PARTS", "WriteVectors", "join_in_chunks"]

#: The fewest vectors whose ``Join`` the rewrite takes (a short join compiles quickly).
MIN_PARTS = 16
#: The vectors one :class:`WriteVectors` node writes.
CHUNK = 8


def _check(length, start, sizes):
    """The error for parts that do not fit the vector from ``start``, or None."""
    if start < 0 or start + sum(sizes) > length:
        return ValueError(f"WriteVectors: parts of {sum(sizes)} elements from element "
                          f"{start} do not fit a vector of {length}")
    return None


class WriteVectors(Op):
    """Vectors written end to end into ``buffer`` from element ``start``.

    Inputs: ``buffer`` (a vector), ``start`` (an integer scalar) and the parts (vectors of
    the buffer's dtype). Output: the buffer with the parts written (in place when
    ``inplace``). Parts that do not fit raise ValueError before anything is written.
    """

    __props__ = ("inplace",)

    def __init__(self, inplace=False):
        self.inplace = bool(inplace)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def make_node(self, buffer, start, *parts):
        """The node, after checking that the buffer and every part are vectors of one
        dtype and ``start`` an integer scalar."""
        buffer, start, *parts = (pt.as_tensor_variable(x) for x in (buffer, start, *parts))
        if not parts or any(x.type.ndim != 1 or x.type.dtype != buffer.type.dtype
                            for x in (buffer, *parts)):
            raise TypeError("WriteVectors: the buffer and the parts must be vectors of one "
                            f"dtype, got {[str(x.type) for x in (buffer, *parts)]}")
        if start.type.ndim != 0 or start.type.dtype != "int64":
            raise TypeError(f"WriteVectors: start must be an int64 scalar, got {start.type}")
        register_numba(WriteVectors, lambda op, node: (
            _numba_write(op.inplace), f"symopt.WriteVectors-2-{op.inplace}"))
        return Apply(self, [buffer, start, *parts], [buffer.type()])

    def perform(self, node, inputs, output_storage):
        """NumPy: the same check, then the parts written."""
        buffer, start, *parts = inputs
        start = int(start)
        error = _check(buffer.shape[0], start, [p.shape[0] for p in parts])
        if error is not None:
            raise error
        if not self.inplace:
            buffer = buffer.copy()
        for part in parts:
            buffer[start:start + part.shape[0]] = part
            start += part.shape[0]
        output_storage[0][0] = buffer

    def infer_shape(self, fgraph, node, shapes):
        """The buffer's shape."""
        return [shapes[0]]


@functools.cache
def _numba_write(inplace):
    """One compiled function for every node of one ``inplace``. Each part is copied by
    ``put``, compiled once per part type: a slice assignment, unrolled per part, made
    Numba compile its shape check again for every part (a fifth of the cold compile)."""
    from numba import literal_unroll
    from pytensor.link.numba.dispatch.basic import numba_njit

    @numba_njit
    def put(out, start, part):
        for j in range(part.shape[0]):
            out[start + j] = part[j]
        return start + part.shape[0]

    def write_vectors(buffer, first, *parts):
        start = first.item()
        total = 0
        for part in literal_unroll(parts):
            total += part.shape[0]
        if start < 0 or start + total > buffer.shape[0]:
            raise ValueError("WriteVectors: the parts do not fit the vector")
        out = buffer if inplace else buffer.copy()
        for part in literal_unroll(parts):
            start = put(out, start, part)
        return out

    return numba_njit(write_vectors)


@node_rewriter([Join])
def join_in_chunks(fgraph, node):
    """A ``Join`` of :data:`MIN_PARTS` vectors or more, of static lengths and the output's
    dtype, along their one axis: an empty vector and a chain of :class:`WriteVectors`."""
    axis, *parts = node.inputs
    out = node.outputs[0]
    if len(parts) < MIN_PARTS or out.type.ndim != 1:
        return False
    if not (isinstance(axis, Constant) and int(axis.data) in (0, -1)):
        return False
    if any(p.type.ndim != 1 or p.type.dtype != out.type.dtype or p.type.shape[0] is None
           for p in parts):
        return False
    sizes = [p.type.shape[0] for p in parts]
    buffer = pt.empty((sum(sizes),), dtype=out.type.dtype)
    start = 0
    for first in range(0, len(parts), CHUNK):
        chunk = parts[first:first + CHUNK]
        buffer = WriteVectors()(buffer, np.int64(start), *chunk)
        start += sum(sizes[first:first + CHUNK])
    if not out.type.is_super(buffer.type):
        buffer = pt.specify_shape(buffer, out.type.shape)
    return [buffer]


@node_rewriter([WriteVectors], inplace=True)
def _write_vectors_inplace(fgraph, node):
    if node.op.inplace:
        return False
    return WriteVectors(inplace=True).make_node(*node.inputs).outputs


# late, after PyTensor's own Join rewrites have merged and dropped empty parts
optdb.register("symopt_join_in_chunks_numba", WalkingGraphRewriter(join_in_chunks),
               "numba", "symopt_fusion", position=49.3)
optdb.register("symopt_write_vectors_inplace",
               WalkingGraphRewriter(_write_vectors_inplace,
                                    failure_callback=WalkingGraphRewriter.warn_inplace),
               "fast_run", "inplace", position=50.2)
