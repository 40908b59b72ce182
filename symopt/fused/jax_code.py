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

from symopt.fused.array_code import fused_update
from symopt.fused.op import FusedCheck, FusedUpdate, _check_shapes

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
        return fused_update(op, node, body, jnp)
