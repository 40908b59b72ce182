"""A fused update as whole-array code, for the backends that compile array programs.

On PyTensor's JAX and PyTorch backends a :class:`~symopt.fused.op.FusedUpdate` is not a
loop but its loop body, the rule's scalar ``Composite`` converted by PyTensor's own
dispatch for that backend, applied to each parameter, its gradient and its state as
whole arrays (:func:`fused_update`). The shape checks run first, on the arrays' shapes.
"""

from __future__ import annotations

import numpy as np

from symopt.fused.op import _check_like_param, _check_shapes

__all__ = ["fused_update"]


def fused_update(op, node, body, xp):
    """``fused_update(*inputs)`` of ``op``: the loop body ``body`` applied to whole arrays
    of ``xp`` (``jax.numpy``, or :class:`TorchArrays`), each tensor with its slices of the
    flat state buffers or (``shapes=None``) its own state arrays."""
    checks = op.checks()
    dtypes = [out.dtype for out in node.outputs]
    n_states = op.n_states
    single = len(op.scalar_op.outputs) == 1
    shapes = op.shapes

    def fused_update(*inputs):
        _check_shapes(checks, inputs)  # at trace time: the shapes are static
        params, grads, states, scalars = op.split(inputs)
        if shapes is None:
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                _check_like_param([p, g, *op.tensor_states(states, i)])
        new_params, own_states, pieces = [], [], [[] for _ in range(n_states)]
        offset = op.offset
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            shape = tuple(p.shape)
            end = offset + int(np.prod(shape, dtype=np.int64))
            sliced = (op.tensor_states(states, i) if shapes is None
                      else [xp.reshape(s[offset:end], shape) for s in states])
            out = body(p, g, *sliced, *scalars)
            out = (out,) if single else tuple(out)
            new_params.append(out[0])
            if shapes is None:
                own_states += out[1:]
            else:
                for piece, new in zip(pieces, out[1:], strict=True):
                    piece.append(xp.ravel(new))
            offset = end
        if shapes is None:  # each tensor's own state arrays, tensor by tensor
            new_states = own_states
        else:  # each buffer with this node's slice replaced
            new_states = [xp.concatenate([s[:op.offset], *piece, s[offset:]])
                          for s, piece in zip(states, pieces, strict=True)]
        # exactly the outputs' dtypes (a weakly typed scalar may have widened a result)
        outputs = [xp.asarray(x, dtype=dtype)
                   for x, dtype in zip(new_params + new_states, dtypes, strict=True)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    return fused_update
