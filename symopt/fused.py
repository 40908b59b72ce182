r"""One fused update for many parameter tensors (the multi-tensor path).

A network has tens to hundreds of parameter tensors. The per-tensor path gives each its
own fused elementwise loop, so a compiled training function holds one update kernel per
tensor: PyTensor compiles each (minutes for a hundred in C or Numba) and pays a call per
tensor at every step. The multi-tensor path builds one :class:`FusedUpdate` node per
dtype instead:

- the rule's state for all parameters of that dtype lives in one flat buffer per
  accumulator (``fused_float32.m`` holds every float32 parameter's ``m``, end to end, in the
  order of ``params``);
- one loop runs the rule's elementwise equations over every tensor in turn, reading each
  gradient where it is and writing each parameter and its slice of the state in place;
- the scalars (hyperparameters, step counters, bias corrections) are computed once per
  step by ordinary PyTensor ops and passed in.

The loop body is the rule's own graph: the transform is applied once to a flat stand-in
for the parameters, rewritten by PyTensor's usual algebraic rewrites, and turned into a
scalar :class:`~pytensor.scalar.basic.Composite`, so a fused update computes what the
per-tensor path computes, operation for operation. The loop is compiled by Numba (every
backend) and, for PyTensor's C linkers, from the composite's own C code, with its float
constants typed (so float32 is computed in float32, as the graph says, where PyTensor's
own C loops compute in double) and written so that gcc vectorises it; a tensor of
``PARALLEL_MIN`` elements or more is split over Numba's or OpenMP's threads.

Only elementwise transforms can be fused (every rule of symopt, the momentum traces,
value clipping, weight decay). Blocks that look across elements (global-norm clipping,
the NaN guard) are not: ``fuse=True`` then raises a :class:`NotFusable` error that says
which, and ``fuse="auto"`` keeps the per-tensor path.

State is saved and restored under the per-tensor names (``W.m``, ``b.m``, ...), so a
checkpoint written by one path loads into the other.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply, Constant, clone_get_equiv
from pytensor.graph.fg import FunctionGraph
from pytensor.link.c.op import COp
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.tensor.elemwise import DimShuffle, Elemwise

from symopt._checks import like_param
from symopt.state import StateTag, state_tag

try:  # PyTensor 3
    from pytensor.graph.traversal import ancestors, graph_inputs, toposort
except ImportError:  # PyTensor 2
    from pytensor.graph.basic import ancestors, graph_inputs, io_toposort

    def toposort(outputs):
        return io_toposort(list(graph_inputs(outputs)), outputs)

__all__ = ["FUSE_MIN_TENSORS", "FusedUpdate", "NotFusable", "auto_min_tensors",
           "default_backend_is_c", "fused_apply"]

#: With Numba the default backend, ``fuse="auto"`` fuses a dtype group of at least this
#: many tensors (below it the two paths run alike); with a C backend the default, it fuses
#: any group, the fused C loop being the fast one (see :func:`default_backend_is_c`).
FUSE_MIN_TENSORS = 8

#: Tensors per :class:`FusedUpdate` node (see :func:`_group_updates`).
CHUNK = 16

#: With Numba, a tensor of at least this many elements is updated by all of Numba's
#: threads (``NUMBA_NUM_THREADS``); smaller ones by one (see benchmarks/README.md).
PARALLEL_MIN = 2**19


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


class NotFusable(ValueError):
    """A transform cannot run as one fused elementwise loop; the message says why."""


# ---------------------------------------------------------------------------------------
# building the fused updates


def fused_apply(transform, grads, params, strict=True):
    """Updates for ``params`` with :class:`FusedUpdate` nodes, one group per dtype.

    ``grads`` are the gradients, one per parameter (already checked). The transform runs
    once, on one flat stand-in parameter per dtype, so its scalar state (a step counter)
    is one variable, as on the per-tensor path. With ``strict=False`` a transform that
    cannot be fused returns None instead of raising, and the caller falls back to the
    per-tensor path.
    """
    groups = OrderedDict()
    for p, g in zip(params, grads, strict=True):
        groups.setdefault(p.dtype, []).append((p, like_param(g, p)))
    flat_params, flat_grads = [], []
    for dtype, members in groups.items():
        size = sum(p.get_value(borrow=True).size for p, _ in members)
        flat_params.append(pt.tensor(dtype=dtype, shape=(size,), name=f"fused_{dtype}"))
        flat_grads.append(pt.tensor(dtype=dtype, shape=(size,), name=f"fused_{dtype}.grad"))
    try:
        updates, scalar_state = _fuse(transform, list(groups.values()), flat_params, flat_grads)
    except NotFusable:
        if strict:
            raise
        return None
    return updates + scalar_state


def _fuse(transform, groups, flat_params, flat_grads):
    try:
        steps, state = getattr(transform, "transform", transform)(flat_grads, flat_params)
    except NotFusable:
        raise
    except Exception as err:  # a block that needs a real parameter (its value, its shape)
        raise NotFusable(f"the transform does not run on a flat vector of parameters: {err}")

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
            var.tag.symopt_state = StateTag(rule=tag.rule, role=tag.role, members=tuple(params))
        updates += _group_updates(members, flat_param, flat_grad, step, group_buffers,
                                  stand_ins)
    return updates, scalar_state


def _group_updates(members, flat_param, flat_grad, step, buffer_pairs, stand_ins):
    """The updates of one dtype group: one :class:`FusedUpdate` node per chunk."""
    params = [p for p, _ in members]
    grads = [g for _, g in members]
    buffers = [var for var, _ in buffer_pairs]
    outputs = [flat_param + step] + [value for _, value in buffer_pairs]
    composite, scalar_inputs = _loop_body(outputs, [flat_param, flat_grad] + buffers)
    if any(a in stand_ins for a in ancestors(scalar_inputs)):
        raise NotFusable(
            "the transform reduces across elements (a norm, a sum or a test over all "
            "steps), which one elementwise loop cannot compute"
        )

    # One node per chunk of tensors, the buffers passed from node to node: a C function
    # with hundreds of arguments takes gcc minutes, a few of sixteen take seconds.
    sizes = [p.get_value(borrow=True).size for p in params]
    updates, current, offset = [], buffers, 0
    for start in range(0, len(params), CHUNK):
        chunk = slice(start, start + CHUNK)
        n = len(params[chunk])
        parallel = max(sizes[chunk]) >= PARALLEL_MIN and (os.cpu_count() or 1) > 1
        op = FusedUpdate(composite, n, len(buffers), offset, parallel)
        out = op(*params[chunk], *grads[chunk], *current, *scalar_inputs)
        out = out if isinstance(out, list) else [out]
        updates += [(p, like_param(new, p)) for p, new in zip(params[chunk], out[:n], strict=True)]
        current = out[n:]
        offset += sum(sizes[chunk])
    updates += [(b, b.type.filter_variable(new)) for b, new in zip(buffers, current, strict=True)]
    return updates


def _rewritten(outputs):
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


def _loop_body(outputs, vector_inputs):
    """The scalar composite that computes ``outputs`` element by element.

    Returns the composite (inputs: one scalar per vector input, then the scalar inputs)
    and the 0-d tensors to pass as its scalar inputs.
    """
    outputs = _rewritten(outputs)
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
                if owner is not None and isinstance(owner.op, DimShuffle) and owner.inputs[0].ndim == 0:
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


# ---------------------------------------------------------------------------------------
# the Op


class FusedUpdate(COp):
    """Update many parameters and their flat state buffers in one elementwise loop.

    Inputs: ``n_tensors`` parameters, their ``n_tensors`` gradients, ``n_states`` flat
    state buffers (each as long as all parameters of the group; this node's parameters
    start at ``offset``), then the 0-d scalars of the loop body. Outputs: the new
    parameters, then the new state buffers. ``scalar_op`` maps ``(param, grad, state...,
    scalars...)`` to ``(new param, new state...)`` for one element. The in-place version (put in by a rewrite when it is safe, as PyTensor does
    for its own ops) overwrites the parameters and buffers.
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
        _register_numba()  # here, not at import: Numba takes half a second to import
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
        loop = _loop(self.scalar_op, len(states), len(scalars))
        scalars = [c[()] for c in scalars]
        offset = self.offset
        for p, g in zip(params, grads, strict=True):
            end = offset + p.size
            loop(p.reshape(-1), np.ravel(g), *(s[offset:end] for s in states), *scalars)
            offset = end
        for storage, value in zip(output_storage, params + states, strict=True):
            storage[0] = value

    # C implementation: one loop per tensor, its body the composite's own C code (float
    # constants typed, sign as selects: see _c_body_op), compiled with PyTensor's flags plus
    # -fno-trapping-math, and OpenMP for large tensors.

    def c_headers(self, **kwargs):
        return self.scalar_op.c_headers(**kwargs)

    def c_header_dirs(self, **kwargs):
        return self.scalar_op.c_header_dirs(**kwargs)

    def c_compile_args(self, **kwargs):
        # a large tensor's loop runs on OpenMP's threads (OMP_NUM_THREADS), as on Numba's
        # -fno-trapping-math lets gcc turn the selects of rprop, clipping and amsgrad into
        # vector blends (PyTensor never reads floating-point exception flags)
        return (self.scalar_op.c_compile_args(**kwargs) + ["-fno-trapping-math"]
                + (["-fopenmp"] if self._c_threads() else []))

    def _c_threads(self):
        """OpenMP for this node's large tensors: when asked for and the compiler has it
        (Apple's clang does not, by default)."""
        return self.parallel and _c_openmp()

    def c_support_code(self, **kwargs):
        return self._c_body_op()[0].c_support_code(**kwargs)

    def c_support_code_apply(self, node, name):
        # The loop over one tensor is a function of its own, its arrays `__restrict__`:
        # inlined into the loop over tensors, gcc left it scalar from three tensors on.
        r, ctype = self.n_states, f"npy_{node.inputs[0].dtype}"
        scalar_types = [x.type.dtype_specs()[1] for x in self.scalar_op.inputs[2 + r:]]
        body_in = ["p_v", "g_v"] + [f"s{j}_v" for j in range(r)] + [
            f"c{j}_v" for j in range(len(scalar_types))]
        body_out = ["p_new"] + [f"s{j}_new" for j in range(r)]
        constants, body, support = self._c_body(name, body_in, body_out, {"fail": "return;"})
        pragma = (f"#pragma omp parallel for simd schedule(static) if(n >= {PARALLEL_MIN})"
                  if self._c_threads() else "#pragma GCC ivdep")
        args = ", ".join(
            [f"npy_intp n, {ctype}* __restrict__ P, const {ctype}* __restrict__ G"]
            + [f"{ctype}* __restrict__ S{j}" for j in range(r)]
            + [f"{t} c{j}_v" for j, t in enumerate(scalar_types)])
        loads = "".join(f"{ctype} s{j}_v = S{j}[j];\n" for j in range(r))
        decls = "".join(f"{ctype} s{j}_new;\n" for j in range(r))
        stores = "".join(f"S{j}[j] = s{j}_new;\n" for j in range(r))
        loop = f"""
        static __attribute__((noinline)) void {name}_loop({args}) {{
            {constants}
            {pragma}
            for (npy_intp j = 0; j < n; ++j) {{
                {ctype} p_v = P[j];
                {ctype} g_v = G[j];
                {loads}
                {ctype} p_new;
                {decls}
                {body}
                P[j] = p_new;
                {stores}
            }}
        }}
        """
        return support + loop

    def c_code_cache_version_apply(self, node):
        version = self.scalar_op.c_code_cache_version()
        return (8, PARALLEL_MIN, *version) if version else ()

    def _c_body_op(self):
        """The loop body as PyTensor's C code should see it, written so that gcc
        vectorises the loop, and its float constants.

        - The composite's float constants become inputs, given as typed C constants:
          PyTensor prints ``0.999`` as a ``double`` literal, so a float32 body would be
          computed in double and rounded back (slower, and unlike the graph).
        - ``sign`` becomes two selects (PyTensor's C code for it tests ``isnan`` and mixes
          in double literals, which keeps gcc from vectorising; rprop uses it).
        """
        leaves = {v: v.type() for v in self.scalar_op.inputs}  # the composite's own variables
        body = _rebuilt(self.scalar_op.outputs, leaves, _select_sign)
        constants = [v for v in ancestors(body)
                     if isinstance(v, Constant) and v.type.dtype.startswith("float")]
        named = {c: c.type() for c in constants}
        body = _rebuilt(body, named)
        body_op = ps.Composite([leaves[v] for v in self.scalar_op.inputs]
                               + [named[c] for c in constants], body)
        return body_op, constants

    def _c_body(self, name, inputs, outputs, sub):
        """Declarations of the constants, the body's C code and its support code."""
        body_op, constants = self._c_body_op()
        node = body_op.make_node(*[x.type() for x in body_op.inputs])
        names = [f"{name}_k{j}" for j in range(len(constants))]
        decls = "".join(f"const {c.type.dtype_specs()[1]} {n} = {_c_literal(c)};\n"
                        for c, n in zip(constants, names, strict=True))
        code = body_op.c_code(node, name + "_scalar_", list(inputs) + names, outputs, sub)
        return decls, code, body_op.c_support_code_apply(node, name + "_scalar_")

    def c_code(self, node, name, inames, onames, sub):
        k, r = self.n_tensors, self.n_states
        p_in, g_in, s_in, c_in = self.split(inames)
        p_out, s_out = onames[:k], onames[k:]
        ctype = f"npy_{node.inputs[0].dtype}"
        fail = sub["fail"]
        copy = "0" if self.inplace else "1"

        def output(out, inp):  # the array to write: the input itself in place, else a copy
            return f"""
            Py_XDECREF({out});
            if (!{copy} && PyArray_IS_C_CONTIGUOUS({inp})) {{ {out} = {inp}; Py_INCREF({out}); }}
            else {{ {out} = (PyArrayObject*)PyArray_NewCopy({inp}, NPY_CORDER);
                   if (!{out}) {{ {fail} }} }}"""

        scalar_types = [x.type.dtype_specs()[1] for x in self.scalar_op.inputs[2 + r:]]
        scalars = "".join(f"{t} c{j}_v = *({t}*)PyArray_DATA({c});\n"
                          for j, (t, c) in enumerate(zip(scalar_types, c_in, strict=True)))
        states = "".join(output(o, i) for o, i in zip(s_out, s_in, strict=True))
        params = "".join(output(o, i) for o, i in zip(p_out, p_in, strict=True))
        state_ptrs = "".join(f"{ctype}* S{j} = ({ctype}*)PyArray_DATA({o});\n"
                             for j, o in enumerate(s_out))
        call_args = ", ".join(["n", "P", "G"] + [f"S{j} + offset" for j in range(r)]
                              + [f"c{j}_v" for j in range(len(c_in))])
        return f"""
        {{
        {scalars}
        {states}
        {params}
        {state_ptrs}
        PyArrayObject* params_out[{k}] = {{{", ".join(p_out)}}};
        PyArrayObject* grads_in[{k}] = {{{", ".join(g_in)}}};
        npy_intp offset = {self.offset};
        for (int i = 0; i < {k}; ++i) {{
            PyArrayObject* grad = (PyArrayObject*)PyArray_GETCONTIGUOUS(grads_in[i]);
            if (!grad) {{ {fail} }}
            {ctype}* P = ({ctype}*)PyArray_DATA(params_out[i]);
            const {ctype}* G = (const {ctype}*)PyArray_DATA(grad);
            const npy_intp n = PyArray_SIZE(params_out[i]);
            {name}_loop({call_args});
            Py_DECREF(grad);
            offset += n;
        }}
        }}
        """

    def __str__(self):
        flags = (", parallel" if self.parallel else "") + (", inplace" if self.inplace else "")
        return f"FusedUpdate{{{self.n_tensors} tensors, {self.n_states} states{flags}}}"


@functools.cache
def _c_openmp():
    """Whether the C++ compiler PyTensor uses compiles with ``-fopenmp``."""
    try:
        from pytensor.link.c.op import OpenMPOp

        return bool(OpenMPOp.test_gxx_support())
    except Exception:  # no compiler, or PyTensor moved it: no threads, still correct
        return False


def _rebuilt(outputs, new, replace=None):
    """A copy of the scalar graph ``outputs`` over the variables ``new`` maps its leaves to;
    ``replace(op, inputs)`` may give an apply node's new output instead of the op's own."""
    new = dict(new)
    for apply in toposort(outputs):
        inputs = [new.get(x, x) for x in apply.inputs]
        outs = replace(apply.op, inputs) if replace else None
        new.update(zip(apply.outputs, outs or apply.op.make_node(*inputs).outputs, strict=True))
    return [new.get(o, o) for o in outputs]


def _select_sign(op, inputs):
    """``sign(x)`` as ``x > 0 ? 1 : (x < 0 ? -1 : x)``: the same value (NaN stays NaN; a
    zero keeps its own sign, which compares and adds as PyTensor's 0 does)."""
    if op != ps.sign:
        return None
    (x,) = inputs
    one, minus_one = (ps.constant(np.asarray(v, dtype=x.type.dtype)) for v in (1, -1))
    return [ps.switch(ps.gt(x, 0), one, ps.switch(ps.lt(x, 0), minus_one, x))]


def _c_literal(constant):
    """A C literal of exactly the constant's value and type."""
    value = np.asarray(constant.data).item()
    if np.isnan(value):
        return "NAN"
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    if constant.type.dtype == "float32":
        return f"{float(np.float32(value)).hex()}f"
    return float(value).hex()


def _writable(array, inplace):
    """The array to write the new values into: itself when allowed, contiguous."""
    if inplace and array.flags.c_contiguous:
        return array
    return np.array(array, order="C", copy=True)


# ---------------------------------------------------------------------------------------
# the loop, compiled by Numba

_LOOPS = {}


def _loop(scalar_op, n_states, n_scalars, parallel=False):
    key = (scalar_op, n_states, n_scalars, parallel)
    if key not in _LOOPS:
        _LOOPS[key] = _make_loop(scalar_op, n_states, n_scalars, parallel)
    return _LOOPS[key]


def _scalar_function(scalar_op):
    """The Numba function PyTensor itself compiles for a scalar op (so the same code),
    and PyTensor's cache key for it (None when it cannot be cached)."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    node = scalar_op.make_node(*[x.type() for x in scalar_op.inputs])
    return numba_funcify_and_cache_key(scalar_op, node=node)


def _make_loop(scalar_op, n_states, n_scalars, parallel=False):
    """``loop(p, g, states..., scalars...)``: one flattened tensor and its state, in place.

    The state arguments are this tensor's slices of the buffers, so that every array is
    indexed alike and LLVM can vectorise the loop (with an offset it did not: 7x slower).
    With ``parallel`` the loop is split over Numba's threads (``NUMBA_NUM_THREADS``).
    """
    from pytensor.link.numba.dispatch.basic import numba_njit

    states = [f"s{j}" for j in range(n_states)]
    scalars = [f"c{j}" for j in range(n_scalars)]
    outs = ["p[j]"] + [f"{x}[j]" for x in states]
    call = f"f({', '.join(['p[j]', 'g[j]'] + outs[1:] + scalars)})"
    if len(outs) == 1:
        body = f"        p[j] = {call}\n"
    else:
        body = f"        r = {call}\n" + "".join(
            f"        {o} = r[{i}]\n" for i, o in enumerate(outs))
    source = (
        f"def loop({', '.join(['p', 'g'] + states + scalars)}):\n"
        f"    for j in {'prange' if parallel else 'range'}(p.shape[0]):\n"
        f"{body}"
    )
    import numba

    namespace = {"f": _scalar_function(scalar_op)[0], "prange": numba.prange}
    exec(compile(source, "<symopt fused loop>", "exec"), namespace)
    # PyTensor's own wrapper, so the loop gets the floating-point flags of its loops
    return numba_njit(namespace["loop"], final_function=True, parallel=parallel)


_NUMBA_REGISTERED = []


def _register_numba():
    """Compile :class:`FusedUpdate` for PyTensor's Numba backend (no object mode), once."""
    if _NUMBA_REGISTERED:
        return
    _NUMBA_REGISTERED.append(True)
    try:
        from pytensor.link.numba.dispatch.basic import (
            numba_njit,
            register_funcify_and_cache_key,
        )
    except ImportError:  # no Numba: the C and Python linkers use perform
        return

    wrappers = {}

    def wrapper(op):
        """The loop over one chunk's tensors, shared by every node of the same shape."""
        k, r = op.n_tensors, op.n_states
        n_scalars = op.scalar_op.nin - 2 - r
        key = (op.scalar_op, k, r, op.inplace, op.parallel)
        if key in wrappers:
            return wrappers[key]
        params = [f"p{i}" for i in range(k)]
        grads = [f"g{i}" for i in range(k)]
        states = [f"s{j}" for j in range(r)]
        scalars = [f"c{j}" for j in range(n_scalars)]
        fresh = "" if op.inplace else ".copy()"
        # one tensor: typed once per number of dimensions, called k times
        one = [f"def one(p, g, offset{''.join(', ' + x for x in states + scalars)}):",
               "    p = np.ascontiguousarray(p)",
               "    flat = p.reshape(-1)",
               "    end = offset + flat.shape[0]",
               f"    args = ({', '.join(['flat', 'np.ascontiguousarray(g).reshape(-1)'] + [f'{x}[offset:end]' for x in states] + scalars)})",
               "    if flat.shape[0] >= parallel_min:",
               "        ploop(*args)",
               "    else:",
               "        loop(*args)",
               "    return p, end"]
        lines = [f"def fused_update({', '.join(params + grads + states + scalars)}, offset):"]
        lines += [f"    {x} = {x}{fresh}" for x in params]
        lines += [f"    {x} = np.ascontiguousarray({x}){fresh}" for x in states]
        lines += [f"    {c} = {c}.item()" for c in scalars]
        for p, g in zip(params, grads, strict=True):
            lines.append(f"    {p}, offset = one({', '.join([p, g, 'offset'] + states + scalars)})")
        lines.append(f"    return {', '.join(params + states)}")  # one output: not a tuple
        namespace = {"np": np, "loop": _loop(op.scalar_op, r, n_scalars),
                     "parallel_min": PARALLEL_MIN if op.parallel else np.iinfo(np.int64).max}
        namespace["ploop"] = _loop(op.scalar_op, r, n_scalars, op.parallel)
        exec(compile("\n".join(one), "<symopt fused tensor>", "exec"), namespace)
        namespace["one"] = numba_njit(namespace["one"])
        exec(compile("\n".join(lines), "<symopt fused update>", "exec"), namespace)
        wrappers[key] = numba_njit(namespace["fused_update"])
        return wrappers[key]

    @register_funcify_and_cache_key(FusedUpdate)
    def numba_funcify_fused_update(op, node=None, **kwargs):
        names = [f"x{i}" for i in range(2 * op.n_tensors + op.scalar_op.nin - 2)]
        source = (f"def node_update({', '.join(names)}):\n"
                  f"    return fused_update({', '.join(names)}, {op.offset})\n")
        namespace = {"fused_update": wrapper(op)}
        exec(compile(source, "<symopt fused node>", "exec"), namespace)
        # a key for PyTensor's on-disk cache: the loop body's key and this node's shape
        body_key = _scalar_function(op.scalar_op)[1]
        key = None if body_key is None else hashlib.sha256(
            f"symopt.FusedUpdate-3-{body_key}-{op.n_tensors}-{op.n_states}-{op.offset}-"
            f"{op.inplace}-{op.parallel}-{PARALLEL_MIN}".encode()).hexdigest()
        return numba_njit(namespace["node_update"]), key



# ---------------------------------------------------------------------------------------
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
