"""One row of facts per update rule, read by the tests, the recorded curves and the benchmarks.

Each row of :data:`ROWS` holds what the library itself does not need to know about a
rule but every check of it does: its independent NumPy transcription
(:mod:`symopt.lab.reference`), the hyperparameters its trajectory and fused-path tests
use, settings that converge on the test quadratic and on Rosenbrock, its state, and how
the peers that compute the same rule (torch.optim, optax, PyMC) are built from its
hyperparameters. Adding a rule to symopt is: its block (:mod:`symopt.blocks`), its rule
(:mod:`symopt.rules`, which registers it in :data:`symopt.RULES`) and its row here.

Peer factories take the peer's module and a dict of symopt hyperparameters (every one,
defaults resolved, as :attr:`symopt.ConfiguredRule.hyperparameters` and the recorded
curves' metadata hold them):

- ``"torch"``: ``(optimizer class, keyword arguments)``; the optimizer is built on the
  parameters by the caller;
- ``"optax"``: the ``GradientTransformation``;
- ``"pymc"``: PyMC's configured rule (``pm.adam(learning_rate=...)``).

A rule is paired only where the peer computes the same equations; where it does not,
the row says why in ``unpaired``. A factory returns None for hyperparameters whose form
the peer does not compute (PyMC's Adam is the ``epsilon_placement="before_correction"``
form, torch's the other); with ``similar``, :func:`peer` then falls back on the
``similar`` factory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from symopt.lab import reference

__all__ = ["ROWS", "Row", "missing_rows", "peer", "roles_of", "state_names"]


@dataclass(frozen=True)
class Row:
    """The facts about one rule that its checks read.

    Attributes
    ----------
    reference : type
        The NumPy transcription (a :class:`symopt.lab.reference.Rule`).
    cases : tuple of dict
        Hyperparameters of the trajectory tests, chosen to exercise every branch.
    fused : dict or None
        The hyperparameters of the fused-path comparison (the most branches at once);
        None for a rule that is not elementwise (it looks across elements: a tensor's
        norm, a factored moment, a matrix function, a window of past values, the loss),
        which the fused path refuses.
    quadratic, rosenbrock : (dict, int)
        Hyperparameters and a number of steps that reach the test quadratic's minimum to
        1e-3 and Rosenbrock's to 1e-2, in float64 and float32.
    roles : tuple of str
        The per-parameter state, in order (``W.m``, ``W.v``, ...).
    matrix_roles : tuple of str or None
        The per-parameter state of a matrix, where it differs from ``roles`` (Adafactor
        factors a matrix's second moment; Muon updates only matrices with its own step;
        Shampoo and SOAP keep Kronecker factors of a matrix).
    unshaped : tuple of str
        The roles whose state is not shaped like its parameter (factored statistics,
        one scalar per tensor); the others have exactly their parameter's type.
    scalars : tuple of str
        State kept for the rule as a whole, ``<rule>.<role>``, after the per-parameter
        state and before the counter (Prodigy's estimate, a random generator).
    counter : bool
        Whether the rule keeps a step counter ``<rule>.t``.
    resume : dict or None
        Hyperparameters of a save/load resume check, for the rules with the most state.
    peers : dict
        ``{"torch" | "optax" | "pymc": factory}``, see the module docstring.
    peer_ndim : dict
        ``{peer: ndim}`` for a peer that takes parameters of that many dimensions only
        (``torch.optim.Muon``: matrices).
    unpaired : dict
        ``{peer: reason}`` for the peers that have a rule of this name but other equations.
    similar : dict
        ``{peer: factory}`` for those: the same arrays and arithmetic, other details (an
        epsilon's place), so their step time is comparable, not their numbers. The
        benchmarks time them where no peer computes the same rule.
    """

    reference: type
    cases: tuple
    fused: dict | None
    quadratic: tuple
    rosenbrock: tuple
    roles: tuple = ()
    matrix_roles: tuple | None = None
    unshaped: tuple = ()
    scalars: tuple = ()
    counter: bool = False
    resume: dict | None = None
    peers: dict = field(default_factory=dict)
    peer_ndim: dict = field(default_factory=dict)
    unpaired: dict = field(default_factory=dict)
    similar: dict = field(default_factory=dict)


def _adam_kwargs(h):
    return {"b1": h["beta1"], "b2": h["beta2"], "eps": h["epsilon"]}


def _efficient(h):
    """Whether ``h`` selects the efficient form of Adam's family (Lasagne's and PyMC's)."""
    return h.get("epsilon_placement", "after_correction") == "before_correction"


def _only(condition, make):
    """A peer factory that computes the rule only where ``condition(h)`` holds."""
    return lambda module, h: make(module, h) if condition(h) else None


def _not_efficient(h):
    return not _efficient(h)


def _half_root(count):
    """A clipping schedule of ADOPT's other than the default ``count ** 0.25``."""
    return 0.5 * count**0.5


def _torch_adam(h, **extra):
    return {"lr": h["learning_rate"], "betas": (h["beta1"], h["beta2"]), "eps": h["epsilon"],
            **extra}


ROWS = {
    "sgd": Row(
        reference.SGD,
        cases=({"learning_rate": 0.1},),
        fused={"learning_rate": 0.1},
        quadratic=({"learning_rate": 0.3}, 150),
        rosenbrock=({"learning_rate": 1.5e-3}, 20000),
        peers={
            "torch": lambda torch, h: (torch.optim.SGD, {"lr": h["learning_rate"]}),
            "optax": lambda optax, h: optax.sgd(h["learning_rate"]),
            "pymc": lambda pm, h: pm.sgd(learning_rate=h["learning_rate"]),
        },
    ),
    "momentum": Row(
        reference.Momentum,
        cases=({"learning_rate": 0.05, "momentum": 0.9},),
        fused={"learning_rate": 0.05},
        quadratic=({"learning_rate": 0.03}, 500),
        rosenbrock=({"learning_rate": 3e-3}, 1000),
        roles=("velocity",),
        resume={"learning_rate": 0.05},
        peers={
            "torch": lambda torch, h: (torch.optim.SGD, {"lr": h["learning_rate"],
                                                         "momentum": h["momentum"]}),
            "pymc": lambda pm, h: pm.momentum(learning_rate=h["learning_rate"],
                                              momentum=h["momentum"]),
        },
        unpaired={"optax": "optax.sgd(momentum=...) traces the gradient, not the step: "
                           "equal only for a constant learning rate, to rounding"},
        similar={"optax": lambda optax, h: optax.sgd(h["learning_rate"],
                                                     momentum=h["momentum"])},
    ),
    "nesterov_momentum": Row(
        reference.NesterovMomentum,
        cases=({"learning_rate": 0.05, "momentum": 0.8},),
        fused={"learning_rate": 0.05, "momentum": 0.8},
        quadratic=({"learning_rate": 0.1}, 300),
        rosenbrock=({"learning_rate": 1e-3}, 3000),
        roles=("velocity",),
        peers={
            "torch": lambda torch, h: (torch.optim.SGD, {"lr": h["learning_rate"],
                                                         "momentum": h["momentum"],
                                                         "nesterov": True}),
            "pymc": lambda pm, h: pm.nesterov_momentum(learning_rate=h["learning_rate"],
                                                       momentum=h["momentum"]),
        },
    ),
    "adagrad": Row(
        reference.Adagrad,
        cases=({"learning_rate": 0.5}, {"learning_rate": 0.5, "epsilon": 0.1}),
        fused={"learning_rate": 0.5},
        quadratic=({"learning_rate": 1.0}, 200),
        rosenbrock=({"learning_rate": 0.3}, 20000),
        roles=("sum_square",),
        peers={
            "optax": lambda optax, h: optax.adagrad(h["learning_rate"],
                                                    initial_accumulator_value=0.0,
                                                    eps=h["epsilon"]),
            "pymc": lambda pm, h: pm.adagrad(learning_rate=h["learning_rate"],
                                             epsilon=h["epsilon"]),
        },
        unpaired={"torch": "torch's Adagrad adds epsilon outside the root"},
        similar={"torch": lambda torch, h: (torch.optim.Adagrad, {"lr": h["learning_rate"],
                                                                  "eps": h["epsilon"]})},
    ),
    "adagrad_window": Row(
        reference.AdagradWindow,
        # a window shorter than the run, so that old squares drop out of the sum
        cases=({"learning_rate": 0.1, "n_win": 3},
               {"learning_rate": 0.05, "epsilon": 1e-3, "n_win": 5}),
        fused=None,
        quadratic=({"learning_rate": 0.1}, 400),
        rosenbrock=({"learning_rate": 2e-3}, 30000),
        roles=("window",),
        counter=True,
        resume={"learning_rate": 0.1, "n_win": 3},
        peers={"pymc": lambda pm, h: pm.adagrad_window(
            learning_rate=h["learning_rate"], epsilon=h["epsilon"], n_win=h["n_win"])},
    ),
    "rmsprop": Row(
        reference.RMSProp,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-10, "momentum": 0.9},
               {"learning_rate": 0.02, "rho": 0.8, "centered": True},
               {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
        fused={"learning_rate": 0.02, "momentum": 0.5, "centered": True},
        quadratic=({"learning_rate": 0.03, "epsilon": 1e-2}, 500),
        rosenbrock=({"learning_rate": 1e-3, "epsilon": 1e-2}, 20000),
        roles=("mean_square",),
        resume={"learning_rate": 0.01, "momentum": 0.5, "centered": True},
        peers={
            "optax": lambda optax, h: optax.rmsprop(
                h["learning_rate"], decay=h["rho"], eps=h["epsilon"], centered=h["centered"],
                momentum=h["momentum"] or None),
            # PyMC's rmsprop has neither momentum nor the centred form
            "pymc": lambda pm, h: (pm.rmsprop(learning_rate=h["learning_rate"], rho=h["rho"],
                                              epsilon=h["epsilon"])
                                   if not h["momentum"] and not h["centered"] else None),
        },
        unpaired={"torch": "torch's RMSprop adds epsilon outside the root"},
        similar={"torch": lambda torch, h: (torch.optim.RMSprop, {
            "lr": h["learning_rate"], "alpha": h["rho"], "eps": h["epsilon"],
            "momentum": h["momentum"], "centered": h["centered"]})},
    ),
    "adadelta": Row(
        reference.AdaDelta,
        cases=({}, {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-2}),
        fused={},
        quadratic=({"learning_rate": 0.3}, 7000),
        rosenbrock=({"learning_rate": 0.02}, 30000),
        roles=("mean_square", "mean_square_delta"),
        peers={
            "torch": lambda torch, h: (torch.optim.Adadelta, {
                "lr": h["learning_rate"], "rho": h["rho"], "eps": h["epsilon"]}),
            "optax": lambda optax, h: optax.adadelta(h["learning_rate"], rho=h["rho"],
                                                     eps=h["epsilon"]),
            "pymc": lambda pm, h: pm.adadelta(learning_rate=h["learning_rate"], rho=h["rho"],
                                              epsilon=h["epsilon"]),
        },
    ),
    "adam": Row(
        reference.Adam,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3},
               {"learning_rate": 0.05, "epsilon": 1e-2, "epsilon_placement": "before_correction"}),
        fused={"learning_rate": 0.1},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),
        roles=("m", "v"),
        counter=True,
        resume={"learning_rate": 0.05},
        peers={
            "torch": _only(_not_efficient,
                           lambda torch, h: (torch.optim.Adam, _torch_adam(h))),
            "optax": _only(_not_efficient,
                           lambda optax, h: optax.adam(h["learning_rate"], **_adam_kwargs(h))),
            # PyMC's (and Lasagne's) adam is the efficient form, epsilon before correction
            "pymc": _only(_efficient, lambda pm, h: pm.adam(
                learning_rate=h["learning_rate"], beta1=h["beta1"], beta2=h["beta2"],
                epsilon=h["epsilon"])),
        },
        unpaired={"pymc": "PyMC's adam adds epsilon before the bias correction: only "
                          "epsilon_placement='before_correction' computes it"},
        similar={"pymc": lambda pm, h: pm.adam(learning_rate=h["learning_rate"],
                                               beta1=h["beta1"], beta2=h["beta2"],
                                               epsilon=h["epsilon"])},
    ),
    "adamax": Row(
        reference.AdaMax,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.1, "beta1": 0.8, "beta2": 0.5},
               {"learning_rate": 0.1, "beta1": 0.8, "epsilon_placement": "before_correction"}),
        fused={"learning_rate": 0.1},
        quadratic=({"learning_rate": 0.3, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 15000),
        roles=("m", "u"),
        counter=True,
        peers={
            "optax": lambda optax, h: optax.adamax(h["learning_rate"], **_adam_kwargs(h)),
            "pymc": lambda pm, h: pm.adamax(learning_rate=h["learning_rate"],
                                            beta1=h["beta1"], beta2=h["beta2"],
                                            epsilon=h["epsilon"]),
        },
        unpaired={"torch": "torch's Adamax adds epsilon inside the max"},
        similar={"torch": lambda torch, h: (torch.optim.Adamax, _torch_adam(h))},
    ),
    "amsgrad": Row(
        reference.AMSGrad,
        cases=({"learning_rate": 0.1, "beta2": 0.9},
               {"learning_rate": 0.1, "beta2": 0.9, "epsilon": 1e-2,
                "epsilon_placement": "before_correction"}),
        fused={"learning_rate": 0.1, "beta2": 0.9},
        quadratic=({"learning_rate": 0.3}, 500),
        rosenbrock=({"learning_rate": 0.03}, 10000),
        roles=("m", "v", "v_max"),
        counter=True,
        resume={"learning_rate": 0.05, "beta2": 0.9},
        peers={"torch": _only(_not_efficient, lambda torch, h: (
            torch.optim.Adam, _torch_adam(h, amsgrad=True)))},
        unpaired={"optax": "optax.amsgrad keeps the maximum of the bias-corrected v",
                  "pymc": "PyMC has no amsgrad (Lasagne's is epsilon_placement="
                          "'before_correction')"},
        similar={"optax": lambda optax, h: optax.amsgrad(h["learning_rate"],
                                                         **_adam_kwargs(h))},
    ),
    "nadam": Row(
        reference.NAdam,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "beta1": 0.7, "beta2": 0.99, "epsilon": 1e-4}),
        fused={"learning_rate": 0.1},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),
        roles=("m", "v"),
        counter=True,
        peers={"optax": lambda optax, h: optax.nadam(h["learning_rate"], **_adam_kwargs(h))},
        unpaired={"torch": "torch's NAdam adds a momentum schedule"},
        similar={"torch": lambda torch, h: (torch.optim.NAdam, _torch_adam(h))},
    ),
    "adamw": Row(
        reference.AdamW,
        cases=({"learning_rate": 0.1, "weight_decay": 0.1},),
        fused={"learning_rate": 0.1, "weight_decay": 0.1},
        quadratic=({"learning_rate": 0.3, "epsilon": 0.1, "weight_decay": 1e-5}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1, "weight_decay": 1e-5}, 20000),
        roles=("m", "v"),
        counter=True,
        peers={
            "torch": lambda torch, h: (torch.optim.AdamW,
                                       _torch_adam(h, weight_decay=h["weight_decay"])),
            "optax": lambda optax, h: optax.adamw(h["learning_rate"], **_adam_kwargs(h),
                                                  weight_decay=h["weight_decay"]),
        },
    ),
    "rprop": Row(
        reference.Rprop,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.3, "etas": (0.3, 1.5), "step_sizes": (0.05, 0.4)}),
        fused={"learning_rate": 0.1},
        quadratic=({"learning_rate": 0.1}, 150),
        rosenbrock=({"learning_rate": 0.01}, 10000),
        roles=("prev_grad", "step_size"),
        counter=True,
        resume={"learning_rate": 0.1},
        peers={"torch": lambda torch, h: (torch.optim.Rprop, {
            "lr": h["learning_rate"], "etas": tuple(h["etas"]),
            "step_sizes": tuple(h["step_sizes"])})},
    ),
    "lion": Row(
        reference.Lion,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.9, "weight_decay": 0.1}),
        fused={"learning_rate": 0.05, "weight_decay": 0.1},
        # a sign step hovers at two or three learning rates from the minimum
        quadratic=({"learning_rate": 2e-4, "weight_decay": 0.0}, 30000),
        rosenbrock=({"learning_rate": 1e-3, "weight_decay": 0.0}, 5000),
        roles=("m",),
        peers={"optax": lambda optax, h: optax.lion(h["learning_rate"], b1=h["beta1"],
                                                    b2=h["beta2"],
                                                    weight_decay=h["weight_decay"])},
    ),
    "shampoo": Row(
        reference.Shampoo,
        cases=({"learning_rate": 0.1, "update_every": 3},
               # the paper's Algorithm 1: running sums, no momentum, no grafting
               {"learning_rate": 0.05, "beta1": 0.0, "update_every": 1, "graft": False},
               # moving averages, decay, and a side too long for a preconditioner
               {"learning_rate": 0.1, "shampoo_beta": 0.9, "weight_decay": 0.1,
                "update_every": 2, "max_dim": 2}),
        fused=None,
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),  # a vector: Adam
        roles=("m", "v"),
        matrix_roles=("m", "v", "left", "right", "left_root", "right_root"),
        unshaped=("left", "right", "left_root", "right_root"),
        counter=True,
        resume={"learning_rate": 0.05, "update_every": 3},
        # no peer: neither torch.optim nor optax 0.2.8 has Shampoo
    ),
    "soap": Row(
        reference.SOAP,
        # epsilon 1e-3: at the first steps L (3 x 3, from one or two gradients) has a null
        # direction, where the rotated gradient is pure rounding noise (~1e-16) that Adam's
        # normalisation scales up to noise / epsilon; 1e-8 would make that 1e-8
        cases=({"learning_rate": 0.1, "update_every": 3, "epsilon": 1e-3},
               {"learning_rate": 0.05, "beta1": 0.9, "beta2": 0.99, "shampoo_beta": 0.8,
                "update_every": 2, "weight_decay": 0.0, "max_dim": 2}),
        fused=None,
        quadratic=({"learning_rate": 0.1, "beta1": 0.9, "beta2": 0.999, "epsilon": 0.1,
                    "weight_decay": 0.0}, 500),
        rosenbrock=({"learning_rate": 3e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 0.1,
                     "weight_decay": 0.0}, 20000),  # a vector: Adam
        roles=("m", "v"),
        matrix_roles=("m", "v", "left", "right", "left_basis", "right_basis"),
        unshaped=("left", "right", "left_basis", "right_basis"),
        counter=True,
        resume={"learning_rate": 0.05, "update_every": 3},
        # no peer: neither torch.optim nor optax 0.2.8 has SOAP (optax's pull requests)
    ),
    "radam": Row(
        reference.RAdam,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6,
                "weight_decay": 0.1},
               {"learning_rate": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
        fused={"learning_rate": 0.1, "weight_decay": 0.1},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 1000),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),
        roles=("m", "v"),
        counter=True,
        peers={"torch": lambda torch, h: (torch.optim.RAdam, _torch_adam(
            h, weight_decay=h["weight_decay"],
            decoupled_weight_decay=h["decoupled_weight_decay"]))},
        unpaired={"optax": "optax.radam rectifies from rho_t >= 5 and adds epsilon after "
                           "the bias correction"},
        similar={"optax": lambda optax, h: optax.radam(h["learning_rate"], **_adam_kwargs(h))},
    ),
    "adafactor": Row(
        reference.Adafactor,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.05, "beta2_decay": -0.5, "epsilon1": 1e-20,
                "epsilon2": 1e-2, "d": 1.05, "weight_decay": 0.1},
               # epsilons large enough that the clamps of RMS(theta), V and mean(R) act
               {"learning_rate": 0.05, "epsilon1": 0.3, "epsilon2": 2.0}),
        fused=None,  # looks across elements: the fused path refuses it
        # a large epsilon1 turns the last phase into gradient descent, which settles
        quadratic=({"learning_rate": 0.03, "epsilon1": 0.3}, 1000),
        rosenbrock=({"learning_rate": 5e-3, "epsilon1": 3.0, "epsilon2": 1.0}, 18000),
        roles=("variance",),
        matrix_roles=("row_variance", "col_variance"),
        unshaped=("row_variance", "col_variance"),
        counter=True,
        resume={"learning_rate": 0.05},
        peers={"torch": lambda torch, h: (torch.optim.Adafactor, {
            "lr": h["learning_rate"], "beta2_decay": h["beta2_decay"],
            "eps": (h["epsilon1"], h["epsilon2"]), "d": h["d"],
            "weight_decay": h["weight_decay"]})},
        unpaired={"optax": "optax.adafactor follows the paper's other options (momentum, "
                           "epsilon added to the squares, factoring thresholds)"},
    ),
    "asgd": Row(
        reference.ASGD,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.05, "lambd": 0.01, "alpha": 0.6, "t0": 5,
                "weight_decay": 0.05}),
        fused={"learning_rate": 0.05, "lambd": 0.01, "t0": 5},
        quadratic=({"learning_rate": 0.3, "lambd": 0.0}, 200),
        rosenbrock=({"learning_rate": 1.5e-3, "lambd": 0.0}, 20000),
        roles=("average",),
        counter=True,
        peers={"torch": lambda torch, h: (torch.optim.ASGD, {
            "lr": h["learning_rate"], "lambd": h["lambd"], "alpha": h["alpha"],
            "t0": h["t0"], "weight_decay": h["weight_decay"]})},
    ),
    "muon": Row(
        reference.Muon,
        cases=({"learning_rate": 0.02},
               {"learning_rate": 0.02, "weight_decay": 0.05, "momentum": 0.9,
                "nesterov": False, "ns_coefficients": (3.0, -3.2, 1.2), "epsilon": 1e-6,
                "ns_steps": 3, "adjust_lr_fn": "match_rms_adamw", "adam_learning_rate": 0.05,
                "adam_beta1": 0.8, "adam_beta2": 0.95, "adam_epsilon": 1e-6,
                "adam_weight_decay": 0.02},
               {"learning_rate": 0.02, "adjust_lr_fn": "original"}),
        fused=None,  # looks across elements: the fused path refuses it
        # a large epsilon makes the Newton-Schulz map linear near the minimum
        quadratic=({"learning_rate": 3e-3, "epsilon": 3.0, "weight_decay": 0.0,
                    "adam_learning_rate": 0.1, "adam_epsilon": 0.1}, 5000),
        rosenbrock=({"learning_rate": 3e-3, "adam_epsilon": 0.1}, 16000),
        roles=("m", "v"),
        matrix_roles=("m",),
        counter=True,
        resume={"learning_rate": 0.02, "adam_learning_rate": 0.05},
        peers={"torch": lambda torch, h: (torch.optim.Muon, {
            "lr": h["learning_rate"], "weight_decay": h["weight_decay"],
            "momentum": h["momentum"], "nesterov": h["nesterov"],
            "ns_coefficients": tuple(h["ns_coefficients"]), "eps": h["epsilon"],
            "ns_steps": h["ns_steps"], "adjust_lr_fn": h["adjust_lr_fn"]})},
        peer_ndim={"torch": 2},
        unpaired={"optax": "optax.contrib.muon bias-corrects the momentum, divides by "
                           "norm + eps and scales by the other side's ratio"},
        similar={"optax": lambda optax, h: optax.contrib.muon(
            h["learning_rate"], beta=h["momentum"], weight_decay=h["weight_decay"])},
    ),
    "lamb": Row(
        reference.LAMB,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-4,
                "eps_root": 1e-8, "weight_decay": 0.05}),
        fused=None,  # looks across elements: the fused path refuses it
        # the trust ratio fixes each step's norm at lr * |theta|: LAMB hovers about that
        # far from the minimum, so a small learning rate and many steps
        quadratic=({"learning_rate": 1.5e-4, "beta1": 0.5, "epsilon": 0.1}, 25000),
        rosenbrock=({"learning_rate": 1e-3, "beta1": 0.5, "epsilon": 0.1}, 30000),
        roles=("m", "v"),
        counter=True,
        peers={"optax": lambda optax, h: optax.lamb(
            h["learning_rate"], **_adam_kwargs(h), eps_root=h["eps_root"],
            weight_decay=h["weight_decay"])},
    ),
    "lars": Row(
        reference.LARS,
        cases=({"learning_rate": 1.0},
               {"learning_rate": 5.0, "weight_decay": 0.01, "trust_coefficient": 0.02,
                "epsilon": 1e-3, "momentum": 0.8, "nesterov": True}),
        fused=None,  # looks across elements: the fused path refuses it
        # an epsilon above the final gradients' norm turns the last phase into momentum GD
        quadratic=({"learning_rate": 1.0, "epsilon": 0.01}, 1000),
        rosenbrock=({"learning_rate": 0.3, "epsilon": 0.01}, 15000),
        roles=("velocity",),
        peers={"optax": lambda optax, h: optax.lars(
            h["learning_rate"], weight_decay=h["weight_decay"],
            trust_coefficient=h["trust_coefficient"], eps=h["epsilon"],
            momentum=h["momentum"], nesterov=h["nesterov"])},
    ),
    "yogi": Row(
        reference.Yogi,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-4,
                "initial_accumulator_value": 1e-3, "eps_root": 1e-10}),
        fused={"learning_rate": 0.05, "eps_root": 1e-10},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 0.03, "epsilon": 0.1}, 8000),
        roles=("m", "v"),
        counter=True,
        peers={"optax": lambda optax, h: optax.chain(
            optax.scale_by_yogi(b1=h["beta1"], b2=h["beta2"], eps=h["epsilon"],
                                eps_root=h["eps_root"],
                                initial_accumulator_value=h["initial_accumulator_value"]),
            optax.scale_by_learning_rate(h["learning_rate"]))},
    ),
    "adan": Row(
        reference.Adan,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.85, "beta3": 0.95,
                "epsilon": 1e-6, "eps_root": 1e-10, "weight_decay": 0.05}),
        fused={"learning_rate": 0.01, "weight_decay": 0.05},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 1500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),
        roles=("m", "v", "n", "prev_grad"),
        counter=True,
        resume={"learning_rate": 0.05},
        unpaired={"optax": "optax.adan 0.2.8 weights the gradient difference by 1 - beta2 "
                           "where the paper has beta2 (optax pull request 1715); equal for "
                           "beta2 = 0.5, which tests/core/test_modern_peers.py checks"},
        similar={"optax": lambda optax, h: optax.adan(
            h["learning_rate"], b1=h["beta1"], b2=h["beta2"], b3=h["beta3"],
            eps=h["epsilon"], eps_root=h["eps_root"], weight_decay=h["weight_decay"])},
    ),
    "adabelief": Row(
        reference.AdaBelief,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-10,
                "eps_root": 1e-12, "nesterov": True}),
        fused={"learning_rate": 0.05, "nesterov": True},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 3e-3, "epsilon": 0.1}, 20000),
        roles=("m", "s"),
        counter=True,
        peers={"optax": lambda optax, h: optax.adabelief(
            h["learning_rate"], **_adam_kwargs(h), eps_root=h["eps_root"],
            nesterov=h["nesterov"])},
    ),
    "novograd": Row(
        reference.NovoGrad,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.6, "epsilon": 1e-4,
                "eps_root": 1e-8, "weight_decay": 0.05}),
        fused=None,  # looks across elements: the fused path refuses it
        quadratic=({"learning_rate": 0.03, "epsilon": 0.1}, 400),
        rosenbrock=({"learning_rate": 1e-3}, 2000),
        roles=("m", "v"),
        unshaped=("v",),
        counter=True,
        peers={"optax": lambda optax, h: optax.novograd(
            h["learning_rate"], **_adam_kwargs(h), eps_root=h["eps_root"],
            weight_decay=h["weight_decay"])},
    ),
    "adopt": Row(
        reference.ADOPT,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-4,
                "nesterov": True, "clip_value_fn": _half_root},
               {"learning_rate": 0.05, "use_clipping": False},
               {"learning_rate": 0.05, "epsilon": 0.5}),
        fused={"learning_rate": 0.05, "nesterov": True},
        quadratic=({"learning_rate": 0.03, "beta2": 0.99, "epsilon": 0.1}, 1000),
        rosenbrock=({"learning_rate": 3e-3, "beta2": 0.99, "epsilon": 0.1}, 5000),
        roles=("m", "v"),
        counter=True,
        peers={"optax": lambda optax, h: optax.contrib.adopt(
            h["learning_rate"], **_adam_kwargs(h), nesterov=h["nesterov"],
            use_clipping=h["use_clipping"],
            **({} if h["clip_value_fn"] is None else {"clip_value_fn": h["clip_value_fn"]}))},
    ),
    "ademamix": Row(
        reference.AdEMAMix,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "beta3": 0.99,
                "alpha": 3.0, "epsilon": 1e-6, "eps_root": 1e-10, "weight_decay": 0.05}),
        fused={"learning_rate": 0.01, "beta3": 0.99, "eps_root": 1e-10, "weight_decay": 0.05},
        quadratic=({"learning_rate": 0.1, "beta3": 0.99, "epsilon": 0.1}, 1000),
        rosenbrock=({"learning_rate": 3e-3, "beta3": 0.99, "epsilon": 0.1}, 20000),
        roles=("m1", "m2", "nu"),
        counter=True,
        peers={"optax": lambda optax, h: optax.contrib.ademamix(
            h["learning_rate"], b1=h["beta1"], b2=h["beta2"], b3=h["beta3"],
            alpha=h["alpha"], eps=h["epsilon"], eps_root=h["eps_root"],
            weight_decay=h["weight_decay"])},
    ),
    "schedule_free_sgd": Row(
        reference.ScheduleFreeSGD,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.1, "warmup_steps": 5, "beta1": 0.8, "weight_decay": 0.01,
                "weight_lr_power": 1.0}),
        fused={"learning_rate": 0.1, "warmup_steps": 5, "weight_decay": 0.01},
        # the average of the iterates weighs the early ones by the warm-up's small rates
        quadratic=({"learning_rate": 0.5}, 800),
        rosenbrock=({"learning_rate": 1.5e-3, "warmup_steps": 10000, "weight_lr_power": 8.0},
                    30000),
        roles=("z",),
        scalars=("max_lr", "weight_sum"),
        counter=True,
        peers={"optax": lambda optax, h: optax.contrib.schedule_free_sgd(
            h["learning_rate"], warmup_steps=h["warmup_steps"], b1=h["beta1"],
            weight_decay=h["weight_decay"], weight_lr_power=h["weight_lr_power"])},
    ),
    "schedule_free_adamw": Row(
        reference.ScheduleFreeAdamW,
        cases=({"learning_rate": 0.05},
               {"learning_rate": 0.02, "warmup_steps": 5, "beta1": 0.8, "beta2": 0.95,
                "epsilon": 1e-6, "weight_decay": 0.05, "weight_lr_power": 1.5}),
        fused={"learning_rate": 0.02, "warmup_steps": 5, "weight_decay": 0.05},
        quadratic=({"learning_rate": 0.1, "epsilon": 0.1}, 2500),
        rosenbrock=({"learning_rate": 0.01, "warmup_steps": 5000, "epsilon": 0.1}, 30000),
        roles=("v", "z"),
        scalars=("max_lr", "weight_sum"),
        counter=True,
        resume={"learning_rate": 0.02, "warmup_steps": 5},
        peers={"optax": lambda optax, h: optax.contrib.schedule_free_adamw(
            h["learning_rate"], warmup_steps=h["warmup_steps"], b1=h["beta1"],
            b2=h["beta2"], eps=h["epsilon"], weight_decay=h["weight_decay"],
            weight_lr_power=h["weight_lr_power"])},
    ),
    "prodigy": Row(
        reference.Prodigy,
        cases=({"estim_lr0": 1e-3},
               {"learning_rate": 0.5, "beta1": 0.8, "beta2": 0.95, "beta3": 0.9,
                "epsilon": 1e-6, "estim_lr0": 3e-3, "estim_lr_coef": 0.5,
                "weight_decay": 0.01, "safeguard_warmup": True}),
        fused=None,  # looks across elements: the fused path refuses it
        quadratic=({"epsilon": 0.1}, 500),
        rosenbrock=({"learning_rate": 0.1, "epsilon": 0.1, "safeguard_warmup": True}, 20000),
        roles=("m", "v", "grad_sum", "initial"),
        scalars=("estim_lr", "numerator"),
        counter=True,
        resume={"estim_lr0": 1e-3},
        peers={"optax": lambda optax, h: optax.contrib.prodigy(
            h["learning_rate"], betas=(h["beta1"], h["beta2"]), beta3=h["beta3"],
            eps=h["epsilon"], estim_lr0=h["estim_lr0"], estim_lr_coef=h["estim_lr_coef"],
            weight_decay=h["weight_decay"], safeguard_warmup=h["safeguard_warmup"])},
    ),
    "sophia": Row(
        reference.Sophia,
        cases=({"learning_rate": 0.05, "seed": 1},
               {"learning_rate": 0.1, "beta1": 0.9, "beta2": 0.95, "epsilon": 1e-3,
                "gamma": 0.5, "weight_decay": 0.05, "every": 3, "probe": "rademacher",
                "seed": 2}),
        fused=None,  # looks across elements: the fused path refuses it
        # gamma 1: the Hessian's own scale (the default suits mini-batch noise)
        quadratic=({"learning_rate": 0.5, "gamma": 1.0, "weight_decay": 0.0, "seed": 0}, 1000),
        rosenbrock=({"learning_rate": 0.5, "gamma": 1.0, "weight_decay": 0.0,
                     "probe": "rademacher", "seed": 0}, 10000),
        roles=("m", "h"),
        scalars=("rng",),
        counter=True,
        resume={"learning_rate": 0.1, "gamma": 0.5, "every": 3, "seed": 3},
        unpaired={"optax": "optax.contrib.sophia divides by the previous Hessian estimate, "
                           "bias-corrects the momentum and draws JAX's random signs"},
    ),
    "adahessian": Row(
        reference.AdaHessian,
        cases=({"learning_rate": 0.1, "seed": 1},
               {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-3,
                "weight_decay": 0.05, "hessian_power": 0.5, "probe": "normal", "seed": 2}),
        fused=None,  # looks across elements: the fused path refuses it
        quadratic=({"learning_rate": 0.3, "seed": 0}, 400),
        rosenbrock=({"learning_rate": 1.0, "seed": 0}, 14000),
        roles=("m", "v"),
        scalars=("rng",),
        counter=True,
    ),
    "sam": Row(
        reference.SAM,
        cases=({"learning_rate": 0.1},
               {"learning_rate": 0.05, "rho": 0.2, "momentum": 0.9}),
        fused=None,  # looks across elements: the fused path refuses it
        # the perturbation has norm rho at any distance from the minimum: SAM hovers
        # about lr * rho * curvature away, so a small rho
        quadratic=({"learning_rate": 0.3, "rho": 1e-4}, 200),
        rosenbrock=({"learning_rate": 1e-3, "rho": 1e-4, "momentum": 0.9}, 3000),
        resume={"learning_rate": 0.05, "momentum": 0.9},
        unpaired={"optax": "one step of sam is two calls of optax.contrib.sam (ascent, then "
                           "descent); tests/core/test_modern_peers.py pairs them"},
    ),
}


def missing_rows():
    """The rules of :data:`symopt.RULES` without a row, and the rows without a rule."""
    import symopt

    return sorted(set(symopt.RULES) ^ set(ROWS))


def roles_of(rule, ndim):
    """The per-parameter state roles of ``rule`` for a parameter of ``ndim`` dimensions."""
    row = ROWS[rule]
    return row.matrix_roles if ndim == 2 and row.matrix_roles is not None else row.roles


def state_names(rule, params=(("W", 2), ("b", 1))):
    """The names :func:`symopt.get_state` gives the state of ``rule`` for ``params``,
    ``(name, ndim)`` pairs (by default the test quadratic's matrix and vector)."""
    row = ROWS[rule]
    return ([f"{p}.{role}" for p, ndim in params for role in roles_of(rule, ndim)]
            + [f"{rule}.{role}" for role in row.scalars]
            + ([f"{rule}.t"] if row.counter else []))


def peer(library, rule, module, hyperparameters, similar=False):
    """The peer ``library``'s form of ``rule`` with ``hyperparameters``, or None.

    With ``similar``, a rule of the same cost stands in where no peer computes the same
    one (for timing only).
    """
    row = ROWS[rule]
    factory = row.peers.get(library)
    found = None if factory is None else factory(module, hyperparameters)
    if found is None and similar and library in row.similar:
        found = row.similar[library](module, hyperparameters)
    return found
