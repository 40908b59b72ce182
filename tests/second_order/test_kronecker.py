"""Shampoo, SOAP and K-FAC against their NumPy transcriptions (symopt.lab.reference).

Shampoo and SOAP are rules of ``symopt.RULES``: the core tests run their rulebook rows
(trajectories on the toy quadratic, convergence on it and on Rosenbrock in float32 and
float64, state names, save and load). Here they run on a least-squares problem whose data
change at every step, with larger matrices; K-FAC, which needs the layers, on a small
tanh network whose inputs, back-propagated gradients and parameter gradients are computed
in NumPy for the transcription. Then: the statistics of K-FAC's sampled Fisher, its
convergence in both dtypes, its state saved and loaded bit for bit, and the errors.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import reference
from symopt.second_order import DenseLayer, kfac

STEPS = 12
N_IN, N_OUT, BATCH = 5, 4, 16


def regression_batches(steps=STEPS, seed=0):
    """A least-squares problem whose mini-batch changes at every step."""
    rng = np.random.default_rng(seed)
    true_W = rng.normal(size=(N_IN, N_OUT))
    for _ in range(steps):
        X = rng.normal(size=(BATCH, N_IN)) * np.array([1.0, 3.0, 0.3, 1.0, 2.0])
        yield X, X @ true_W + 0.1 * rng.normal(size=(BATCH, N_OUT))


def regression_grads(W, b, X, Y):
    R = X @ W + b - Y
    return [X.T @ R / len(X), R.mean(axis=0)]


def start():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(N_IN, N_OUT)), rng.normal(size=N_OUT)]


@pytest.mark.parametrize("name, kwargs, reference_class", [
    ("shampoo", {"learning_rate": 0.1, "update_every": 4}, reference.Shampoo),
    ("shampoo", {"learning_rate": 0.02, "beta1": 0.0, "update_every": 1, "graft": False},
     reference.Shampoo),
    ("shampoo", {"learning_rate": 0.05, "shampoo_beta": 0.95, "max_dim": 4,
                 "weight_decay": 0.05, "update_every": 3}, reference.Shampoo),
    # epsilon: the first statistics (5 x 5 from one 5 x 4 gradient) have a null direction,
    # whose rounding noise Adam's normalisation would scale to noise / epsilon
    ("soap", {"learning_rate": 0.05, "update_every": 3, "epsilon": 1e-3}, reference.SOAP),
    ("soap", {"learning_rate": 0.05, "update_every": 1, "epsilon": 1e-3, "beta1": 0.5,
              "shampoo_beta": 0.9, "max_dim": 4}, reference.SOAP),
], ids=["shampoo", "shampoo-paper", "shampoo-one-sided", "soap", "soap-one-sided"])
def test_matrix_rules_follow_their_transcriptions(name, kwargs, reference_class):
    W0, b0 = start()
    W = pytensor.shared(W0, name="W")
    b = pytensor.shared(b0, name="b")
    X, Y = pt.dmatrix("X"), pt.dmatrix("Y")
    loss = 0.5 * ((X @ W + b - Y) ** 2).sum(axis=1).mean()
    step = pytensor.function([X, Y], [], updates=symopt.RULES[name](loss, [W, b], **kwargs))
    ref = reference_class([W0, b0], **kwargs)
    expected = [W0, b0]
    for k, (xb, yb) in enumerate(regression_batches(), 1):
        step(xb, yb)
        expected = ref.step(expected, regression_grads(*expected, xb, yb))
        for got, want, what in zip([W.get_value(), b.get_value()], expected, "Wb"):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{what}, step {k}")
    assert np.abs(W.get_value() - W0).max() > 0.05


def test_shampoo_paper_step_is_the_inverse_fourth_roots():
    """Algorithm 1, step 1, written out: W - eta (eps I + G G^T)^(-1/4) G (eps I + G^T G)^(-1/4)."""
    W0, b0 = start()
    W = pytensor.shared(W0, name="W")
    X, Y = next(regression_batches())
    loss = 0.5 * ((X @ W + b0 - Y) ** 2).sum(axis=1).mean()
    step = pytensor.function([], [], updates=symopt.shampoo(
        loss, [W], 0.1, beta1=0.0, update_every=1, graft=False, shampoo_epsilon=1e-4))
    step()
    G = regression_grads(W0, b0, X, Y)[0]

    def root(S):
        w, Q = np.linalg.eigh(S)
        return Q @ np.diag(w ** -0.25) @ Q.T

    expected = W0 - 0.1 * root(1e-4 * np.eye(5) + G @ G.T) @ G @ root(1e-4 * np.eye(4) + G.T @ G)
    np.testing.assert_allclose(W.get_value(), expected, rtol=1e-10)


# --------------------------------------------------------------------------------------
# K-FAC
# --------------------------------------------------------------------------------------

SIZES = (4, 6, 3)


def network_start(seed=2):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(SIZES[0], SIZES[1])) * 0.5, rng.normal(size=SIZES[1]) * 0.1),
            (rng.normal(size=(SIZES[1], SIZES[2])) * 0.5, None)]  # the output: no bias


def classification_batches(steps=STEPS, seed=3, batch=20):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        X = rng.normal(size=(batch, SIZES[0]))
        yield X, (X[:, 0] + X[:, 1] ** 2 > 1).astype(np.int64) + (X[:, 2] > 0.5)


def numpy_network(layers, X, labels):
    """Inputs, per-example output gradients and loss gradients of each layer, in NumPy."""
    (W1, b1), (W2, _) = layers
    h = np.tanh(X @ W1 + b1)
    z = h @ W2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(X)
    g2 = p - np.eye(SIZES[2])[labels]  # each example's d(-log p)/dz
    g1 = (g2 @ W2.T) * (1 - h**2)
    grads = [(X.T @ g1 / n, g1.mean(0)), (h.T @ g2 / n, None)]
    return [X, h], [g1, g2], grads


def symbolic_network(layers, dtype="float64"):
    (W1v, b1v), (W2v, _) = layers
    W1 = pytensor.shared(W1v.astype(dtype), name="W1")
    b1 = pytensor.shared(b1v.astype(dtype), name="b1")
    W2 = pytensor.shared(W2v.astype(dtype), name="W2")
    x, y = pt.matrix("x", dtype=dtype), pt.lvector("y")
    s1 = x @ W1 + b1
    h = pt.tanh(s1)
    s2 = h @ W2
    loss = -pt.special.log_softmax(s2, axis=-1)[pt.arange(x.shape[0]), y].mean()
    return loss, s2, [DenseLayer(W1, b1, x, s1), DenseLayer(W2, None, h, s2)], [x, y]


@pytest.mark.parametrize("kwargs", [
    {"learning_rate": 0.2, "update_every": 3, "kl_clip": None},
    {"learning_rate": 0.5, "momentum": 0.5, "damping": 0.1, "decay": 0.8, "update_every": 2,
     "kl_clip": 1e-2},
], ids=["no-clip", "kl-clip"])
def test_kfac_follows_its_transcription(kwargs):
    start_layers = network_start()
    loss, _, layers, inputs = symbolic_network(start_layers)
    step = pytensor.function(inputs, [], updates=kfac(loss, layers, **kwargs))
    ref = reference.KFAC(start_layers, **kwargs)
    expected = start_layers
    clipped = 0
    for k, (X, labels) in enumerate(classification_batches(), 1):
        step(X, labels)
        acts, out_grads, grads = numpy_network(expected, X, labels)
        expected = ref.step(expected, acts, out_grads, grads)
        got = [layers[0].W.get_value(), layers[0].b.get_value(), layers[1].W.get_value()]
        want = [expected[0][0], expected[0][1], expected[1][0]]
        for g, w, what in zip(got, want, ["W1", "b1", "W2"]):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12, err_msg=f"{what}, step {k}")
        if kwargs["kl_clip"] is not None:
            deltas = [a @ b @ c for a, b, c in zip(
                ref.A_inv, [np.vstack([grads[0][0], grads[0][1]]), grads[1][0]], ref.G_inv)]
            total = sum((d * f).sum() for d, f in zip(
                deltas, [np.vstack([grads[0][0], grads[0][1]]), grads[1][0]]))
            clipped += kwargs["kl_clip"] / (kwargs["learning_rate"] ** 2 * total) < 1
    assert np.abs(got[0] - start_layers[0][0]).max() > 0.05
    if kwargs["kl_clip"] is not None:
        assert clipped > 0, "the KL clipping never acted"


def test_kfac_sampled_fisher_statistics():
    """With targets drawn from the model, the output factor estimates the Fisher's:
    E[g g^T] = mean over examples of diag(p) - p p^T for a softmax."""
    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.normal(size=(3, 4)), name="W")
    X = rng.normal(size=(20000, 3))
    x = pt.dmatrix("x")
    s = x @ W
    loss = -pt.special.log_softmax(s, axis=-1)[:, 0].mean()  # targets do not matter here
    updates = kfac(loss, [DenseLayer(W, None, x, s)], learning_rate=0.0, fisher="categorical",
                   outputs=s, seed=5)
    pytensor.function([x], [], updates=updates)(X)
    G = symopt.get_state(updates)["W.output_factor"].get_value()
    z = X @ W.get_value()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.diag(p.mean(0)) - p.T @ p / len(p)
    np.testing.assert_allclose(G, expected, atol=6e-3)  # 20000 draws: errors ~ 1/sqrt(n)
    empirical = kfac(loss, [DenseLayer(W, None, x, s)], learning_rate=0.0)
    pytensor.function([x], [], updates=empirical)(X)
    G_empirical = symopt.get_state(empirical)["W.output_factor"].get_value()
    assert np.abs(G_empirical - expected).max() > 0.05  # the observed targets' is another


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("fisher", ["empirical", "categorical"])
def test_kfac_converges(dtype, fisher):
    loss, s2, layers, inputs = symbolic_network(network_start(), dtype)
    updates = kfac(loss, layers, learning_rate=0.1, update_every=5, fisher=fisher,
                   outputs=s2, seed=0)
    for var, expr in updates:
        assert var.type == expr.type, var.name
    step = pytensor.function(inputs, loss, updates=updates, mode="NUMBA")
    X, labels = next(classification_batches(1, seed=9, batch=200))
    losses = [float(step(X.astype(dtype), labels)) for _ in range(300)]
    assert losses[-1] < 0.15 * losses[0], (losses[0], losses[-1])
    assert layers[0].W.get_value().dtype == dtype


def test_kfac_state_saved_and_loaded_bit_for_bit(tmp_path):
    def build():
        loss, s2, layers, inputs = symbolic_network(network_start())
        updates = kfac(loss, layers, learning_rate=0.1, update_every=3, fisher="categorical",
                       outputs=s2, seed=4)
        return layers, updates, pytensor.function(inputs, [], updates=updates)

    batches = list(classification_batches(20))
    layers, updates, step = build()
    assert list(symopt.get_state(updates)) == [
        "W1.input_factor", "W1.output_factor", "W1.input_factor_inverse",
        "W1.output_factor_inverse", "W2.input_factor", "W2.output_factor",
        "W2.input_factor_inverse", "W2.output_factor_inverse", "W1.velocity", "b1.velocity",
        "W2.velocity", "kfac.rng", "kfac.t"]
    for X, labels in batches[:10]:
        step(X, labels)
    symopt.save_state(updates, tmp_path / "kfac.npz")
    for X, labels in batches[10:]:
        step(X, labels)
    fresh_layers, fresh_updates, fresh_step = build()
    symopt.load_state(fresh_updates, tmp_path / "kfac.npz")
    for X, labels in batches[10:]:
        fresh_step(X, labels)
    for a, b in zip(layers, fresh_layers):
        np.testing.assert_array_equal(a.W.get_value(), b.W.get_value())


def test_kfac_errors():
    loss, s2, layers, _ = symbolic_network(network_start())
    with pytest.raises(TypeError, match="layers must be a non-empty list of DenseLayer"):
        kfac(loss, [])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a DenseLayer"):
        kfac(loss, [(layers[0].W, layers[0].b)])
    with pytest.raises(ValueError, match=r"the loss does not depend on layers\[0\]"):
        x = pt.dmatrix("other")
        kfac(loss, [DenseLayer(layers[0].W, None, x, x @ layers[0].W)])
    with pytest.raises(ValueError, match=r"layers\[0\].preactivations do not depend on its W"):
        kfac(loss, [DenseLayer(layers[1].W, None, layers[0].inputs, layers[0].preactivations)])
    with pytest.raises(ValueError, match="fisher='categorical' draws targets from the model"):
        kfac(loss, layers, fisher="categorical")
    with pytest.raises(ValueError, match="fisher must be one of"):
        kfac(loss, layers, fisher="true")
    with pytest.raises(ValueError, match="update_every must be a positive integer"):
        kfac(loss, layers, update_every=0)
    with pytest.raises(ValueError, match="damping must be > 0"):
        kfac(loss, layers, damping=0.0)
    with pytest.raises(TypeError, match="needs the loss itself"):
        kfac(pytensor.grad(loss, [layers[0].W]), layers)
