"""natural_gradient against the Fisher written in closed form, in NumPy.

For logistic regression with the mean negative log-likelihood, the Fisher of the model's
Bernoulli distribution is ``X1^T diag(p (1 - p)) X1 / n`` (``X1`` the inputs with a column
of ones for the bias), and the L2 penalty adds ``lambda`` on the weights; for softmax
regression it is ``sum_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T / n``. The tests build
those matrices in NumPy and compare every step of ``natural_gradient`` with the NumPy
update: the exact solve when CG runs as many iterations as there are parameters, and a
NumPy conjugate gradient of the same iteration count when it runs fewer.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from symopt.second_order import natural_gradient

STEPS = 12
LAMBDA = 1e-2  # the L2 penalty of conftest.build_logistic


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def logistic_fisher_and_grad(theta, X, y):
    """The damping-free Fisher (with the penalty's Hessian) and the gradient, in NumPy."""
    X1 = np.hstack([X, np.ones((len(X), 1))])
    p = sigmoid(X1 @ theta)
    n = len(y)
    penalty = np.diag([LAMBDA] * X.shape[1] + [0.0])
    F = X1.T @ (X1 * (p * (1 - p))[:, None]) / n + penalty
    g = X1.T @ (p - y) / n + penalty @ theta
    return F, g


def numpy_cg(A, b, x0, iterations):
    """Textbook conjugate gradient on A x = b (Hestenes & Stiefel, 1952)."""
    x = x0.copy()
    r = b - A @ x
    p = r.copy()
    rr = r @ r
    for _ in range(iterations):
        ap = A @ p
        pap = p @ ap
        alpha = rr / pap if pap > 0 else 0.0
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        beta = rr_new / rr if rr > 0 else 0.0
        p = r + beta * p
        rr = rr_new
    return x


def batches(X, y, steps, size=64, seed=3):
    """A different mini-batch at each step, as in training."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        i = rng.choice(len(X), size, replace=False)
        yield X[i], y[i]


def run_logistic(build_logistic, logistic_data, *, learning_rate, damping, cg_iters,
                 warm_start=0.0):
    X, y = logistic_data
    loss, z, params, inputs = build_logistic()
    updates = natural_gradient(loss, params, z, learning_rate=learning_rate, damping=damping,
                               cg_iters=cg_iters, warm_start=warm_start)
    step = pytensor.function(inputs, [], updates=updates)
    trajectory = []
    for xb, yb in batches(X, y, STEPS):
        step(xb, yb)
        trajectory.append(np.append(params[0].get_value(), params[1].get_value()))
    return trajectory


@pytest.mark.parametrize("damping", [0.0, 1e-2])
def test_exact_damped_natural_gradient_on_logistic_regression(make_logistic, logistic_data,
                                                              damping):
    """With as many CG iterations as parameters (6), each step is the exact solve."""
    trajectory = run_logistic(make_logistic, logistic_data, learning_rate=0.7, damping=damping,
                              cg_iters=6)
    theta = np.zeros(6)
    for k, ((xb, yb), got) in enumerate(zip(batches(*logistic_data, STEPS), trajectory), 1):
        F, g = logistic_fisher_and_grad(theta, xb, yb)
        theta = theta - 0.7 * np.linalg.solve(F + damping * np.eye(6), g)
        # CG's rounding: about cond(F) times the machine epsilon
        np.testing.assert_allclose(got, theta, rtol=1e-8, atol=1e-10, err_msg=f"step {k}")
    assert np.abs(theta).max() > 0.5  # it moved


@pytest.mark.parametrize("cg_iters, warm_start", [(2, 0.0), (1, 0.9)])
def test_truncated_conjugate_gradient_step_by_step(make_logistic, logistic_data, cg_iters,
                                                   warm_start):
    """With fewer iterations, the update is k steps of CG on the closed-form Fisher."""
    trajectory = run_logistic(make_logistic, logistic_data, learning_rate=0.5, damping=1e-3,
                              cg_iters=cg_iters, warm_start=warm_start)
    theta, previous = np.zeros(6), np.zeros(6)
    for k, ((xb, yb), got) in enumerate(zip(batches(*logistic_data, STEPS), trajectory), 1):
        F, g = logistic_fisher_and_grad(theta, xb, yb)
        d = numpy_cg(F + 1e-3 * np.eye(6), g, warm_start * previous, cg_iters)
        previous = d
        theta = theta - 0.5 * d
        np.testing.assert_allclose(got, theta, rtol=1e-10, atol=1e-12, err_msg=f"step {k}")
    # not the exact solve: the truncation is what this test checks
    exact = np.linalg.solve(F + 1e-3 * np.eye(6), g)
    assert not np.allclose(d, exact, rtol=1e-3)


def test_softmax_regression_fisher(logistic_data):
    """Three classes: the Fisher couples the classes through diag(p) - p p^T."""
    X, _ = logistic_data
    X = X[:50, :3]
    labels = np.arange(50) % 3
    rng = np.random.default_rng(0)
    W0, b0 = rng.normal(size=(3, 3)) * 0.3, rng.normal(size=3) * 0.1
    W = pytensor.shared(W0, name="W")
    b = pytensor.shared(b0, name="b")
    z = pt.constant(X) @ W + b
    log_p = pt.special.log_softmax(z, axis=-1)
    loss = -log_p[pt.arange(50), labels].mean()
    damping = 1e-3
    step = pytensor.function([], [], updates=natural_gradient(loss, [W, b], z, 1.0, damping,
                                                              cg_iters=16))
    step()
    X1 = np.hstack([X, np.ones((50, 1))])
    theta = np.vstack([W0, b0])  # (4, 3): rows are inputs, columns classes
    logits = X1 @ theta
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # vec in row-major order of theta (input index, then class index)
    F = sum(np.kron(np.outer(x, x), np.diag(pi) - np.outer(pi, pi)) for x, pi in zip(X1, p)) / 50
    g = (X1.T @ (p - np.eye(3)[labels]) / 50).ravel()
    d = np.linalg.solve(F + damping * np.eye(12), g).reshape(4, 3)
    np.testing.assert_allclose(W.get_value(), W0 - d[:3], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(b.get_value(), b0 - d[3], rtol=1e-6, atol=1e-9)


def test_float32_stays_float32_and_converges(make_logistic, logistic_data, logistic_optimum):
    X, y = logistic_data
    loss, z, params, inputs = make_logistic("float32")
    updates = natural_gradient(loss, params, z, learning_rate=1.0, damping=1e-4, cg_iters=6,
                               warm_start=0.5)
    for var, expr in updates:
        assert var.type == expr.type, var.name
    step = pytensor.function(inputs, loss, updates=updates)
    for _ in range(15):  # full batch: a Newton-like method converges in a few steps
        final = float(step(X.astype("float32"), y.astype("float32")))
    assert params[0].get_value().dtype == "float32"
    theta = np.append(params[0].get_value(), params[1].get_value())
    np.testing.assert_allclose(theta, logistic_optimum[0], atol=2e-3)
    assert final == pytest.approx(logistic_optimum[1], abs=1e-5)


def test_clear_errors(logistic):
    loss, z, params, _ = logistic
    with pytest.raises(TypeError, match="needs the loss itself, not a list of gradients"):
        natural_gradient(pytensor.grad(loss, params), params, z)
    with pytest.raises(ValueError, match="needs the model's outputs"):
        natural_gradient(loss, params, None)
    with pytest.raises(ValueError, match="cg_iters must be a positive integer, got 0"):
        natural_gradient(loss, params, z, cg_iters=0)
    with pytest.raises(ValueError, match=r"warm_start must be a number in \[0, 1\], got 2"):
        natural_gradient(loss, params, z, warm_start=2)
    with pytest.raises(ValueError, match="damping must be >= 0"):
        natural_gradient(loss, params, z, damping=-1.0)
    with pytest.raises(ValueError, match="the loss does not depend on outputs"):
        natural_gradient(loss, params, pt.dvector("unrelated"))
