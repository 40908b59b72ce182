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

Only transforms that declare themselves elementwise can be fused (every rule of symopt,
the momentum traces, value clipping, weight decay: see :class:`symopt.Transform`).
Blocks that look across elements (global-norm clipping) are not: ``fuse=True`` then
raises a :class:`NotFusable` error that says which, and ``fuse="auto"`` keeps the
per-tensor path.

The offsets into the flat buffers are fixed when the graph is built, so every call checks,
before anything is written, that each parameter still has the shape its slot was built for
and each gradient its parameter's shape (:class:`FusedCheck`, and each node again), and
refuses otherwise with a :class:`ValueError` naming the tensor and both shapes.

State is saved and restored under the per-tensor names (``W.m``, ``b.m``, ...), so a
checkpoint written by one path loads into the other.

The per-tensor path gets the same loop by default: importing symopt registers
compile-time rewrites (:mod:`symopt.fused.rewrite`). On the C backends each parameter's
update loop becomes a :class:`FusedUpdate` (PyTensor's own C loop for it is scalar,
about ten times slower), and on C and Numba the updates of a rule over many tensors are
grouped, four tensors a node, each tensor keeping its own state arrays (Numba's loop is
vectorised and is left alone for a rule over fewer than eight tensors). The window of
``adagrad_window`` is written and summed in one pass (:mod:`symopt.fused.window`). On
Numba a join of many vectors (the gradient of a :class:`symopt.FlatParameters` vector)
is one loop over them (:mod:`symopt.fused.concat`).

On PyTensor's JAX backend (``mode="JAX"``) the fused update is plain array code
(:mod:`symopt.fused.jax_code`, registered when PyTensor loads that backend, so importing
symopt never imports JAX): the loop body, converted by PyTensor's own JAX dispatch, is
applied to each parameter and its slices of the buffers, and the shape checks run when
JAX traces the function. On PyTensor's PyTorch backend (``mode="PYTORCH"``) it is the
same whole-tensor code (:mod:`symopt.fused.pytorch_code`), and the rules run per tensor
too (symopt mends three of PyTensor's scalar conversions there:
:mod:`symopt._pytorch_backend`).
"""

from symopt import _pytorch_backend
from symopt._backend_hooks import when_imported
from symopt.fused import concat, jax_code, modes, products, pytorch_code, rewrite, window
from symopt.fused.lowering import NotFusable
from symopt.fused.op import PARALLEL_MIN, FusedCheck, FusedUpdate
from symopt.fused.plan import (
    CHUNK,
    FUSE_MIN_TENSORS,
    auto_min_tensors,
    default_backend_is_c,
    fused_apply,
)

when_imported("pytensor.link.jax.dispatch", jax_code.register)
when_imported("pytensor.link.pytorch.dispatch", _pytorch_backend.register)
when_imported("pytensor.link.pytorch.dispatch", pytorch_code.register)

__all__ = ["CHUNK", "FUSE_MIN_TENSORS", "PARALLEL_MIN", "FusedCheck", "FusedUpdate",
           "NotFusable", "auto_min_tensors", "concat", "default_backend_is_c", "fused_apply",
           "modes", "products", "rewrite", "window"]
