"""``adagrad_window``'s ring buffer in one pass: write the newest square, sum the window.

:func:`symopt.adagrad_window` (PyMC's default optimizer for ``pm.fit``) keeps the last
``n`` squared gradients in a window of the parameter's shape and a last axis of ``n``,
writes the newest in slot ``t mod n`` and sums over the last axis::

    window_new = pt.set_subtensor(window[..., slot], pt.sqr(g))
    total = window_new.sum(axis=-1)

PyTensor runs this as two passes over the window, and its sum over a short last axis is
slow: over 1e6 float32 parameters (``n = 10``) a step took 15 ms on the C VM, 12 ms of
it the sum, where one pass over the window in place takes about 1.1 ms
(benchmarks/default_path.py). :class:`WindowSum` does both in one pass, row by row: the
row's slot is written, then the row is summed while it is in cache.

The sum is accumulated in double, slot by slot from the first (as PyTensor's ``Sum``
accumulates a float32 sum, and PyMC's runs on it), so it is bit for bit PyTensor's C
result and PyMC's. On Numba it is compiled without fastmath's reassociation, which
PyTensor's own sum there allows: the two differ in the last bits, and this one is the C
result.

:func:`window_sum` is the compile-time rewrite that puts it in symopt's graphs, for the
C backends and Numba (tag ``symopt_fusion``, as the other rewrites of this package); JAX
and PyTorch keep the plain graph.
"""

from __future__ import annotations

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.graph.basic import Apply
from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.link.c.op import COp
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.math import Sum
from pytensor.tensor.subtensor import IncSubtensor
from pytensor.tensor.type import integer_dtypes

from symopt._backend_hooks import register_numba
from symopt.state import updated_by_symopt

__all__ = ["WindowSum", "window_sum"]


def _check(window_shape, value_shape, slot):
    """The error for a slot outside the last axis or a value not of the row shape."""
    n = window_shape[-1]
    if not -n <= slot < n:
        return IndexError(f"slot {slot} is outside the window's last axis of length {n}")
    if tuple(value_shape) != tuple(window_shape[:-1]):
        return ValueError(f"the value written into the window has shape {tuple(value_shape)}, "
                          f"the window's rows {tuple(window_shape[:-1])} (the gradient "
                          "does not have its parameter's shape)")
    return None


class WindowSum(COp):
    """``(window with value at slot of its last axis, its sum over the last axis)``.

    Inputs: ``window`` (float32 or float64, one axis or more), ``value`` (the window's
    shape without its last axis, same dtype), ``slot`` (an integer scalar; negative
    counts from the end). Outputs: the new window (in place when ``inplace``) and the
    sum over its last axis in the window's dtype, accumulated in double in slot order.
    With ``square`` the value's square is written (``pt.sqr``'s product, in the loop).
    A slot outside the axis raises IndexError and a value of the wrong shape ValueError,
    before anything is written.
    """

    __props__ = ("inplace", "square")

    def __init__(self, inplace=False, square=False):
        self.inplace = bool(inplace)
        self.square = bool(square)
        if self.inplace:
            self.destroy_map = {0: [0]}

    def make_node(self, window, value, slot):
        """The node, after checking the inputs' types (a TypeError names the one wrong)."""
        window, value, slot = (pt.as_tensor_variable(x) for x in (window, value, slot))
        if window.type.dtype not in ("float32", "float64") or window.type.ndim < 1:
            raise TypeError(f"WindowSum: the window must be a float32 or float64 array of "
                            f"one axis or more, got {window.type}")
        if value.type.dtype != window.type.dtype or value.type.ndim != window.type.ndim - 1:
            raise TypeError(f"WindowSum: the value must be a {window.type.dtype} array of "
                            f"{window.type.ndim - 1} axes (the window's rows), got {value.type}")
        if slot.type.ndim != 0 or slot.type.dtype not in integer_dtypes:
            raise TypeError(f"WindowSum: the slot must be an integer scalar, got {slot.type}")
        register_numba(WindowSum, lambda op, node: (
            _numba_window_sum(op.inplace, op.square),
            f"symopt.WindowSum-3-{op.inplace}-{op.square}"))
        total = pt.tensor(dtype=window.type.dtype, shape=window.type.shape[:-1])
        return Apply(self, [window, value, slot], [window.type(), total])

    def perform(self, node, inputs, output_storage):
        """NumPy: the same checks, the slot written, the sum slot by slot in double."""
        window, value, slot = inputs
        error = _check(window.shape, value.shape, int(slot))
        if error is not None:
            raise error
        if not self.inplace:
            window = window.copy()
        window[..., int(slot)] = value * value if self.square else value
        total = np.zeros(value.shape, dtype=np.float64)
        for k in range(window.shape[-1]):  # slot by slot, as the C loop
            total += window[..., k]
        output_storage[0][0] = window
        output_storage[1][0] = total.astype(window.dtype)

    def infer_shape(self, fgraph, node, shapes):
        """The window's shape, and the value's."""
        return [shapes[0], shapes[1]]

    # C: one loop over the rows of a C-contiguous window (a window that is not is copied)

    def c_code_cache_version(self):
        """The version of the C code below, for PyTensor's on-disk cache."""
        return (3,)

    def c_code(self, node, name, inames, onames, sub):
        """The checks, then one loop over the rows (a non-contiguous window is copied)."""
        window, value, slot = inames
        out_window, total = onames
        fail = sub["fail"]

        def square(x):
            return f"({x}) * ({x})" if self.square else x

        new_window = (f"PyArray_GETCONTIGUOUS({window})" if self.inplace
                      else f"(PyArrayObject*)PyArray_NewCopy({window}, NPY_CORDER)")
        return f"""
        {{
            const int nd = PyArray_NDIM({window});
            const npy_intp n = PyArray_DIMS({window})[nd - 1];
            npy_int64 slot = (npy_int64)((dtype_{slot}*)PyArray_DATA({slot}))[0];
            if (slot < -n || slot >= n) {{
                PyErr_Format(PyExc_IndexError, "slot %lld is outside the window's last "
                             "axis of length %lld", (long long)slot, (long long)n);
                {fail}
            }}
            if (slot < 0) slot += n;
            if (PyArray_NDIM({value}) != nd - 1
                    || !PyArray_CompareLists(PyArray_DIMS({value}), PyArray_DIMS({window}),
                                             nd - 1)) {{
                PyErr_SetString(PyExc_ValueError, "the value written into the window does "
                                "not have the shape of the window's rows (the gradient does "
                                "not have its parameter's shape)");
                {fail}
            }}
            Py_XDECREF({out_window});
            {out_window} = {new_window};
            if (!{out_window}) {{ {fail} }}
            if (!{total} || PyArray_NDIM({total}) != nd - 1 || !PyArray_ISCARRAY({total})
                    || !PyArray_CompareLists(PyArray_DIMS({total}), PyArray_DIMS({window}),
                                             nd - 1)) {{
                Py_XDECREF({total});
                {total} = (PyArrayObject*)PyArray_EMPTY(nd - 1, PyArray_DIMS({window}),
                                                         PyArray_TYPE({window}), 0);
                if (!{total}) {{ {fail} }}
            }}
            PyArrayObject* rows_in = PyArray_GETCONTIGUOUS({value});
            if (!rows_in) {{ {fail} }}
            const npy_intp rows = PyArray_SIZE(rows_in);
            dtype_{window}* w = (dtype_{window}*)PyArray_DATA({out_window});
            const dtype_{value}* v = (const dtype_{value}*)PyArray_DATA(rows_in);
            dtype_{total}* t = (dtype_{total}*)PyArray_DATA({total});
            for (npy_intp i = 0; i < rows; ++i) {{
                dtype_{window}* row = w + i * n;
                row[slot] = {square("v[i]")};
                double acc = 0.0;
                for (npy_intp k = 0; k < n; ++k) acc += row[k];
                t[i] = (dtype_{total})acc;
            }}
            Py_DECREF(rows_in);
        }}
        """


# Numba: the same loop, compiled without fastmath (its reassociation would reorder the sum)


def _numba_window_sum(inplace, square):
    from pytensor.link.numba.dispatch.basic import numba_njit

    def window_sum(window, value, slot):
        n = window.shape[-1]
        s = slot.item()
        if s < -n or s >= n:
            raise IndexError("slot is outside the window's last axis")
        if s < 0:
            s += n
        if value.shape != window.shape[:-1]:
            raise ValueError("the value written into the window does not have the shape of "
                             "the window's rows (the gradient does not have its parameter's "
                             "shape)")
        new = np.ascontiguousarray(window)
        if not inplace:
            new = new.copy()
        rows = value.size
        w = new.reshape((rows, n))
        v = np.ascontiguousarray(value).reshape(rows)
        t = np.empty(rows, dtype=window.dtype)
        for i in range(rows):
            w[i, s] = v[i] * v[i] if square else v[i]
            acc = 0.0
            for k in range(n):
                acc += w[i, k]
            t[i] = acc
        return new, t.reshape(value.shape)

    return numba_njit(window_sum, fastmath=False)


# the rewrites

def _is_window_write(var):
    """Whether ``var`` is ``set_subtensor(window[..., i], value)`` on a symopt state
    window: every axis but the last whole, one integer index on the last."""
    node = var.owner
    if node is None or not isinstance(node.op, IncSubtensor) \
            or not node.op.set_instead_of_inc:
        return False
    window = node.inputs[0]
    idx = node.op.idx_list
    whole = all(isinstance(i, slice) and i == slice(None) for i in idx[:-1])
    return (len(idx) == window.type.ndim and whole and not isinstance(idx[-1], slice)
            and len(node.inputs) == 3 and node.inputs[1].type.ndim == window.type.ndim - 1
            and not any(node.inputs[1].type.broadcastable)
            and node.inputs[1].type.dtype == window.type.dtype
            and window.type.dtype in ("float32", "float64") and updated_by_symopt(window))


@node_rewriter([Sum])
def window_sum(fgraph, node):
    """``set_subtensor(window[..., i], value).sum(-1)`` on symopt's window, in double:
    one :class:`WindowSum`, whose new window replaces the set_subtensor everywhere."""
    (x,) = node.inputs
    if not _is_window_write(x):
        return False
    axes = range(x.type.ndim) if node.op.axis is None else node.op.axis
    if tuple(axes) != (x.type.ndim - 1,):
        return False
    if node.outputs[0].type.dtype != x.type.dtype:
        return False
    double = node.op.acc_dtype == "float64" or (node.op.acc_dtype is None
                                                and x.type.dtype == "float64")
    if not double:
        return False
    window, value, slot = x.owner.inputs
    square = value.owner is not None and isinstance(value.owner.op, Elemwise) \
        and isinstance(value.owner.op.scalar_op, ps.Sqr)
    if square:  # the square is taken in the loop, not in a pass of its own
        value = value.owner.inputs[0]
    new_window, total = WindowSum(square=square)(window, value, pt.as_tensor_variable(slot))
    if not (x.type.is_super(new_window.type) and node.outputs[0].type.is_super(total.type)):
        return False  # static shapes the replacements would not keep
    return {x: new_window, node.outputs[0]: total}


@node_rewriter([WindowSum], inplace=True)
def _window_sum_inplace(fgraph, node):
    if node.op.inplace:
        return False
    return WindowSum(inplace=True, square=node.op.square).make_node(*node.inputs).outputs


# before symopt.fused.rewrite's loops (49.4); JAX and PyTorch keep the plain graph
optdb.register("symopt_window_sum", WalkingGraphRewriter(window_sum),
               "fast_run", "cxx_only", "symopt_fusion", position=49.3)
optdb.register("symopt_window_sum_numba", WalkingGraphRewriter(window_sum),
               "numba", "symopt_fusion", position=49.3)
optdb.register("symopt_window_sum_inplace",
               WalkingGraphRewriter(_window_sum_inplace,
                                    failure_callback=WalkingGraphRewriter.warn_inplace),
               "fast_run", "inplace", position=50.2)
