"""One matrix product per pair of operands on the C backends, not a scaled copy beside it.

PyTensor's ``local_dot22_to_dot22scalar`` folds a scalar factor into a matrix product:
``a * dot(x, y)`` becomes ``Dot22Scalar(x, y, a)``, one GEMM with ``alpha = a``. When the
plain ``dot(x, y)`` has other clients it stays, and the product is computed twice. That
is the case in training graphs: Adam's first moment takes ``(1 - beta1) * g`` and its
second ``g ** 2`` of the same gradient ``g = dot(x, y)``, so in a 784-600-10 MLP two of
its five GEMMs ran twice and the C VM's step took 2.3x as long as with the rewrite
excluded (benchmarks/README.md, "The MLP training step, re-measured").

:func:`reuse_product` runs right after it: a ``Dot22Scalar(x, y, a)`` whose plain
``Dot22(x, y)`` is also in the graph becomes ``a * Dot22(x, y)``, a multiplication that
PyTensor's elementwise fusion then puts in the loop that reads the product. It fires
only in graphs that update symopt state or parameters (tag ``symopt_fusion``, as the
other rewrites of this package); the Numba backend has no ``Dot22Scalar``.
"""

from __future__ import annotations

from pytensor.graph.rewriting.basic import WalkingGraphRewriter, node_rewriter
from pytensor.tensor.blas import Dot22, Dot22Scalar
from pytensor.tensor.rewriting.blas import blas_optdb

from symopt.state import updated_by_symopt

__all__ = ["reuse_product"]


def _plain_product(fgraph, x, y):
    """The output of a ``Dot22(x, y)`` node in ``fgraph``, or None."""
    for client, _ in fgraph.clients.get(x, ()):
        if isinstance(getattr(client, "op", None), Dot22) and client.inputs == [x, y]:
            return client.outputs[0]
    return None


@node_rewriter([Dot22Scalar])
def reuse_product(fgraph, node):
    """``Dot22Scalar(x, y, a)`` with ``Dot22(x, y)`` in the graph: ``a * Dot22(x, y)``."""
    if not any(updated_by_symopt(v) for v in fgraph.inputs):
        return False
    x, y, a = node.inputs
    product = _plain_product(fgraph, x, y)
    if product is None or product.type != node.outputs[0].type:
        return False
    return [product * a]


# right after local_dot22_to_dot22scalar (12 in PyTensor's BLAS rewrites)
blas_optdb.register("symopt_reuse_product", WalkingGraphRewriter(reuse_product),
                    "fast_run", "symopt_fusion", position=12.5)
