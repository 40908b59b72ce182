"""symopt.schedules: values step by step, plateau reductions, use inside a compiled step."""

import math

import numpy as np
import pytensor
import pytest

import symopt
from symopt import schedules


def run(schedule, n, metrics=None):
    metrics = [None] * n if metrics is None else metrics
    return [schedule.step(m) for m in metrics]


def test_step_decay_by_hand():
    s = schedules.StepDecay(0.8, factor=0.5, every=3)
    assert s.value == 0.8 and s.t == 0
    assert run(s, 7) == [0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]
    assert s.t == 7 and float(s.variable.get_value()) == 0.2


def test_step_decay_floor():
    s = schedules.StepDecay(1.0, factor=0.1, every=1, minimum=0.005)
    assert run(s, 4) == [0.1, pytest.approx(0.01), 0.005, 0.005]


def test_exponential_decay_by_hand():
    s = schedules.ExponentialDecay(0.1, rate=0.5, every=2)
    assert run(s, 4) == pytest.approx([0.1 * 0.5 ** 0.5, 0.05, 0.1 * 0.5 ** 1.5, 0.025],
                                      rel=1e-15)
    stairs = schedules.ExponentialDecay(0.1, rate=0.5, every=2, staircase=True)
    assert run(stairs, 5) == [0.1, 0.05, 0.05, 0.025, 0.025]


def test_exponential_decay_is_the_course_notes():
    s = schedules.ExponentialDecay(0.2, rate=0.95)
    for epoch in range(1, 6):
        assert s.step() == pytest.approx(0.95 ** epoch * 0.2, rel=1e-15)


def test_inverse_time_decay_by_hand():
    s = schedules.InverseTimeDecay(0.2, rate=0.5)
    assert run(s, 4) == pytest.approx([0.2 / 1.5, 0.1, 0.08, 0.2 / 3.0], rel=1e-15)
    stairs = schedules.InverseTimeDecay(1.0, rate=1.0, every=2, staircase=True)
    assert run(stairs, 4) == [1.0, 0.5, 0.5, 1.0 / 3.0]


def test_constant():
    s = schedules.Constant(0.3)
    assert run(s, 3) == [0.3, 0.3, 0.3] and s.t == 3


def test_value_at_is_pure():
    s = schedules.StepDecay(1.0, factor=0.5, every=2)
    assert [s.value_at(t) for t in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert s.t == 0 and s.value == 1.0


def test_reset():
    s = schedules.StepDecay(1.0, factor=0.5, every=1)
    run(s, 3)
    s.reset()
    assert s.t == 0 and s.value == 1.0 and float(s.variable.get_value()) == 1.0


def test_reduce_on_plateau_reduces_after_patience_epochs():
    s = schedules.ReduceOnPlateau(0.1, factor=0.5, patience=3, min_delta=0.0)
    losses = [1.0, 0.8, 0.7, 0.75, 0.72, 0.70, 0.65, 0.66, 0.66, 0.66, 0.66]
    values = run(s, len(losses), losses)
    # Epochs 4, 5, 6 do not beat 0.7 (0.70 only equals it): reduced after epoch 6;
    # 0.65 at epoch 7 improves; epochs 8, 9, 10 do not: reduced after epoch 10.
    assert s.reductions == [6, 10]
    assert values == [0.1] * 5 + [0.05] * 4 + [0.025] * 2
    assert s.best == 0.65 and float(s.variable.get_value()) == 0.025


def test_reduce_on_plateau_min_delta():
    s = schedules.ReduceOnPlateau(1.0, factor=0.1, patience=2, min_delta=0.05)
    run(s, 4, [1.0, 0.97, 0.96, 0.5])  # 0.97 and 0.96 are not 0.05 better than 1.0
    assert s.reductions == [3] and s.best == 0.5


def test_reduce_on_plateau_floor_and_max_mode():
    s = schedules.ReduceOnPlateau(1.0, factor=0.1, patience=1, minimum=0.05, mode="max",
                                  min_delta=0.0)
    values = run(s, 5, [0.5, 0.4, 0.6, 0.6, 0.3])
    assert values == [1.0, pytest.approx(0.1), pytest.approx(0.1), 0.05, 0.05]
    assert s.reductions == [2, 4]  # at epoch 5 the floor leaves nothing to reduce


def test_reduce_on_plateau_cooldown():
    s = schedules.ReduceOnPlateau(1.0, factor=0.5, patience=1, cooldown=2, min_delta=0.0)
    run(s, 6, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert s.reductions == [2, 5]


def test_reduce_on_plateau_nan_is_no_improvement():
    s = schedules.ReduceOnPlateau(1.0, factor=0.5, patience=2, min_delta=0.0)
    run(s, 3, [1.0, math.nan, math.nan])
    assert s.reductions == [3] and s.best == 1.0


def test_reduce_on_plateau_needs_a_metric():
    with pytest.raises(ValueError, match="needs the monitored metric"):
        schedules.ReduceOnPlateau(0.1).step()


def test_reduce_on_plateau_reset():
    s = schedules.ReduceOnPlateau(1.0, factor=0.5, patience=1, min_delta=0.0)
    run(s, 3, [1.0, 2.0, 3.0])
    s.reset()
    assert s.value == 1.0 and s.reductions == [] and s.best == math.inf and s.wait == 0


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.StepDecay(0.0), "initial must be finite and > 0"),
    (lambda: schedules.StepDecay(1.0, factor=1.5), r"factor must be in \(0, 1\]"),
    (lambda: schedules.StepDecay(1.0, every=0), "every must be a positive integer"),
    (lambda: schedules.ExponentialDecay(1.0, rate=2.0), r"rate must be in \(0, 1\]"),
    (lambda: schedules.InverseTimeDecay(1.0, rate=-1.0), "rate must be finite and >= 0"),
    (lambda: schedules.ReduceOnPlateau(1.0, factor=1.0), r"factor must be in \(0, 1\)"),
    (lambda: schedules.ReduceOnPlateau(1.0, mode="up"), "mode must be 'min' or 'max'"),
    (lambda: schedules.StepDecay(1.0, minimum=2.0), "minimum .* is above the initial value"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_variable_drives_a_compiled_rule_without_recompiling():
    w = pytensor.shared(np.array([1.0]), name="w")
    lr = schedules.InverseTimeDecay(0.5, rate=1.0)
    step = pytensor.function([], [], updates=symopt.sgd((w ** 2).sum(), [w], lr.variable))
    expected = 1.0
    for _ in range(4):
        rate = lr.value
        step()
        expected *= 1 - 2 * rate  # w <- w - rate * 2w
        lr.step()
    np.testing.assert_allclose(w.get_value(), [expected], rtol=1e-15)
    assert expected == pytest.approx((1 - 1.0) * (1 - 0.5) * (1 - 1 / 3) * (1 - 0.25))


def test_variable_dtype_and_name():
    s = schedules.StepDecay(0.1, dtype="float32", name="lr")
    assert s.variable.dtype == "float32" and s.variable.name == "lr"
    s.step()
    assert s.value == 0.1 and s.variable.get_value() == np.float32(0.1)


# -- callbacks for fit loops (PyMC's pm.fit calls callback(approx, losses, i)) ----------


def _drive(callback, losses):
    """Call ``callback`` as pm.fit does after each iteration; the iteration it stopped at."""
    seen = []
    for i, loss in enumerate(losses, start=1):
        seen.append(loss)
        try:
            callback(None, np.array(seen), i)
        except StopIteration:
            return i
    return None


def test_step_every_passes_the_window_mean_to_the_schedule():
    lr = schedules.ReduceOnPlateau(1.0, factor=0.5, patience=1, min_delta=0.0)
    callback = schedules.StepEvery(lr, every=2)
    assert _drive(callback, [4.0, 2.0, 3.0, 3.0, 1.0, np.nan, 2.0]) is None
    # windows (4, 2), (3, 3), (1, nan): means 3, 3 (flat: halve), 1 (NaN left out)
    assert callback.history == [(2, 3.0, 1.0), (4, 3.0, 0.5), (6, 1.0, 0.5)]
    assert float(lr.variable.get_value()) == 0.5


def test_step_every_counts_windows_for_time_schedules():
    lr = schedules.StepDecay(0.1, factor=0.1, every=2)
    _drive(schedules.StepEvery(lr, every=10), np.ones(45))
    assert lr.t == 4 and lr.value == pytest.approx(1e-3)


def test_stop_on_plateau_stops_after_patience_flat_windows():
    stop = schedules.StopOnPlateau(every=3, patience=2, min_delta=0.5)
    losses = [9, 9, 9, 5, 5, 5, 4.8, 4.8, 4.8, 4.4, 4.4, 4.4, 1, 1, 1]
    # windows: 9, 5 (better), 4.8 (not better by 0.5: one), 4.4 (better by 0.6: reset), 1
    assert _drive(stop, losses) is None
    assert [m for _, m in stop.history] == [9, 5, 4.8, 4.4, 1]
    stop = schedules.StopOnPlateau(every=3, patience=2, min_delta=0.5)
    assert _drive(stop, [9, 9, 9, 5, 5, 5, 4.8, 4.8, 4.8, 4.6, 4.6, 4.6, 1, 1, 1]) == 12
    assert stop.stopped_at == 12 and stop.best == 5


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.StepEvery(0.1), "must be a symopt.schedules.Schedule"),
    (lambda: schedules.StepEvery(schedules.Constant(0.1), every=0), "every must be"),
    (lambda: schedules.StopOnPlateau(patience=0), "patience must be"),
    (lambda: schedules.StopOnPlateau(min_delta=-1), "min_delta must be"),
])
def test_callbacks_refuse_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "complex128"])
def test_a_learning_rate_must_be_a_float(dtype):
    """StepDecay(dtype="int64") held a learning rate of 0 (0.1 truncated)."""
    with pytest.raises(ValueError, match=rf"dtype must be a floating-point dtype \(a learning "
                                         rf"rate is a fraction\), got {dtype}"):
        schedules.StepDecay(0.1, dtype=dtype)
    with pytest.raises(ValueError, match="floating-point dtype"):
        schedules.ReduceOnPlateau(0.1, dtype=dtype)
