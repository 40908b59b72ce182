"""PyTorch code for :class:`~symopt.fused.op.FusedUpdate` and :class:`~symopt.fused.op.FusedCheck`.

On PyTensor's PyTorch backend (``mode="PYTORCH"``) a fused update is whole-tensor code,
as on JAX (:mod:`symopt.fused.array_code`): the loop body's scalar graph is converted by
PyTensor's own PyTorch dispatch, op by op (the torch functions it gives an elementwise
op, which work on whole tensors), and applied to each parameter, its gradient, its
state and the scalars. The shape checks run first, before anything is written.

:func:`register` is called when PyTensor's PyTorch backend is imported (see
:mod:`symopt._backend_hooks`): importing symopt never imports torch.
"""

from __future__ import annotations

from symopt.fused.array_code import fused_update
from symopt.fused.op import FusedCheck, FusedUpdate, _check_shapes

__all__ = ["register"]


def register(module=None):
    """Register :class:`FusedUpdate` and :class:`FusedCheck` with ``pytorch_funcify``."""
    import torch
    from pytensor.link.pytorch.dispatch.basic import pytorch_funcify

    class TorchArrays:
        """The few array functions :func:`fused_update` calls, for torch tensors."""

        reshape = staticmethod(torch.reshape)
        ravel = staticmethod(torch.ravel)
        concatenate = staticmethod(torch.cat)

        @staticmethod
        def asarray(x, dtype):
            return torch.as_tensor(x).to(getattr(torch, str(dtype)))

    @pytorch_funcify.register(FusedCheck)
    def pytorch_funcify_fused_check(op, node=None, **kwargs):
        checks = op.checks()

        def fused_check(*inputs):
            _check_shapes(checks, inputs)
            return torch.zeros((), dtype=torch.int8)

        return fused_check

    @pytorch_funcify.register(FusedUpdate)
    def pytorch_funcify_fused_update(op, node=None, **kwargs):
        # the body's scalar graph, each scalar op converted to its torch function (which
        # works on whole tensors: PyTensor's Elemwise conversion calls the same ones),
        # evaluated node by node (PyTensor's conversion of a whole graph writes source
        # whose constants torch.compile's guards cannot find again)
        graph = op.scalar_op.fgraph
        steps = [(apply, pytorch_funcify(apply.op, node=apply, **kwargs))
                 for apply in graph.toposort()]

        constants = {x: torch.as_tensor(x.data) for apply in graph.apply_nodes
                     for x in apply.inputs if x.owner is None and x not in graph.inputs}

        def inner(*values):
            env = dict(zip(graph.inputs, values, strict=True)) | constants
            for apply, function in steps:
                args = [env[x] for x in apply.inputs]
                out = function(*args)
                env.update(zip(apply.outputs, [out] if len(apply.outputs) == 1 else out,
                               strict=True))
            outs = [env[x] if x in env else torch.as_tensor(x.data) for x in graph.outputs]
            return outs[0] if len(outs) == 1 else outs

        def body(p, g, *rest):
            states, scalars = rest[:op.n_states], rest[op.n_states:]
            out = inner(p, g, *states, *(torch.as_tensor(c) for c in scalars))
            out = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            out = tuple(torch.broadcast_to(x, p.shape) for x in out)
            return out[0] if len(out) == 1 else out

        return fused_update(op, node, body, TorchArrays)
