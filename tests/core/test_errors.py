"""Bad input fails early, with a TypeError or ValueError whose message names the problem."""

from __future__ import annotations

import inspect

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.texts import blog, book


@pytest.fixture
def W():
    return pytensor.shared(np.ones((3, 2)), name="W")


@pytest.fixture
def b():
    return pytensor.shared(np.zeros(2), name="b")


@pytest.fixture
def loss(W, b):
    return (W**2).sum() + (b**2).sum()


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_a_parameter_that_is_not_shared(name):
    x = pt.dvector("x")
    with pytest.raises(TypeError, match=r"params\[0\] is a TensorVariable 'x', not a shared "
                                        r"variable.*pytensor.shared"):
        symopt.RULES[name]((x**2).sum(), [x])


def test_an_integer_parameter():
    n = pytensor.shared(np.arange(3), name="n")
    with pytest.raises(TypeError, match=r"params\[0\] \(.*'n'\) has dtype int64; gradient "
                                        "descent needs a floating-point parameter"):
        symopt.sgd(n.sum() * 1.0, [n])


def test_parameter_list_problems(W, loss):
    with pytest.raises(ValueError, match=r"params\[1\] \(.*'W'\) appears twice"):
        symopt.adam(loss, [W, W])
    with pytest.raises(ValueError, match="params is empty"):
        symopt.adam(loss, [])
    with pytest.raises(TypeError, match="params must be a list of shared variables, got str"):
        symopt.adam(loss, "W")


def test_text_forms_check_their_parameters_too(loss):
    x = pt.dvector("x")
    for make in (blog.sgd, blog.momentum, blog.nag, book.sgd, book.adam):
        with pytest.raises(TypeError, match="not a shared variable"):
            make((x**2).sum(), [x])
    v = pytensor.shared(np.zeros(3))
    with pytest.raises(TypeError, match="not a shared variable"):
        symopt.MomentumUpdate([x, v, x])


# --------------------------------------------------------------------------------------
# Loss and gradients
# --------------------------------------------------------------------------------------


def test_loss_without_params(loss):
    with pytest.raises(ValueError, match="adam: loss_or_grads was given without params"):
        symopt.adam(loss)


def test_params_without_loss(W):
    with pytest.raises(ValueError, match="adam: params were given without loss_or_grads"):
        symopt.adam(params=[W])


def test_non_scalar_loss(W):
    with pytest.raises(ValueError, match=r"the loss must be a scalar, got a variable with "
                                         r"ndim=1.*\.mean\(\) or \.sum\(\)"):
        symopt.sgd((W**2).sum(axis=0), [W])


def test_integer_loss():
    n = pytensor.shared(np.zeros(2), name="w")
    with pytest.raises(TypeError, match="the loss must be floating point, got dtype int64"):
        symopt.sgd(pt.cast(n.sum(), "int64"), [n])


def test_loss_that_does_not_depend_on_a_parameter(W, b):
    with pytest.raises(ValueError, match="the loss does not depend on one of the parameters"):
        symopt.momentum((W**2).sum(), [W, b])


def test_loss_of_the_wrong_kind(W):
    with pytest.raises(TypeError, match="loss_or_grads must be a scalar loss or a list of "
                                        "gradients, got float"):
        symopt.sgd(1.0, [W])


def test_gradient_list_of_the_wrong_length(W, b):
    with pytest.raises(ValueError, match="got 1 gradients for 2 parameters"):
        symopt.adam([pt.zeros((3, 2))], [W, b])


def test_gradient_with_the_wrong_number_of_dimensions(W, b):
    with pytest.raises(ValueError, match=r"gradient 0 has 1 dimensions but its parameter "
                                         r".*'W' has 2"):
        symopt.adam([pt.zeros(6), pt.zeros(2)], [W, b])


def test_gradient_with_the_wrong_static_shape(W, b):
    """Only the number of dimensions was checked: a (1, 2) gradient for a (3, 2) parameter
    broadcast on the per-tensor path and read garbage rows on the fused one."""
    for fuse in (False, True):
        with pytest.raises(ValueError, match=r"gradient 0 has shape \(1, 2\) but its parameter "
                                             r".*'W' has shape \(3, 2\); a gradient must have "
                                             r"its parameter's shape"):
            symopt.adam([pt.tensor(shape=(1, 2)), pt.zeros(2)], [W, b], fuse=fuse)
    with pytest.raises(ValueError, match=r"gradient 1 has shape \(\?,\)|gradient 1 has shape "
                                         r"\(3,\)"):
        symopt.sgd([pt.zeros((3, 2)), np.zeros(3)], [W, b])
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(\?, 4\)"):
        symopt.sgd([pt.tensor(shape=(None, 4)), pt.zeros(2)], [W, b])
    # unknown dimensions are left to the run-time checks
    symopt.sgd([pt.tensor(shape=(3, None)), pt.dvector()], [W, b])


def test_missing_gradient(W, b):
    with pytest.raises(ValueError, match=r"gradient 1 \(for .*'b'\) is None"):
        symopt.sgd([pt.zeros((3, 2)), None], [W, b])


# --------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_negative_learning_rate(name, W, loss):
    with pytest.raises(ValueError, match=r"learning_rate must be >= 0, got -0.1 \(negative\)"):
        symopt.RULES[name](loss, [W], learning_rate=-0.1)
    # also when only configuring the rule, and for a shared value
    with pytest.raises(ValueError, match="learning_rate must be >= 0"):
        symopt.RULES[name](learning_rate=-0.1)
    with pytest.raises(ValueError, match="learning_rate must be >= 0"):
        symopt.RULES[name](loss, [W], learning_rate=pytensor.shared(-0.1))


@pytest.mark.parametrize("name", ["adam", "adamax", "amsgrad", "nadam", "adamw"])
@pytest.mark.parametrize("betas, message", [
    ({"beta1": 1.0}, r"beta1 must be < 1, got 1.0 \(out of range\)"),
    ({"beta1": -0.5}, r"beta1 must be >= 0, got -0.5"),
    ({"beta2": 1.5}, r"beta2 must be < 1, got 1.5 \(out of range\)"),
    ({"beta2": -0.1}, r"beta2 must be >= 0, got -0.1"),
])
def test_betas_out_of_range(name, betas, message, W, loss):
    with pytest.raises(ValueError, match=message):
        symopt.RULES[name](loss, [W], **betas)


@pytest.mark.parametrize("make, kwargs, message", [
    (symopt.momentum, {"momentum": 1.5}, r"momentum must be <= 1, got 1.5"),
    (symopt.nesterov_momentum, {"momentum": -0.1}, r"momentum must be >= 0"),
    (symopt.rmsprop, {"rho": 2.0}, r"rho must be <= 1"),
    (symopt.adadelta, {"rho": -1.0}, r"rho must be >= 0"),
    (symopt.adagrad, {"epsilon": -1e-6}, r"epsilon must be > 0"),
    (symopt.adamw, {"weight_decay": -0.01}, r"weight_decay must be >= 0"),
    (symopt.rprop, {"etas": (1.5, 1.2)}, r"etas\[0\] must be <= 1"),
    (symopt.rprop, {"etas": (0.5, 0.9)}, r"etas\[1\] must be >= 1"),
    (symopt.rprop, {"step_sizes": (-1.0, 50.0)}, r"step_sizes\[0\] must be >= 0"),
    (book.adam, {"b1": 1.0}, r"b1 must be < 1"),
    (book.adam, {"l": 1.5}, r"l must be <= 1"),
])
def test_other_hyperparameters_out_of_range(make, kwargs, message, W, loss):
    with pytest.raises(ValueError, match=message):
        make(loss, [W], **kwargs)


EPSILON_RULES = ["adadelta", "adagrad", "adam", "adamax", "adamw", "amsgrad", "nadam",
                 "rmsprop"]


@pytest.mark.parametrize("name", EPSILON_RULES)
def test_epsilon_that_guards_a_division_must_be_positive(name, W, loss):
    """epsilon=0 was accepted, and a zero gradient then gave 0/0 = NaN."""
    for epsilon in (0, 0.0, pt.constant(0.0)):
        with pytest.raises(ValueError, match=r"epsilon must be > 0, got 0"):
            symopt.RULES[name](loss, [W], epsilon=epsilon)


@pytest.fixture
def float32_model():
    W32 = pytensor.shared(np.ones((3, 2), dtype="float32"), name="W32")
    return W32, (W32 ** 2).sum()


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("name, kwargs, message", [
    ("adam", {"beta1": 1 - 1e-9}, r"beta1 must be < 1 in float32, the dtype it is used in, got "
                                  r"0.999999999 \(it is 1.0 in float32\)"),
    ("nadam", {"beta2": 1 - 1e-9}, r"beta2 must be < 1 in float32"),
    ("sgd", {"learning_rate": 1e39}, r"learning_rate=1e\+39 is inf in float32: too large for "
                                     r"the parameters' dtype"),
    ("adam", {"epsilon": 1e-50}, r"epsilon must be > 0 in float32, the dtype it is used in, got "
                                 r"1e-50 \(it is 0.0 in float32\)"),
    ("rmsprop", {"epsilon": np.float64(1e-46)}, r"epsilon must be > 0 in float32"),
    ("adamw", {"weight_decay": 1e40}, r"weight_decay=1e\+40 is inf in float32"),
    ("momentum", {"learning_rate": pytensor.shared(np.float64(1e39))},
     r"learning_rate=1e\+39 is inf in float32"),
    ("adagrad", {"epsilon": pt.constant(1e-50)}, r"epsilon must be > 0 in float32"),
])
def test_hyperparameters_are_checked_in_the_dtype_they_are_used_in(name, kwargs, message, fuse,
                                                                    float32_model, W, loss):
    """Checked in float64 and used in float32: beta1 = 1 - 1e-9 passed ``< 1`` and was 1.0
    (NaN after a step); 1e39 was inf; epsilon = 1e-50 was 0. The same values are fine in
    float64, and a configured rule is checked when it meets a float32 parameter."""
    W32, loss32 = float32_model
    with pytest.raises(ValueError, match=message):
        symopt.RULES[name](loss32, [W32], **kwargs, fuse=fuse)
    configured = symopt.RULES[name](**kwargs)
    with pytest.raises(ValueError, match=message):
        configured(loss32, [W32])
    symopt.RULES[name](loss, [W], **kwargs, fuse=fuse)


def test_symbolic_constants_are_checked_like_numbers(W, loss):
    """learning_rate=pt.constant(-0.1) was not checked: a constant has a value."""
    with pytest.raises(ValueError, match=r"learning_rate must be >= 0, got -0.1 \(negative\)"):
        symopt.sgd(loss, [W], pt.constant(-0.1))
    with pytest.raises(ValueError, match=r"beta1 must be < 1, got 1.5"):
        symopt.adam(loss, [W], beta1=pt.constant(np.float32(1.5)))
    with pytest.raises(ValueError, match=r"momentum must be finite, got nan"):
        symopt.momentum(loss, [W], momentum=pt.constant(np.nan))
    symopt.sgd(loss, [W], pt.constant(0.1))  # a good one is fine
    symopt.sgd(loss, [W], pt.dscalar("lr"))  # a symbolic one cannot be checked


@pytest.mark.parametrize("kwargs, message", [
    ({"step_sizes": (50.0, 1e-6)}, r"step_sizes=\(50.0, 1e-06\): the smallest step size "
                                   r"\(step_sizes\[0\]\) is larger than the largest"),
    ({"etas": (0.5,)}, r"etas must be a pair \(eta_minus, eta_plus\), e.g. \(0.5, 1.2\), "
                       r"got \(0.5,\)"),
    ({"etas": (0.5, 1.2, 2.0)}, r"etas must be a pair"),
    ({"etas": 0.5}, r"etas must be a pair .*got 0.5"),
    ({"step_sizes": (1e-6,)}, r"step_sizes must be a pair \(smallest, largest\) step size"),
    ({"step_sizes": None}, r"step_sizes must be a pair"),
])
def test_rprop_step_sizes_and_etas(kwargs, message, W, loss):
    with pytest.raises(ValueError, match=message):
        symopt.rprop(loss, [W], **kwargs)
    with pytest.raises(ValueError, match=message):
        symopt.rprop(**kwargs)


@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_float16_parameters_are_refused(name):
    """float16 failed inside Numba (NotImplementedError) or gave NaN on the C backends
    (epsilon rounds to 0): symopt refuses it when the rule is built."""
    h = pytensor.shared(np.ones(3, dtype="float16"), name="h")
    with pytest.raises(TypeError, match=r"params\[0\] \(.*'h'\) is float16, which symopt's "
                                        r"rules do not update.*keep the parameter in float32"):
        symopt.RULES[name]((pt.cast(h, "float32") ** 2).sum(), [h])


def test_hyperparameters_of_the_wrong_kind(W, loss):
    with pytest.raises(TypeError, match="learning_rate must be a number, a NumPy scalar, a "
                                        "shared variable or a symbolic scalar, got str"):
        symopt.sgd(loss, [W], "0.1")
    with pytest.raises(ValueError, match="learning_rate must be a scalar, got a variable "
                                         "with ndim=1"):
        symopt.sgd(loss, [W], pt.dvector("lr"))
    with pytest.raises(ValueError, match="learning_rate must be finite, got nan"):
        symopt.sgd(loss, [W], float("nan"))
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        symopt.sgd(loss, [W], True)
    with pytest.raises(TypeError, match="takes .* positional arguments|unexpected keyword"):
        symopt.sgd(loss, [W], lr=0.1)


# --------------------------------------------------------------------------------------
# Composition and constraints
# --------------------------------------------------------------------------------------


def test_chain_of_something_that_is_not_a_transform():
    with pytest.raises(TypeError, match="chain argument 1 is a int, not a transform"):
        symopt.chain(symopt.clip(1.0), 3)


def test_constraint_inputs():
    x = pt.dvector("x")
    with pytest.raises(TypeError, match="tensor_vars must be a list of tensors; wrap a single "
                                        "tensor in a list"):
        symopt.total_norm_constraint(x, 1.0)
    with pytest.raises(ValueError, match="tensor_vars is empty"):
        symopt.total_norm_constraint([], 1.0)
    with pytest.raises(ValueError, match=r"max_norm must be > 0, got 0.0 \(out of range\)"):
        symopt.total_norm_constraint([x], 0.0)
    with pytest.raises(ValueError, match=r"min_value \(1.0\) is larger than max_value \(-1.0\)"):
        symopt.clip_by_value([x], 1.0, -1.0)
    with pytest.raises(ValueError, match="max_delta must be >= 0"):
        symopt.clip(-1.0)
    with pytest.raises(ValueError, match="clip_norms needs at least one gradient"):
        symopt.clip_norms([], 1.0)
    with pytest.raises(ValueError, match="c must be > 0"):
        symopt.clip_norms([x], 0)


def _refuses(build, **kwargs):
    try:
        build(**kwargs)
    except ValueError:
        return True
    return False


ROUNDS_TO = [(name, 1 - 1e-9, 1.0) for name in ("beta1", "beta2", "beta3", "momentum", "decay")]
ROUNDS_TO += [("epsilon", 1e-50, 0.0), ("learning_rate", 1e39, np.inf)]


@pytest.mark.parametrize("rule", sorted(symopt.RULES))
def test_every_rule_refuses_a_value_that_is_out_of_range_in_float32(rule, float32_model):
    """Each hyperparameter whose float32 rounding (1 - 1e-9 to 1.0, 1e-50 to 0, 1e39 to
    inf) the rule refuses as given is refused in float32 too, by every rule: the rules
    added in round 2 checked only the value as given, and beta1 = 1 - 1e-9 ran as 1.0."""
    W32, loss32 = float32_model
    build = symopt.RULES[rule]
    accepted = inspect.signature(build).parameters
    checked = 0
    for name, value, rounded in ROUNDS_TO:
        if name not in accepted:
            continue
        if not _refuses(build, loss_or_grads=loss32, params=[W32], **{name: rounded}):
            continue  # the rounded value is legal here (schedule-free's beta1 may be 1)
        checked += 1
        with pytest.raises(ValueError, match=rf"{name}.*float32"):
            build(loss32, [W32], **{name: value})
    if not checked:
        pytest.skip(f"{rule} takes none of {sorted({n for n, _, _ in ROUNDS_TO})} "
                    "with a bound a float32 rounding crosses")
