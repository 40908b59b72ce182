"""The Numba code of :class:`~symopt.fused.op.FusedUpdate`.

The loop over one tensor calls the Numba function PyTensor itself compiles for the
loop body (so the same code as the per-tensor path's loops, with the floating-point
flags of PyTensor's loops); a node's function checks every input's shape against the
slot it was built for (:meth:`~symopt.fused.op.FusedUpdate.checks`), then calls it once
per tensor, and a tensor of :data:`~symopt.fused.op.PARALLEL_MIN` elements or more runs
on all of Numba's threads.
:func:`register` registers it with PyTensor's Numba backend, with a key for PyTensor's
on-disk cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from symopt.fused import op as fused_op
from symopt.fused.op import FusedCheck, FusedUpdate

__all__ = ["loop_over", "register"]

_LOOPS: dict[tuple, Callable] = {}


def _fastmath():
    """PyTensor's fastmath setting, part of every key: a loop compiled with it is not
    the loop compiled without."""
    import pytensor

    return bool(pytensor.config.numba__fastmath)


def loop_over(scalar_op, n_states, n_scalars, parallel=False):
    key = (scalar_op, n_states, n_scalars, parallel, _fastmath())
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


_REGISTERED: list[bool] = []


def register():
    """Compile :class:`FusedUpdate` for PyTensor's Numba backend (no object mode), once."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
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
        key = (op.scalar_op, k, r, op.inplace, op.parallel, op.shapes is None, _fastmath())
        if key in wrappers:
            return wrappers[key]
        scalars = [f"c{j}" for j in range(n_scalars)]
        fresh = "" if op.inplace else ".copy()"
        namespace = {"np": np, "loop": loop_over(op.scalar_op, r, n_scalars),
                     "ploop": loop_over(op.scalar_op, r, n_scalars, op.parallel),
                     "parallel_min": (fused_op.PARALLEL_MIN if op.parallel
                                      else np.iinfo(np.int64).max)}
        if op.shapes is None:  # each tensor's own state arrays, tensor by tensor
            lines = _per_tensor_source(k, r, scalars, fresh)
        else:  # slices of shared state buffers
            one, lines = _buffer_source(k, r, scalars, fresh)
            exec(compile("\n".join(one), "<symopt fused tensor>", "exec"), namespace)
            namespace["one"] = numba_njit(namespace["one"])
        exec(compile("\n".join(lines), "<symopt fused update>", "exec"), namespace)
        wrappers[key] = numba_njit(namespace["fused_update"]), "\n".join(lines)
        return wrappers[key]

    @register_funcify_and_cache_key(FusedUpdate)
    def numba_funcify_fused_update(op, node=None, **kwargs):
        names = [f"x{i}" for i in range(2 * op.n_tensors + op.n_state_arrays
                                          + op.scalar_op.nin - 2 - op.n_states)]
        # the node's own checks, before anything is copied or written; the loops, in
        # fused_update, are shared by every node of the same kind; the token, last, is
        # the group's FusedCheck's
        source = (f"def node_update({', '.join(names)}, token):\n"
                  f"{_check_source(op, names)}"
                  f"    return fused_update({', '.join(names)}, {op.offset})\n")
        fused_update, loops = wrapper(op)
        namespace = {"fused_update": fused_update, "fail": _fail()}
        exec(compile(source, "<symopt fused node>", "exec"), namespace)
        # a key for PyTensor's on-disk cache: the loop body's key, this node's kind and
        # its source (its offset, shapes and names) and the loop over its tensors
        body_key = _scalar_function(op.scalar_op)[1]
        key = None if body_key is None else hashlib.sha256(
            f"symopt.FusedUpdate-14-{body_key}-{op.n_tensors}-{op.n_states}-{op.inplace}-"
            f"{op.parallel}-{fused_op.PARALLEL_MIN}-{_fastmath()}-{source}-{loops}"
            .encode()).hexdigest()
        return numba_njit(namespace["node_update"]), key

    @register_funcify_and_cache_key(FusedCheck)
    def numba_funcify_fused_check(op, node=None, **kwargs):
        names = [f"x{i}" for i in range(len(node.inputs))]
        source = (f"def check({', '.join(names)}):\n{_check_source(op, names)}"
                  "    return np.zeros((), dtype=np.int8)\n")
        namespace = {"np": np, "fail": _fail()}
        exec(compile(source, "<symopt fused check>", "exec"), namespace)
        key = hashlib.sha256(f"symopt.FusedCheck-9-{source}".encode()).hexdigest()
        return numba_njit(namespace["check"]), key


def _buffer_source(k, r, scalars, fresh):
    """The sources of ``one`` and ``fused_update`` when the tensors' states are slices
    of shared buffers (``fuse=True``'s layout): ``one`` typed once per number of
    dimensions and called ``k`` times (``np.ascontiguousarray`` makes a 0-d array 1-d:
    the result is reshaped back)."""
    params = [f"p{i}" for i in range(k)]
    grads = [f"g{i}" for i in range(k)]
    states = [f"s{j}" for j in range(r)]
    one = [f"def one(p, g, offset{''.join(', ' + x for x in states + scalars)}):",
           "    flat = np.ascontiguousarray(p).reshape(-1)",
           "    end = offset + flat.shape[0]",
           "    args = ({})".format(", ".join(
               ["flat", "np.ascontiguousarray(g).reshape(-1)"]
               + [f"{x}[offset:end]" for x in states] + scalars)),
           "    if flat.shape[0] >= parallel_min:",
           "        ploop(*args)",
           "    else:",
           "        loop(*args)",
           "    return flat.reshape(p.shape), end"]
    lines = [f"def fused_update({', '.join(params + grads + states + scalars)}, offset):"]
    lines += [f"    {x} = {x}{fresh}" for x in params]
    lines += [f"    {x} = np.ascontiguousarray({x}){fresh}" for x in states]
    lines += [f"    {c} = {c}.item()" for c in scalars]
    for p, g in zip(params, grads, strict=True):
        lines.append(f"    {p}, offset = one({', '.join([p, g, 'offset'] + states + scalars)})")
    lines.append(f"    return {', '.join(params + states)}")  # one output: not a tuple
    return one, lines


def _per_tensor_source(k, r, scalars, fresh):
    """The source of ``fused_update`` when each tensor has its own state arrays
    (``shapes=None``): every array flattened into a tuple of like-typed vectors, and one
    loop over the tensors calling the elementwise loop. One call site, not one per
    tensor: LLVM inlines each call, and with sixteen tensors a node took minutes to
    compile (``benchmarks/README.md``)."""
    params = [f"p{i}" for i in range(k)]
    grads = [f"g{i}" for i in range(k)]
    states = [[f"s{i}_{j}" for j in range(r)] for i in range(k)]
    every = [x for own in states for x in own]

    def flat(name, copy):
        return f"np.ascontiguousarray({name}){copy}.reshape(-1)"

    def tuple_of(items):
        return "(" + "".join(f"{x}, " for x in items) + ")"

    lines = [f"def fused_update({', '.join(params + grads + every + scalars)}, offset):",
             f"    P = {tuple_of(flat(p, fresh) for p in params)}",
             f"    G = {tuple_of(flat(g, '') for g in grads)}"]
    lines += [f"    S{j} = {tuple_of(flat(own[j], fresh) for own in states)}" for j in range(r)]
    lines += [f"    {c} = {c}.item()" for c in scalars]
    args = ", ".join(["P[i]", "G[i]"] + [f"S{j}[i]" for j in range(r)] + scalars)
    lines += [f"    for i in range({k}):",
              "        if P[i].shape[0] >= parallel_min:",
              f"            ploop({args})",
              "        else:",
              f"            loop({args})"]
    outs = [f"P[{i}].reshape({p}.shape)" for i, p in enumerate(params)] + [
        f"S{j}[{i}].reshape({own[j]}.shape)" for i, own in enumerate(states) for j in range(r)]
    lines.append(f"    return {', '.join(outs)}")  # one output: not a tuple
    return lines


def _check_source(op, names):
    """Python source (for Numba) raising the error of the first input of a wrong shape.

    The comparisons are the whole cost of a call that passes; ``failed`` is used after
    them so that Numba keeps the object-mode call's result typed."""
    if getattr(op, "shapes", ()) is None:  # each tensor's state shaped like it
        k = op.n_tensors
        states = list(range(2 * k, 2 * k + op.n_state_arrays))  # the inputs' positions
        pairs = [(i, j) for i in range(k) for j in [k + i, *op.tensor_states(states, i)]]
        # one raise for all (each raise is code of its own, and compile time)
        return ("    bad = False\n" + "".join(
            f"    bad |= {names[j]}.shape != {names[i]}.shape\n" for i, j in pairs)
            + "    if bad:\n"
            "        raise ValueError('the gradient or a state array of a parameter does "
            "not have the parameter\\'s shape')\n")
    return "    failed = 0\n" + "".join(
        f"    if {names[index]}.shape != {shape!r}:\n"
        f"        failed = fail({prefix!r}, {suffix!r}, {names[index]})\n"
        for index, shape, prefix, suffix in op.checks()) + (
        "    if failed:\n        raise ValueError('a shape check of a fused update failed')\n")


_FAIL: list[Callable] = []


def _fail():
    """``fail(prefix, suffix, array)``: raise a shape check's error from Numba code.

    The message holds the array's actual shape; Numba code can only raise exceptions
    with constant arguments once PyTensor has cached it, so the error is raised by
    Python (an object-mode block, in a function of its own: in a branch of the caller
    Numba miscompiles it). Only a failing check calls it.
    """
    if not _FAIL:
        import numba
        from pytensor.link.numba.dispatch.basic import numba_njit

        def fail(prefix, suffix, array):
            with numba.objmode(failed="int64"):
                failed = fused_op.raise_shape_error(prefix, suffix, array)
            return failed

        _FAIL.append(numba_njit(fail))
    return _FAIL[0]
