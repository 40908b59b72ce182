"""Beyond first order: curvature-vector products, ESGD and vSGD, SciPy's full-batch solvers
and Hessian-free optimisation.

- :mod:`symopt.second_order.curvature`: Hessian-, Jacobian- and Gauss-Newton-vector
  products, built symbolically.
- :mod:`symopt.second_order.rules`: the update rules :func:`esgd`, :func:`vsgd`,
  :func:`sophia` and :func:`adahessian` and their building blocks.
- :mod:`symopt.second_order.solvers`: :func:`minimize`, SciPy's solvers on a compiled loss.
- :mod:`symopt.second_order.hessian_free`: truncated Newton with CG (Martens, 2010).
- :mod:`symopt.second_order.kronecker`: Kronecker-factored preconditioners, Shampoo, SOAP
  (rules in :data:`symopt.RULES`) and K-FAC for dense layers.
- :mod:`symopt.second_order.natural_gradient`: the natural gradient, Fisher-vector products
  inverted by conjugate gradient inside the graph.
"""

from symopt.second_order.curvature import (
    gauss_newton_vector_product,
    hessian_vector_product,
    jacobian_vector_product,
    require_loss,
)
from symopt.second_order.hessian_free import HessianFree, HFStep, conjugate_gradient, hessian_free
from symopt.second_order.kronecker import (
    DenseLayer,
    kfac,
    scale_by_shampoo,
    scale_by_soap,
    shampoo,
    soap,
)
from symopt.second_order.natural_gradient import natural_gradient
from symopt.second_order.rules import (
    adahessian,
    esgd,
    scale_by_adahessian,
    scale_by_equilibration,
    scale_by_sophia,
    scale_by_vsgd,
    sophia,
    vsgd,
)
from symopt.second_order.solvers import minimize

__all__ = [
    "DenseLayer",
    "HFStep",
    "HessianFree",
    "adahessian",
    "conjugate_gradient",
    "esgd",
    "gauss_newton_vector_product",
    "hessian_free",
    "hessian_vector_product",
    "jacobian_vector_product",
    "kfac",
    "minimize",
    "natural_gradient",
    "require_loss",
    "scale_by_adahessian",
    "scale_by_equilibration",
    "scale_by_shampoo",
    "scale_by_soap",
    "scale_by_sophia",
    "scale_by_vsgd",
    "shampoo",
    "soap",
    "sophia",
    "vsgd",
]
