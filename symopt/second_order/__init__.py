"""Beyond first order: curvature-vector products, ESGD and vSGD, SciPy's full-batch solvers
and Hessian-free optimisation.

- :mod:`symopt.second_order.curvature`: Hessian-, Jacobian- and Gauss-Newton-vector
  products, built symbolically.
- :mod:`symopt.second_order.rules`: the update rules :func:`esgd`, :func:`vsgd`,
  :func:`sophia` and :func:`adahessian` and their building blocks.
- :mod:`symopt.second_order.solvers`: :func:`minimize`, SciPy's solvers on a compiled loss.
- :mod:`symopt.second_order.hessian_free`: truncated Newton with CG (Martens, 2010).
"""

from symopt.second_order.curvature import (
    gauss_newton_vector_product,
    hessian_vector_product,
    jacobian_vector_product,
    require_loss,
)
from symopt.second_order.hessian_free import HessianFree, HFStep, conjugate_gradient, hessian_free
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
    "HFStep",
    "HessianFree",
    "adahessian",
    "conjugate_gradient",
    "esgd",
    "gauss_newton_vector_product",
    "hessian_free",
    "hessian_vector_product",
    "jacobian_vector_product",
    "minimize",
    "require_loss",
    "scale_by_adahessian",
    "scale_by_equilibration",
    "scale_by_sophia",
    "scale_by_vsgd",
    "sophia",
    "vsgd",
]
