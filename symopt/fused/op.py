"""The :class:`FusedUpdate` Op: many parameters and their flat state buffers, one loop.

The rule's state for all parameters of a dtype lives in one flat buffer per accumulator
(``fused_float32.m`` holds every float32 parameter's ``m``, end to end, in the order of
``params``). One node updates a chunk of tensors: it reads each gradient where it is and
writes each parameter and its slice of the buffers, in place once PyTensor's in-place
rewrite allows it (registered here, as PyTensor registers its own).

The offsets into the buffers are baked into the nodes, so nothing may run on a parameter,
a gradient or a buffer of another shape. Before any node of a group writes anything, a
:class:`FusedCheck` node checks the whole group: each parameter has the shape its slot
was built for, each gradient its parameter's shape, each buffer its length; every
:class:`FusedUpdate` node waits for it and checks its own tensors again. A wrong shape
raises a :class:`ValueError` that names the variable, the expected and the actual shape
(:func:`shape_error`), from Python, C and Numba alike; the group's parameters, buffers
and step counters are then untouched (the check reads the counters, so PyTensor cannot
increment them in place before it).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.link.c.op import COp

from symopt.fused import c_code

__all__ = ["PARALLEL_MIN", "FusedCheck", "FusedUpdate", "raise_shape_error", "shape_checks",
           "shape_error"]

#: A tensor of at least this many elements is updated by all of Numba's threads
#: (``NUMBA_NUM_THREADS``) or OpenMP's; smaller ones by one (see benchmarks/README.md).
PARALLEL_MIN = 2**19


def _layout(shapes, buffer_size, names, n_states):
    """The checked ``(shapes, buffer_size, names)`` of a node; default names."""
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    k = len(shapes)
    if names is None:
        names = ([f"parameter {i} of this fused update" for i in range(k)]
                 + [f"state buffer {j} of this fused update" for j in range(n_states)])
    names = tuple(str(n) for n in names)
    if len(names) != k + n_states:
        raise ValueError(f"{len(names)} names for {k} tensors and {n_states} buffers")
    return shapes, int(buffer_size), names


def shape_checks(shapes, buffer_size, names, n_states):
    """``(input index, expected shape, prefix, suffix)`` for every input a node checks:
    the parameters (inputs ``0..k-1``), the gradients (``k..2k-1``, each its parameter's
    shape) and the buffers (``2k..2k+n_states-1``). The error for a wrong shape is
    ``prefix + <the shape, as Python prints it> + suffix``, the same text from Python, C
    and Numba."""
    k = len(shapes)
    params = [(i, shape, *shape_error("param", name, shape))
              for i, (shape, name) in enumerate(zip(shapes, names[:k]))]
    grads = [(k + i, shape, *shape_error("grad", name, shape))
             for i, (shape, name) in enumerate(zip(shapes, names[:k]))]
    buffers = [(2 * k + j, (buffer_size,), *shape_error("buffer", names[k + j], (buffer_size,)))
               for j in range(n_states)]
    return params + grads + buffers


def shape_error(kind, name, expected):
    """The error of a fused update's shape check, as ``(prefix, suffix)`` around the
    actual shape: ``kind`` is ``"param"``, ``"grad"`` or ``"buffer"``."""
    if kind == "param":
        return (f"{name} has shape ",
                f", but its fused update was built for shape {expected} (its slot in the "
                "flat state buffers): rebuild the updates and the function after giving a "
                "parameter a new shape")
    if kind == "grad":
        return (f"the gradient of {name} has shape ",
                f"; a gradient must have its parameter's shape, {expected}")
    if kind == "buffer":
        return (f"{name} has shape ",
                f", but its fused update was built for shape {expected}; set a "
                "parameter's state through symopt.get_state or symopt.load_state")
    raise ValueError(f"unknown kind {kind!r}")


def raise_shape_error(prefix, suffix, array):
    """Raise the error of a shape check (:func:`shape_error`) for ``array``."""
    raise ValueError(prefix + str(_shape(array)) + suffix)


def _shape(array):
    """An array's shape as a plain tuple (a torch tensor's prints as torch.Size)."""
    return tuple(int(d) for d in np.shape(array))


def _check_shapes(checks, inputs):
    """Raise the error of the first input whose shape is not the one it was built for."""
    for index, shape, prefix, suffix in checks:
        if np.shape(inputs[index]) != shape:
            raise_shape_error(prefix, suffix, inputs[index])


def _check_like_param(arrays):
    """``shapes=None``: the gradient and every state array have the parameter's shape."""
    param, grad, *states = arrays
    for what, array in [("the gradient", grad)] + [(f"state array {j}", a)
                                                   for j, a in enumerate(states)]:
        if np.shape(array) != np.shape(param):
            raise ValueError(f"{what} of a parameter of shape {_shape(param)} has shape "
                             f"{_shape(array)}; it must have the parameter's shape")


class FusedCheck(COp):
    """The shape checks of a whole dtype group, before any of its nodes runs.

    Inputs: the group's parameters, their gradients, its flat state buffers, then its
    scalar state (the step counters, only read: reading them keeps PyTensor from
    incrementing them in place before the check). Output: a 0-d ``int8`` token that every
    :class:`FusedUpdate` node of the group takes as its last input, so none runs before
    the check has passed.
    """

    __props__ = ("shapes", "buffer_size", "names", "n_states")

    def __init__(self, shapes, buffer_size, names, n_states):
        self.n_states = int(n_states)
        self.shapes, self.buffer_size, self.names = _layout(shapes, buffer_size, names,
                                                            self.n_states)
        self.n_tensors = len(self.shapes)

    def make_node(self, *inputs):
        from symopt.fused import numba_code

        numba_code.register()
        inputs = [pt.as_tensor_variable(x) for x in inputs]
        if len(inputs) < 2 * self.n_tensors + self.n_states:
            raise ValueError(f"FusedCheck expects at least {2 * self.n_tensors + self.n_states}"
                             f" inputs, got {len(inputs)}")
        return Apply(self, inputs, [pt.tensor(dtype="int8", shape=())])

    def checks(self):
        return shape_checks(self.shapes, self.buffer_size, self.names, self.n_states)

    def infer_shape(self, fgraph, node, shapes):
        return [()]

    def perform(self, node, inputs, output_storage):
        _check_shapes(self.checks(), inputs)
        output_storage[0][0] = np.zeros((), dtype="int8")

    def c_support_code(self, **kwargs):
        return c_code.CHECK_SUPPORT_CODE

    def c_code_cache_version(self):
        """The version of the check's C code, part of PyTensor's cache key."""
        return (1,)

    def c_code(self, node, name, inames, onames, sub):
        return c_code.check_node_code(self, inames, onames[0], sub["fail"])

    def __str__(self):
        return f"FusedCheck{{{self.n_tensors} tensors, {self.n_states} states}}"


class FusedUpdate(COp):
    """Update many parameters and their flat state buffers in one elementwise loop.

    Inputs: ``n_tensors`` parameters, their ``n_tensors`` gradients, ``n_states`` flat
    state buffers (each as long as all parameters of the group; this node's parameters
    start at ``offset``), the 0-d scalars of the loop body, and last the token of the
    group's :class:`FusedCheck`. Outputs: the new parameters, then the new state
    buffers. ``scalar_op`` maps ``(param, grad, state..., scalars...)`` to ``(new param,
    new state...)`` for one element. The in-place version (put in by a rewrite when it is
    safe, as PyTensor does for its own ops) overwrites the parameters and buffers. Its C
    code is in :mod:`symopt.fused.c_code`, its Numba code in
    :mod:`symopt.fused.numba_code`.

    ``shapes`` are the parameters' shapes (each gradient must have its parameter's) and
    ``buffer_size`` the buffers' length, the layout the offsets were computed for;
    ``names`` names the parameters, then the buffers, in the errors of the checks that
    every call makes before it touches any memory (:func:`shape_error`).
    """

    __props__ = ("scalar_op", "n_tensors", "n_states", "offset", "parallel", "inplace",
                 "shapes", "buffer_size", "names")

    def __init__(self, scalar_op, n_tensors, n_states, offset=0, parallel=False, inplace=False,
                 *, shapes, buffer_size, names=None):
        self.scalar_op = scalar_op
        self.n_tensors = n_tensors
        self.n_states = n_states
        self.offset = offset
        self.parallel = parallel
        self.inplace = inplace
        if shapes is None:  # each tensor with state arrays of its shape (fused.rewrite)
            if offset:
                raise ValueError("FusedUpdate: shapes=None is for tensors whose state "
                                 "arrays have their shapes, at offset 0")
            self.shapes, self.buffer_size, self.names = None, None, None
        else:
            self.shapes, self.buffer_size, self.names = _layout(shapes, buffer_size, names,
                                                                n_states)
        if self.shapes is not None and len(self.shapes) != n_tensors:
            raise ValueError(f"FusedUpdate: {len(self.shapes)} shapes for {n_tensors} tensors")
        end = offset + sum(int(np.prod(shape, dtype=np.int64)) for shape in self.shapes or ())
        if self.shapes is not None and end > self.buffer_size:
            raise ValueError(f"FusedUpdate: the tensors end at {end}, past the buffers' "
                             f"length {self.buffer_size}")
        if inplace:
            k = n_tensors
            self.destroy_map = {i: [i] for i in range(k)} | {
                k + j: [2 * k + j] for j in range(self.n_state_arrays)
            }

    @property
    def n_state_arrays(self):
        """The state inputs: ``n_states`` flat buffers, or with ``shapes=None`` each
        tensor's own ``n_states`` arrays, tensor by tensor."""
        return self.n_states * (self.n_tensors if self.shapes is None else 1)

    def make_node(self, *inputs):
        from symopt.fused import numba_code

        numba_code.register()  # here, not at import: Numba takes half a second to import
        inputs = [pt.as_tensor_variable(x) for x in inputs]
        k, r = self.n_tensors, self.n_state_arrays
        expected = 2 * k + r + self.scalar_op.nin - 2 - self.n_states + 1
        if len(inputs) != expected:
            raise ValueError(f"FusedUpdate expects {expected} inputs, got {len(inputs)}")
        for x, shape in zip(inputs[:2 * k], (self.shapes or ()) * 2):
            if x.ndim != len(shape):
                raise ValueError(f"FusedUpdate: an input has {x.ndim} dimensions for a "
                                 f"parameter of shape {shape}")
        if self.shapes is None:  # each output as static as its parameter's and gradient's
            s = self.n_states
            types = [_merged(p.type, g.type) for p, g in zip(inputs[:k], inputs[k:2 * k])]
            outputs = [t() for t in types] + [
                _merged(types[i], x.type)() for i in range(k)
                for x in inputs[2 * k + i * s: 2 * k + (i + 1) * s]]
        else:
            outputs = [x.type() for x in inputs[:k]] + [x.type()
                                                        for x in inputs[2 * k: 2 * k + r]]
        return Apply(self, inputs, outputs)

    def infer_shape(self, fgraph, node, shapes):
        k, r = self.n_tensors, self.n_state_arrays
        return list(shapes[:k]) + list(shapes[2 * k: 2 * k + r])

    def split(self, inputs):
        """``(params, grads, states, scalars)``; the check's token, last, is left out."""
        k, r = self.n_tensors, self.n_state_arrays
        return inputs[:k], inputs[k: 2 * k], inputs[2 * k: 2 * k + r], inputs[2 * k + r: -1]

    def tensor_states(self, states, i):
        """Tensor ``i``'s own state arrays out of ``states`` (``shapes=None``)."""
        r = self.n_states
        return states[i * r:(i + 1) * r]

    def checks(self):
        """The checks against the layout's shapes (none for ``shapes=None``)."""
        if self.shapes is None:
            return []
        return shape_checks(self.shapes, self.buffer_size, self.names, self.n_states)

    def perform(self, node, inputs, output_storage):
        _check_shapes(self.checks(), inputs)
        params, grads, states, scalars = self.split(inputs)
        if self.shapes is None:
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                _check_like_param([p, g, *self.tensor_states(states, i)])
        params = [_writable(p, self.inplace) for p in params]
        states = [_writable(s, self.inplace) if self.shapes is None
                  else s if self.inplace else s.copy() for s in states]
        from symopt.fused.numba_code import loop_over

        loop = loop_over(self.scalar_op, self.n_states, len(scalars))
        scalars = [c[()] for c in scalars]
        offset = self.offset
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            end = offset + p.size
            own = ([s.reshape(-1) for s in self.tensor_states(states, i)] if self.shapes is None
                   else [s[offset:end] for s in states])
            loop(p.reshape(-1), np.ravel(g), *own, *scalars)
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
        return (c_code.body_op(self.scalar_op)[0].c_support_code(**kwargs)
                + c_code.CHECK_SUPPORT_CODE)

    def c_support_code_apply(self, node, name):
        return c_code.loop_function(self, node, name, self._c_threads(), PARALLEL_MIN)

    def c_code_cache_version_apply(self, node):
        version = self.scalar_op.c_code_cache_version()
        return (11, PARALLEL_MIN, c_code.BLOCK, *version) if version else ()

    def c_code(self, node, name, inames, onames, sub):
        return c_code.node_code(self, node, name, inames, onames, sub)

    def __str__(self):
        flags = (", parallel" if self.parallel else "") + (", inplace" if self.inplace else "")
        return f"FusedUpdate{{{self.n_tensors} tensors, {self.n_states} states{flags}}}"


def _merged(main, other):
    """``main`` with each unknown dimension that ``other`` knows: the checks at every call
    make the arrays' shapes equal."""
    shape = tuple(d if d is not None else e for d, e in zip(main.shape, other.shape,
                                                             strict=True))
    return main.clone(shape=shape)


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
                     node.op.parallel, inplace=True, shapes=node.op.shapes,
                     buffer_size=node.op.buffer_size, names=node.op.names)
    return op.make_node(*node.inputs).outputs


optdb.register(
    "symopt_fused_update_inplace",
    WalkingGraphRewriter(_fused_update_inplace, failure_callback=WalkingGraphRewriter.warn_inplace),
    "fast_run",
    "inplace",
    position=50.2,
)
