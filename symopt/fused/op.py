"""The :class:`FusedUpdate` Op: many parameters and their flat state buffers, one loop.

The rule's state for all parameters of a dtype lives in one flat buffer per accumulator
(``fused_float32.m`` holds every float32 parameter's ``m``, end to end, in the order of
``params``). One node updates a chunk of tensors: it reads each gradient where it is and
writes each parameter and its slice of the buffers, in place once PyTensor's in-place
rewrite allows it (registered here, as PyTensor registers its own).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.link.c.op import COp

from symopt.fused import c_code

__all__ = ["PARALLEL_MIN", "FusedUpdate"]

#: A tensor of at least this many elements is updated by all of Numba's threads
#: (``NUMBA_NUM_THREADS``) or OpenMP's; smaller ones by one (see benchmarks/README.md).
PARALLEL_MIN = 2**19


class FusedUpdate(COp):
    """Update many parameters and their flat state buffers in one elementwise loop.

    Inputs: ``n_tensors`` parameters, their ``n_tensors`` gradients, ``n_states`` flat
    state buffers (each as long as all parameters of the group; this node's parameters
    start at ``offset``), then the 0-d scalars of the loop body. Outputs: the new
    parameters, then the new state buffers. ``scalar_op`` maps ``(param, grad, state...,
    scalars...)`` to ``(new param, new state...)`` for one element. The in-place version
    (put in by a rewrite when it is safe, as PyTensor does for its own ops) overwrites
    the parameters and buffers. Its C code is in :mod:`symopt.fused.c_code`, its Numba
    code in :mod:`symopt.fused.numba_code`.
    """

    __props__ = ("scalar_op", "n_tensors", "n_states", "offset", "parallel", "inplace")

    def __init__(self, scalar_op, n_tensors, n_states, offset=0, parallel=False, inplace=False):
        self.scalar_op = scalar_op
        self.n_tensors = n_tensors
        self.n_states = n_states
        self.offset = offset
        self.parallel = parallel
        self.inplace = inplace
        if inplace:
            k = n_tensors
            self.destroy_map = {i: [i] for i in range(k)} | {
                k + j: [2 * k + j] for j in range(n_states)
            }

    def make_node(self, *inputs):
        from symopt.fused import numba_code

        numba_code.register()  # here, not at import: Numba takes half a second to import
        inputs = [pt.as_tensor_variable(x) for x in inputs]
        k, r = self.n_tensors, self.n_states
        if len(inputs) != 2 * k + self.scalar_op.nin - 2:
            raise ValueError(f"FusedUpdate expects {2 * k + self.scalar_op.nin - 2} inputs, "
                             f"got {len(inputs)}")
        outputs = [x.type() for x in inputs[:k]] + [x.type() for x in inputs[2 * k: 2 * k + r]]
        return Apply(self, inputs, outputs)

    def infer_shape(self, fgraph, node, shapes):
        k, r = self.n_tensors, self.n_states
        return list(shapes[:k]) + list(shapes[2 * k: 2 * k + r])

    def split(self, inputs):
        k, r = self.n_tensors, self.n_states
        return inputs[:k], inputs[k: 2 * k], inputs[2 * k: 2 * k + r], inputs[2 * k + r:]

    def perform(self, node, inputs, output_storage):
        params, grads, states, scalars = self.split(inputs)
        params = [_writable(p, self.inplace) for p in params]
        states = [s if self.inplace else s.copy() for s in states]
        from symopt.fused.numba_code import loop_over

        loop = loop_over(self.scalar_op, len(states), len(scalars))
        scalars = [c[()] for c in scalars]
        offset = self.offset
        for p, g in zip(params, grads, strict=True):
            end = offset + p.size
            loop(p.reshape(-1), np.ravel(g), *(s[offset:end] for s in states), *scalars)
            offset = end
        for storage, value in zip(output_storage, params + states, strict=True):
            storage[0] = value

    # C implementation: symopt.fused.c_code

    def c_headers(self, **kwargs):
        return self.scalar_op.c_headers(**kwargs)

    def c_header_dirs(self, **kwargs):
        return self.scalar_op.c_header_dirs(**kwargs)

    def c_compile_args(self, **kwargs):
        return c_code.compile_args(self.scalar_op, self._c_threads(), **kwargs)

    def _c_threads(self):
        """OpenMP for this node's large tensors: when asked for and the compiler has it
        (Apple's clang does not, by default)."""
        return self.parallel and c_code.openmp()

    def c_support_code(self, **kwargs):
        return c_code.body_op(self.scalar_op)[0].c_support_code(**kwargs)

    def c_support_code_apply(self, node, name):
        return c_code.loop_function(self, node, name, self._c_threads(), PARALLEL_MIN)

    def c_code_cache_version_apply(self, node):
        version = self.scalar_op.c_code_cache_version()
        return (8, PARALLEL_MIN, *version) if version else ()

    def c_code(self, node, name, inames, onames, sub):
        return c_code.node_code(self, node, name, inames, onames, sub)

    def __str__(self):
        flags = (", parallel" if self.parallel else "") + (", inplace" if self.inplace else "")
        return f"FusedUpdate{{{self.n_tensors} tensors, {self.n_states} states{flags}}}"


def _writable(array, inplace):
    """The array to write the new values into: itself when allowed, contiguous."""
    if inplace and array.flags.c_contiguous:
        return array
    return np.array(array, order="C", copy=True)


# the in-place rewrite

@node_rewriter([FusedUpdate], inplace=True)
def _fused_update_inplace(fgraph, node):
    if node.op.inplace:
        return False
    op = FusedUpdate(node.op.scalar_op, node.op.n_tensors, node.op.n_states, node.op.offset,
                     node.op.parallel, inplace=True)
    return op.make_node(*node.inputs).outputs


optdb.register(
    "symopt_fused_update_inplace",
    WalkingGraphRewriter(_fused_update_inplace, failure_callback=WalkingGraphRewriter.warn_inplace),
    "fast_run",
    "inplace",
    position=50.2,
)
