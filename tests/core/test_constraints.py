"""Clipping, norm constraints and regularisation penalties, against hand-computed values."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.blocks import scale_by_learning_rate
from symopt.transform import apply, chain

EPS = 1e-7  # the default epsilon of the norm constraints


def evaluate(*outputs):
    """Values of several symbolic outputs, from one compiled function."""
    return pytensor.function([], list(outputs))()


# --------------------------------------------------------------------------------------
# total_norm_constraint and the book's clip_norms
# --------------------------------------------------------------------------------------


def test_total_norm_constraint_rescales_all_tensors_together():
    a, b = pt.constant(np.array([3.0, 0.0])), pt.constant(np.array([[4.0]]))
    (small_a, small_b), norm = symopt.total_norm_constraint([a, b], 1.0, return_norm=True)
    large_a, large_b = symopt.total_norm_constraint([a, b], 10.0)
    got = evaluate(small_a, small_b, norm, large_a, large_b)
    assert got[2] == 5.0  # the norm before rescaling
    np.testing.assert_allclose(got[0], [3.0 / (5 + EPS), 0.0], rtol=1e-15)
    np.testing.assert_allclose(got[1], [[4.0 / (5 + EPS)]], rtol=1e-15)
    # below the threshold the factor is n / (n + eps): Lasagne's, not exactly 1
    np.testing.assert_allclose(got[3], [3.0 * 5 / (5 + EPS), 0.0], rtol=1e-15)
    np.testing.assert_allclose(got[4], [[4.0 * 5 / (5 + EPS)]], rtol=1e-15)
    assert not np.array_equal(got[3], [3.0, 0.0])


def test_total_norm_constraint_keeps_each_dtype_and_takes_a_shared_max_norm():
    a = pt.constant(np.array([3.0], dtype="float32"))
    b = pt.constant(np.array([4.0], dtype="float64"))
    max_norm = pytensor.shared(2.5, name="max_norm")
    scaled = symopt.total_norm_constraint([a, b], max_norm)
    assert [s.dtype for s in scaled] == ["float32", "float64"]
    f = pytensor.function([], scaled)
    np.testing.assert_allclose(f()[1], [4.0 * 2.5 / (5 + EPS)], rtol=1e-15)
    max_norm.set_value(1.0)
    np.testing.assert_allclose(f()[1], [4.0 / (5 + EPS)], rtol=1e-15)


def test_clip_norms_is_the_books_switch():
    g1, g2 = pt.constant(np.array([3.0, 0.0])), pt.constant(np.array([4.0]))
    got = evaluate(*symopt.clip_norms([g1, g2], 1.0), *symopt.clip_norms([g1, g2], 5.0),
                   *symopt.clip_norms([g1, g2], 50))
    np.testing.assert_allclose(got[0], [0.6, 0.0], rtol=1e-15)  # rescaled to norm exactly c
    np.testing.assert_allclose(got[1], [0.8], rtol=1e-15)
    np.testing.assert_array_equal(got[2], [3.0, 0.0])  # norm == c: g * c / n
    np.testing.assert_array_equal(got[3], [4.0])
    np.testing.assert_array_equal(got[4], [3.0, 0.0])  # below c: untouched, exactly
    np.testing.assert_array_equal(got[5], [4.0])


def test_clip_by_value():
    x = pt.constant(np.array([-2.0, -0.05, 0.0, 0.3, 7.0], dtype="float32"))
    [clipped] = symopt.clip_by_value([x], -0.1, 0.2)
    assert clipped.dtype == "float32"
    np.testing.assert_array_equal(evaluate(clipped)[0],
                                  np.array([-0.1, -0.05, 0.0, 0.2, 0.2], dtype="float32"))


# --------------------------------------------------------------------------------------
# norm_constraint (max-norm) and apply_norm_constraint
# --------------------------------------------------------------------------------------


def max_norm_reference(x, max_norm, axes):
    norms = np.sqrt(np.sum(x**2, axis=axes, keepdims=True))
    return x * np.clip(norms, 0, max_norm) / (EPS + norms)


@pytest.fixture(scope="module")
def weights():
    """A 3 x 4 matrix whose columns and rows have norms on both sides of 1."""
    w = np.array([[0.1, 2.0, 0.3, 0.0], [0.2, 0.0, 0.4, 1.5], [0.1, 0.5, 0.2, 0.3]])
    columns, rows = np.linalg.norm(w, axis=0), np.linalg.norm(w, axis=1)
    assert (columns > 1).any() and (columns < 1).any() and (rows > 1).any() and (rows < 1).any()
    return w


def test_norm_constraint_defaults_to_the_columns_of_a_matrix(weights):
    x = pt.constant(weights)
    by_default, by_columns, by_rows = evaluate(symopt.norm_constraint(x, 1.0),
                                               symopt.norm_constraint(x, 1.0, norm_axes=(0,)),
                                               symopt.norm_constraint(x, 1.0, norm_axes=(1,)))
    np.testing.assert_array_equal(by_default, by_columns)
    np.testing.assert_allclose(by_columns, max_norm_reference(weights, 1.0, (0,)), rtol=1e-14)
    np.testing.assert_allclose(by_rows, max_norm_reference(weights, 1.0, (1,)), rtol=1e-14)
    assert np.linalg.norm(by_columns, axis=0).max() <= 1.0
    assert np.linalg.norm(by_rows, axis=1).max() <= 1.0
    # a column under the limit is (almost) unchanged
    np.testing.assert_allclose(by_columns[:, 0], weights[:, 0], rtol=1e-6)


def test_norm_constraint_on_convolution_filters_uses_all_but_the_first_axis():
    rng = np.random.default_rng(0)
    filters = rng.normal(size=(4, 2, 3, 3))
    [got] = evaluate(symopt.norm_constraint(pt.constant(filters), 2.0))
    np.testing.assert_allclose(got, max_norm_reference(filters, 2.0, (1, 2, 3)), rtol=1e-14)


def test_norm_constraint_needs_axes_for_a_vector():
    with pytest.raises(ValueError, match="no default norm_axes.*1 dimensions"):
        symopt.norm_constraint(pt.dvector(), 1.0)
    with pytest.raises(ValueError, match=r"norm_axes \(2,\) do not fit"):
        symopt.norm_constraint(pt.dmatrix(), 1.0, norm_axes=(2,))
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        symopt.norm_constraint(pt.dmatrix(), 0.0)


def test_apply_norm_constraint_constrains_the_updated_weights_only(weights):
    W = pytensor.shared(weights, name="W")
    b = pytensor.shared(np.array([1.0, -1.0, 0.5, 2.0]), name="b")
    x = pt.constant(np.array([[1.0, 2.0, -1.0]]))
    loss = ((pt.dot(x, W) + b - 3.0) ** 2).sum()
    updates = symopt.apply_norm_constraint(symopt.sgd(loss, [W, b], 0.1), [W], 1.0)
    as_dict = symopt.apply_norm_constraint(OrderedDict(symopt.sgd(loss, [W, b], 0.1)), [W], 1.0)
    assert isinstance(as_dict, OrderedDict)
    grad_W, grad_b = [g.eval() for g in pytensor.grad(loss, [W, b])]
    pytensor.function([], [], updates=updates)()
    np.testing.assert_allclose(W.get_value(),
                               max_norm_reference(weights - 0.1 * grad_W, 1.0, (0,)),
                               rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(b.get_value(), [1.0, -1.0, 0.5, 2.0] - 0.1 * grad_b,
                               rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="has no update"):
        symopt.apply_norm_constraint(symopt.sgd(loss, [b], 0.1), [W], 1.0)


# --------------------------------------------------------------------------------------
# The same operations as transforms
# --------------------------------------------------------------------------------------


def test_clip_and_clip_by_global_norm_as_transforms():
    w = pytensor.shared(np.zeros(3), name="w")
    v = pytensor.shared(np.zeros(2), name="v")
    grads = [np.array([0.05, -0.3, 2.0]), np.array([-1.0, 0.0])]
    by_value = apply(chain(symopt.clip(0.1), scale_by_learning_rate(1.0)), grads, [w, v])
    w2 = pytensor.shared(np.zeros(3), name="w2")
    v2 = pytensor.shared(np.zeros(2), name="v2")
    by_norm = apply(chain(symopt.clip_by_global_norm(1.0), scale_by_learning_rate(1.0)),
                    grads, [w2, v2])
    pytensor.function([], [], updates=by_value + by_norm)()
    np.testing.assert_allclose(w.get_value(), [-0.05, 0.1, -0.1], rtol=1e-15)
    np.testing.assert_allclose(v.get_value(), [0.1, 0.0], rtol=1e-15)
    norm = np.sqrt(0.05**2 + 0.3**2 + 2.0**2 + 1.0)
    np.testing.assert_allclose(w2.get_value(), -grads[0] / (norm + EPS), rtol=1e-14)
    np.testing.assert_allclose(v2.get_value(), -grads[1] / (norm + EPS), rtol=1e-14)


# --------------------------------------------------------------------------------------
# Regularisation penalties
# --------------------------------------------------------------------------------------


def test_l1_l2_and_regularize():
    w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    m = pytensor.shared(np.array([[0.5], [-3.0]]), name="m")
    got = evaluate(symopt.l1(w), symopt.l2(w), symopt.regularize([w, m]),
                   symopt.regularize([w, m], symopt.l1, 0.5),
                   pytensor.grad(symopt.regularize([w], symopt.l2, 0.5), w))
    assert got[0] == 3.0
    assert got[1] == 5.0
    assert got[2] == 5.0 + 0.25 + 9.0  # l2 by default, no factor 1/2
    assert got[3] == 0.5 * (3.0 + 3.5)
    np.testing.assert_array_equal(got[4], [1.0, -2.0])  # 0.5 * d(w^2)/dw = w: weight decay


def test_regularize_rejects_nothing_to_penalise_and_negative_coefficients():
    with pytest.raises(ValueError, match="at least one parameter"):
        symopt.regularize([])
    w = pytensor.shared(np.ones(2))
    with pytest.raises(ValueError, match="coefficient must be >= 0.*negative"):
        symopt.regularize([w], symopt.l2, -1.0)
