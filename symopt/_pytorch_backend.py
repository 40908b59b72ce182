"""Three scalar ops that PyTensor's PyTorch backend (3.0.x) converts to the wrong function.

PyTensor converts an elementwise scalar op for ``mode="PYTORCH"`` through the op's NumPy
name: ``Pow`` is ``numpy.power``, ``Mod`` is ``numpy.mod``, ``EQ`` is ``numpy.equal``.
torch has no ``torch.power`` and no ``torch.mod`` (it has ``torch.pow``, and
``torch.remainder``, which is NumPy's mod: the result takes the divisor's sign), and
``torch.equal`` compares two whole tensors and returns one Python bool, where
``torch.eq`` compares elementwise. So every rule with a bias correction (``beta ** t``),
a ring-buffer slot (``t % n``) or a first-step test (``t == 0``) failed there: 8 of 34
rules ran (``benchmarks/results/pytorch_backend_before.md``; with this module, 32).

When PyTensor loads its PyTorch backend, :func:`register` gives these three ops the
right torch functions, unless PyTensor already has a conversion of its own for the op
(a PyTensor that fixes this keeps its own).
"""

from __future__ import annotations

__all__ = ["register"]


def register(module=None):
    import pytensor.scalar as ps
    import torch
    from pytensor.link.pytorch.dispatch.basic import pytorch_funcify

    generic = pytorch_funcify.dispatch(ps.ScalarOp)
    for op_class, function in ((ps.Pow, torch.pow), (ps.Mod, torch.remainder),
                               (ps.EQ, torch.eq)):
        if pytorch_funcify.dispatch(op_class) is generic:
            pytorch_funcify.register(op_class)(_returning(function))


def _returning(function):
    def convert(op, node=None, **kwargs):
        return function

    return convert
