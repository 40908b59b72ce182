"""symopt.lab.training: minibatches, early stopping, compiled steps, the loop, a real MLP run."""

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt import schedules
from symopt.lab import data, nn, training

# -- minibatches ------------------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (5, 10), (7, 1)])
def test_every_example_once_per_epoch(n, batch_size):
    batches = training.minibatch_indices(n, batch_size, seed=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert len(batches) == math.ceil(n / batch_size)


def test_drop_last():
    batches = training.minibatch_indices(10, 3, seed=0, drop_last=True)
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(np.concatenate(batches).tolist())) == 9


def test_same_seed_same_order_and_a_generator_gives_new_orders():
    first = training.minibatch_indices(50, 8, seed=5)
    again = training.minibatch_indices(50, 8, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], training.minibatch_indices(50, 8, seed=6)[0])
    rng = np.random.default_rng(5)
    epoch1 = np.concatenate(training.minibatch_indices(50, 8, seed=rng))
    epoch2 = np.concatenate(training.minibatch_indices(50, 8, seed=rng))
    assert not np.array_equal(epoch1, epoch2)
    rng = np.random.default_rng(5)  # the same sequence of epochs again
    np.testing.assert_array_equal(np.concatenate(training.minibatch_indices(50, 8, seed=rng)),
                                  epoch1)


def test_unshuffled_order():
    assert [b.tolist() for b in training.minibatch_indices(5, 2, shuffle=False)] == \
        [[0, 1], [2, 3], [4]]


def test_minibatches_keep_arrays_aligned():
    x = np.arange(30).reshape(10, 3)
    y = np.arange(10) * 3
    seen = []
    for xb, yb in training.minibatches(x, y, batch_size=4, seed=1):
        np.testing.assert_array_equal(xb[:, 0], yb)
        seen += yb.tolist()
    assert sorted(seen) == y.tolist()
    with pytest.raises(ValueError, match="array 1 has 9 examples"):
        list(training.minibatches(x, y[:9], batch_size=4))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        training.minibatch_indices(10, 0)


# -- early stopping ---------------------------------------------------------------------


def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best():
    w = pytensor.shared(np.zeros(2), name="w")
    stopper = training.EarlyStopping(patience=3, params=[w])
    losses = [0.9, 0.7, 0.5, 0.55, 0.5, 0.6, 0.4]
    decisions = []
    for epoch, loss in enumerate(losses, start=1):
        w.set_value(np.full(2, float(epoch)))
        decisions.append(stopper.step(loss))
    assert decisions == [False, False, False, False, False, True, True]
    assert stopper.stopped_epoch == 6 and stopper.best_epoch == 3 and stopper.best == 0.5
    assert stopper.restore()
    np.testing.assert_array_equal(w.get_value(), [3.0, 3.0])


def test_early_stopping_max_mode_and_min_delta():
    stopper = training.EarlyStopping("valid_accuracy", patience=2, mode="max", min_delta=0.01)
    assert [stopper.step(v) for v in [0.80, 0.85, 0.855, 0.859]] == [False, False, False, True]
    assert stopper.best_epoch == 2 and stopper.should_stop


def test_early_stopping_without_params_restores_nothing():
    stopper = training.EarlyStopping(patience=1)
    stopper.step(1.0)
    assert stopper.restore() is False


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "lowest"}, "mode must be"), ({"patience": 0}, "patience must be"),
    ({"min_delta": -1.0}, "min_delta must be"),
])
def test_early_stopping_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.EarlyStopping(**kwargs)


# -- the loop with scripted steps (no compilation) --------------------------------------


class ScriptedStep:
    """A fake training step whose loss follows a script, one value per epoch."""

    def __init__(self, epoch_losses, n_batches, param=None):
        self.losses = list(epoch_losses)
        self.n_batches = n_batches
        self.calls = 0
        self.batches = []
        self.params = [] if param is None else [param]
        self.param = param

    def __call__(self, x, y):
        epoch = self.calls // self.n_batches
        self.calls += 1
        self.batches.append(y.copy())
        if self.param is not None:
            self.param.set_value(np.full(1, float(epoch + 1)))
        return {"loss": self.losses[epoch], "accuracy": 0.5}


def scripted_evaluate(values):
    it = iter(values)
    return lambda x, y: {"loss": next(it)}


X, Y = np.zeros((10, 2)), np.arange(10)


def test_train_records_epochs_and_steps():
    step = ScriptedStep([3.0, 2.0, 1.0], n_batches=3)
    history = training.train(step, (X, Y), epochs=3, batch_size=4, progress=False, seed=0)
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["train_loss"].tolist() == [3.0, 2.0, 1.0]
    assert history["train_accuracy"].tolist() == [0.5] * 3
    assert len(history.steps) == 9 and history.steps[-1]["step"] == 9
    assert history.meta["stopped"] is None and history.meta["last_epoch"] == 3
    for epoch in range(3):  # each epoch visits every example once, in a new order
        assert sorted(np.concatenate(step.batches[3 * epoch:3 * epoch + 3]).tolist()) == \
            list(range(10))
    assert not np.array_equal(np.concatenate(step.batches[:3]), np.concatenate(step.batches[3:6]))


def test_train_weights_epoch_means_by_batch_size():
    class Step:
        def __call__(self, x, y):
            return {"loss": float(len(y))}  # batches of 4, 4, 2
    history = training.train(Step(), (X, Y), epochs=1, batch_size=4, progress=False)
    assert history["train_loss"][0] == pytest.approx((4 * 4 + 4 * 4 + 2 * 2) / 10)


def test_train_is_reproducible_from_its_seed():
    a, b = ScriptedStep([1.0] * 2, 3), ScriptedStep([1.0] * 2, 3)
    training.train(a, (X, Y), epochs=2, batch_size=4, progress=False, seed=7)
    training.train(b, (X, Y), epochs=2, batch_size=4, progress=False, seed=7)
    assert all(np.array_equal(p, q) for p, q in zip(a.batches, b.batches))


def test_train_early_stopping_restores_best_epoch():
    w = pytensor.shared(np.zeros(1), name="w")
    step = ScriptedStep([1.0] * 10, n_batches=3, param=w)
    stopper = training.EarlyStopping("valid_loss", patience=2)
    history = training.train(step, (X, Y), epochs=10, batch_size=4, progress=False,
                             evaluate=scripted_evaluate([0.9, 0.6, 0.7, 0.65, 0.1]),
                             eval_data={"valid": (X, Y)}, early_stopping=stopper)
    assert history["valid_loss"].tolist() == [0.9, 0.6, 0.7, 0.65]
    assert history.meta["last_epoch"] == 4 and history.meta["best_epoch"] == 2
    assert "early stopping" in history.meta["stopped"]
    np.testing.assert_array_equal(w.get_value(), [2.0])  # the parameters after epoch 2


def test_train_reduce_on_plateau_on_the_training_loss():
    lr = schedules.ReduceOnPlateau(0.1, factor=0.5, patience=2, min_delta=0.0)
    step = ScriptedStep([1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.75], n_batches=3)
    history = training.train(step, (X, Y), epochs=7, batch_size=4, schedule=lr, progress=False)
    # No improvement in epochs 3 and 4: the rate halves for epoch 5; again after 6 and 7.
    assert history["learning_rate"].tolist() == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05]
    assert lr.reductions == [4, 7] and lr.value == 0.025


def test_train_time_schedule_per_epoch_and_per_step():
    lr = schedules.StepDecay(1.0, factor=0.5, every=1)
    history = training.train(ScriptedStep([1.0] * 3, 3), (X, Y), epochs=3, batch_size=4,
                             schedule=lr, progress=False)
    assert history["learning_rate"].tolist() == [1.0, 0.5, 0.25]
    per_step = schedules.StepDecay(1.0, factor=0.5, every=3)
    history = training.train(ScriptedStep([1.0] * 2, 3), (X, Y), epochs=2, batch_size=4,
                             schedule=per_step, schedule_unit="step", progress=False)
    assert history.column("learning_rate", "steps").tolist() == [1.0] * 3 + [0.5] * 3
    with pytest.raises(ValueError, match="steps per epoch"):
        training.train(ScriptedStep([1.0], 3), (X, Y), epochs=1, schedule_unit="step",
                       schedule=schedules.ReduceOnPlateau(0.1))


def test_train_stops_at_a_nonfinite_loss():
    step = ScriptedStep([1.0, math.nan, 1.0], n_batches=3)
    history = training.train(step, (X, Y), epochs=3, batch_size=4, progress=False)
    assert step.calls == 4 and history.meta["stopped"] == "non-finite loss at epoch 2, step 4"
    assert len(history.epochs) == 2 and math.isnan(history["train_loss"][1])


def test_train_callback_record_steps_and_continuing_a_history():
    seen = []
    history = training.train(ScriptedStep([1.0] * 5, 3), (X, Y), epochs=5, batch_size=4,
                             record_steps=2, progress=False,
                             callback=lambda epoch, record: seen.append(epoch) or epoch == 2)
    assert seen == [1, 2] and "callback" in history.meta["stopped"]
    assert [s["step"] for s in history.steps] == [2, 4, 6]
    training.train(ScriptedStep([1.0] * 2, 3), (X, Y), epochs=2, batch_size=4, progress=False,
                   history=history)
    assert history["epoch"].tolist() == [1, 2, 3, 4] and history.steps[-1]["step"] == 12


def test_train_argument_checks():
    with pytest.raises(ValueError, match="eval_data was given without an evaluate"):
        training.train(ScriptedStep([1.0], 3), (X, Y), epochs=1, eval_data={"valid": (X, Y)})
    stopper = training.EarlyStopping("valid_accuracy")
    with pytest.raises(KeyError, match="no 'valid_accuracy'"):
        training.train(ScriptedStep([1.0], 3), (X, Y), epochs=1, batch_size=4,
                       early_stopping=stopper, progress=False)


# -- compiled steps ---------------------------------------------------------------------


def test_compile_train_step_with_a_rule_and_monitors():
    w = pytensor.shared(np.array([3.0, 4.0]), name="w")
    x = pt.vector("x")
    loss = ((w - x) ** 2).sum()
    lr = schedules.StepDecay(0.1, factor=0.5, every=1)
    step = training.compile_train_step([x], loss, [w], symopt.sgd(learning_rate=lr.variable),
                                       metrics={"distance": pt.sqrt(loss)}, per_param=True)
    assert step.names[:2] == ("loss", "distance")
    out = step(np.zeros(2))
    assert out["loss"] == 25.0 and out["distance"] == 5.0 and out["param_norm"] == 5.0
    assert out["grad_norm"] == 10.0 and out["update_norm"] == pytest.approx(1.0)
    assert out["nonfinite"] == 0 and out["w.grad_norm"] == 10.0
    np.testing.assert_allclose(w.get_value(), [2.4, 3.2])
    lr.step()  # halve the rate: the compiled step follows without recompiling
    assert step(np.zeros(2))["update_norm"] == pytest.approx(0.4)


def test_compile_train_step_with_updates_and_checks():
    w = pytensor.shared(np.array([1.0]), name="w")
    loss = (w ** 2).sum()
    step = training.compile_train_step([], loss, [w], updates=symopt.sgd(loss, [w], 0.25),
                                       monitor=False)
    assert step() == {"loss": 1.0} and w.get_value()[0] == 0.5
    with pytest.raises(ValueError, match="exactly one of rule"):
        training.compile_train_step([], loss, [w])
    with pytest.raises(ValueError, match="metric name 'loss' is taken"):
        training.compile_train_step([], loss, [w], symopt.sgd, metrics={"loss": loss})


def test_compile_train_step_refuses_frozen_dropout_masks():
    """Without net.extra_updates the dropout layer's generator never moved: every step
    drew the same mask, and nothing said so."""
    net = nn.MLP([4, 8, 3], dropout=0.5, seed=0)
    x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
    out = net.output(x, training=True)
    loss = nn.categorical_crossentropy_from_log_probs(out, y)
    with pytest.raises(ValueError, match=r"draws random numbers from 'hidden.dropout.rng' but "
                                         r"no update advances it.*pass "
                                         r"extra_updates=net.extra_updates"):
        training.compile_train_step([x, y], loss, net.params, symopt.sgd(learning_rate=0.1),
                                    monitor=False)
    step = training.compile_train_step([x, y], loss, net.params, symopt.sgd(learning_rate=0.1),
                                       monitor=False, extra_updates=net.extra_updates)
    rng = net.layer("hidden.dropout").rng
    before = rng.get_value().bit_generator.state
    step(np.ones((2, 4), dtype="float32"), np.array([0, 1]))
    assert rng.get_value().bit_generator.state != before


def test_evaluator_batches_give_the_full_mean():
    x = pt.vector("x")
    evaluate = training.compile_evaluator([x], {"mean": x.mean(), "square": (x ** 2).mean()})
    values = np.arange(10.0)
    whole = evaluate(values)
    assert whole == {"mean": 4.5, "square": 28.5}
    assert evaluate(values, batch_size=3) == pytest.approx(whole)
    with pytest.raises(ValueError, match="at least one metric"):
        training.compile_evaluator([x], {})


# -- the whole toolkit on the embedded Fashion-MNIST ------------------------------------


@pytest.fixture(scope="module")
def fashion():
    d = data.load_embedded_subset()
    x_tr, y_tr, x_va, y_va = data.train_valid_split(d.train_x, d.train_y, 1000, seed=0)
    x_tr, x_va, x_te = data.standardize(x_tr, x_va, d.test_x)
    return x_tr, y_tr, x_va, y_va, x_te, d.test_y


def build(net):
    x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
    train_out, test_out = net.output(x, training=True), net.output(x, training=False)
    evaluate = training.compile_evaluator(
        [x, y], {"loss": nn.categorical_crossentropy_from_log_probs(test_out, y),
                 "accuracy": nn.accuracy(test_out, y)})
    return x, y, train_out, evaluate


def test_mlp_learns_fashion_mnist_with_sgd(fashion, tmp_path):
    x_tr, y_tr, x_va, y_va, x_te, y_te = fashion
    net = nn.MLP([784, 32, 10], seed=0)
    x, y, out, evaluate = build(net)
    lr = schedules.ExponentialDecay(0.05, rate=0.8)
    step = training.compile_train_step(
        [x, y], nn.categorical_crossentropy_from_log_probs(out, y), net.params,
        symopt.sgd(learning_rate=lr.variable), metrics={"accuracy": nn.accuracy(out, y)},
        extra_updates=net.extra_updates)
    before = evaluate(x_te, y_te)["accuracy"]
    history = training.train(step, (x_tr, y_tr), epochs=3, batch_size=50, evaluate=evaluate,
                             eval_data={"valid": (x_va, y_va)}, schedule=lr, progress=False,
                             record_steps=10)
    test = evaluate(x_te, y_te)
    assert before < 0.3 and test["accuracy"] > 0.72  # 10 classes: chance is 0.1
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["valid_accuracy"][-1] > 0.72
    assert history["learning_rate"].tolist() == pytest.approx([0.05, 0.04, 0.032])
    steps = history.column("grad_norm", "steps")
    assert len(steps) == 24 and np.all(np.isfinite(steps)) and np.all(steps > 0)
    assert history["train_nonfinite"].sum() == 0
    history.to_json(tmp_path / "h.json")
    assert training.History.from_json(tmp_path / "h.json") == history


def test_mlp_with_dropout_batchnorm_and_early_stopping(fashion):
    x_tr, y_tr, x_va, y_va, _, _ = fashion
    net = nn.MLP([784, 32, 10], dropout=0.2, batch_norm=True, seed=1)
    x, y, out, evaluate = build(net)
    step = training.compile_train_step(
        [x, y], nn.categorical_crossentropy_from_log_probs(out, y), net.params,
        symopt.momentum(learning_rate=0.02, momentum=0.9), extra_updates=net.extra_updates)
    stopper = training.EarlyStopping("valid_accuracy", mode="max", patience=1,
                                     params=net.variables)
    history = training.train(step, (x_tr, y_tr), epochs=4, batch_size=50, evaluate=evaluate,
                             eval_data={"valid": (x_va, y_va)}, early_stopping=stopper,
                             progress=False, record_steps=False)
    best = stopper.best_epoch
    assert history["valid_accuracy"].max() == pytest.approx(history["valid_accuracy"][best - 1])
    # The restored parameters and running statistics reproduce the best epoch's accuracy.
    assert evaluate(x_va, y_va)["accuracy"] == pytest.approx(stopper.best, abs=1e-6)
    assert stopper.best > 0.72


def test_warm_up_runs_the_step_once_and_leaves_every_value_as_it_was():
    """The first call (where Numba compiles) counts as compile time, and training then
    starts from exactly the values it would have started from without the warm-up."""
    rng = np.random.default_rng(3)
    x_all = rng.normal(size=(20, 3))
    y_all = rng.normal(size=20)

    def build():
        w = pytensor.shared(np.zeros(3), name="w")
        x, y = pt.matrix("x"), pt.vector("y")
        loss = ((x @ w - y) ** 2).mean()
        return training.compile_train_step([x, y], loss, [w], symopt.adam(learning_rate=0.1))

    warmed, cold = build(), build()
    shared = warmed.function.get_shared()
    before = [np.array(v.get_value()) for v in shared]
    assert {v.name for v in shared} >= {"w", "w.m", "w.v", "adam.t"}
    seconds = warmed.warm_up(x_all[:5], y_all[:5])
    assert seconds >= 0.0
    for variable, value in zip(shared, before, strict=True):
        np.testing.assert_array_equal(variable.get_value(), value, err_msg=variable.name)
    for _ in range(3):
        assert warmed(x_all[:5], y_all[:5]) == cold(x_all[:5], y_all[:5])
    np.testing.assert_array_equal(warmed.params[0].get_value(), cold.params[0].get_value())
    assert not np.all(warmed.params[0].get_value() == 0.0)  # the steps did move w
