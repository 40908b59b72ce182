"""The text forms (``symopt.texts``): each equals its NumPy transcription, and where a
text form is a standard rule, a test says how exactly (to rounding: the library promises
bit-for-bit equality only for its own compositions, see ``test_composition.py``).

The book's rules are run with ``clip=3.0`` on a quadratic whose initial gradient norm is
about 5.3, so both branches of ``clip_norms`` are used (checked on the reference).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import reference
from symopt.texts import blog, book

from .toys import Quadratic, case_id, run_together, step_function, values

STEPS = 12
CLIP = 3.0


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=0)


def assert_close(got, expected, where, rtol=1e-12, atol=1e-13):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=where)


# --------------------------------------------------------------------------------------
# Each text form against its transcription
# --------------------------------------------------------------------------------------

BOOK_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.7}),
    ("nag", {"learning_rate": 0.05, "momentum": 0.7}),
    ("adagrad", {"learning_rate": 0.5}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9}),
    ("rmsprop", {"learning_rate": 0.05, "rho": 0.8}),
    ("adam", {"learning_rate": 0.1}),
    ("adam", {"learning_rate": 0.1, "b1": 0.8, "b2": 0.9, "l": 0.7}),
]


BLOG_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.7}),
    ("nag", {"learning_rate": 0.05, "momentum": 0.7}),
]


def _text_trajectories(problem, module, cases, **fixed):
    """Every case of ``module``'s forms stepped by one compiled function (one compilation
    for all of them, as in ``test_trajectories.py``)."""
    def build(case):
        name, kwargs = case
        params = problem.shared()
        updates = getattr(module, name)(problem.loss(params), params, **fixed, **kwargs)
        return params, list(dict(updates).items())

    return run_together((module.__name__, tuple(map(case_id, cases))), cases, build, STEPS)


@pytest.mark.parametrize("name, kwargs", BOOK_CASES)
def test_book_form_matches_transcription(problem, name, kwargs):
    trajectory = _text_trajectories(problem, book, BOOK_CASES, clip=CLIP)[case_id((name, kwargs))]
    ref = reference.BOOK[name](problem.initial(), clip=CLIP, **kwargs)
    expected = problem.initial()
    for k, got in enumerate(trajectory, 1):
        expected = ref.step(expected, problem.grad(expected))
        assert_close(got, expected, f"step {k}")
    assert ref.clipped_steps > 0, "clip_norms never clipped"
    if name in ("sgd", "nag", "adagrad"):
        assert ref.clipped_steps < STEPS, "clip_norms always clipped"


@pytest.mark.parametrize("name, kwargs", BLOG_CASES)
def test_blog_form_matches_transcription(problem, name, kwargs):
    params = problem.shared()
    assert isinstance(getattr(blog, name)(problem.loss(params), params, **kwargs), dict)
    trajectory = _text_trajectories(problem, blog, BLOG_CASES)[case_id((name, kwargs))]
    ref = reference.BLOG[name](problem.initial(), **kwargs)
    expected = problem.initial()
    for k, got in enumerate(trajectory, 1):
        expected = ref.step(expected, problem.grad(expected))
        assert_close(got, expected, f"step {k}")


# --------------------------------------------------------------------------------------
# Text forms that are standard rules
# --------------------------------------------------------------------------------------


def side_by_side(text_updates, rule_updates, a, b, steps=STEPS):
    """Step both in one function; return the two lists of values after each step."""
    step = step_function(list(dict(text_updates).items()) + list(rule_updates))
    got_a, got_b = [], []
    for _ in range(steps):
        step()
        got_a.append(values(a))
        got_b.append(values(b))
    return got_a, got_b


def book_vs_rule(name, kwargs, rule, rule_kwargs, dtype="float64", steps=STEPS):
    """The book's rule next to ``rule(clip_norms(grads, CLIP), ...)``, from the same start."""
    problem = Quadratic(seed=0, dtype=dtype)
    with pytensor.config.change_flags(floatX=dtype):
        a, b = problem.shared("_book"), problem.shared("_rule")
        text = getattr(book, name)(problem.loss(a), a, clip=CLIP, **kwargs)
        clipped = symopt.clip_norms(pytensor.grad(problem.loss(b), b), CLIP)
        return side_by_side(text, rule(clipped, b, **rule_kwargs), a, b, steps)


@pytest.mark.parametrize("name, kwargs, rule_kwargs", [
    ("sgd", {"learning_rate": 0.1}, {}),
    ("momentum", {"learning_rate": 0.05, "momentum": 0.7}, {}),
    ("adagrad", {"learning_rate": 0.5}, {"epsilon": 1e-6}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9}, {"epsilon": 1e-6}),
    ("rmsprop", {"learning_rate": 0.05, "rho": 0.8}, {"epsilon": 1e-6}),
])
def test_book_rule_is_the_library_rule_after_clip_norms(name, kwargs, rule_kwargs):
    """The same formula, written with other operations (``p - x`` for ``p + (-x)``, and the
    book's Adagrad divides ``lr / sqrt(acc + eps)`` first), so equal to rounding: how
    each backend compiles the two graphs decides whether the last bit agrees."""
    text, rule = book_vs_rule(name, kwargs, symopt.RULES[name], {**kwargs, **rule_kwargs})
    for k, (t, r) in enumerate(zip(text, rule), 1):
        assert_close(t, r, f"step {k}", rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("form", ["book", "blog"])
def test_nag_is_nesterov_momentum_to_rounding(problem, form):
    """Both write the update another way than the library (the book adds ``mu v - lr g``
    to ``p`` term by term, the blog goes through ``theta - lr g`` and back), so they are
    equal to rounding; PyTensor's algebraic rewrites may make them identical, which is
    not promised."""
    a, b = problem.shared("_text"), problem.shared("_rule")
    if form == "book":
        text = book.nag(problem.loss(a), a, 0.05, 0.7, clip=None)
    else:
        text = blog.nag(problem.loss(a), a, 0.05, 0.7)
    rule = symopt.nesterov_momentum(problem.loss(b), b, 0.05, 0.7)
    got_text, got_rule = side_by_side(text, rule, a, b)
    for k, (t, r) in enumerate(zip(got_text, got_rule), 1):
        assert_close(t, r, f"step {k}", rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name, args", [("sgd", (0.1,)), ("momentum", (0.05, 0.7))])
def test_blog_sgd_and_momentum_are_the_library_rules(problem, name, args):
    a, b = problem.shared("_text"), problem.shared("_rule")
    got_text, got_rule = side_by_side(getattr(blog, name)(problem.loss(a), a, *args),
                                      symopt.RULES[name](problem.loss(b), b, *args), a, b)
    for k, (t, r) in enumerate(zip(got_text, got_rule), 1):
        assert_close(t, r, f"step {k}", rtol=1e-14, atol=1e-15)


def test_book_adam_in_float32_is_library_adam_with_epsilon_1e6():
    """In float32, ``l = 1 - 1e-8`` rounds to 1: the decay of beta1 vanishes."""
    assert np.float32(1 - 1e-8) == 1
    steps = 100
    text, rule = book_vs_rule("adam", {"learning_rate": 0.01}, symopt.adam,
                              {"learning_rate": 0.01, "epsilon": 1e-6}, dtype="float32",
                              steps=steps)
    for k, (t, r) in enumerate(zip(text, rule), 1):
        assert all(x.dtype == "float32" for x in t + r)
        assert_close(t, r, f"step {k}", rtol=2e-5, atol=2e-6)


def test_book_adam_in_float64_decays_beta1_and_drifts_from_library_adam(problem):
    """In float64 the decay ``beta1 * l**(t-1)`` is real: after 300 steps the book's Adam
    is measurably away from ``symopt.adam(epsilon=1e-6)`` (far beyond rounding, far below
    a different rule), and it still follows its own transcription."""
    steps = 300
    text, rule = book_vs_rule("adam", {"learning_rate": 0.01}, symopt.adam,
                              {"learning_rate": 0.01, "epsilon": 1e-6}, steps=steps)
    ref = reference.BookAdam(problem.initial(), learning_rate=0.01, clip=CLIP)
    expected = reference.run(ref, problem.initial(), problem.grad, steps)
    assert_close(text[-1], expected[-1], "last step", rtol=1e-10, atol=1e-12)

    drift = max(np.max(np.abs(x - y)) for x, y in zip(text[-1], rule[-1]))
    assert 1e-9 < drift < 1e-4, drift
    early = max(np.max(np.abs(x - y)) for x, y in zip(text[1], rule[1]))
    assert early < drift / 100


# --------------------------------------------------------------------------------------
# The blog's toy: (x1^2 + x2^2 + x3^2 + x4^2)^2 from x = 0.5, float32
# --------------------------------------------------------------------------------------


def toy_grad(x):
    return 4 * np.sum(x**2) * x


def toy_cost(x):
    return pt.sqr(pt.sum(pt.sqr(x)))


def blog_toy(momentum, look_ahead=False, dtype="float32"):
    """The blog's code: ``MomentumUpdate`` with ``df`` at ``x`` or at ``x + momentum * v``."""
    x = pytensor.shared(np.full(4, 0.5, dtype=dtype), name="x")
    v = pytensor.shared(np.zeros(4, dtype=dtype), name="v")
    at = x + np.asarray(momentum, dtype=dtype) * v if look_ahead else pt.vector(dtype=dtype)
    y = toy_cost(at)
    df = pytensor.grad(y, at)
    updates = symopt.MomentumUpdate([x, v, df], learning_rate=0.01, momentum=momentum)
    givens = {} if look_ahead else {at: x}
    return x, v, pytensor.function([], y, updates=updates, givens=givens)


@pytest.mark.parametrize("module, forms", [(blog, reference.BLOG), (book, reference.BOOK)],
                         ids=["blog", "book"])
def test_text_form_defaults_are_the_transcriptions(module, forms):
    for name, form in forms.items():
        ours = inspect.signature(getattr(module, name)).parameters
        theirs = inspect.signature(form.__init__).parameters
        ours = {k: p.default for k, p in ours.items() if k not in ("cost", "params")}
        theirs = {k: p.default for k, p in theirs.items() if k not in ("self", "params")}
        assert ours == theirs, name


@pytest.mark.parametrize("momentum, look_ahead", [(0.0, False), (0.9, False), (0.9, True)],
                         ids=["sgd", "momentum", "toy-nag"])
def test_blog_toy_matches_transcription(momentum, look_ahead):
    x, v, cost = blog_toy(momentum, look_ahead)
    xs, vs = reference.blog_toy(toy_grad, np.full(4, 0.5, dtype="float32"), 15,
                                momentum=momentum, look_ahead=look_ahead)
    first = float(cost())
    assert first == pytest.approx(1.0)  # (4 * 0.25)^2, before the first update
    np.testing.assert_allclose(x.get_value(), xs[0], rtol=1e-6)
    for k in range(1, 15):
        cost()
        np.testing.assert_allclose(x.get_value(), xs[k], rtol=2e-5, atol=1e-6,
                                   err_msg=f"step {k + 1}")
        np.testing.assert_allclose(v.get_value(), vs[k], rtol=2e-5, atol=1e-6)


def test_blog_toy_sgd_and_momentum_are_the_library_rules():
    for momentum, rule in [(0.0, symopt.sgd), (0.9, symopt.momentum)]:
        x, _, cost = blog_toy(momentum)
        theta = pytensor.shared(np.full(4, 0.5, dtype="float32"), name="theta")
        kwargs = {"momentum": momentum} if momentum else {}
        library = step_function(rule(toy_cost(theta), [theta], 0.01, **kwargs))
        for k in range(10):
            cost()
            library()
            np.testing.assert_allclose(x.get_value(), theta.get_value(), rtol=1e-6,
                                       err_msg=f"momentum {momentum}, step {k + 1}")


def test_blog_toy_nag_is_nesterov_momentum_seen_from_the_look_ahead_point():
    """The toy NAG keeps ``x`` and moves it by ``v`` alone; ``nesterov_momentum`` keeps the
    look-ahead point ``theta = x + mu v`` (Bengio et al., 2013). So the velocities are the
    same, ``theta == x + mu v`` at every step, and ``theta != x`` as soon as ``v != 0``."""
    mu = 0.9
    x, v, cost = blog_toy(mu, look_ahead=True, dtype="float64")
    theta = pytensor.shared(np.full(4, 0.5), name="theta")
    updates = symopt.nesterov_momentum(toy_cost(theta), [theta], 0.01, mu)
    velocity = symopt.get_state(updates)["theta.velocity"]
    library = step_function(updates)
    for k in range(1, 16):
        cost()
        library()
        np.testing.assert_allclose(velocity.get_value(), v.get_value(), rtol=1e-12,
                                   atol=1e-15, err_msg=f"velocity, step {k}")
        np.testing.assert_allclose(theta.get_value(), x.get_value() + mu * v.get_value(),
                                   rtol=1e-12, atol=1e-15, err_msg=f"position, step {k}")
        gap = np.abs(theta.get_value() - x.get_value())
        assert np.all(gap > 1e-4), f"step {k}: x and theta should differ by mu * v"
