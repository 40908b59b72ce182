"""symopt rules as PyMC's variational optimizers: ``pm.fit(obj_optimizer=symopt.adam(...))``.

These run in the PyMC environment that ``scripts/test.sh`` builds (PyMC 5 pins PyTensor
2.38); where PyMC is not installed they are skipped.
"""

import numpy as np
import pytest

pm = pytest.importorskip("pymc", reason="PyMC is not installed in this environment")

import symopt  # noqa: E402

pytestmark = pytest.mark.pymc

TRUE_MU, TRUE_SIGMA = 2.5, 1.5


@pytest.fixture(scope="module")
def observed():
    return np.random.default_rng(0).normal(TRUE_MU, TRUE_SIGMA, size=300)


def _fit(observed, optimizer, n=3000):
    with pm.Model():
        mu = pm.Normal("mu", 0.0, 10.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", mu, sigma, observed=observed)
        return pm.fit(n=n, method="advi", obj_optimizer=optimizer, random_seed=42,
                      progressbar=False)


def test_advi_with_symopt_adam_finds_the_posterior(observed):
    approx = _fit(observed, symopt.adam(learning_rate=0.05))
    draws = approx.sample(2000, random_seed=1).posterior
    # With a flat-ish prior the posterior mean of mu is the sample mean, its sd ~ s/sqrt(n).
    assert abs(float(draws["mu"].mean()) - observed.mean()) < 0.05
    assert abs(float(draws["sigma"].mean()) - observed.std()) < 0.1
    assert float(draws["mu"].std()) == pytest.approx(observed.std() / np.sqrt(observed.size),
                                                     rel=0.35)
    # The negative ELBO settles where PyMC's own Adam takes it.
    reference = _fit(observed, pm.adam(learning_rate=0.05))
    assert approx.hist[-200:].mean() < approx.hist[:10].mean() - 100
    assert approx.hist[-200:].mean() == pytest.approx(reference.hist[-200:].mean(), abs=1.0)


def test_symopt_sgd_matches_pymc_sgd_bit_for_bit(observed):
    ours = _fit(observed, symopt.sgd(learning_rate=1e-3), n=300)
    theirs = _fit(observed, pm.sgd(learning_rate=1e-3), n=300)
    np.testing.assert_array_equal(ours.hist, theirs.hist)
    np.testing.assert_array_equal(ours.params[0].get_value(), theirs.params[0].get_value())


def test_symopt_momentum_matches_pymc_momentum(observed):
    ours = _fit(observed, symopt.momentum(learning_rate=1e-3, momentum=0.9), n=300)
    theirs = _fit(observed, pm.momentum(learning_rate=1e-3, momentum=0.9), n=300)
    # PyMC forms the step as (p - lr*g) - p, symopt as -lr*g: equal up to rounding.
    np.testing.assert_allclose(ours.hist, theirs.hist, rtol=1e-9)


#: LARS's first step, where ADVI's parameters are all zero, has no norm to scale by and
#: takes the whole learning rate times the full-data gradient (optax's fallback ratio 1):
#: measured, it diverges at every rate tried (0.01, 0.1, 1.0, 3.0)
ADVI_LIMITS = {"lars": "LARS diverges from ADVI's all-zero start"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=ADVI_LIMITS[n]))
    if n in ADVI_LIMITS else n for n in sorted(symopt.RULES)])
def test_every_rule_drives_advi(observed, name):
    # Plain gradient steps see the full-data gradient (~300 points): they need a small rate.
    rates = {"adagrad": 0.1, "adadelta": 1.0, "sgd": 1e-3, "momentum": 1e-4,
             "nesterov_momentum": 1e-4, "asgd": 1e-3,
             "prodigy": 1.0}  # (Prodigy estimates its step; the rate is a factor on it)
    rule = symopt.RULES[name](learning_rate=rates.get(name, 0.01))
    if symopt.RULES[name].needs_loss:
        # pm.fit hands its optimizer the gradients of the objective, not the objective
        with pytest.raises(TypeError, match=f"{name} needs the loss itself"):
            _fit(observed, rule, n=10)
        return
    approx = _fit(observed, rule, n=1500)
    assert np.all(np.isfinite(approx.hist))
    assert approx.hist[-100:].mean() < approx.hist[:10].mean()


def test_fused_adam_in_pm_fit_matches_the_per_tensor_path(observed):
    """A rule configured with fuse=True fuses when pm.fit calls it; on PyTensor 2's C VM,
    in float64, the fused loop computes what the per-tensor loops compute."""
    from symopt.fused import FusedUpdate

    rule, seen = symopt.adam(learning_rate=0.05, fuse=True), []

    def optimizer(loss_or_grads, params):  # what pm.fit calls, with the updates kept
        seen.append(rule(loss_or_grads, params))
        return seen[-1]

    fused = _fit(observed, optimizer, n=300)
    assert any(isinstance(expr.owner.op, FusedUpdate) for _, expr in seen[0]
               if expr.owner is not None)
    per_tensor = _fit(observed, symopt.adam(learning_rate=0.05), n=300)
    np.testing.assert_allclose(fused.hist, per_tensor.hist, rtol=1e-12)
    assert fused.hist[-50:].mean() < fused.hist[:10].mean() - 50


def test_a_chain_goes_to_pm_fit_as_it_is(observed):
    """``chain(clip_by_global_norm, adam)`` is a rule: pm.fit takes it, and it computes
    what clipping the gradients by hand and then Adam computes."""
    rule = symopt.chain(symopt.clip_by_global_norm(5.0), symopt.adam(learning_rate=0.05))
    chained = _fit(observed, rule, n=300)

    def by_hand(loss, params):
        grads = symopt.total_norm_constraint(symopt.get_or_compute_grads(loss, params), 5.0)
        return symopt.adam(grads, params, learning_rate=0.05)

    np.testing.assert_array_equal(chained.hist, _fit(observed, by_hand, n=300).hist)
    assert chained.hist[-50:].mean() < chained.hist[:10].mean() - 50


# The combinators configured as trivially as they can be are their rule, exactly: this pins
# that pm.fit drives them (values, not just running) and that their plumbing adds nothing.
WRAPPED = {
    "partition": lambda rule: symopt.partition({"all": rule}, labels=lambda p: "all"),
    "masked": lambda rule: symopt.masked(rule, lambda p: True),
    "multi_steps": lambda rule: symopt.multi_steps(rule, every=1),
    "lookahead": lambda rule: symopt.lookahead(rule, sync_period=1, slow_step_size=1.0),
}


@pytest.fixture(scope="module")
def plain_adam(observed):
    return _fit(observed, symopt.adam(learning_rate=0.05), n=200).hist


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_combinators_drive_advi_as_their_rule(observed, plain_adam, name):
    approx = _fit(observed, WRAPPED[name](symopt.adam(learning_rate=0.05)), n=200)
    if name == "multi_steps":
        # the mean of one gradient, 0 + (g - 0) / 1, is g; but PyTensor fuses the gradient's
        # last operations with it differently, which moves a few values by an ulp
        np.testing.assert_allclose(approx.hist, plain_adam, rtol=1e-13)
    else:
        np.testing.assert_array_equal(approx.hist, plain_adam)


def test_a_constant_in_graph_schedule_is_the_constant_rate(observed, plain_adam):
    approx = _fit(observed, symopt.adam(learning_rate=symopt.schedules.constant(0.05)), n=200)
    np.testing.assert_array_equal(approx.hist, plain_adam)


def test_accumulation_in_pm_fit_steps_every_third_call(observed):
    approx = _fit(observed, symopt.multi_steps(symopt.adam(learning_rate=0.05), every=3),
                  n=1500)
    assert np.all(np.isfinite(approx.hist))
    assert approx.hist[-100:].mean() < approx.hist[:10].mean()
