"""PRONG's whitened layers: the reparametrisation keeps the function, and whitens."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import nn
from symopt.lab.prong import PRONG, WhitenedDense, WhitenedMLP, whitening


def correlated_data(n=400, d=6, seed=0):
    """Inputs with very different scales, correlated, and off-centre."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.logspace(-1, 1, d)
    X[:, 1] += 2 * X[:, 4]
    return X + 3.0


def test_whitening_in_numpy():
    X = correlated_data()
    c, U, U_inverse = whitening(X, 1e-10)
    np.testing.assert_allclose(c, X.mean(0))
    white = (X - c) @ U
    np.testing.assert_allclose(white.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(white.T @ white / len(X), np.eye(6), atol=1e-5)
    np.testing.assert_allclose(U @ U_inverse, np.eye(6), atol=1e-10)
    # epsilon damps the directions of small variance: covariance lambda / (lambda + eps)
    _, U_big, _ = whitening(X, 1.0)
    lam = np.linalg.eigvalsh(np.cov(X.T, bias=True))
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(
        U_big.T @ np.cov(X.T, bias=True) @ U_big)), np.sort(lam / (lam + 1.0)), rtol=1e-8)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_reparametrisation_keeps_the_network_function(dtype, rtol):
    """Algorithm 1's projection: the outputs before and after are the same to rounding,
    and so are the canonical parameters W = U V, b = d - c W."""
    net = WhitenedMLP([6, 8, 5, 3], activation="tanh", seed=1, dtype=dtype)
    x = pt.matrix("x", dtype=dtype)
    f = pytensor.function([x], net.output(x))
    X = correlated_data().astype(dtype)
    prong = PRONG(net, x, every=5, n_samples=300, epsilon=1e-3, seed=0)
    for round_ in range(3):  # reparametrise repeatedly, each time after some training
        before, canonical = f(X), [layer.canonical() for layer in prong.layers]
        prong.reparametrize(X[:300])
        np.testing.assert_allclose(f(X), before, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f"round {round_}")
        for layer, (W, b) in zip(prong.layers, canonical):
            W_new, b_new = layer.canonical()
            np.testing.assert_allclose(W_new, W, rtol=rtol, atol=rtol * 1e-2)
            np.testing.assert_allclose(b_new, b, rtol=rtol, atol=rtol * 1e-2)
        for layer in prong.layers:  # and the parameters did change
            layer.V.set_value(layer.V.get_value() * np.asarray(1.1, dtype))
    assert prong.count == 3
    assert not np.allclose(prong.layers[0].U.get_value(), np.eye(6))


def test_each_layer_input_is_whitened():
    net = WhitenedMLP([6, 8, 3], activation="tanh", seed=2, dtype="float64")
    x = pt.dmatrix("x")
    X = correlated_data()
    prong = PRONG(net, x, every=1, n_samples=len(X), epsilon=1e-8, seed=0)
    prong.reparametrize(X)
    net.output(x)
    whitened = [pt.dot(layer.last_input - layer.c, layer.U) for layer in prong.layers]
    for layer, h in zip(prong.layers, pytensor.function([x], whitened)(X)):
        np.testing.assert_allclose(h.mean(0), 0, atol=1e-8, err_msg=layer.name)
        np.testing.assert_allclose(h.T @ h / len(X), np.eye(h.shape[1]), atol=1e-4,
                                   err_msg=layer.name)


def test_starts_as_the_plain_mlp_and_trains_v_and_d_only():
    whitened = WhitenedMLP([6, 8, 3], activation="tanh", seed=3)
    plain = nn.MLP([6, 8, 3], activation="tanh", seed=3)
    x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
    X = correlated_data().astype("float32")
    same = pytensor.function([x], [whitened.output(x), plain.output(x)])(X)
    np.testing.assert_allclose(*same, rtol=1e-5)
    assert [p.name for p in whitened.params] == ["hidden.V", "hidden.d", "output.V", "output.d"]
    assert [v.name for v in whitened.layers[0].variables] == [
        "hidden.V", "hidden.d", "hidden.U", "hidden.c"]
    labels = (X[:, 0] > X[:, 0].mean()).astype("int64") + (X[:, 5] > 3)
    loss = nn.categorical_crossentropy_from_log_probs(whitened.output(x, training=True), y)
    step = pytensor.function([x, y], loss, updates=symopt.sgd(loss, whitened.params, 0.3))
    prong = PRONG(whitened, x, every=20, n_samples=200, epsilon=1e-2, seed=0)
    losses = []
    for t in range(100):
        if prong.step(t, X):
            U = whitened.layers[0].U.get_value()
        losses.append(float(step(X, labels)))
        # SGD moves V and d only; U and c stay until the next reparametrisation
        np.testing.assert_array_equal(whitened.layers[0].U.get_value(), U)
    assert prong.count == 5
    assert losses[-1] < 0.6 * losses[0]
    np.testing.assert_array_equal(whitened.layers[0].U.get_value().shape, (6, 6))


def test_errors():
    with pytest.raises(ValueError, match="has no WhitenedDense layer"):
        PRONG(nn.MLP([2, 3]), pt.matrix("x"), every=1, n_samples=10, epsilon=1e-3)
    net = WhitenedMLP([2, 3])
    with pytest.raises(ValueError, match="PRONG needs every >= 1"):
        PRONG(net, pt.matrix("x"), every=0, n_samples=10, epsilon=1e-3)
    with pytest.raises(ValueError, match="sizes must be positive"):
        WhitenedDense(0, 3)
