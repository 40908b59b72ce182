"""symopt.lab.diagnostics: monitoring outputs and the numerical gradient check."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab.diagnostics import gradient_check, monitor_outputs


def test_monitor_outputs_by_hand():
    w = pytensor.shared(np.array([3.0, 4.0]), name="w")
    b = pytensor.shared(np.array(0.0), name="b")
    loss = (w ** 2).sum() + 2 * b
    grads = pytensor.grad(loss, [w, b])
    updates = symopt.momentum(grads, [w, b], learning_rate=0.1, momentum=0.9)
    out = monitor_outputs([w, b], grads, updates, per_param=True)
    f = pytensor.function([], list(out.values()), updates=updates)
    values = dict(zip(out, map(float, f())))
    # Before the step: |w| = 5, b = 0; gradients (6, 8) and 2; steps -0.1 * those.
    assert values["param_norm"] == pytest.approx(5.0)
    assert values["grad_norm"] == pytest.approx(np.sqrt(36 + 64 + 4))
    assert values["update_norm"] == pytest.approx(0.1 * np.sqrt(104))
    assert values["nonfinite"] == 0
    assert values["w.grad_norm"] == pytest.approx(10.0) and values["b.norm"] == 0.0
    assert values["b.update_norm"] == pytest.approx(0.2)
    second = dict(zip(out, map(float, f())))  # momentum: the second step is longer
    assert second["update_norm"] > values["update_norm"]


def test_monitor_counts_nonfinite_values():
    w = pytensor.shared(np.array([1.0, 2.0, 3.0]), name="w")
    x = pt.vector("x")
    loss = (w * x).sum()
    grads = pytensor.grad(loss, [w])
    updates = symopt.sgd(grads, [w], 0.1)
    out = monitor_outputs([w], grads, updates)
    assert out["nonfinite"].dtype == "int64"
    f = pytensor.function([x], out["nonfinite"], updates=updates)
    assert int(f(np.ones(3))) == 0
    assert int(f(np.array([np.nan, 1.0, np.inf]))) == 4  # 2 in the gradient, 2 in the update


def test_monitor_needs_updated_params():
    w = pytensor.shared(np.ones(2), name="w")
    with pytest.raises(ValueError, match="none of the parameters has an update"):
        monitor_outputs([w], [w], [])
    with pytest.raises(ValueError, match="got 2 gradients for 1 parameters"):
        monitor_outputs([w], [w, w], [(w, w)])


@pytest.fixture
def logistic():
    """A float64 logistic regression with inputs, its loss and correct gradient."""
    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.normal(size=(4, 3)), name="W")
    b = pytensor.shared(rng.normal(size=3), name="b")
    x, y = pt.matrix("x"), pt.lvector("y")
    log_p = pt.special.log_softmax(x @ W + b, axis=-1)
    loss = -log_p[pt.arange(y.shape[0]), y].mean()
    values = [rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)]
    return W, b, x, y, loss, values


def test_gradient_check_passes_on_the_symbolic_gradient(logistic):
    W, b, x, y, loss, values = logistic
    before = W.get_value()
    result = gradient_check(loss, [W, b], inputs=[x, y], values=values)
    assert result.passed and result.relative_error < 1e-8
    assert set(result.per_param) == {"W", "b"} and len(result.indices["W"]) == 12
    np.testing.assert_array_equal(W.get_value(), before)  # restored
    assert "passed" in str(result)


def test_gradient_check_catches_a_wrong_gradient(logistic):
    W, b, x, y, loss, values = logistic
    # A classic backpropagation slip: forgetting the 1/n of the mean in dL/db.
    n = pt.cast(y.shape[0], "float64")
    gW, gb = pytensor.grad(loss, [W, b])
    result = gradient_check(loss, [W, b], grads=[gW, gb * n], inputs=[x, y], values=values)
    assert not result.passed
    assert result.per_param["W"] < 1e-8 and result.per_param["b"] > 0.5
    assert "FAILED" in str(result) and "worst parameter b" in str(result)


def test_gradient_check_catches_a_sign_error():
    w = pytensor.shared(np.array([0.5, -1.5, 2.0]), name="w")
    loss = pt.sin(w).sum()
    result = gradient_check(loss, [w], grads=[-pt.cos(w)])
    assert not result.passed and result.relative_error == pytest.approx(1.0)


def test_gradient_check_samples_large_parameters():
    w = pytensor.shared(np.linspace(-1, 1, 1000), name="w")
    result = gradient_check((w ** 3).sum(), [w], max_elements=20, seed=1)
    assert result.passed and len(result.indices["w"]) == 20
    np.testing.assert_allclose(result.numerical["w"], 3 * w.get_value()[result.indices["w"]] ** 2,
                               rtol=1e-6, atol=1e-7)


def test_gradient_check_in_float32_uses_looser_defaults():
    w = pytensor.shared(np.array([0.3, -0.7], dtype="float32"), name="w")
    good = gradient_check((w ** 2).sum(), [w])
    assert good.epsilon == 1e-3 and good.tolerance == 1e-2 and good.passed
    assert not gradient_check((w ** 2).sum(), [w], grads=[3 * w]).passed
