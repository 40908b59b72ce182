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

__all__ = ["ROWS", "Row", "missing_rows", "peer", "state_names"]


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
        None for a rule that is not elementwise (its state has an axis its parameter has
        not), which the fused path refuses.
    quadratic, rosenbrock : (dict, int)
        Hyperparameters and a number of steps that reach the test quadratic's minimum to
        1e-3 and Rosenbrock's to 1e-2, in float64 and float32.
    roles : tuple of str
        The per-parameter state, in order (``W.m``, ``W.v``, ...).
    matrix_roles : tuple of str or None
        For rules that treat matrices apart (Shampoo, SOAP): the state of a matrix
        parameter, in order; ``roles`` is then the state of the others.
    counter : bool
        Whether the rule keeps a step counter ``<rule>.t``.
    resume : dict or None
        Hyperparameters of a save/load resume check, for the rules with the most state.
    peers : dict
        ``{"torch" | "optax" | "pymc": factory}``, see the module docstring.
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
    counter: bool = False
    resume: dict | None = None
    peers: dict = field(default_factory=dict)
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
        counter=True,
        resume={"learning_rate": 0.05, "update_every": 3},
        # no peer: neither torch.optim nor optax 0.2.8 has SOAP (optax's pull requests)
    ),
}


def missing_rows():
    """The rules of :data:`symopt.RULES` without a row, and the rows without a rule."""
    import symopt

    return sorted(set(symopt.RULES) ^ set(ROWS))


def state_names(rule, params=("W", "b"), matrices=("W",)):
    """The names :func:`symopt.get_state` gives the state of ``rule`` for ``params``, of
    which ``matrices`` are matrices (the tests' ``W``)."""
    row = ROWS[rule]

    def roles(p):
        return row.matrix_roles if p in matrices and row.matrix_roles is not None else row.roles

    return [f"{p}.{role}" for p in params for role in roles(p)] + (
        [f"{rule}.t"] if row.counter else [])


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
