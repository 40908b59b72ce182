"""Every update expression has exactly the type of the shared variable it updates.

Checked under ``floatX=float32``, and with float32 parameters under ``floatX=float64`` (where
an uncast Python hyperparameter or a float64 shared learning rate would upcast), for a
scalar, a vector, a matrix and a broadcastable row (``shape=(1, n)``). ``var.type ==
expr.type`` compares dtype *and* static shape, so it also checks that broadcast patterns
are kept. No function is compiled here.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab.rulebook import ROWS
from symopt.state import state_tag
from symopt.texts import blog, book

SETTINGS = [
    pytest.param(("float32", "float32"), id="floatX=float32"),
    pytest.param(("float32", "float64"), id="float32-params-floatX=float64"),
]

RULE_CASES = [(name, {}) for name in sorted(symopt.RULES)] + [
    ("rmsprop", {"momentum": 0.9, "centered": True}),
    ("rmsprop", {"momentum": 0.9}),
]


@pytest.fixture(params=SETTINGS)
def setting(request):
    """``(params, loss)`` built under the setting's floatX, which stays in force for the test."""
    dtype, floatx = request.param
    with pytensor.config.change_flags(floatX=floatx):
        s = pytensor.shared(np.asarray(0.5, dtype=dtype), name="s")
        v = pytensor.shared(np.linspace(-1, 1, 4).astype(dtype), name="v")
        M = pytensor.shared(np.arange(6).reshape(3, 2).astype(dtype) / 6, name="M")
        R = pytensor.shared(np.ones((1, 3), dtype=dtype), name="R", shape=(1, 3))
        params = [s, v, M, R]
        loss = (s**2 + (v**2).sum() + 0.5 * (M**2).sum() + ((R - 1.5) ** 2).sum()
                + s * v.sum() + M.sum() * R.sum())
        yield params, loss


def assert_exact_types(updates):
    pairs = list(updates.items() if isinstance(updates, dict) else updates)
    assert pairs
    for var, expr in pairs:
        assert var.type == expr.type, f"{var.name}: {var.type} updated by {expr.type}"


def test_the_parameters_are_what_the_tests_claim(setting):
    params, loss = setting
    assert [p.type.shape for p in params] == [(), (None,), (None, None), (1, 3)]
    assert params[3].broadcastable == (True, False)


@pytest.mark.parametrize("name, kwargs", RULE_CASES)
def test_rules(setting, name, kwargs):
    """Python-float hyperparameters, and a float64 shared learning rate."""
    params, loss = setting
    learning_rate = pytensor.shared(np.float64(0.01), name="lr")
    updates = symopt.RULES[name](loss, params, learning_rate=learning_rate, **kwargs)
    assert_exact_types(updates)
    # and every state variable is shaped and typed like its parameter (a window of past
    # values, adagrad_window's, has one more axis, of static length; factored statistics,
    # per-tensor scalars and the Kronecker factors of Shampoo and SOAP only of its dtype)
    for var, _ in updates:
        tag = state_tag(var)
        if tag is None or tag.param is None:
            continue
        param_type = tag.param.type
        if tag.role == "window":
            param_type = param_type.clone(shape=param_type.shape + var.type.shape[-1:])
            assert var.type.shape[-1] is not None, var.name
            assert var.type == param_type, var.name
        elif tag.role in ROWS[name].unshaped:
            assert var.dtype == tag.param.dtype, var.name
        else:
            assert var.type == param_type, var.name


def test_rules_with_symbolic_float64_hyperparameters_and_gradients(setting):
    params, loss = setting
    grads = [pt.cast(g, "float64") for g in pytensor.grad(loss, params)]
    assert_exact_types(symopt.sgd(grads, params, pt.dscalar("lr")))
    assert_exact_types(symopt.momentum(grads, params, pt.dscalar("lr"), pt.dscalar("mu")))
    assert_exact_types(symopt.adam(grads, params, 1e-3, pt.dscalar("b1"), 0.999,
                                   pt.dscalar("eps")))
    assert_exact_types(symopt.rprop(grads, params, 0.01))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nag"])
def test_blog_forms(setting, name):
    params, loss = setting
    assert_exact_types(getattr(blog, name)(loss, params))


def test_blog_momentum_update(setting):
    params, loss = setting
    for x in params:
        v = pytensor.shared(np.zeros_like(x.get_value()), shape=x.type.shape)
        assert_exact_types(symopt.MomentumUpdate([x, v, pytensor.grad(loss, x)]))


@pytest.mark.parametrize("name", ["sgd", "momentum", "nag", "adagrad", "adadelta", "rmsprop",
                                  "adam"])
def test_book_forms(setting, name):
    params, loss = setting
    assert_exact_types(getattr(book, name)(loss, params))


def test_book_form_without_clipping(setting):
    params, loss = setting
    assert_exact_types(book.adam(loss, params, clip=None))


def test_clip_norms_keeps_types(setting):
    params, loss = setting
    grads = pytensor.grad(loss, params)
    for g, clipped in zip(grads, symopt.clip_norms(grads, 1.0)):
        assert clipped.type == g.type


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_apply_momentum_and_nesterov(setting, rule):
    params, loss = setting
    for apply_ in (symopt.apply_momentum, symopt.apply_nesterov_momentum):
        assert_exact_types(apply_(symopt.RULES[rule](loss, params), momentum=0.9))
        assert_exact_types(apply_(OrderedDict(symopt.RULES[rule](loss, params)), params,
                                  momentum=pytensor.shared(np.float64(0.5))))
    # hand-written updates that are not ``p + s`` take the other path
    lr = np.asarray(0.1, dtype=params[0].dtype)
    handmade = [(p, p - lr * g) for p, g in zip(params, pytensor.grad(loss, params))]
    assert_exact_types(symopt.apply_momentum(handmade))


def test_constraints(setting):
    params, loss = setting
    s, v, M, R = params
    grads = pytensor.grad(loss, params)
    clipped = symopt.total_norm_constraint(grads, 1.0)
    assert [c.type for c in clipped] == [g.type for g in grads]
    assert [c.type for c in symopt.clip_by_value(grads, -0.1, 0.1)] == [g.type for g in grads]
    assert_exact_types(symopt.adam(clipped, params))
    assert symopt.norm_constraint(M, 1.0).type == M.type
    assert symopt.norm_constraint(R, 1.0).type == R.type
    assert symopt.norm_constraint(v, 1.0, norm_axes=(0,)).type == v.type
    assert_exact_types(symopt.apply_norm_constraint(symopt.sgd(loss, params), [M, R], 1.0))
    assert_exact_types(symopt.apply_norm_constraint(symopt.sgd(loss, params), [v], 1.0,
                                                    norm_axes=(0,)))


def test_transforms_in_chains(setting):
    params, loss = setting
    chained = symopt.chain(symopt.clip_by_global_norm(1.0), symopt.clip(0.5),
                           symopt.adam(learning_rate=0.01))
    assert_exact_types(symopt.apply(chained, loss, params))
    assert_exact_types(symopt.adam(learning_rate=0.01)(loss, params))


def test_skip_nonfinite(setting):
    params, loss = setting
    guarded = symopt.skip_nonfinite(symopt.adam(loss, params))
    assert_exact_types(guarded)
    counter = list(guarded)[-1][0]
    assert counter.name == "nonfinite.skips" and counter.dtype == "int64"


def test_regularization_keeps_dtype(setting):
    params, loss = setting
    assert symopt.regularize(params, symopt.l2, 1e-3).dtype == params[0].dtype
    assert symopt.regularize(params, symopt.l1).dtype == params[0].dtype


def test_data_with_static_shapes_only_refines_the_type():
    """With constant-shaped data in the loss, PyTensor's gradients know more static shape
    than a parameter made by ``pytensor.shared`` (shape ``(None, None)``); symopt keeps
    that knowledge (``filter_variable`` allows it), so the update type is a refinement of
    the parameter's, which ``pytensor.function`` accepts. Dtype and ndim are exact."""
    with pytensor.config.change_flags(floatX="float32"):
        W = pytensor.shared(np.zeros((3, 2), dtype="float32"), name="W")
        X = pt.constant(np.ones((5, 3), dtype="float32"))
        loss = (pt.dot(X, W) ** 2).sum()
        for name in sorted(symopt.RULES):
            for var, expr in symopt.RULES[name](loss, [W]):
                assert var.type.is_super(expr.type), (name, var.name, expr.type)
                if isinstance(var.type, pt.TensorType):  # not a probe's random generator
                    assert (var.dtype, var.ndim) == (expr.dtype, expr.ndim)
        pytensor.function([], [], updates=symopt.adam(loss, [W]))
