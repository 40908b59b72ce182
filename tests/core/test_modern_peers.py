"""The modern rules against torch.optim and optax, stepped side by side: no recorded curves.

Each case of a rule's row (:data:`symopt.lab.rulebook.ROWS`, which set every
hyperparameter away from its default between them) runs ``STEPS`` steps on the test
quadratic (:class:`toys.Quadratic`: a 3 x 2 matrix and a vector) in float64, symopt in one
compiled function and the peer from the same start, each side taking the NumPy gradient at
its own parameters; the parameters are compared after every step with rtol ``RTOL``.
The peers are the rows' own (the factories the recorded curves and the benchmarks use).
Where a peer computes something else the test says why and what is compared instead:

- ``torch.optim.Muon`` takes matrices only and orthogonalises in bfloat16: the matrix is
  compared with the bfloat16 cast turned into a float64 copy (rtol 1e-10), and as
  shipped with an absolute tolerance derived from bfloat16's precision; symopt's AdamW
  for the vector is compared with ``torch.optim.AdamW``.
- ``optax.adan`` 0.2.8 weights the gradient difference by 1 - beta2 where the paper has
  beta2: compared at beta2 = 0.5, where the two agree, and shown to differ elsewhere.
- optax's schedule-free warm-up evaluates its schedule in float32 (an int32 step count,
  which JAX divides in float32 even with x64): compared with optax's own construction
  given a float64 count, and with the shipped one to the float32 rounding's effect.
- ``optax.contrib.sam`` alternates an ascent call and a descent call: one symopt step is
  two of its calls.

torch and optax are optional (the PyMC environment has neither): each test skips cleanly
without its peer.
"""

from __future__ import annotations

import numpy as np
import pytest

import symopt
from symopt.lab.rulebook import ROWS, peer

from .toys import Quadratic, case_id, run_together

STEPS = 25
RTOL, ATOL = 1e-10, 1e-13


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=0)


def hyperparameters(name, kwargs):
    """Every hyperparameter of the rule, defaults resolved, the case's set."""
    return symopt.RULES[name](**kwargs).hyperparameters


#: The rules of issue 17 (the older rules meet their peers in tests/curves/test_peers.py).
MODERN = ("radam", "adafactor", "asgd", "muon", "lamb", "lars", "yogi", "adan", "adabelief",
          "novograd", "adopt", "ademamix", "schedule_free_sgd", "schedule_free_adamw",
          "prodigy", "sophia", "adahessian", "sam")


def cases_of(library, exclude=()):
    return [(name, ROWS[name].cases[i]) for name in MODERN if library in ROWS[name].peers
            and name not in exclude for i in range(len(ROWS[name].cases))]


def symopt_trajectories(problem, key, cases, params_of=None):
    """Every case's parameters after each step, from one compiled function."""
    def build(case):
        name, kwargs = case
        params = problem.shared() if params_of is None else params_of(problem)
        return params, symopt.RULES[name](problem.loss(params), params, **kwargs)

    return run_together(key, cases, build, STEPS)


def assert_close(got, expected, where, rtol=RTOL, atol=ATOL):
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(g, np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"param {i}, {where}")


# --------------------------------------------------------------------------------------
# torch.optim
# --------------------------------------------------------------------------------------


@pytest.fixture
def torch64():
    """torch in float64, its scalar state too (ASGD keeps eta and mu as tensors of the
    default dtype), restored afterwards."""
    torch = pytest.importorskip("torch", reason="torch is an optional test dependency")
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(saved)


class NoBfloat16:
    """Turn torch's ``Tensor.bfloat16()`` into a float64 copy, so that ``torch.optim.Muon``
    runs its Newton-Schulz iteration in float64 (a copy: torch divides the result in place,
    and without Nesterov its input is the momentum buffer itself)."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        self.saved = self.torch.Tensor.bfloat16
        self.torch.Tensor.bfloat16 = lambda t, *a, **k: t.clone()

    def __exit__(self, *exc):
        self.torch.Tensor.bfloat16 = self.saved


def run_torch(torch, optimizer, params0, grad, steps=STEPS, context=None):
    """The torch side: ``optimizer(tensors)``, the NumPy gradient at its own parameters."""
    tensors = [torch.nn.Parameter(torch.tensor(p.copy())) for p in params0]
    opt = optimizer(tensors)
    trajectory = []
    for _ in range(steps):
        for t, g in zip(tensors, grad([t.detach().numpy().copy() for t in tensors])):
            t.grad = torch.tensor(g)
        if context is None:
            opt.step()
        else:
            with context:
                opt.step()
        trajectory.append([t.detach().numpy().copy() for t in tensors])
    return trajectory, opt, tensors


TORCH_CASES = cases_of("torch", exclude=("muon",))


@pytest.mark.parametrize("case", TORCH_CASES, ids=[case_id(c) for c in TORCH_CASES])
def test_against_torch_optim(problem, torch64, case):
    name, kwargs = case
    trajectory = symopt_trajectories(problem, "torch", TORCH_CASES)[case_id(case)]
    cls, options = peer("torch", name, torch64, hyperparameters(name, kwargs))
    theirs, opt, tensors = run_torch(torch64, lambda ps: cls(ps, **options),
                                     problem.initial(), problem.grad)
    for k, (got, expected) in enumerate(zip(trajectory, theirs), 1):
        assert_close(got, expected, f"{name} step {k}")
    assert np.abs(trajectory[-1][0] - problem.initial()[0]).max() > 1e-3


def test_asgd_average_against_torch(problem, torch64):
    """ASGD's average (its state, ``W.average``) is torch's ``ax``, through the start of
    averaging (t0 = 5) and after."""
    kwargs = ROWS["asgd"].cases[1]
    params = problem.shared()
    updates = symopt.asgd(problem.loss(params), params, **kwargs)
    import pytensor

    step = pytensor.function([], [], updates=updates)
    state = symopt.get_state(updates)
    cls, options = peer("torch", "asgd", torch64, hyperparameters("asgd", kwargs))
    tensors = [torch64.nn.Parameter(torch64.tensor(p)) for p in problem.initial()]
    opt = cls(tensors, **options)
    for k in range(STEPS):
        step()
        for t, g in zip(tensors, problem.grad([t.detach().numpy() for t in tensors])):
            t.grad = torch64.tensor(g)
        opt.step()
        for name, t in zip(("W", "b"), tensors):
            np.testing.assert_allclose(state[f"{name}.average"].get_value(),
                                       opt.state[t]["ax"].numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name}.average, step {k + 1}")


MUON_CASES = [("muon", kwargs) for kwargs in ROWS["muon"].cases]


def _matrix_only(problem):
    import pytensor

    return [pytensor.shared(problem.initial()[0], name="W")]


def _matrix_loss(problem, W):
    return problem.loss([W, problem.shared()[1]])


@pytest.mark.parametrize("case", MUON_CASES, ids=[case_id(c) for c in MUON_CASES])
def test_muon_matrix_against_torch_optim_muon(problem, torch64, case):
    """The matrix W alone (torch's Muon takes nothing else), its Newton-Schulz iteration in
    float64 on both sides."""
    import pytensor

    name, kwargs = case
    [W] = _matrix_only(problem)
    b = problem.initial()[1]
    updates = symopt.muon(problem.loss([W, pytensor.shared(b)]), [W], **kwargs)
    step = pytensor.function([], [], updates=updates)
    cls, options = peer("torch", "muon", torch64, hyperparameters("muon", kwargs))

    def grad(ws):
        return problem.grad([ws[0], b])[:1]

    theirs, _, _ = run_torch(torch64, lambda ps: cls(ps, **options), [problem.initial()[0]],
                             grad, context=NoBfloat16(torch64))
    for k, expected in enumerate(theirs, 1):
        step()
        assert_close([W.get_value()], expected, f"muon step {k}")
    assert np.abs(W.get_value() - problem.initial()[0]).max() > 1e-3


def test_muon_against_torch_as_shipped_in_bfloat16(problem, torch64):
    """torch orthogonalises in bfloat16 (8-bit significand, unit roundoff 2**-9 ~ 2e-3),
    which the iteration amplifies about tenfold: each step then carries a relative error
    of ~1e-2 of its size lr * sqrt(3/2) ~ 0.025 (W is 3 x 2), so after 25 steps the
    parameters differ by at most ~25 * 0.025 * 1e-2 ~ 6e-3: checked with atol 2e-2 (a
    wrong equation parts by the step size, 0.025, within a few steps)."""
    import pytensor

    [W] = _matrix_only(problem)
    b = problem.initial()[1]
    updates = symopt.muon(problem.loss([W, pytensor.shared(b)]), [W], learning_rate=0.02)
    step = pytensor.function([], [], updates=updates)
    cls, options = peer("torch", "muon", torch64,
                        hyperparameters("muon", {"learning_rate": 0.02}))
    theirs, _, _ = run_torch(torch64, lambda ps: cls(ps, **options), [problem.initial()[0]],
                             lambda ws: problem.grad([ws[0], b])[:1])
    for k, expected in enumerate(theirs, 1):
        step()
        np.testing.assert_allclose(W.get_value(), expected[0], rtol=0, atol=2e-2,
                                   err_msg=f"step {k}")


@pytest.mark.parametrize("case", MUON_CASES, ids=[case_id(c) for c in MUON_CASES])
def test_muon_other_shapes_are_torch_adamw(problem, torch64, case):
    """What symopt's muon does with a vector (which torch's Muon refuses): AdamW, exactly
    ``torch.optim.AdamW`` with the ``adam_*`` hyperparameters."""
    import pytensor

    name, kwargs = case
    h = hyperparameters("muon", kwargs)
    W0, b0 = problem.initial()
    b = pytensor.shared(b0.copy(), name="b")
    updates = symopt.muon(problem.loss([pytensor.shared(W0), b]), [b], **kwargs)
    step = pytensor.function([], [], updates=updates)
    lr = h["learning_rate"] if h["adam_learning_rate"] is None else h["adam_learning_rate"]
    theirs, _, _ = run_torch(torch64, lambda ps: torch64.optim.AdamW(
        ps, lr=lr, betas=(h["adam_beta1"], h["adam_beta2"]), eps=h["adam_epsilon"],
        weight_decay=h["adam_weight_decay"]), [b0], lambda bs: problem.grad([W0, bs[0]])[1:])
    for k, expected in enumerate(theirs, 1):
        step()
        assert_close([b.get_value()], expected, f"step {k}")


def test_torch_refuses_what_symopt_muon_takes(torch64):
    with pytest.raises(ValueError, match="2D"):
        torch64.optim.Muon([torch64.nn.Parameter(torch64.zeros(2))])


# --------------------------------------------------------------------------------------
# optax
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def optax64():
    optax = pytest.importorskip("optax", reason="optax is an optional test dependency")
    import jax

    jax.config.update("jax_enable_x64", True)
    pytest.importorskip("optax.contrib")
    return optax


def run_optax(optax, transformation, params0, grad, steps=STEPS, after=None):
    import jax.numpy as jnp

    params = [jnp.asarray(p) for p in params0]
    state = transformation.init(params)
    trajectory = []
    for _ in range(steps):
        g = [jnp.asarray(x) for x in grad([np.asarray(p) for p in params])]
        updates, state = transformation.update(g, state, params)
        params = optax.apply_updates(params, updates)
        trajectory.append([np.asarray(p) for p in params])
        if after is not None:
            after(state, params)
    return trajectory


def _warmup_in_float64(optax, name, h):
    """optax's schedule-free rule built as optax 0.2.8 builds it, its warm-up schedule
    given a float64 count (the shipped one divides an int32 count in float32)."""
    import jax.numpy as jnp

    base = optax.warmup_constant_schedule(0, h["learning_rate"], h["warmup_steps"])

    def lr(count):
        return base(jnp.asarray(count, jnp.float64))

    if name == "schedule_free_sgd":
        inner = optax.chain(optax.add_decayed_weights(h["weight_decay"]), optax.sgd(lr))
    else:
        inner = optax.chain(
            optax.scale_by_rms(decay=h["beta2"], eps=h["epsilon"], eps_in_sqrt=False,
                               bias_correction=True),
            optax.add_decayed_weights(h["weight_decay"]), optax.scale_by_learning_rate(lr))
    return optax.contrib.schedule_free(inner, learning_rate=lr, b1=h["beta1"],
                                       weight_lr_power=h["weight_lr_power"])


OPTAX_CASES = cases_of("optax")


@pytest.mark.parametrize("case", OPTAX_CASES, ids=[case_id(c) for c in OPTAX_CASES])
def test_against_optax(problem, optax64, case):
    name, kwargs = case
    trajectory = symopt_trajectories(problem, "optax", OPTAX_CASES)[case_id(case)]
    h = hyperparameters(name, kwargs)
    schedule_free = name.startswith("schedule_free")
    if schedule_free and h["warmup_steps"]:
        transformation = _warmup_in_float64(optax64, name, h)
    else:
        transformation = peer("optax", name, optax64, h)
    theirs = run_optax(optax64, transformation, problem.initial(), problem.grad)
    for k, (got, expected) in enumerate(zip(trajectory, theirs), 1):
        assert_close(got, expected, f"{name} step {k}")
    assert np.abs(trajectory[-1][0] - problem.initial()[0]).max() > 1e-3


@pytest.mark.parametrize("name", ["schedule_free_sgd", "schedule_free_adamw"])
def test_schedule_free_evaluation_point_and_shipped_warmup(problem, optax64, name):
    """The evaluation parameters x against optax's ``schedule_free_eval_params`` at every
    step; and the shipped warm-up (a float32 learning rate, relative rounding 2**-24 ~ 6e-8
    on every z step and averaging weight, on parameters that move by O(1)): to atol 1e-6."""
    import pytensor

    kwargs = ROWS[name].cases[1]
    params = problem.shared()
    updates = symopt.RULES[name](problem.loss(params), params, **kwargs)
    step = pytensor.function([], [], updates=updates)
    evaluate = pytensor.function([], symopt.schedule_free_eval_params(updates))
    h = hyperparameters(name, kwargs)
    averages = []
    theirs = run_optax(optax64, _warmup_in_float64(optax64, name, h), problem.initial(),
                       problem.grad, after=lambda state, ps: averages.append(
                           optax64.contrib.schedule_free_eval_params(state, ps)))
    shipped = run_optax(optax64, peer("optax", name, optax64, h), problem.initial(),
                        problem.grad)
    for k in range(STEPS):
        step()
        assert_close([p.get_value() for p in params], theirs[k], f"step {k + 1}")
        assert_close(evaluate(), averages[k], f"x, step {k + 1}")
        for got, expected in zip([p.get_value() for p in params], shipped[k]):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_prodigy_estimate_against_optax(problem, optax64):
    """Prodigy's learning-rate estimate d, step by step."""
    import pytensor

    kwargs = ROWS["prodigy"].cases[0]
    params = problem.shared()
    updates = symopt.prodigy(problem.loss(params), params, **kwargs)
    step = pytensor.function([], [], updates=updates)
    estimate = symopt.get_state(updates)["prodigy.estim_lr"]
    theirs = []
    run_optax(optax64, peer("optax", "prodigy", optax64, hyperparameters("prodigy", kwargs)),
              problem.initial(), problem.grad,
              after=lambda state, ps: theirs.append(float(state.estim_lr)))
    for k, expected in enumerate(theirs, 1):
        step()
        np.testing.assert_allclose(estimate.get_value(), expected, rtol=RTOL,
                                   err_msg=f"step {k}")
    assert theirs[-1] > 10 * kwargs["estim_lr0"]  # the estimate grew


ADAN_CASES = [("adan", {**kwargs, "beta2": 0.5}) for kwargs in ROWS["adan"].cases]


@pytest.mark.parametrize("case", ADAN_CASES, ids=[case_id(c) for c in ADAN_CASES])
def test_adan_against_optax_where_they_agree(problem, optax64, case):
    """At beta2 = 1/2, where optax's 1 - beta2 (optax pull request 1715) is beta2."""
    name, kwargs = case
    trajectory = symopt_trajectories(problem, "adan", ADAN_CASES)[case_id(case)]
    theirs = run_optax(optax64, ROWS["adan"].similar["optax"](
        optax64, hyperparameters("adan", kwargs)), problem.initial(), problem.grad)
    for k, (got, expected) in enumerate(zip(trajectory, theirs), 1):
        assert_close(got, expected, f"step {k}")


def test_adan_differs_from_optax_at_its_default_beta2(problem, optax64):
    """Elsewhere optax computes another rule: the runs part from the second step (the
    first has no gradient difference)."""
    kwargs = ROWS["adan"].cases[0]
    trajectory = symopt_trajectories(problem, "optax-adan-default", [("adan", kwargs)])
    trajectory = trajectory[case_id(("adan", kwargs))]
    theirs = run_optax(optax64, ROWS["adan"].similar["optax"](
        optax64, hyperparameters("adan", kwargs)), problem.initial(), problem.grad)
    assert_close(trajectory[0], theirs[0], "step 1")
    assert not np.allclose(trajectory[2][0], theirs[2][0], rtol=1e-6)


SAM_CASES = [("sam", kwargs) for kwargs in ROWS["sam"].cases]


def _optax_sam(optax, h, outer=None):
    """optax.contrib.sam in its plain mode: an ascent call (normalised SGD by rho), then a
    descent call (the outer rule, from the cached point) every ``sync_period=2`` calls."""
    if outer is None:
        outer = optax.sgd(h["learning_rate"], momentum=h["momentum"] or None)
    ascent = optax.chain(optax.contrib.normalize(), optax.sgd(h["rho"]))
    return optax.contrib.sam(outer, ascent, sync_period=2, opaque_mode=False)


@pytest.mark.parametrize("case", SAM_CASES, ids=[case_id(c) for c in SAM_CASES])
def test_sam_against_optax_sam(problem, optax64, case):
    """One symopt step (two gradients in one compiled function) is two optax calls. With
    momentum, optax's SGD traces the gradient and symopt's the step: equal for a constant
    learning rate, to rounding."""
    name, kwargs = case
    trajectory = symopt_trajectories(problem, "sam", SAM_CASES)[case_id(case)]
    calls = run_optax(optax64, _optax_sam(optax64, hyperparameters(name, kwargs)),
                      problem.initial(), problem.grad, steps=2 * STEPS)
    for k, got in enumerate(trajectory, 1):
        assert_close(got, calls[2 * k - 1], f"step {k}")
    assert np.abs(trajectory[-1][0] - problem.initial()[0]).max() > 1e-3


def test_sam_with_adam_against_optax_sam_with_adam(problem, optax64):
    import pytensor

    params = problem.shared()
    updates = symopt.sam(symopt.adam(learning_rate=0.05), rho=0.1)(problem.loss(params),
                                                                   params)
    step = pytensor.function([], [], updates=updates)
    calls = run_optax(optax64, _optax_sam(optax64, {"rho": 0.1}, optax64.adam(0.05)),
                      problem.initial(), problem.grad, steps=2 * STEPS)
    for k in range(1, STEPS + 1):
        step()
        assert_close([p.get_value() for p in params], calls[2 * k - 1], f"step {k}")
