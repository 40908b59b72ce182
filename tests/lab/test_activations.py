"""The slides' remaining activations: PReLU (a learned slope) and RReLU (a random one)."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import nn

X = np.array([[-2.0, -0.5, 0.0, 1.5], [3.0, -1.0, -4.0, 0.25]], dtype="float32")


def test_prelu_values_and_learned_slope():
    layer = nn.PReLU(4, name="act")
    assert [p.name for p in layer.params] == ["act.alpha"] and layer.weights == []
    np.testing.assert_array_equal(layer.alpha.get_value(), np.full(4, 0.25, "float32"))
    x = pt.matrix("x", dtype="float32")
    out = layer.output(x)
    assert out.dtype == "float32"
    np.testing.assert_allclose(pytensor.function([x], out)(X), np.where(X > 0, X, 0.25 * X))
    # the gradient of the slope is the sum of the negative inputs (per unit)
    grad = pytensor.function([x], pytensor.grad(out.sum(), layer.alpha))(X)
    np.testing.assert_allclose(grad, np.minimum(X, 0).sum(0))
    # and it is learned: fitting targets made with slope 0.1
    target = np.where(X > 0, X, 0.1 * X)
    loss = ((out - target) ** 2).mean()
    step = pytensor.function([x], loss, updates=symopt.sgd(loss, layer.params, 0.1))
    for _ in range(200):
        step(X)
    # the error of each slope shrinks by 1 - lr * 2 / 8 * sum(x^2 over its negative inputs)
    # per step; unit 3 sees no negative input and keeps 0.25
    contraction = 1 - 0.1 * 2 / X.size * (np.minimum(X, 0) ** 2).sum(0)
    np.testing.assert_allclose(layer.alpha.get_value(), 0.1 + 0.15 * contraction ** 200,
                               rtol=1e-5)
    assert abs(layer.alpha.get_value()[1] - 0.1) < 1e-3


def test_rrelu_random_in_training_mean_in_inference():
    layer = nn.RReLU(lower=0.1, upper=0.3, seed=0, name="r")
    assert layer.params == [] and layer.mean_slope == pytest.approx(0.2)
    x = pt.matrix("x", dtype="float32")
    inference = pytensor.function([x], layer.output(x, training=False))
    np.testing.assert_allclose(inference(X), np.where(X >= 0, X, 0.2 * X), rtol=1e-6)
    train_out = layer.output(x, training=True)
    assert train_out.dtype == "float32" and len(layer.extra_updates) == 1
    train = pytensor.function([x], train_out, updates=layer.extra_updates)
    big = np.full((200, 50), -1.0, dtype="float32")
    first, second = train(big), train(big)
    slopes = -first
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    assert abs(slopes.mean() - 0.2) < 0.005 and slopes.std() > 0.05  # U(0.1, 0.3): sd 0.058
    assert not np.array_equal(first, second)  # the generator moves on between calls
    positive = np.abs(X)
    np.testing.assert_array_equal(train(positive), positive)  # positives pass unchanged


def test_rrelu_with_a_symbolic_training_flag():
    layer = nn.RReLU(seed=1)
    x, flag = pt.matrix("x", dtype="float32"), pt.scalar("training", dtype="bool")
    f = pytensor.function([x, flag], layer.output(x, flag), updates=layer.extra_updates)
    np.testing.assert_allclose(f(X, False), np.where(X >= 0, X, layer.mean_slope * X), rtol=1e-6)
    randomized = f(X, True)
    negative = X < 0
    ratios = randomized[negative] / X[negative]
    assert np.all((ratios >= 1 / 8 - 1e-6) & (ratios <= 1 / 3 + 1e-6))


def test_rrelu_checks_its_bounds():
    with pytest.raises(ValueError, match="0 <= lower <= upper"):
        nn.RReLU(lower=0.5, upper=0.2)


@pytest.mark.parametrize("activation", ["prelu", "rrelu"])
def test_mlp_with_the_layered_activations(activation):
    net = nn.MLP([4, 8, 3], activation=activation, dropout=0.2, seed=0)
    names = [layer.name for layer in net.layers]
    assert f"hidden.{activation}" in names
    x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
    loss = nn.categorical_crossentropy_from_log_probs(net.output(x, training=True), y)
    if activation == "prelu":
        assert "hidden.prelu.alpha" in [p.name for p in net.params]
    else:
        assert any(var.name == "hidden.rrelu.rng" for var, _ in net.extra_updates)
    step = pytensor.function([x, y], loss, updates=symopt.adam(loss, net.params, 0.05)
                             + net.extra_updates)
    xs, ys = np.eye(3, 4, dtype="float32"), np.array([0, 1, 2])
    losses = [float(step(xs, ys)) for _ in range(60)]
    assert losses[-1] < 0.2 * losses[0]


def test_kfac_layers_lists_the_dense_layers_of_the_latest_graph():
    net = nn.MLP([4, 5, 3], activation="prelu", seed=0)
    with pytest.raises(ValueError, match="no graph yet"):
        nn.kfac_layers(net)
    x = pt.matrix("x", dtype="float32")
    net.output(x, training=True)
    layers = nn.kfac_layers(net)
    assert [(layer.W.name, layer.b.name) for layer in layers] == [("hidden.W", "hidden.b"),
                                                                 ("output.W", "output.b")]
    assert layers[0].inputs is x
