"""The JAX code of :class:`~symopt.fused.op.FusedUpdate` and :class:`~symopt.fused.op.FusedCheck`.

On PyTensor's JAX backend (``mode="JAX"``) a fused update is plain array code: the loop
body, the rule's scalar :class:`~pytensor.scalar.basic.Composite`, is converted by
PyTensor's own JAX dispatch (so the same operations as the per-tensor path's loops on
that backend) and applied to each parameter, its gradient and its slices of the flat
state buffers as whole arrays; the new buffers are the old ones with those slices
replaced. XLA fuses it into loops of its own; JAX has no in-place updates, so the
buffers are new arrays at every call.

Shapes are static in JAX: the shape checks of every call
(:meth:`~symopt.fused.op.FusedUpdate.checks`) run when JAX traces the function, which it
does again for inputs of a new shape, so a parameter given a new shape by ``set_value``
or a gradient of the wrong shape raises the same :class:`ValueError`, naming the tensor
and both shapes, before anything is written.

:func:`register` is called when PyTensor's JAX backend is imported (see
:mod:`symopt._backend_hooks`): importing symopt never imports JAX.
"""

from __future__ import annotations

import numpy as np

from symopt.fused.op import FusedCheck, FusedUpdate, _check_like_param, _check_shapes

__all__ = ["register"]


def register(module=None):
    """Register :class:`FusedUpdate` and :class:`FusedCheck` with ``jax_funcify``."""
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch.basic import jax_funcify

    @jax_funcify.register(FusedCheck)
    def jax_funcify_fused_check(op, node=None, **kwargs):
        checks = op.checks()

        def fused_check(*inputs):
            _check_shapes(checks, inputs)  # at trace time: the shapes are static
            return jnp.zeros((), dtype="int8")

        return fused_check

    @jax_funcify.register(FusedUpdate)
    def jax_funcify_fused_update(op, node=None, **kwargs):
        scalar_node = op.scalar_op.make_node(*[x.type() for x in op.scalar_op.inputs])
        body = jax_funcify(op.scalar_op, node=scalar_node)
        return _fused_update(op, node, body, jnp)


def _fused_update(op, node, body, xp):
    """``fused_update(*inputs)`` of ``op``: the loop body ``body`` applied to whole arrays
    of ``xp`` (``jax.numpy``)."""
    checks = op.checks()
    dtypes = [out.dtype for out in node.outputs]
    n_states = op.n_states
    single = len(op.scalar_op.outputs) == 1
    shapes = op.shapes

    def fused_update(*inputs):
        _check_shapes(checks, inputs)  # at trace time: the shapes are static
        if shapes is None:
            _check_like_param(inputs[:2 + n_states])
        params, grads, states, scalars = op.split(inputs)
        new_params, pieces = [], [[] for _ in states]
        offset = op.offset
        for p, g in zip(params, grads, strict=True):
            shape = tuple(np.shape(p))
            end = offset + int(np.prod(shape, dtype=np.int64))
            sliced = [s if shapes is None else xp.reshape(s[offset:end], shape) for s in states]
            out = body(p, g, *sliced, *scalars)
            out = (out,) if single else tuple(out)
            new_params.append(out[0])
            for piece, new in zip(pieces, out[1:], strict=True):
                piece.append(new if shapes is None else xp.ravel(new))
            offset = end
        if shapes is None:
            new_states = [piece[0] for piece in pieces]
        else:  # each buffer with this node's slice replaced
            new_states = [xp.concatenate([s[:op.offset], *piece, s[offset:]])
                          for s, piece in zip(states, pieces, strict=True)]
        # exactly the outputs' dtypes (a weakly typed scalar may have widened a result)
        outputs = [xp.asarray(x, dtype=dtype)
                   for x, dtype in zip(new_params + new_states, dtypes, strict=True)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return fused_update
