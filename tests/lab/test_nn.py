"""symopt.lab.nn: activations, initialisers, dense, dropout, batch norm, MLP, losses."""

import functools
import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import nn

Z = np.array([[-3.0, -0.5, 0.0, 0.5, 3.0]])


def evaluate(expr, **givens):
    return pytensor.function(list(givens), expr)(*givens.values()) if givens else expr.eval()


# -- activations ------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("name, reference", [
    ("linear", lambda z: z),
    ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
    ("tanh", np.tanh),
    ("relu", lambda z: np.maximum(z, 0)),
    ("leaky_relu", lambda z: np.maximum(0.01 * z, z)),
    ("elu", lambda z: np.where(z >= 0, z, np.exp(z) - 1)),
    ("softmax", _softmax),
    ("log_softmax", lambda z: np.log(_softmax(z))),
])
def test_activation_values(name, reference):
    z = pt.matrix("z")
    np.testing.assert_allclose(nn.get_activation(name)(z).eval({z: Z}), reference(Z), rtol=1e-12)


def test_activation_hyperparameters():
    z = pt.matrix("z")
    leaky = functools.partial(nn.leaky_relu, alpha=0.2)
    np.testing.assert_allclose(nn.get_activation(leaky)(z).eval({z: Z}), np.maximum(0.2 * Z, Z))
    np.testing.assert_allclose(nn.elu(z, alpha=2.0).eval({z: Z}),
                               np.where(Z >= 0, Z, 2.0 * np.expm1(Z)))
    assert nn.get_activation(None) is nn.linear
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.get_activation("swish")


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softmax",
                                  "log_softmax"])
def test_activations_keep_float32(name):
    z = pt.matrix("z", dtype="float32")
    assert nn.get_activation(name)(z).dtype == "float32"


def test_elu_gradient_is_finite_for_large_inputs():
    z = pt.vector("z")
    g = pytensor.grad(nn.elu(z).sum(), z)
    np.testing.assert_allclose(g.eval({z: np.array([-800.0, -1.0, 1000.0])}),
                               [0.0, math.exp(-1.0), 1.0])


# -- initialisers -----------------------------------------------------------------------


@pytest.mark.parametrize("init, expected_std", [
    (nn.glorot_normal, math.sqrt(2 / (400 + 600))),
    (nn.glorot_uniform, math.sqrt(2 / (400 + 600))),
    (nn.glorot_relu_normal, math.sqrt(2) * math.sqrt(2 / (400 + 600))),
    (nn.he_normal, math.sqrt(2 / 400)),
    (nn.he_uniform, math.sqrt(2 / 400)),
])
def test_initialiser_scales(init, expected_std):
    w = init((400, 600), np.random.default_rng(0))
    assert w.shape == (400, 600)
    assert abs(w.mean()) < 0.01 * expected_std * 10
    assert w.std() == pytest.approx(expected_std, rel=0.01)


def test_uniform_initialisers_have_the_right_limits():
    w = nn.glorot_uniform((30, 70), np.random.default_rng(0))
    limit = math.sqrt(6 / 100)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit


def test_initialisers_by_name_and_default_by_activation():
    assert nn.get_initializer("xavier_normal") is nn.glorot_normal
    assert nn.get_initializer(None, nn.sigmoid) is nn.glorot_normal
    assert nn.get_initializer(None, nn.relu) is nn.glorot_relu_normal
    assert nn.get_initializer(None, functools.partial(nn.leaky_relu, alpha=0.1)) is \
        nn.glorot_relu_normal
    with pytest.raises(ValueError, match="unknown initialiser 'orthogonal'"):
        nn.get_initializer("orthogonal")


# -- dense ------------------------------------------------------------------------------


def test_dense_layer():
    layer = nn.Dense(3, 2, activation="relu", name="hidden", seed=0)
    assert [p.name for p in layer.params] == ["hidden.W", "hidden.b"]
    assert layer.W.dtype == "float32" and layer.W.get_value().shape == (3, 2)
    assert not layer.b.get_value().any()
    x = pt.matrix("x")  # float64 input is cast to the layer's dtype
    out = layer.output(x)
    assert out.dtype == "float32"
    xv = np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(out.eval({x: xv}), np.maximum(xv @ layer.W.get_value(), 0),
                               rtol=1e-6)
    same = nn.Dense(3, 2, activation="relu", seed=0, dtype="float64")
    np.testing.assert_allclose(same.W.get_value(), layer.W.get_value(), rtol=1e-7)
    assert len(nn.Dense(3, 2, bias=False).params) == 1


# -- dropout ----------------------------------------------------------------------------


def test_dropout_keep_rate_scale_and_fresh_masks():
    layer = nn.Dropout(0.3, seed=1)
    x = pt.matrix("x", dtype="float32")
    f = pytensor.function([x], layer.output(x, training=True), updates=layer.extra_updates)
    ones = np.ones((200, 500), dtype="float32")
    first, second = f(ones), f(ones)
    assert first.dtype == np.float32
    kept = first != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.005)
    np.testing.assert_allclose(first[kept], 1 / 0.7, rtol=1e-6)
    assert first.mean() == pytest.approx(1.0, abs=0.01)  # inverted dropout keeps the mean
    assert (kept != (second != 0)).any()  # the generator moved on


def test_dropout_without_the_extra_updates_repeats_its_mask():
    layer = nn.Dropout(0.5, seed=1)
    x = pt.matrix("x")
    f = pytensor.function([x], layer.output(x, training=True))
    ones = np.ones((4, 50))
    np.testing.assert_array_equal(f(ones), f(ones))


def test_dropout_inference_is_the_identity():
    layer = nn.Dropout(0.5, seed=1)
    x = pt.matrix("x")
    assert layer.output(x, training=False) is x
    assert layer.extra_updates == []
    assert nn.Dropout(0.0).output(x, training=True) is x


def test_dropout_with_a_symbolic_flag():
    layer = nn.Dropout(0.5, seed=3)
    x, flag = pt.matrix("x"), pt.scalar("training", dtype="bool")
    f = pytensor.function([x, flag], layer.output(x, flag), updates=layer.extra_updates)
    ones = np.ones((20, 20))
    np.testing.assert_array_equal(f(ones, False), ones)
    assert set(np.unique(f(ones, True))) == {0.0, 2.0}


def test_dropout_rate_is_checked():
    with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\)"):
        nn.Dropout(1.0)


# -- batch normalisation ----------------------------------------------------------------


@pytest.fixture
def batch():
    return np.random.default_rng(0).normal([1.0, -2.0, 5.0], [0.5, 2.0, 3.0], size=(64, 3))


def test_batchnorm_training_normalises_with_the_batch(batch):
    bn = nn.BatchNorm(3, momentum=0.9, epsilon=1e-3, dtype="float64")
    bn.gamma.set_value(np.array([1.0, 2.0, 0.5]))
    bn.beta.set_value(np.array([0.0, 1.0, -1.0]))
    x = pt.matrix("x")
    f = pytensor.function([x], bn.output(x, training=True), updates=bn.extra_updates)
    out = f(batch)
    mean, var = batch.mean(axis=0), batch.var(axis=0)
    expected = (batch - mean) / np.sqrt(var + 1e-3) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.get_value(), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.get_value(), 0.9 + 0.1 * var, rtol=1e-12)
    f(batch)
    np.testing.assert_allclose(bn.running_mean.get_value(), 0.19 * mean, rtol=1e-12)


def test_batchnorm_inference_uses_the_running_statistics(batch):
    bn = nn.BatchNorm(3, epsilon=1e-3, dtype="float64")
    bn.running_mean.set_value(np.array([1.0, 2.0, 3.0]))
    bn.running_var.set_value(np.array([4.0, 1.0, 0.25]))
    x = pt.matrix("x")
    out = bn.output(x, training=False).eval({x: batch})
    np.testing.assert_allclose(out, (batch - [1, 2, 3]) / np.sqrt(np.array([4, 1, 0.25]) + 1e-3),
                               rtol=1e-12)
    # The running statistics converge to the data's, and then inference matches training.
    bn.output(x, training=True)
    f = pytensor.function([x], [], updates=bn.extra_updates)
    for _ in range(200):
        f(batch)
    np.testing.assert_allclose(bn.running_mean.get_value(), batch.mean(axis=0), rtol=1e-6)
    var = batch.var(axis=0)
    np.testing.assert_allclose(bn.output(x, False).eval({x: batch}).std(axis=0),
                               np.sqrt(var / (var + 1e-3)), rtol=1e-6)


def test_batchnorm_symbolic_flag_matches_both_modes(batch):
    bn = nn.BatchNorm(3, dtype="float64")
    x, flag = pt.matrix("x"), pt.scalar("training", dtype="bool")
    f = pytensor.function([x, flag], bn.output(x, flag), updates=bn.extra_updates)
    np.testing.assert_allclose(f(batch, False), bn.output(x, False).eval({x: batch}))
    assert not bn.running_mean.get_value().any()  # inference left the statistics alone
    np.testing.assert_allclose(f(batch, True).mean(axis=0), 0.0, atol=1e-12)
    assert bn.running_mean.get_value().any()


def test_batchnorm_updates_keep_the_variables_types():
    bn = nn.BatchNorm(4)
    bn.output(pt.matrix("x", dtype="float32"), training=True)
    assert [s.name for s, _ in bn.extra_updates] == ["bn.running_mean", "bn.running_var"]
    assert all(s.type == e.type for s, e in bn.extra_updates)
    assert [p.name for p in bn.params] == ["bn.gamma", "bn.beta"]
    assert len(bn.variables) == 4


# -- MLP --------------------------------------------------------------------------------


def test_mlp_structure_names_and_dtypes():
    net = nn.MLP([784, 600, 10], activation="sigmoid", seed=0)
    assert [p.name for p in net.params] == ["hidden.W", "hidden.b", "output.W", "output.b"]
    assert [w.name for w in net.weights] == ["hidden.W", "output.W"]
    assert all(p.dtype == "float32" for p in net.params)
    assert net.layer("hidden").W.get_value().std() == pytest.approx(math.sqrt(2 / 1384), rel=0.02)
    deep = nn.MLP([5, 4, 3, 2], batch_norm=True, dropout=0.5, input_dropout=0.2, dtype="float64")
    assert [p.name for p in deep.params] == [
        "hidden1.W", "hidden1.bn.gamma", "hidden1.bn.beta",
        "hidden2.W", "hidden2.bn.gamma", "hidden2.bn.beta", "output.W", "output.b"]
    assert [layer.name for layer in deep.layers][:5] == [
        "input.dropout", "hidden1", "hidden1.bn", "hidden1.activation", "hidden1.dropout"]


def test_mlp_is_reproducible_from_its_seed():
    a, b, c = nn.MLP([6, 5, 2], seed=3), nn.MLP([6, 5, 2], seed=3), nn.MLP([6, 5, 2], seed=4)
    np.testing.assert_array_equal(a.params[0].get_value(), b.params[0].get_value())
    assert not np.array_equal(a.params[0].get_value(), c.params[0].get_value())


def test_mlp_output_is_log_probabilities_and_modes_differ_only_with_dropout():
    net = nn.MLP([4, 16, 3], dropout=0.5, seed=0)
    x = pt.matrix("x", dtype="float32")
    xv = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    inference = net.output(x, training=False).eval({x: xv})
    np.testing.assert_allclose(np.exp(inference).sum(axis=1), 1.0, rtol=1e-5)
    logits = net.logits(x).eval({x: xv})
    log_normaliser = np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(inference, logits - log_normaliser, rtol=1e-5, atol=1e-6)
    training = net.output(x, training=True)
    assert [s.name for s, _ in net.extra_updates] == ["hidden.dropout.rng"]
    assert not np.allclose(training.eval({x: xv}), inference)


def test_mlp_with_batchnorm_trains_and_updates_running_statistics():
    net = nn.MLP([4, 8, 3], batch_norm=True, seed=0)
    x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
    loss = nn.categorical_crossentropy_from_log_probs(net.output(x, training=True), y)
    step = pytensor.function([x, y], loss,
                             updates=symopt.sgd(loss, net.params, 0.1) + net.extra_updates)
    xv, yv = np.eye(3, 4, dtype="float32"), np.array([0, 1, 2])
    losses = [float(step(xv, yv)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert net.layer("hidden.bn").running_mean.get_value().any()


# -- losses and accuracy ----------------------------------------------------------------


def test_categorical_crossentropy_with_labels_and_one_hot():
    """Probabilities (Lasagne's convention) and log-probabilities, each its own function."""
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    labels = np.array([0, 1])
    lp, p = pt.matrix("lp"), pt.matrix("p")
    log_probs = np.log(_softmax(logits))
    expected = -(log_probs[0, 0] + log_probs[1, 1]) / 2
    y = pt.lvector("y")
    t = pt.matrix("t")
    from_log = nn.categorical_crossentropy_from_log_probs
    assert from_log(lp, y).eval({lp: log_probs, y: labels}) == pytest.approx(expected, rel=1e-12)
    assert from_log(lp, t).eval({lp: log_probs, t: np.eye(3)[labels]}) == \
        pytest.approx(expected, rel=1e-12)
    probs = _softmax(logits)
    assert nn.categorical_crossentropy(p, y).eval({p: probs, y: labels}) == \
        pytest.approx(expected, rel=1e-12)
    assert nn.categorical_crossentropy(p, t).eval({p: probs, t: np.eye(3)[labels]}) == \
        pytest.approx(expected, rel=1e-12)
    for loss in (nn.categorical_crossentropy, from_log):
        with pytest.raises(TypeError, match="must be integers"):
            loss(lp, pt.vector("y"))


def test_a_softmax_output_never_trains_on_the_wrong_loss():
    """categorical_crossentropy took log-probabilities where Lasagne's takes
    probabilities: a softmax output trained on a wrong loss, silently. Now each function
    refuses the other's typical input, and each computes the right loss for its own."""
    z = pt.matrix("z")
    y = pt.lvector("y")
    with pytest.raises(ValueError, match="takes log-probabilities, but these are the output of "
                                         "softmax.*use categorical_crossentropy"):
        nn.categorical_crossentropy_from_log_probs(pt.special.softmax(z, axis=-1), y)
    with pytest.raises(ValueError, match="takes probabilities, but these are the output of "
                                         "log_softmax.*categorical_crossentropy_from_log_probs"):
        nn.categorical_crossentropy(pt.special.log_softmax(z, axis=-1), y)
    # through a cast too, and from the MLP's own output layers
    with pytest.raises(ValueError, match="output of softmax"):
        nn.categorical_crossentropy_from_log_probs(
            pt.cast(pt.special.softmax(z, axis=-1), "float32"), y)
    x = pt.matrix("x", dtype="float32")
    with pytest.raises(ValueError, match="output of log_softmax"):
        nn.categorical_crossentropy(nn.MLP([4, 3], seed=0).output(x), y)
    softmax_net = nn.MLP([4, 3], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match="output of softmax"):
        nn.categorical_crossentropy_from_log_probs(softmax_net.output(x), y)
    xv, yv = np.eye(3, 4, dtype="float32"), np.array([0, 2, 1])
    logits = nn.MLP([4, 3], seed=0).logits(x).eval({x: xv}).astype("float64")
    expected = -np.log(_softmax(logits))[np.arange(3), yv].mean()
    both = [nn.categorical_crossentropy(softmax_net.output(x), y),
            nn.categorical_crossentropy_from_log_probs(nn.MLP([4, 3], seed=0).output(x), y)]
    for loss in both:
        assert float(loss.eval({x: xv, y: yv})) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 1]], ids=["too-large", "negative"])
def test_labels_outside_the_classes_are_refused(labels):
    """A negative label picked a class from the end, silently; a label too large failed
    deep in PyTensor's indexing."""
    lp, p, y = pt.matrix("lp"), pt.matrix("p"), pt.lvector("y")
    probs = np.full((2, 3), 1 / 3)
    for x, loss, value in ((lp, nn.categorical_crossentropy_from_log_probs(lp, y), np.log(probs)),
                           (p, nn.categorical_crossentropy(p, y), probs)):
        f = pytensor.function([x, y], loss)
        assert float(f(value, np.array([0, 2]))) == pytest.approx(np.log(3))
        with pytest.raises(ValueError, match=r"class labels must be in \[0, n_classes\).*a "
                                             r"target is outside the classes"):
            f(value, np.array(labels))


def test_binary_crossentropy_forms_agree_and_are_stable():
    z = np.array([-3.0, 0.2, 4.0, 100.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    zs, ts = pt.vector("z"), pt.vector("t")
    p = 1 / (1 + np.exp(-z[:3]))
    expected = -np.mean(t[:3] * np.log(p) + (1 - t[:3]) * np.log(1 - p))
    assert nn.binary_crossentropy(zs, ts).eval({zs: p, ts: t[:3]}) == pytest.approx(expected)
    assert nn.binary_crossentropy_with_logits(zs, ts).eval({zs: z[:3], ts: t[:3]}) == \
        pytest.approx(expected, rel=1e-12)
    # A logit of 100 with target 0 costs 100 (per example), without overflow.
    assert nn.binary_crossentropy_with_logits(zs, ts).eval({zs: z[3:], ts: t[3:]}) == \
        pytest.approx(100.0)


def test_accuracy():
    out, y = pt.matrix("out"), pt.lvector("y")
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert nn.accuracy(out, y).eval({out: scores, y: np.array([1, 0, 0, 0])}) == 0.75
    p = pt.vector("p")
    assert nn.accuracy(p, y).eval({p: np.array([0.9, 0.2, 0.6]), y: np.array([1, 1, 1])}) == \
        pytest.approx(2 / 3)
