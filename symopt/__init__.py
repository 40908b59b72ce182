"""symopt: gradient-descent update rules for PyTensor.

>>> import numpy as np, pytensor, symopt
>>> w = pytensor.shared(np.array([1.0, -1.0]), name="w")
>>> train = pytensor.function([], (w ** 2).sum(), updates=symopt.adam((w ** 2).sum(), [w], 0.1))
>>> losses = [float(train()) for _ in range(100)]
>>> losses[0], losses[-1] < 1e-3
(2.0, True)
"""

from symopt import texts
from symopt.composition import apply_momentum, apply_nesterov_momentum
from symopt.constraints import (
    apply_norm_constraint,
    clip,
    clip_by_global_norm,
    clip_by_value,
    norm_constraint,
    total_norm_constraint,
)
from symopt.grads import get_or_compute_grads
from symopt.guards import skip_nonfinite
from symopt.regularization import l1, l2, regularize
from symopt.rules import (
    ConfiguredRule,
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    amsgrad,
    momentum,
    nadam,
    nesterov_momentum,
    rmsprop,
    rprop,
    sgd,
    update_rule,
)
from symopt.state import get_state, load_state, save_state
from symopt.texts.blog import MomentumUpdate
from symopt.texts.book import clip_norms
from symopt.transforms import (
    add_decayed_weights,
    apply,
    chain,
    identity,
    negate,
    scale,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_nadam,
    scale_by_rms,
    scale_by_rprop,
    trace,
)

__version__ = "0.1.0"

#: The user-facing update rules, by name.
RULES = {
    rule.__name__: rule
    for rule in (sgd, momentum, nesterov_momentum, adagrad, rmsprop, adadelta, adam, adamax,
                 amsgrad, nadam, adamw, rprop)
}

# Beyond first order (issue 6): curvature, ESGD and vSGD, SciPy's solvers, Hessian-free.
from symopt.second_order import esgd, hessian_free, minimize, vsgd  # noqa: E402

# Training toolkit and data (issue 3): data sets, layers, schedules, training loop.
from symopt import data, diagnostics, history, nn, progress, schedules, training  # noqa: E402

# Many tensors and compile modes (issue 7): the fused path, measured rewrite choices.
from symopt import fused, modes  # noqa: E402
