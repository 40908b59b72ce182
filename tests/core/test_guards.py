"""``skip_nonfinite``: a step with a NaN or an infinity changes nothing, parameters and
optimizer state alike, and is counted; finite steps pass through unchanged."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt

from .toys import Quadratic, values


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=3)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nonfinite_steps_are_skipped_for_params_and_state(problem):
    """A guarded Adam, fed NaN and inf batches among finite ones, ends exactly where an
    unguarded Adam fed only the finite batches ends; its counter counts the skips."""
    scale = pt.dscalar("scale")  # a 'batch': multiplies the loss, NaN or inf when bad
    guarded_params, plain_params = problem.shared("_guarded"), problem.shared("_plain")
    updates, skips = symopt.skip_nonfinite(
        symopt.adam(scale * problem.loss(guarded_params), guarded_params, 0.05),
        return_counter=True)
    guarded = pytensor.function([scale], [], updates=updates)
    plain_updates = symopt.adam(scale * problem.loss(plain_params), plain_params, 0.05)
    plain = pytensor.function([scale], [], updates=plain_updates)
    state = [var for var in symopt.get_state(updates).values() if var is not skips]
    assert [v.name for v in state] == ["W_guarded.m", "W_guarded.v", "b_guarded.m",
                                       "b_guarded.v", "adam.t"]

    batches = [1.0, 0.5, np.nan, 2.0, np.inf, -np.inf, 1.0]
    for k, batch in enumerate(batches, 1):
        before = [v.get_value() for v in state + guarded_params]
        guarded(batch)
        after = [v.get_value() for v in state + guarded_params]
        if np.isfinite(batch):
            plain(batch)
            assert not np.array_equal(before[-2], after[-2]), f"batch {k} was not applied"
        else:
            for old, new in zip(before, after):
                np.testing.assert_array_equal(old, new, err_msg=f"batch {k} changed something")
        for g, p in zip(values(guarded_params), values(plain_params)):
            np.testing.assert_allclose(g, p, rtol=1e-14, atol=1e-15, err_msg=f"batch {k}")
    assert int(skips.get_value()) == 3
    assert int(state[-1].get_value()) == 4  # adam.t counted the finite steps only
    assert symopt.get_state(updates)["nonfinite.skips"] is skips


def test_one_nonfinite_value_freezes_every_variable():
    """Only W's gradient is NaN; b's update is finite but is skipped too."""
    W = pytensor.shared(np.ones((2, 2)), name="W")
    b = pytensor.shared(np.ones(2), name="b")
    x = pt.dscalar("x")
    loss = x * (W**2).sum() + ((b - 3.0) ** 2).sum()
    step = pytensor.function([x], [], updates=symopt.skip_nonfinite(
        symopt.momentum(loss, [W, b], 0.1)))
    step(np.nan)
    np.testing.assert_array_equal(b.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(W.get_value(), np.ones((2, 2)))
    step(1.0)
    np.testing.assert_allclose(b.get_value(), [1.4, 1.4], rtol=1e-15)
    np.testing.assert_allclose(W.get_value(), np.full((2, 2), 0.8), rtol=1e-15)


def test_custom_counter_and_dict_updates():
    w = pytensor.shared(np.array([1.0]), name="w")
    x = pt.dscalar("x")
    counter = pytensor.shared(np.int32(10), name="bad_batches")
    guarded = symopt.skip_nonfinite(OrderedDict(symopt.sgd((w * x).sum(), [w], 0.1)), counter)
    assert isinstance(guarded, OrderedDict)
    assert list(guarded)[-1] is counter
    step = pytensor.function([x], [], updates=guarded)
    for value in (np.inf, 1.0, np.nan):
        step(value)
    assert counter.get_value() == 12
    np.testing.assert_allclose(w.get_value(), [0.9], rtol=1e-15)


def test_nothing_to_check_is_an_error():
    counter = pytensor.shared(np.int64(0))
    with pytest.raises(ValueError, match="no floating-point update"):
        symopt.skip_nonfinite([(counter, counter + 1)])


@pytest.mark.parametrize("counter, message", [
    (0, r"counter must be a shared variable holding an integer scalar .*got int"),
    (pt.lscalar("n"), r"counter must be a shared variable .*got TensorVariable 'n'"),
    (pytensor.shared(np.float64(0), name="f"), r"counter \(.*'f'\) must hold an integer "
                                               r"scalar.*it holds a 0-d float64 tensor"),
    (pytensor.shared(np.zeros(2, dtype="int64"), name="v"), r"it holds a 1-d int64 tensor"),
])
def test_a_counter_that_cannot_count_is_refused(counter, message):
    """A Python int or a symbolic counter was accepted and failed later, in
    pytensor.function; a float one counts inexactly."""
    w = pytensor.shared(np.array([1.0]), name="w")
    with pytest.raises(TypeError, match=message):
        symopt.skip_nonfinite(symopt.sgd((w**2).sum(), [w], 0.1), counter)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_esgd_behind_the_guard():
    """ESGD keeps a random generator, which has no dtype: the guard raised AttributeError.
    Its tensors are guarded; the generator moves on at a skipped step."""
    w = pytensor.shared(np.array([1.0, -2.0, 0.5]), name="w")
    x = pt.dscalar("x")
    loss = x * ((w**4).sum() + (w**2).sum())
    updates, skips = symopt.skip_nonfinite(symopt.esgd(loss, [w], learning_rate=0.05, seed=3),
                                           return_counter=True)
    step = pytensor.function([x], [], updates=updates, mode="CVM")
    state = symopt.get_state(updates, include_params=True)
    step(1.0)
    before = {k: np.copy(v.get_value()) for k, v in state.items()
              if k not in ("esgd.rng", "nonfinite.skips")}
    step(np.nan)
    assert int(skips.get_value()) == 1
    for key, value in before.items():
        np.testing.assert_array_equal(state[key].get_value(), value, err_msg=key)
    step(1.0)
    assert int(state["esgd.t"].get_value()) == 2
    assert np.all(np.isfinite(w.get_value())) and not np.array_equal(w.get_value(), before["w"])
