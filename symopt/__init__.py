"""symopt: gradient-descent update rules for PyTensor.

>>> import numpy as np, pytensor, symopt
>>> w = pytensor.shared(np.array([1.0, -1.0]), name="w")
>>> train = pytensor.function([], (w ** 2).sum(), updates=symopt.adam((w ** 2).sum(), [w], 0.1))
>>> losses = [float(train()) for _ in range(100)]
>>> losses[0], losses[-1] < 1e-3
(2.0, True)

The library, layer by layer (each a module whose name says what is in it):

- :mod:`symopt.transform`: the transform contract, :func:`chain`, :func:`apply` and
  configured rules;
- :mod:`symopt.updates`: :class:`Updates`, what every rule returns (a list of pairs that
  also reads as a mapping);
- :mod:`symopt.blocks`: the building blocks (``scale_by_adam``, ``trace``, ...);
- :mod:`symopt.rules`: the update rules and :data:`RULES`, the one registry of them;
- :mod:`symopt.combinators`: rules made of rules (per-group rules, masks, gradient
  accumulation, lookahead, parameter averages);
- :mod:`symopt.constraints`: clipping and norm constraints;
- :mod:`symopt.wrappers`: updates to updates (momentum on top, norm constraints, the
  NaN guard);
- :mod:`symopt.regularization`, :mod:`symopt.schedules`, :mod:`symopt.state`;
- :mod:`symopt.flat`: many parameters kept in one shared vector, each a view of it;
- :mod:`symopt.second_order`: curvature products, ESGD, vSGD, SciPy's solvers,
  Hessian-free, the natural gradient, Shampoo, SOAP and K-FAC;
- :mod:`symopt.fused`: the fused multi-tensor backend and compile modes;
- :mod:`symopt.texts`: the source texts' own forms.

The study kit (layers and MLPs, data, training loops, figures, the recorded curves) is
:mod:`symopt.lab`, which ``import symopt`` does not load.
"""

import importlib
import warnings

from symopt import fused, schedules, second_order, texts
from symopt._checks import ParamError
from symopt.blocks import (
    add_decayed_weights,
    identity,
    negate,
    scale,
    scale_by_adabelief,
    scale_by_adadelta,
    scale_by_adafactor,
    scale_by_adagrad,
    scale_by_adagrad_window,
    scale_by_adam,
    scale_by_adamax,
    scale_by_adan,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_amsgrad,
    scale_by_asgd,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_muon,
    scale_by_nadam,
    scale_by_novograd,
    scale_by_prodigy,
    scale_by_radam,
    scale_by_rms,
    scale_by_rprop,
    scale_by_schedule_free,
    scale_by_trust_ratio,
    scale_by_yogi,
    trace,
)
from symopt.combinators import averages, ema, lookahead, masked, multi_steps, partition
from symopt.constraints import (
    clip,
    clip_by_global_norm,
    clip_by_value,
    norm_constraint,
    total_norm_constraint,
)
from symopt.flat import FlatParameters
from symopt.grads import get_or_compute_grads
from symopt.regularization import l1, l2, regularize
from symopt.rules import (
    KINDS,
    RULES,
    adabelief,
    adadelta,
    adafactor,
    adagrad,
    adagrad_window,
    adam,
    adamax,
    adamw,
    adan,
    ademamix,
    adopt,
    amsgrad,
    asgd,
    lamb,
    lars,
    lion,
    momentum,
    muon,
    nadam,
    nesterov_momentum,
    novograd,
    prodigy,
    radam,
    rmsprop,
    rprop,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
    sgd,
    yogi,
)
from symopt.second_order import (
    adahessian,
    esgd,
    hessian_free,
    kfac,
    minimize,
    natural_gradient,
    shampoo,
    soap,
    sophia,
    vsgd,
)
from symopt.sharpness import sam, sharpness_aware
from symopt.state import CheckpointError, get_state, load_state, save_state
from symopt.texts.blog import MomentumUpdate
from symopt.texts.book import clip_norms
from symopt.transform import ConfiguredRule, Transform, apply, chain, update_rule
from symopt.updates import Updates
from symopt.wrappers import (
    apply_momentum,
    apply_nesterov_momentum,
    apply_norm_constraint,
    skip_nonfinite,
)

__version__ = "0.2.0"

__all__ = [
    # the transform contract, composition, configured rules
    "ConfiguredRule", "Transform", "Updates", "apply", "chain", "get_or_compute_grads",
    "update_rule", "ParamError", "FlatParameters",
    # building blocks
    "add_decayed_weights", "identity", "negate", "scale", "scale_by_adabelief",
    "scale_by_adadelta", "scale_by_adafactor", "scale_by_adagrad", "scale_by_adagrad_window",
    "scale_by_adam", "scale_by_adamax", "scale_by_ademamix", "scale_by_adan",
    "scale_by_adopt", "scale_by_amsgrad", "scale_by_asgd", "scale_by_learning_rate",
    "scale_by_lion", "scale_by_muon", "scale_by_nadam", "scale_by_novograd",
    "scale_by_prodigy", "scale_by_radam", "scale_by_rms", "scale_by_rprop",
    "scale_by_schedule_free", "scale_by_trust_ratio", "scale_by_yogi", "trace",
    "sharpness_aware",
    # the rules and their registry
    "KINDS", "RULES", "adabelief", "adadelta", "adafactor", "adagrad", "adagrad_window",
    "adam", "adamax", "adamw", "ademamix", "adan", "adopt", "amsgrad", "asgd", "lamb",
    "lars", "lion", "momentum", "muon", "nadam", "nesterov_momentum", "novograd",
    "prodigy", "radam", "rmsprop", "rprop", "schedule_free_adamw",
    "schedule_free_eval_params", "schedule_free_sgd", "sgd", "yogi", "sam", "sophia",
    "adahessian",
    # rules made of rules
    "averages", "ema", "lookahead", "masked", "multi_steps", "partition",
    # clipping and constraints
    "clip", "clip_by_global_norm", "clip_by_value", "norm_constraint",
    "total_norm_constraint",
    # wrappers: updates to updates
    "apply_momentum", "apply_nesterov_momentum", "apply_norm_constraint", "skip_nonfinite",
    # regularization, schedules, state
    "l1", "l2", "regularize", "schedules", "CheckpointError", "get_state", "load_state",
    "save_state",
    # beyond first order
    "second_order", "esgd", "hessian_free", "kfac", "minimize", "natural_gradient", "shampoo",
    "soap", "vsgd",
    # the fused backend
    "fused",
    # the source texts' forms
    "texts", "MomentumUpdate", "clip_norms",
]

#: Names that moved in 0.2.0, and where they live now. Reaching them through ``symopt``
#: still works (with a DeprecationWarning) and loads them only then.
MOVED = {
    "data": "symopt.lab.data",
    "diagnostics": "symopt.lab.diagnostics",
    "forms": "symopt.lab.forms",
    "history": "symopt.lab.history",
    "nn": "symopt.lab.nn",
    "problems": "symopt.lab.problems",
    "progress": "symopt.lab.progress",
    "testing": "symopt.lab.curves",
    "training": "symopt.lab.training",
    "modes": "symopt.fused.modes",
    "transforms": "symopt.blocks",
    "composition": "symopt.wrappers",
    "guards": "symopt.wrappers",
}


def __getattr__(name):
    if name in MOVED:
        warnings.warn(f"symopt.{name} moved to {MOVED[name]}; import it from there",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(MOVED[name])
    raise AttributeError(f"module 'symopt' has no attribute {name!r}")
