r"""Matrix functions recomputed only on the steps that ask for them.

Kronecker-factored preconditioners (:mod:`symopt.second_order.kronecker`) keep an inverse
root or the eigenvectors of a statistics matrix, and refresh it every ``k`` steps. In a
PyTensor graph that is a choice between the fresh value and the kept one, and
``pytensor.ifelse`` would make it, but PyTensor's Numba backend (PyTensor 3's default)
evaluates both branches of an ``ifelse``, so the eigendecomposition would run at every
step. :class:`PeriodicMatrixFunction` is one small Op that looks at its flag at run time
and runs the decomposition only when it is set; on the other steps it copies the kept
matrix. It runs on every backend: NumPy in ``perform`` (the C and Python linkers), compiled
Numba code on PyTensor's Numba backend, on JAX's (``mode="JAX"``) a ``lax.cond``
whose refreshing branch calls ``jnp.linalg.eigh`` (XLA runs only the branch taken), and
on PyTorch's (``mode="PYTORCH"``) ``torch.linalg.eigh`` behind the flag.

The decomposition is always computed in float64 (a float32 statistics matrix is widened
first, then the result is rounded back; on JAX only when it has 64-bit types enabled,
as PyTensor does when ``floatX`` is float64): the eigenvalues of Gram matrices span many
orders of magnitude, and their small end decides an inverse root.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from symopt._backend_hooks import when_imported

__all__ = ["PeriodicMatrixFunction", "periodic_eigenvectors", "periodic_inverse_root"]

KINDS = ("inverse_root", "eigenvectors")


def _inverse_root(S, shift, exponent):
    """:math:`Q\\,\\mathrm{diag}((\\max(w, 0) + s)^{-p})\\,Q^T` of a symmetric ``S``, in float64."""
    w, Q = np.linalg.eigh(np.asarray(S, dtype=np.float64))
    scaled = Q * (np.maximum(w, 0.0) + shift) ** (-exponent)
    return scaled @ Q.T


def _eigenvectors(S):
    """The eigenvectors of a symmetric ``S`` as columns, by decreasing eigenvalue, in float64."""
    _, Q = np.linalg.eigh(np.asarray(S, dtype=np.float64))
    return np.ascontiguousarray(Q[:, ::-1])


class PeriodicMatrixFunction(Op):
    r"""``f(S) if flag else previous``, with ``f`` run only when ``flag`` is set.

    Inputs: ``flag`` (a scalar, true to refresh), ``S`` (a symmetric matrix), ``previous``
    (the kept result, returned as a copy when ``flag`` is false) and ``shift`` (a scalar).
    ``kind`` is ``"inverse_root"``, :math:`(S + \text{shift}\, I)^{-\text{exponent}}`
    through the eigendecomposition with negative rounding noise in the eigenvalues set to
    zero, or ``"eigenvectors"``, the orthonormal eigenvectors of ``S`` as columns in
    decreasing order of their eigenvalues (``shift`` unused). The output has the dtype of
    ``previous``. Not differentiable: it computes optimizer state.
    """

    __props__ = ("kind", "exponent")

    def __init__(self, kind, exponent=0.0):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.exponent = float(exponent)

    def make_node(self, flag, S, previous, shift):
        _register_numba()
        flag = pt.neq(pt.as_tensor_variable(flag), 0)
        S = pt.as_tensor_variable(S)
        previous = pt.as_tensor_variable(previous)
        shift = pt.as_tensor_variable(shift)
        if flag.ndim != 0 or shift.ndim != 0:
            raise ValueError("flag and shift must be scalars")
        if S.ndim != 2 or previous.ndim != 2:
            raise ValueError(f"S and previous must be matrices, got ndim {S.ndim} and "
                             f"{previous.ndim}")
        return Apply(self, [flag, S, previous, shift], [previous.type()])

    def perform(self, node, inputs, output_storage):
        flag, S, previous, shift = inputs
        dtype = node.outputs[0].dtype
        if bool(flag):
            if self.kind == "inverse_root":
                value = _inverse_root(S, float(shift), self.exponent)
            else:
                value = _eigenvectors(S)
            output_storage[0][0] = value.astype(dtype)
        else:
            output_storage[0][0] = np.array(previous, dtype=dtype, copy=True)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[2]]

    def L_op(self, inputs, outputs, output_grads):
        raise NotImplementedError(
            "PeriodicMatrixFunction computes optimizer state and has no gradient")


def periodic_inverse_root(flag, S, previous, shift, exponent):
    r""":math:`(S + \text{shift}\,I)^{-\text{exponent}}` when ``flag``, else ``previous``."""
    return PeriodicMatrixFunction("inverse_root", exponent)(flag, S, previous, shift)


def periodic_eigenvectors(flag, S, previous):
    """The eigenvectors of ``S`` (columns, by decreasing eigenvalue) if ``flag``, else
    ``previous``."""
    zero = pt.constant(np.asarray(0.0, dtype=previous.dtype))
    return PeriodicMatrixFunction("eigenvectors")(flag, S, previous, zero)


_REGISTERED: list[bool] = []


def _register_numba():
    """Compile :class:`PeriodicMatrixFunction` for PyTensor's Numba backend, once."""
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

    @register_funcify_and_cache_key(PeriodicMatrixFunction)
    def numba_funcify_periodic(op, node=None, **kwargs):
        dtype = np.dtype(node.outputs[0].dtype)
        exponent = op.exponent

        if op.kind == "inverse_root":
            @numba_njit
            def refreshed(S, shift):
                w, Q = np.linalg.eigh(S.astype(np.float64))
                scaled = Q * (np.maximum(w, 0.0) + shift) ** (-exponent)
                return (scaled @ Q.T).astype(dtype)
        else:
            @numba_njit
            def refreshed(S, shift):
                _, Q = np.linalg.eigh(S.astype(np.float64))
                return np.ascontiguousarray(Q[:, ::-1]).astype(dtype)

        @numba_njit
        def periodic(flag, S, previous, shift):
            if flag.item():
                return refreshed(np.ascontiguousarray(S), np.float64(shift.item()))
            return previous.copy()

        key = hashlib.sha256(f"symopt.PeriodicMatrixFunction-1-{op.kind}-{exponent!r}-"
                             f"{dtype.name}".encode()).hexdigest()
        return periodic, key


def _register_jax(module=None):
    """Register :class:`PeriodicMatrixFunction` with PyTensor's JAX backend (called when
    that backend is imported: importing symopt does not import JAX)."""
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch.basic import jax_funcify

    @jax_funcify.register(PeriodicMatrixFunction)
    def jax_funcify_periodic(op, node=None, **kwargs):
        dtype = node.outputs[0].dtype
        exponent = op.exponent
        wide = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32

        def refreshed(S, shift):
            # the lower triangle, as NumPy and Numba read it
            w, Q = jnp.linalg.eigh(jnp.asarray(S, dtype=wide), UPLO="L",
                                   symmetrize_input=False)
            if op.kind == "inverse_root":
                value = (Q * (jnp.maximum(w, 0.0) + shift) ** (-exponent)) @ Q.T
            else:
                value = Q[:, ::-1]
            return jnp.asarray(value, dtype=dtype)

        def periodic(flag, S, previous, shift):
            return jax.lax.cond(flag, lambda: refreshed(S, shift),
                                lambda: jnp.asarray(previous, dtype=dtype))

        return periodic


def _register_pytorch(module=None):
    """Register :class:`PeriodicMatrixFunction` with PyTensor's PyTorch backend: the
    refresh in float64 with ``torch.linalg.eigh`` (which reads the lower triangle, as
    NumPy does), run only when the flag is set."""
    import torch
    from pytensor.link.pytorch.dispatch.basic import pytorch_funcify

    @pytorch_funcify.register(PeriodicMatrixFunction)
    def pytorch_funcify_periodic(op, node=None, **kwargs):
        dtype = getattr(torch, node.outputs[0].dtype)
        exponent = op.exponent

        def periodic(flag, S, previous, shift):
            if not bool(flag):
                return previous.clone().to(dtype)
            w, Q = torch.linalg.eigh(torch.as_tensor(S).to(torch.float64))
            if op.kind == "inverse_root":
                value = (Q * (torch.clamp(w, min=0.0) + shift) ** (-exponent)) @ Q.T
            else:
                value = torch.flip(Q, dims=(1,))
            return value.to(dtype)

        return periodic


when_imported("pytensor.link.jax.dispatch", _register_jax)
when_imported("pytensor.link.pytorch.dispatch", _register_pytorch)
