"""The recorded curves agree with the peers that compute the same rule.

torch.optim and optax are run on the same analytic problems, from the same start, with
the hyperparameters stored in each recorded curve's metadata, and must retrace its loss.
So the recordings are not just symopt's output frozen: each library rule is pinned to an
independent implementation. (PyMC's rules are checked the same way in
``tests/with_pymc/test_pymc_peers.py``, in the PyMC environment.)

Tolerance: float64, relative 1e-7 on the loss, over the first 50 steps. The peers order
their arithmetic differently (torch folds the learning rate into the step size, optax
uses rsqrt), so the runs differ by rounding from the first step. Most rules keep that
difference near 1e-15 for the whole run, but RMSProp without bias correction oscillates
on the ill-conditioned quadratic and on Rosenbrock, and there the rounding difference
grows exponentially (past 1e-7 after ~65 steps on Rosenbrock, ~120 on the quadratic).
Fifty steps is long enough for any difference of equation or constant to show (those
part the curves within the first three steps) and short enough for chaos not to.
The pairings are the peers of each rule's row in :data:`symopt.lab.rulebook.ROWS`;
rules where a peer's equation differs are not paired with it, and the row says why
(``unpaired``).
"""

from pathlib import Path

import numpy as np
import pytest

from symopt.lab.curves import load_curves
from symopt.lab.forms import FORMS
from symopt.lab.problems import make_problem
from symopt.lab.rulebook import ROWS, peer

RECORDED = Path(__file__).parent / "recorded"
PROBLEMS = ("toy", "quadratic", "rosenbrock")
RTOL = 1e-7
STEPS = 50
ATOL = 1e-14  # losses start at 1-25; below 1e-14 rounding is all that is left


def recorded(problem, form):
    return load_curves(RECORDED / f"{problem}-float64-numba.json")[form]


def _loss_fn(problem, xp):
    """The problem's cost in the array library ``xp`` (torch or jax.numpy)."""
    if problem.name == "toy":
        return lambda x: xp.sum(x**2) ** 2
    if problem.name == "rosenbrock":
        return lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    a, x_star = problem.arrays["a"], problem.arrays["x_star"]
    if xp.__name__ == "torch":
        a, x_star = xp.tensor(a), xp.tensor(x_star)
    return lambda x: 0.5 * ((x - x_star) @ (a @ (x - x_star)))


def paired(library):
    """The library forms (rules and their variants) whose rule ``library`` also computes,
    on these problems' single vector (not ``torch.optim.Muon``'s, which takes matrices
    only: tests/core/test_modern_peers.py pairs it on a matrix)."""
    return [name for name, form in FORMS.items()
            if form.source == "symopt" and library in ROWS[form.target.__name__].peers
            and ROWS[form.target.__name__].peer_ndim.get(library, 1) == 1]


def peer_of(library, form, module, hyperparameters):
    return peer(library, FORMS[form].target.__name__, module, hyperparameters)


# -- torch.optim -------------------------------------------------------------------------

@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("form", paired("torch"))
def test_recorded_curve_agrees_with_torch_optim(problem_name, form):
    torch = pytest.importorskip("torch", reason="torch is an optional test dependency")
    problem = make_problem(problem_name, "float64")
    curve = recorded(problem_name, form)
    x = torch.tensor(problem.initial[0][1].copy(), requires_grad=True)
    optimizer, kwargs = peer_of("torch", form, torch, curve.metadata["hyperparameters"])
    loss_fn, losses = _loss_fn(problem, torch), []
    # torch keeps some scalar state in its default dtype (ASGD's eta and mu), which is
    # float32 unless set: a float32 eta parts Rosenbrock's curve by 1e-7 at step 1.
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = optimizer([x], **kwargs)
        for _ in range(STEPS):
            opt.zero_grad()
            loss = loss_fn(x)
            loss.backward()
            losses.append(loss.item())
            opt.step()
    finally:
        torch.set_default_dtype(default)
    np.testing.assert_allclose(losses, curve.values["loss"][:STEPS], rtol=RTOL, atol=ATOL)


# -- optax ---------------------------------------------------------------------------------

@pytest.mark.parametrize("problem_name", PROBLEMS)
@pytest.mark.parametrize("form", paired("optax"))
def test_recorded_curve_agrees_with_optax(problem_name, form):
    optax = pytest.importorskip("optax", reason="optax is an optional test dependency")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    problem = make_problem(problem_name, "float64")
    curve = recorded(problem_name, form)
    rule = peer_of("optax", form, optax, curve.metadata["hyperparameters"])
    loss_and_grad = jax.jit(jax.value_and_grad(_loss_fn(problem, jnp)))
    x = jnp.asarray(problem.initial[0][1], dtype=jnp.float64)
    state, losses = rule.init(x), []
    for _ in range(STEPS):
        loss, g = loss_and_grad(x)
        losses.append(float(loss))
        updates, state = rule.update(g, state, x)
        x = optax.apply_updates(x, updates)
    np.testing.assert_allclose(losses, curve.values["loss"][:STEPS], rtol=RTOL, atol=ATOL)


def test_the_pairings_cover_what_the_peers_are_known_to_compute():
    """Each pairing that was checked once stays checked (the list only grows)."""
    assert set(paired("torch")) >= {"sgd", "momentum", "nesterov_momentum", "adam", "amsgrad",
                                    "adamw", "rprop"}
    assert set(paired("optax")) >= {"sgd", "adagrad", "rmsprop", "rmsprop(centered)",
                                    "rmsprop(tf, momentum)", "adadelta", "adam", "adamax",
                                    "nadam", "adamw"}
