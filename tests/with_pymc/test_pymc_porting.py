"""PyMC users switching to symopt: the same fits, bit for bit, and schedules in pm.fit.

- ``symopt.adagrad_window`` is PyMC's default optimizer, and ``symopt.adam`` /
  ``symopt.adamax`` with ``epsilon_placement="before_correction"`` are ``pm.adam`` /
  ``pm.adamax``: ``pm.fit`` gives the same ``hist`` array, bit for bit (float64, PyMC's
  PyTensor 2.38 C backend);
- learning-rate schedules and early stopping in ``pm.fit`` (pymc issue 6954, PR 7011):
  a shared learning rate changed by a callback (:class:`symopt.schedules.StepEvery`) is
  exactly training, stopping, setting the rate and continuing (``Inference.refine``);
  :class:`symopt.schedules.StopOnPlateau` ends the fit; the issue's own wrapper, which
  edits a partial's ``keywords``, works on a configured rule.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

pm = pytest.importorskip("pymc", reason="PyMC is not installed in this environment")

import symopt  # noqa: E402
from symopt.schedules import ReduceOnPlateau, StepDecay, StepEvery, StopOnPlateau  # noqa: E402

pytestmark = pytest.mark.pymc


@pytest.fixture(scope="module")
def observed():
    return np.random.default_rng(0).normal(2.5, 1.5, size=300)


def _model(observed):
    model = pm.Model()
    with model:
        mu = pm.Normal("mu", 0.0, 10.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", mu, sigma, observed=observed)
    return model


def _fit(observed, n=400, **kwargs):
    with _model(observed):
        return pm.fit(n=n, method="advi", random_seed=42, progressbar=False, **kwargs)


# -- the same fits, bit for bit ----------------------------------------------------------


def test_adagrad_window_is_pm_fits_default_bit_for_bit(observed):
    ours = _fit(observed, obj_optimizer=symopt.adagrad_window())
    default = _fit(observed)  # pm.fit's own default: pm.adagrad_window
    np.testing.assert_array_equal(ours.hist, default.hist)
    for a, b in zip(ours.params, default.params):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


@pytest.mark.parametrize("hyper", [{"learning_rate": 0.05, "n_win": 3},
                                   {"learning_rate": 0.01, "epsilon": 1e-3, "n_win": 25}])
def test_adagrad_window_with_other_settings_bit_for_bit(observed, hyper):
    ours = _fit(observed, obj_optimizer=symopt.adagrad_window(**hyper))
    theirs = _fit(observed, obj_optimizer=pm.adagrad_window(**hyper))
    np.testing.assert_array_equal(ours.hist, theirs.hist)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adagrad_window_step_by_step_on_a_tensor(dtype):
    """On a (4, 3) parameter with a window shorter than the run: every state of ours
    equals PyMC's after every step (its window, in its layout). In float32 under
    ``floatX=float32``: with ``floatX=float64`` PyMC's float32 update is float64, which
    ``pytensor.function`` refuses (symopt's keeps the parameter's type)."""
    with pytensor.config.change_flags(floatX=dtype):
        _adagrad_window_step_by_step(dtype)


def _adagrad_window_step_by_step(dtype):
    rng = np.random.default_rng(3)
    target = rng.normal(size=(4, 3)).astype(dtype)

    def build(rule):
        w = pytensor.shared(np.zeros((4, 3), dtype=dtype), name="w")
        loss = ((w - target) ** 4).sum()
        updates = rule(loss, [w], learning_rate=0.05, epsilon=1e-2, n_win=4)
        return w, updates, pytensor.function([], [], updates=list(
            updates.items() if isinstance(updates, dict) else updates))

    w_ours, ours, step_ours = build(symopt.adagrad_window)
    w_pymc, theirs, step_pymc = build(pm.adagrad_window)
    window_ours = [v for v in ours.keys() if v.ndim == 3][0]
    window_pymc = [v for v in theirs.keys() if v.ndim == 3][0]
    for _ in range(9):
        step_ours()
        step_pymc()
        np.testing.assert_array_equal(w_ours.get_value(), w_pymc.get_value())
        np.testing.assert_array_equal(window_ours.get_value(), window_pymc.get_value())
    assert w_ours.dtype == dtype and np.abs(w_ours.get_value()).max() > 0.1


@pytest.mark.parametrize("name, hyper", [
    ("adam", {"learning_rate": 0.05}),
    ("adam", {"learning_rate": 0.05, "epsilon": 1e-2}),
    ("adamax", {"learning_rate": 0.05}),
])
def test_the_efficient_form_is_pymcs_bit_for_bit(observed, name, hyper):
    ours = _fit(observed, obj_optimizer=symopt.RULES[name](
        **hyper, epsilon_placement="before_correction"))
    theirs = _fit(observed, obj_optimizer=getattr(pm, name)(**hyper))
    np.testing.assert_array_equal(ours.hist, theirs.hist)
    for a, b in zip(ours.params, theirs.params):
        np.testing.assert_array_equal(a.get_value(), b.get_value())


def test_the_default_form_is_not_pymcs(observed):
    """Adam's Algorithm-1 form is torch's, not PyMC's: with a large epsilon the histories
    part (so the test above can tell the forms apart)."""
    ours = _fit(observed, obj_optimizer=symopt.adam(learning_rate=0.05, epsilon=1e-2))
    theirs = _fit(observed, obj_optimizer=pm.adam(learning_rate=0.05, epsilon=1e-2))
    assert np.abs(ours.hist - theirs.hist).max() > 1e-3


# -- schedules and early stopping in pm.fit ----------------------------------------------


def test_a_schedule_stepped_by_a_callback_is_training_in_phases(observed):
    """StepEvery halves the rate every 100 iterations: the same history as fitting 100
    iterations, halving the rate by hand, and refining 100 more, twice."""
    schedule = StepDecay(0.05, factor=0.5, every=1)
    callback = StepEvery(schedule, every=100)
    scheduled = _fit(observed, n=300, obj_optimizer=symopt.adam(learning_rate=schedule.variable),
                     callbacks=[callback])
    assert [i for i, _, _ in callback.history] == [100, 200, 300]
    assert schedule.variable.get_value() == 0.05 / 8

    lr = pytensor.shared(0.05, name="lr")
    with _model(observed):
        inference = pm.ADVI(random_seed=42)
        inference.fit(100, obj_optimizer=symopt.adam(learning_rate=lr), progressbar=False)
        lr.set_value(0.025)
        inference.refine(100, progressbar=False)
        lr.set_value(0.0125)
        inference.refine(100, progressbar=False)
    np.testing.assert_array_equal(scheduled.hist, inference.hist)


def _window_means(hist, every):
    whole = (len(hist) // every) * every
    return hist[:whole].reshape(-1, every).mean(axis=1)


def test_reduce_on_plateau_in_pm_fit(observed):
    lr = ReduceOnPlateau(0.1, factor=0.5, patience=2, min_delta=0.5)
    callback = StepEvery(lr, every=100)
    approx = _fit(observed, n=3000, obj_optimizer=symopt.adam(learning_rate=lr.variable),
                  callbacks=[callback])
    assert lr.reductions, "the -ELBO never stalled: nothing was reduced"
    assert lr.variable.get_value() == pytest.approx(0.1 * 0.5 ** len(lr.reductions))
    # the metric was the mean -ELBO of each window, and the rates are what the schedule
    # gives for those means
    means = _window_means(approx.hist, 100)
    np.testing.assert_allclose([m for _, m, _ in callback.history], means, rtol=1e-12)
    replay = ReduceOnPlateau(0.1, factor=0.5, patience=2, min_delta=0.5)
    assert [rate for _, _, rate in callback.history] == [replay.step(m) for m in means]
    assert np.isfinite(approx.hist).all()


def test_early_stopping_in_pm_fit(observed):
    stop = StopOnPlateau(every=100, patience=3, min_delta=0.1)
    approx = _fit(observed, n=20_000, obj_optimizer=symopt.adam(learning_rate=0.05),
                  callbacks=[stop])
    assert stop.stopped_at is not None and stop.stopped_at < 20_000
    assert len(approx.hist) == stop.stopped_at - 1  # pm.fit drops the interrupted iteration
    # the windows' means are the history's (the last window's last loss was dropped)
    means = np.array([m for _, m in stop.history])
    np.testing.assert_allclose(means[:-1], _window_means(approx.hist, 100), rtol=1e-12)
    # the rule: the last three windows did not beat the best before them by 0.1
    best_before = means[:-3].min()
    assert means[-3:].min() >= best_before - 0.1 and stop.best == best_before
    assert approx.hist[-100:].mean() < approx.hist[:10].mean() - 100


def test_pymcs_convergence_check_stops_a_symopt_fit(observed):
    check = pm.callbacks.CheckParametersConvergence(every=100, tolerance=0.3, diff="absolute")
    approx = _fit(observed, n=50_000, obj_optimizer=symopt.adam(learning_rate=0.01),
                  callbacks=[check])
    assert 100 < len(approx.hist) < 50_000


def test_the_partial_scheduler_of_pymc_issue_6954(observed):
    """The issue's wrapper, in our words: it edits the configured rule's ``keywords`` to
    put a shared rate in, and updates that rate from the rule's last update (its step
    counter) inside the compiled step."""
    opt = symopt.adam(learning_rate=0.05)
    shared_lr = pytensor.shared(opt.keywords["learning_rate"], "learning_rate")
    opt.keywords["learning_rate"] = shared_lr

    def scheduled(loss_or_grads, params):
        updates = opt(loss_or_grads, params)
        t = updates[list(updates.keys())[-1]]
        updates[shared_lr] = pt.switch(pt.eq(pt.mod(t, 100), 0), shared_lr * 0.1, shared_lr)
        return updates

    approx = _fit(observed, n=250, obj_optimizer=scheduled)
    assert shared_lr.get_value() == pytest.approx(0.05 * 0.1**2)
    assert np.isfinite(approx.hist).all()


# -- a pm.fit script, unchanged but for its import ---------------------------------------

PYMC_SCRIPT = """
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.variational.updates import adagrad_window, sgd


def small_steps(loss_or_grads, params):
    updates = sgd(loss_or_grads, params, learning_rate=2e-3)
    for param, update in list(updates.items()):
        updates[param] = param + pt.clip(update - param, -0.05, 0.05)
    assert all(param in updates for param in params)
    return updates


observed = np.random.default_rng(0).normal(2.5, 1.5, size=300)
with pm.Model():
    mu = pm.Normal("mu", 0.0, 10.0)
    sigma = pm.HalfNormal("sigma", 5.0)
    pm.Normal("y", mu, sigma, observed=observed)
    windowed = pm.fit(200, method="advi", random_seed=1, progressbar=False,
                      obj_optimizer=adagrad_window(learning_rate=0.02, n_win=5),
                      total_grad_norm_constraint=50.0)
    clipped = pm.fit(200, method="advi", random_seed=1, progressbar=False,
                     obj_optimizer=small_steps)
"""


def _run(source):
    namespace = {"__name__": "script"}
    exec(compile(source, "<script>", "exec"), namespace)
    return namespace


def test_a_pm_fit_script_ported_by_its_import_gives_the_same_fits():
    """The script's one import line of PyMC's rules swapped for symopt's: the same
    ``hist`` and parameters, bit for bit (adagrad_window with PyMC's gradient clipping;
    sgd with each step clipped through the updates' mapping idioms)."""
    old = "from pymc.variational.updates import"
    ported = PYMC_SCRIPT.replace(old, "from symopt import")
    assert ported.count("symopt") == 1 and ported != PYMC_SCRIPT
    theirs, ours = _run(PYMC_SCRIPT), _run(ported)
    assert ours["adagrad_window"] is symopt.adagrad_window and ours["sgd"] is symopt.sgd
    for name in ("windowed", "clipped"):
        np.testing.assert_array_equal(ours[name].hist, theirs[name].hist)
        for a, b in zip(ours[name].params, theirs[name].params, strict=True):
            np.testing.assert_array_equal(a.get_value(), b.get_value())
        assert ours[name].hist[-20:].mean() < ours[name].hist[:20].mean()


def test_which_rules_are_pymcs_bit_for_bit():
    """The README's porting table: sgd, adagrad, rmsprop, adadelta and adagrad_window
    compute PyMC's updates to the bit; momentum and nesterov_momentum round in another
    order (a last bit). One parameter per rule, all in one compiled step per library."""
    rng = np.random.default_rng(0)
    target = rng.normal(size=50)
    rules = [("sgd", {"learning_rate": 0.01}), ("adagrad", {"learning_rate": 0.1}),
             ("rmsprop", {"learning_rate": 0.01}), ("adadelta", {}),
             ("adagrad_window", {"learning_rate": 0.1}),
             ("momentum", {"learning_rate": 0.01}),
             ("nesterov_momentum", {"learning_rate": 0.01})]

    def build(library):
        params, updates = [], []
        for name, hyper in rules:
            w = pytensor.shared(np.zeros(50), name=name)
            loss = ((w - target) ** 4).sum() * 0.1 + (pt.exp(w) * 0.3).sum()
            new = getattr(library, name)(loss, [w], **hyper)
            params.append(w)
            updates += list(new.items())
        return params, pytensor.function([], [], updates=updates)

    (ours, step_ours), (theirs, step_pymc) = build(symopt), build(pm)
    for _ in range(30):
        step_ours()
        step_pymc()
    for (name, _), a, b in zip(rules, ours, theirs, strict=True):
        a, b = a.get_value(), b.get_value()
        if name.endswith("momentum"):
            assert not np.array_equal(a, b), name
            np.testing.assert_allclose(a, b, rtol=1e-14, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
        assert np.abs(a).max() > 0.1, name
