"""The C code of :class:`~symopt.fused.op.FusedUpdate`: one loop per tensor, vectorised.

The loop body is the composite's own C code (PyTensor's), with two changes that let gcc
vectorise it and compute float32 in float32 (:func:`body_op`); each tensor's loop is a
function of its own with ``__restrict__`` arrays (inlined into the loop over tensors,
gcc left it scalar from three tensors on), compiled with PyTensor's flags plus
``-fno-trapping-math``, and split over OpenMP's threads for large tensors.
"""

from __future__ import annotations

import functools

import numpy as np
import pytensor.scalar as ps
from pytensor.graph.basic import Constant

from symopt.fused.lowering import ancestors, rebuilt

__all__ = ["CHECK_SUPPORT_CODE", "body_op", "c_literal", "c_string", "check_node_code",
           "compile_args", "loop_function", "node_code", "openmp"]

#: The shape check every call of the node makes before it touches memory: the error is
#: ``prefix + shape + suffix``, the shape printed as Python prints a tuple.
CHECK_SUPPORT_CODE = """
#ifndef SYMOPT_FUSED_CHECK
#define SYMOPT_FUSED_CHECK
static int symopt_fused_check(PyArrayObject* a, int nd, const npy_intp* dims,
                              const char* prefix, const char* suffix) {
    char got[512];
    int at = 0, i, same = PyArray_NDIM(a) == nd;
    for (i = 0; same && i < nd; ++i) same = PyArray_DIMS(a)[i] == dims[i];
    if (same) return 0;
    at += snprintf(got + at, sizeof(got) - at, "(");
    for (i = 0; i < PyArray_NDIM(a) && at < (int)sizeof(got) - 32; ++i)
        at += snprintf(got + at, sizeof(got) - at, i ? ", %lld" : "%lld",
                       (long long)PyArray_DIMS(a)[i]);
    snprintf(got + at, sizeof(got) - at, PyArray_NDIM(a) == 1 ? ",)" : ")");
    PyErr_Format(PyExc_ValueError, "%s%s%s", prefix, got, suffix);
    return -1;
}
#endif
"""


@functools.cache
def openmp():
    """Whether the C++ compiler PyTensor uses compiles with ``-fopenmp``."""
    try:
        from pytensor.link.c.op import OpenMPOp

        return bool(OpenMPOp.test_gxx_support())
    except Exception:  # no compiler, or PyTensor moved it: no threads, still correct
        return False


def _select_sign(op, inputs):
    """``sign(x)`` as ``x > 0 ? 1 : (x < 0 ? -1 : x)``: the same value (NaN stays NaN; a
    zero keeps its own sign, which compares and adds as PyTensor's 0 does)."""
    if op != ps.sign:
        return None
    (x,) = inputs
    one, minus_one = (ps.constant(np.asarray(v, dtype=x.type.dtype)) for v in (1, -1))
    return [ps.switch(ps.gt(x, 0), one, ps.switch(ps.lt(x, 0), minus_one, x))]


def c_string(text):
    """A C string literal of ``text`` (any characters: the rest are octal escapes)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char.isascii() and char.isprintable() and char not in '"\\?':
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_literal(constant):
    """A C literal of exactly the constant's value and type."""
    value = np.asarray(constant.data).item()
    if np.isnan(value):
        return "NAN"
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    if constant.type.dtype == "float32":
        return f"{float(np.float32(value)).hex()}f"
    return float(value).hex()


def compile_args(scalar_op, threads, **kwargs):
    """PyTensor's flags for the body, ``-fno-trapping-math`` (so gcc turns the selects of
    rprop, clipping and amsgrad into vector blends; PyTensor never reads floating-point
    exception flags), and ``-fopenmp`` when large tensors run on OpenMP's threads."""
    return (scalar_op.c_compile_args(**kwargs) + ["-fno-trapping-math", "-fno-math-errno"]
            + (["-fopenmp"] if threads else []))


def body_op(scalar_op):
    """The loop body as PyTensor's C code should see it, and its float constants.

    - The composite's float constants become inputs, given as typed C constants:
      PyTensor prints ``0.999`` as a ``double`` literal, so a float32 body would be
      computed in double and rounded back (slower, and unlike the graph).
    - ``sign`` becomes two selects (PyTensor's C code for it tests ``isnan`` and mixes
      in double literals, which keeps gcc from vectorising; rprop uses it).
    """
    leaves = {v: v.type() for v in scalar_op.inputs}  # the composite's own variables
    body = rebuilt(scalar_op.outputs, leaves, _select_sign)
    constants = [v for v in ancestors(body)
                 if isinstance(v, Constant) and v.type.dtype.startswith("float")]
    named = {c: c.type() for c in constants}
    body = rebuilt(body, named)
    op = ps.Composite([leaves[v] for v in scalar_op.inputs] + [named[c] for c in constants],
                      body)
    return op, constants


def _body(scalar_op, name, inputs, outputs, sub):
    """Declarations of the constants, the body's C code and its support code."""
    op, constants = body_op(scalar_op)
    node = op.make_node(*[x.type() for x in op.inputs])
    names = [f"{name}_k{j}" for j in range(len(constants))]
    decls = "".join(f"const {c.type.dtype_specs()[1]} {n} = {c_literal(c)};\n"
                    for c, n in zip(constants, names, strict=True))
    code = op.c_code(node, name + "_scalar_", list(inputs) + names, outputs, sub)
    return decls, code, op.c_support_code_apply(node, name + "_scalar_")


#: The elements of a tensor that one OpenMP thread updates at a time (2**16: 256 KiB of
#: each float32 array).
BLOCK = 2**16


def loop_function(fused, node, name, threads, parallel_min):
    """``static void <name>_loop(n, P, G, S..., c...)``: one tensor's elements, in place.

    ``fused`` is the :class:`~symopt.fused.op.FusedUpdate`; with ``threads`` the loop is
    split over OpenMP's threads when it has ``parallel_min`` elements or more.
    """
    r, ctype = fused.n_states, f"npy_{node.inputs[0].dtype}"
    scalar_types = [x.type.dtype_specs()[1] for x in fused.scalar_op.inputs[2 + r:]]
    body_in = ["p_v", "g_v"] + [f"s{j}_v" for j in range(r)] + [
        f"c{j}_v" for j in range(len(scalar_types))]
    body_out = ["p_new"] + [f"s{j}_new" for j in range(r)]
    constants, body, support = _body(fused.scalar_op, name, body_in, body_out,
                                     {"fail": "return;"})
    args = ", ".join(
        [f"npy_intp n, {ctype}* __restrict__ P, const {ctype}* __restrict__ G"]
        + [f"{ctype}* __restrict__ S{j}" for j in range(r)]
        + [f"{t} c{j}_v" for j, t in enumerate(scalar_types)])
    loads = "".join(f"{ctype} s{j}_v = S{j}[j];\n" for j in range(r))
    decls = "".join(f"{ctype} s{j}_new;\n" for j in range(r))
    stores = "".join(f"S{j}[j] = s{j}_new;\n" for j in range(r))
    # With threads, OpenMP splits the tensor into blocks, each run by the same serial
    # loop (an `omp parallel for simd` over the elements themselves ran ADOPT's and the
    # schedule-free rules' bodies 6-8x slower than the serial loop on one thread)
    block_args = ", ".join(["len", "P + lo", "G + lo"] + [f"S{j} + lo" for j in range(r)]
                           + [f"c{j}_v" for j in range(len(scalar_types))])
    threaded = f"""
        if (n >= {parallel_min}) {{
            const npy_intp blocks = (n + {BLOCK} - 1) / {BLOCK};
            #pragma omp parallel for schedule(static)
            for (npy_intp b = 0; b < blocks; ++b) {{
                const npy_intp lo = b * {BLOCK};
                const npy_intp len = n - lo < {BLOCK} ? n - lo : {BLOCK};
                {name}_serial({block_args});
            }}
            return;
        }}""" if threads else ""
    call = ", ".join(["n", "P", "G"] + [f"S{j}" for j in range(r)]
                     + [f"c{j}_v" for j in range(len(scalar_types))])
    loop = f"""
    static __attribute__((noinline)) void {name}_serial({args}) {{
        {constants}
        #pragma GCC ivdep
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
    static __attribute__((noinline)) void {name}_loop({args}) {{
        {threaded}
        {name}_serial({call});
    }}
    """
    return support + loop


def _like_param_checks(fused, inames, fail):
    """``shapes=None`` (each tensor with state arrays of its shape): each gradient and
    each state array have their parameter's shape."""
    params, grads, states, _ = fused.split(inames)
    pairs = [(p, x) for i, (p, g) in enumerate(zip(params, grads, strict=True))
             for x in [g, *fused.tensor_states(states, i)]]
    return "".join(f"""
        if (!PyArray_SAMESHAPE({x}, {p})) {{
            PyErr_SetString(PyExc_ValueError, "the gradient or a state array of a parameter "
                            "does not have the parameter's shape");
            {fail}
        }}""" for p, x in pairs)


def _checks(fused, inames, fail):
    """Every input's shape against its slot's, before anything is copied or written."""
    if getattr(fused, "shapes", ()) is None:
        return _like_param_checks(fused, inames, fail)
    code = []
    for index, shape, prefix, suffix in fused.checks():
        dims = ", ".join(str(d) for d in shape) or "0"
        code.append(f"""
        {{
            static const npy_intp dims[] = {{{dims}}};
            if (symopt_fused_check({inames[index]}, {len(shape)}, dims, {c_string(prefix)},
                                   {c_string(suffix)})) {{ {fail} }}
        }}""")
    return "".join(code)


def check_node_code(check, inames, out, fail):
    """The C code of :class:`~symopt.fused.op.FusedCheck`: the checks, then the token."""
    return f"""
    {{
    {_checks(check, inames, fail)}
    if (!{out}) {{
        {out} = (PyArrayObject*)PyArray_ZEROS(0, NULL, NPY_INT8, 0);
        if (!{out}) {{ {fail} }}
    }}
    }}
    """


def node_code(fused, node, name, inames, onames, sub):
    """The node's C code: the shape checks, the outputs (in place or copies), then each
    tensor's loop."""
    k, r = fused.n_tensors, fused.n_states
    p_in, g_in, s_in, c_in = fused.split(inames)
    p_out, s_out = onames[:k], onames[k:]
    ctype = f"npy_{node.inputs[0].dtype}"
    fail = sub["fail"]
    copy = "0" if fused.inplace else "1"

    def output(out, inp):  # the array to write: the input itself in place, else a copy
        return f"""
        Py_XDECREF({out});
        if (!{copy} && PyArray_IS_C_CONTIGUOUS({inp})) {{ {out} = {inp}; Py_INCREF({out}); }}
        else {{ {out} = (PyArrayObject*)PyArray_NewCopy({inp}, NPY_CORDER);
               if (!{out}) {{ {fail} }} }}"""

    scalar_types = [x.type.dtype_specs()[1] for x in fused.scalar_op.inputs[2 + r:]]
    scalars = "".join(f"{t} c{j}_v = *({t}*)PyArray_DATA({c});\n"
                      for j, (t, c) in enumerate(zip(scalar_types, c_in, strict=True)))
    states = "".join(output(o, i) for o, i in zip(s_out, s_in, strict=True))
    params = "".join(output(o, i) for o, i in zip(p_out, p_in, strict=True))
    call_args = ", ".join(["n", "P", "G"] + [f"S{j} + offset" for j in range(r)]
                          + [f"c{j}_v" for j in range(len(c_in))])
    if fused.shapes is None:  # each tensor's own state arrays, tensor by tensor
        every = ", ".join(s_out) or "NULL"
        state_ptrs = f"PyArrayObject* states_out[{max(len(s_out), 1)}] = {{{every}}};\n"
        tensor_states = "".join(
            f"{ctype}* S{j} = ({ctype}*)PyArray_DATA(states_out[i * {r} + {j}]);\n"
            for j in range(r)) + "offset = 0;\n"
    else:  # slices of the flat buffers
        state_ptrs = "".join(f"{ctype}* S{j} = ({ctype}*)PyArray_DATA({o});\n"
                             for j, o in enumerate(s_out))
        tensor_states = ""
    return f"""
    {{
    {_checks(fused, inames, fail)}
    {scalars}
    {states}
    {params}
    {state_ptrs}
    PyArrayObject* params_out[{k}] = {{{", ".join(p_out)}}};
    PyArrayObject* grads_in[{k}] = {{{", ".join(g_in)}}};
    npy_intp offset = {fused.offset};
    for (int i = 0; i < {k}; ++i) {{
        PyArrayObject* grad = (PyArrayObject*)PyArray_GETCONTIGUOUS(grads_in[i]);
        if (!grad) {{ {fail} }}
        {ctype}* P = ({ctype}*)PyArray_DATA(params_out[i]);
        const {ctype}* G = (const {ctype}*)PyArray_DATA(grad);
        const npy_intp n = PyArray_SIZE(params_out[i]);
        {tensor_states}
        {name}_loop({call_args});
        Py_DECREF(grad);
        offset += n;
    }}
    }}
    """
