"""ESGD and vSGD: reference values, the equilibration estimate, convergence, dtypes, errors."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.second_order import esgd, scale_by_equilibration, scale_by_vsgd, vsgd

# A toy problem with a Hessian that changes: f = 1/4 sum (B theta)^4 + 1/2 theta C theta
# + x theta, theta = (w (3,), u (2,)), x a data input (a different "mini-batch" each step).
_R = np.random.default_rng(7)
B = _R.normal(size=(4, 5)) * 0.5
C = np.diag([1.0, 2.0, 0.5, 3.0, 1.5]) + 0.1
X_STEPS = _R.normal(size=(12, 5))
THETA0 = np.array([0.5, -0.3, 0.2, 0.1, -0.4])
LOOP = "NUMBA"  # the mode of the functions called thousands of times (others: FAST_COMPILE)


def toy_grad(theta, x):
    return B.T @ (B @ theta) ** 3 + C @ theta + x


def toy_hessian(theta):
    return B.T @ np.diag(3 * (B @ theta) ** 2) @ B + C


def toy_problem(dtype="float64"):
    w = pytensor.shared(THETA0[:3].astype(dtype), name="w")
    u = pytensor.shared(THETA0[3:].astype(dtype), name="u")
    x = pt.vector("x", dtype=dtype)
    theta = pt.concatenate([w, u])
    loss = 0.25 * ((pt.constant(B.astype(dtype)) @ theta) ** 4).sum() \
        + 0.5 * theta @ pt.constant(C.astype(dtype)) @ theta + x @ theta
    return loss, [w, u], x


def esgd_reference(steps, learning_rate, damping, every, seed):
    """Algorithm 1 of Dauphin et al. (2015) in NumPy, with symopt's warm-up of `every` steps."""
    rng = np.random.default_rng(seed)
    theta, D = THETA0.copy(), np.zeros(5)
    for t in range(1, steps + 1):
        g = toy_grad(theta, X_STEPS[t - 1])
        v = np.concatenate([rng.normal(0, 1, 3), rng.normal(0, 1, 2)])
        if t <= every or (t - 1) % every == 0:
            k = t if t <= every else every + (t - 1) // every
            D = D + ((toy_hessian(theta) @ v) ** 2 - D) / k
        theta = theta - learning_rate * g / (np.sqrt(D) + damping)
    return theta, D


def vsgd_reference(steps, slow_start=2.0, outlier_level=2.0, eps=1e-9):
    """vSGD-l with finite-difference curvature and outlier detection, in NumPy."""
    theta = THETA0.copy()
    tau = np.ones(5)
    gb = None  # the running mean of the gradient, set at the first step
    for t in range(steps):
        x = X_STEPS[t]
        g = toy_grad(theta, x)
        d = g if t == 0 else gb
        h = np.clip(np.abs(toy_grad(theta + d, x) - g) / np.maximum(np.abs(d), eps), eps, 1 / eps)
        if t == 0:
            gb, vb, hb, wb = g, slow_start * (g**2 + eps), slow_start * h, slow_start * h**2
        else:
            if outlier_level is not None:
                sd_g = np.sqrt(np.maximum(vb - gb**2, 0))
                sd_h = np.sqrt(np.maximum(wb - hb**2, 0))
                tau = tau + ((np.abs(g - gb) > outlier_level * sd_g)
                             | (np.abs(h - hb) > outlier_level * sd_h))
            r = 1 / tau
            gb, vb = (1 - r) * gb + r * g, (1 - r) * vb + r * (g**2 + eps)
            hb, wb = (1 - r) * hb + r * h, (1 - r) * wb + r * h**2
        signal = gb**2 / vb
        theta = theta - signal / hb * g
        tau = (1 - signal) * tau + 1
    return theta


def _run(updates, params, x, steps):
    step = pytensor.function([x], [], updates=updates)
    for t in range(steps):
        step(X_STEPS[t].astype(x.dtype))
    return np.concatenate([p.get_value() for p in params])


def test_esgd_matches_the_reference():
    loss, params, x = toy_problem()
    updates = esgd(loss, params, learning_rate=0.3, damping=1e-3, every=3, seed=5)
    theta = _run(updates, params, x, 10)
    expected, D = esgd_reference(10, 0.3, 1e-3, 3, 5)
    np.testing.assert_allclose(theta, expected, rtol=1e-10)
    state = symopt.get_state(updates)
    D_sym = np.concatenate([state["w.hv_mean_square"].get_value(),
                            state["u.hv_mean_square"].get_value()])
    np.testing.assert_allclose(D_sym, D, rtol=1e-10)
    assert int(state["esgd.t"].get_value()) == 10


@pytest.mark.parametrize("outlier_level", [2.0, None])
def test_vsgd_matches_the_reference(outlier_level):
    loss, params, x = toy_problem()
    theta = _run(vsgd(loss, params, outlier_level=outlier_level), params, x, 10)
    np.testing.assert_allclose(theta, vsgd_reference(10, outlier_level=outlier_level),
                               rtol=1e-9)


@pytest.mark.parametrize("probe, tolerance", [("normal", 0.08), ("rademacher", 0.04)])
def test_esgd_estimate_converges_to_the_equilibration(probe, tolerance):
    """With the parameters held still, sqrt(D) -> sqrt(diag(H^2)), the row norms of H."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(6, 6))
    A = M @ M.T / 3 + np.diag(np.arange(1.0, 7.0))  # far from diagonal
    w = pytensor.shared(rng.normal(size=6), name="w")
    loss = 0.5 * w @ pt.constant(A) @ w
    updates = esgd(loss, [w], learning_rate=0.0, every=1, seed=1, probe=probe)
    step = pytensor.function([], [], updates=updates, mode=LOOP)
    for _ in range(2000):
        step()
    estimate = np.sqrt(symopt.get_state(updates)["w.hv_mean_square"].get_value())
    exact = np.sqrt(np.diag(A @ A))
    np.testing.assert_allclose(estimate, exact, rtol=tolerance)
    assert np.max(np.abs(estimate / exact - 1)) > 1e-4  # an estimate, not the exact value


def test_esgd_refreshes_the_estimate_only_every_few_steps():
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    loss = (w ** 2).sum() + w[0] * w[1]
    updates = esgd(loss, [w], learning_rate=0.0, every=4, seed=0)
    square = symopt.get_state(updates)["w.hv_mean_square"]
    step = pytensor.function([], [], updates=updates)
    changed = []
    for _ in range(1, 14):
        before = square.get_value().copy()
        step()
        changed.append(not np.array_equal(before, square.get_value()))
    refresh = [t <= 4 or (t - 1) % 4 == 0 for t in range(1, 14)]
    assert changed == refresh


@pytest.mark.parametrize("rule, steps", [
    (lambda loss, p: esgd(loss, p, learning_rate=0.5, seed=0), 10000),
    (lambda loss, p: vsgd(loss, p), 6000),
], ids=["esgd", "vsgd"])
def test_rules_converge_on_rosenbrock(rule, steps, rosenbrock):
    loss, xy = rosenbrock
    step = pytensor.function([], loss, updates=rule(loss, [xy]), mode=LOOP)
    for _ in range(steps):
        step()
    np.testing.assert_allclose(xy.get_value(), [1.0, 1.0], atol=2e-2)
    assert float(loss.eval()) < 1e-3


@pytest.mark.parametrize("rule, steps, batch, atol", [
    (lambda loss, p: esgd(loss, p, learning_rate=0.5, seed=0), 1000, None, 1e-6),
    (lambda loss, p: vsgd(loss, p), 1000, None, 1e-3),
    (lambda loss, p: vsgd(loss, p), 3000, 50, 5e-2),
], ids=["esgd", "vsgd", "vsgd-minibatch"])
def test_rules_converge_on_logistic_regression(rule, steps, batch, atol, logistic,
                                               logistic_data, logistic_optimum):
    loss, _, params, inputs = logistic
    X, y = logistic_data
    step = pytensor.function(inputs, loss, updates=rule(loss, params), mode=LOOP)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        index = rng.integers(0, len(y), batch) if batch else slice(None)
        step(X[index], y[index])
    theta = np.append(params[0].get_value(), params[1].get_value())
    np.testing.assert_allclose(theta, logistic_optimum[0], atol=atol)


@pytest.mark.parametrize("make", [
    lambda loss, p: esgd(loss, p, seed=0),
    lambda loss, p: esgd(loss, p, seed=0, every=1, probe="rademacher"),
    lambda loss, p: vsgd(loss, p),
], ids=["esgd", "esgd-every-step", "vsgd"])
def test_updates_have_exactly_the_type_of_their_variables_in_float32(make):
    with pytensor.config.change_flags(floatX="float32"):
        W = pytensor.shared(np.full((3, 2), 0.5, dtype="float32"), name="W")
        b = pytensor.shared(np.zeros((1, 2), dtype="float32"), name="b",
                            shape=(1, None))  # a broadcastable row
        s = pytensor.shared(np.float32(1.0), name="s")
        X = pt.matrix("X")
        loss = (pt.tanh(X @ W + b) ** 2).mean() * s ** 2 + 1e-3 * (W ** 2).sum()
        updates = make(loss, [W, b, s])
        for var, expression in updates:
            assert var.type == expression.type, var.name
        step = pytensor.function([X], loss, updates=updates)
        for _ in range(3):
            step(np.ones((4, 3), dtype="float32"))
        assert all(p.get_value().dtype == np.float32 for p in (W, b, s))
        assert np.isfinite(W.get_value()).all()


def test_state_is_named_and_tied_to_its_parameter():
    w = pytensor.shared(np.ones(2), name="w")
    loss = (w ** 4).sum()
    assert list(symopt.get_state(esgd(loss, [w], seed=0))) == [
        "w.hv_mean_square", "esgd.rng", "esgd.t"]
    assert list(symopt.get_state(vsgd(loss, [w]))) == [
        "w.mean_grad", "w.mean_square", "w.mean_curvature", "w.mean_square_curvature",
        "w.memory", "vsgd.t"]
    tag = symopt.get_state(vsgd(loss, [w]))["w.memory"].tag.symopt_state
    assert (tag.rule, tag.role, tag.param) == ("vsgd", "memory", w)


def test_configured_rules_and_chains():
    w = pytensor.shared(np.array([3.0, -2.0]), name="w")
    loss = (w ** 2).sum()
    rule = esgd(learning_rate=0.2, every=1, seed=3)
    assert isinstance(rule, symopt.ConfiguredRule)
    assert repr(rule).startswith("esgd(learning_rate=0.2")
    by_rule = rule(loss, [w])
    w2 = pytensor.shared(np.array([3.0, -2.0]), name="w")
    by_chain = symopt.apply(symopt.chain(scale_by_equilibration(every=1, seed=3),
                                         symopt.scale_by_learning_rate(0.2)), (w2 ** 2).sum(), [w2])
    f1 = pytensor.function([], [], updates=by_rule)
    f2 = pytensor.function([], [], updates=by_chain)
    for _ in range(3):
        f1(), f2()
    np.testing.assert_array_equal(w.get_value(), w2.get_value())
    # clipping after the curvature block is fine; before it, the block sees no gradients
    symopt.apply(symopt.chain(scale_by_vsgd(), symopt.clip_by_global_norm(1.0)), loss, [w])


@pytest.mark.parametrize("rule", [esgd, vsgd])
def test_gradients_instead_of_a_loss_are_refused(rule):
    w = pytensor.shared(np.ones(2), name="w")
    grads = [2 * w]
    with pytest.raises(TypeError, match="needs the loss itself"):
        rule(grads, [w])
    with pytest.raises(TypeError, match="needs the loss itself"):
        rule()(grads, [w])
    block = scale_by_equilibration() if rule is esgd else scale_by_vsgd()
    with pytest.raises(ValueError, match="must receive the gradients of a loss"):
        symopt.apply(block, [pt.dvector("g")], [w])


@pytest.mark.parametrize("rule", [esgd, vsgd])
def test_bad_losses_and_params_are_refused(rule):
    w = pytensor.shared(np.ones(2), name="w")
    with pytest.raises(ValueError, match="must be a scalar"):
        rule(w ** 2, [w])
    with pytest.raises(TypeError, match="not a shared variable"):
        rule((w ** 2).sum(), [w, pt.dvector("v")])
    with pytest.raises(ValueError, match="params were given without loss_or_grads"):
        rule(None, [w])


@pytest.mark.parametrize("kwargs, match", [
    (dict(every=0), "every must be a positive integer"),
    (dict(every=2.5), "every must be a positive integer"),
    (dict(seed=-1), "seed must be None or a non-negative integer"),
    (dict(damping=-1.0), "damping must be >= 0"),
    (dict(learning_rate=-0.1), "learning_rate must be >= 0"),
    (dict(probe="uniform"), "probe must be"),
])
def test_bad_esgd_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        esgd(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(slow_start=0.5), "slow_start must be >= 1"),
    (dict(outlier_level=0.0), "outlier_level must be > 0"),
    (dict(epsilon=0.0), "epsilon must be > 0"),
])
def test_bad_vsgd_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vsgd(**kwargs)
