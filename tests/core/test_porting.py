"""Code written for ``lasagne.updates`` and ``pymc.variational.updates`` runs on symopt
unchanged but for the import.

Three parts:

- :class:`symopt.Updates`, the list of pairs every rule returns, answers the mapping
  idioms of the ``OrderedDict`` that Lasagne and PyMC return (``updates[W] = ...``,
  ``W in updates``, ``updates.items()``, ``updates.update(...)``, ``dict(updates)``);
  configured rules look like their ``functools.partial``;
- Lasagne-style training code, run with real values;
- Lasagne's own update tests (``lasagne/tests/test_updates.py``, 24 cases) and PyMC's
  ``test_updates_fast`` (216 cases), rewritten here for PyTensor and symopt. All pass.
  Where symopt differs on purpose, the test says which line changed and why (the
  README's porting section lists the differences): iterating the updates yields pairs,
  not keys (10 Lasagne cases iterate ``updates.keys()``), the step counter is int64, not
  floatX (3 of those also skip it), integer parameters are refused (1 case uses float
  parameters), and ``isinstance(updates, dict)`` is False, the mapping idioms being
  asserted instead (PyMC's 216).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import symopt
from symopt.lab import reference
from symopt.state import state_tag

# --------------------------------------------------------------------------------------
# Updates: a list of pairs that reads as a mapping
# --------------------------------------------------------------------------------------


@pytest.fixture
def model():
    """A two-parameter least-squares problem: W (3 x 2), b (2,), fixed data."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    W = pytensor.shared(rng.normal(size=(3, 2)), name="W")
    b = pytensor.shared(np.zeros(2), name="b")
    loss = ((pt.dot(X, W) + b - Y) ** 2).mean()
    grad = lambda w, c: (2 / Y.size * X.T @ (X @ w + c - Y), 2 / Y.size * (X @ w + c - Y).sum(0))
    return W, b, loss, grad


def test_updates_are_a_list_of_pairs(model):
    W, b, loss, _ = model
    updates = symopt.adam(loss, [W, b])
    assert isinstance(updates, list) and isinstance(updates, symopt.Updates)
    assert len(updates) == 7 and [var.name for var, _ in updates] == [
        "W", "b", "W.m", "W.v", "b.m", "b.v", "adam.t"]
    first = updates[0]
    assert isinstance(first, tuple) and first[0] is W
    assert updates[-1][0].name == "adam.t" and updates[np.int64(1)][0] is b
    # slices and + keep the kind; a plain list on the left stays a plain list, so that
    # `collected += rule(...)` extends the list in place, as for any list (a list held
    # elsewhere too sees the pairs)
    assert type(updates[:2]) is symopt.Updates and updates[:2].keys() == [W, b]
    assert type(updates + []) is symopt.Updates and updates + [] == list(updates)
    assert type([] + updates) is list and [] + updates == list(updates)
    groups = [([], [])]
    collected = groups[-1][1]
    collected += updates
    assert groups[0][1] is collected and collected == list(updates)


def test_updates_read_and_write_as_a_mapping(model):
    W, b, loss, _ = model
    updates = symopt.sgd(loss, [W, b], learning_rate=0.1)
    w_update = updates[W]
    assert w_update is updates[0][1] and updates.get(W) is w_update
    assert W in updates and b in updates and (W, w_update) in updates
    other = pytensor.shared(np.zeros(2), name="other")
    assert other not in updates and updates.get(other) is None
    assert updates.get(other, "none") == "none"
    with pytest.raises(KeyError, match="'other' has no update"):
        updates[other]
    assert updates.keys() == [W, b] and updates.values() == [w_update, updates[b]]
    assert updates.items() == [(W, w_update), (b, updates[b])]
    # setting replaces in place (the position stays); a new variable is appended
    halved = w_update * 0.5
    updates[W] = halved
    assert updates[0] == (W, halved) and len(updates) == 2
    updates[other] = other + 1.0
    assert updates.keys() == [W, b, other]
    del updates[other]
    assert updates.keys() == [W, b]
    assert updates.setdefault(other, other * 2.0) is updates[other]
    assert updates.pop(other).owner is not None and other not in updates
    assert updates.pop(other, None) is None
    # dict() and OrderedDict() give variable -> expression, in order
    assert dict(updates) == {W: halved, b: updates[b]}
    assert list(OrderedDict(updates).items()) == updates.items()


def test_keys_of_other_kinds_are_refused(model):
    W, b, loss, _ = model
    updates = symopt.sgd(loss, [W, b])
    with pytest.raises(TypeError, match="indexed by position .* or by the shared variable"):
        updates["W"]
    with pytest.raises(TypeError, match=r"\(shared variable, expression\) pair"):
        updates.append(W)
    with pytest.raises(TypeError, match="takes the shared variable"):
        updates.get("W")


def test_update_takes_a_mapping_or_pairs(model):
    W, b, loss, _ = model
    updates = symopt.sgd(loss, [W, b], learning_rate=0.1)
    running = pytensor.shared(np.zeros(3), name="running_mean")
    count = pytensor.shared(np.int64(0), name="count")
    updates.update(OrderedDict([(running, running + 1.0)]))
    updates.update([(count, count + 1)])
    updates.update({running: running + 2.0})  # replaces, keeps the place
    assert updates.keys() == [W, b, running, count]
    step = pytensor.function([], [], updates=updates)
    step()
    step()
    np.testing.assert_array_equal(running.get_value(), [4.0, 4.0, 4.0])
    assert count.get_value() == 2


def test_the_updates_dict_of_pymc_takes_ours(model):
    """pm.fit does ``ObjectiveUpdates().update(obj_optimizer(grads, params))``: an
    OrderedDict subclass updated from our list, through ``keys()`` and lookups."""
    W, b, loss, _ = model

    class ObjectiveUpdates(OrderedDict):
        loss = None

    target = ObjectiveUpdates()
    ours = symopt.adam(loss, [W, b])
    target.update(ours)
    assert list(target.items()) == ours.items()


# --------------------------------------------------------------------------------------
# Lasagne-style code, unchanged but for the import
# --------------------------------------------------------------------------------------


def test_norm_constraint_on_one_update_and_extra_updates_merged(model):
    """The Lasagne idiom: constrain one parameter's update, merge a layer's own updates
    (a batch-norm running mean), compile, train."""
    W, b, loss, grad = model
    running_mean = pytensor.shared(np.zeros(2), name="running_mean")
    batch_mean = pt.dot(np.ones((4, 3)), W).mean(axis=0)
    bn_updates = OrderedDict([(running_mean, 0.9 * running_mean + 0.1 * batch_mean)])

    updates = symopt.sgd(loss, [W, b], learning_rate=0.5)
    updates[W] = symopt.norm_constraint(updates[W], max_norm=0.3)
    updates.update(bn_updates)
    train = pytensor.function([], loss, updates=updates)

    w, c, mean = W.get_value(), b.get_value(), np.zeros(2)
    for _ in range(3):
        train()
        mean = 0.9 * mean + 0.1 * (np.ones((4, 3)) @ w).mean(axis=0)
        gw, gc = grad(w, c)
        w_new = w - 0.5 * gw
        norms = np.sqrt((w_new**2).sum(axis=0, keepdims=True))
        w, c = w_new * (np.minimum(norms, 0.3) / (1e-7 + norms)), c - 0.5 * gc
    np.testing.assert_allclose(W.get_value(), w, rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), c, rtol=1e-12)
    np.testing.assert_allclose(running_mean.get_value(), mean, rtol=1e-12)
    assert np.sqrt((W.get_value() ** 2).sum(axis=0)).max() <= 0.3 + 1e-12


def test_apply_momentum_on_updates_edited_as_a_mapping(model):
    """``apply_momentum(updates, params, momentum=0.9)`` on updates edited through the
    mapping: the same kind comes back, and on unedited updates it is symopt.momentum."""
    W, b, loss, grad = model
    updates = symopt.sgd(loss, [W, b], learning_rate=0.1)
    updates[b] = b  # freeze b: its "update" is itself, a step of zero
    with_momentum = symopt.apply_momentum(updates, [W, b], momentum=0.9)
    assert type(with_momentum) is symopt.Updates
    assert with_momentum.keys()[:2] == [W, b]
    assert [v.name for v in with_momentum.keys()[2:]] == ["W.velocity", "b.velocity"]
    train = pytensor.function([], [], updates=with_momentum)
    w, velocity = W.get_value(), np.zeros_like(W.get_value())
    for _ in range(4):
        train()
        velocity = 0.9 * velocity - 0.1 * grad(w, b.get_value())[0]
        w = w + velocity
    np.testing.assert_allclose(W.get_value(), w, rtol=1e-12)
    np.testing.assert_array_equal(b.get_value(), np.zeros(2))

    # and a Lasagne-style OrderedDict comes back as one
    as_dict = symopt.apply_nesterov_momentum(OrderedDict(symopt.sgd(loss, [W, b])), [W, b])
    assert type(as_dict) is OrderedDict and len(as_dict) == 4


def test_a_loop_over_items_builds_new_updates(model):
    """``for param, update in updates.items()``: Lasagne-style post-processing."""
    W, b, loss, grad = model
    updates = symopt.sgd(loss, [W, b], learning_rate=0.1)
    decayed = OrderedDict()
    for param, update in updates.items():
        decayed[param] = update - 0.01 * param  # a weight decay added after the fact
    train = pytensor.function([], [], updates=decayed)
    w, c = W.get_value(), b.get_value()
    train()
    gw, gc = grad(w, c)
    np.testing.assert_allclose(W.get_value(), w - 0.1 * gw - 0.01 * w, rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), c - 0.1 * gc - 0.01 * c, rtol=1e-12)


def test_state_helpers_take_edited_updates(model, tmp_path):
    W, b, loss, _ = model
    updates = symopt.adam(loss, [W, b], learning_rate=0.05)
    updates[W] = symopt.norm_constraint(updates[W], 1.0)
    assert list(symopt.get_state(updates)) == ["W.m", "W.v", "b.m", "b.v", "adam.t"]
    guarded, skips = symopt.skip_nonfinite(updates, return_counter=True)
    assert type(guarded) is symopt.Updates and skips in guarded
    train = pytensor.function([], [], updates=guarded)
    train()
    symopt.save_state(guarded, tmp_path / "state.npz")
    saved = W.get_value()
    train()
    symopt.load_state(guarded, tmp_path / "state.npz")
    np.testing.assert_array_equal(W.get_value(), saved)
    assert symopt.get_state(guarded)["adam.t"].get_value() == 1


def test_a_parameter_that_is_not_shared_is_a_value_error_too():
    """Lasagne and PyMC document ValueError; symopt raised TypeError: ParamError is both."""
    x = pt.dvector("x")
    with pytest.raises(ValueError, match="not a shared variable"):
        symopt.sgd((x**2).sum(), [x])
    with pytest.raises(TypeError, match="not a shared variable"):
        symopt.get_or_compute_grads((x**2).sum(), [x])
    n = pytensor.shared(np.arange(3), name="n")
    with pytest.raises(symopt.ParamError, match="has dtype int64"):
        symopt.adam(n.sum() * 1.0, [n])
    assert issubclass(symopt.ParamError, TypeError) and issubclass(symopt.ParamError, ValueError)


# --------------------------------------------------------------------------------------
# Configured rules look like a functools.partial
# --------------------------------------------------------------------------------------


def test_a_configured_rule_looks_like_a_partial(model):
    W, b, loss, grad = model
    opt = symopt.momentum(learning_rate=0.01, momentum=0.5)
    assert opt.func is symopt.momentum and opt.args == ()
    assert opt.keywords == {"learning_rate": 0.01, "momentum": 0.5}
    assert opt.keywords is opt.hyperparameters
    # an override at call time, as partial(f, lr=...)(loss, params, lr=...) does
    train = pytensor.function([], [], updates=opt(loss, [W, b], learning_rate=0.1))
    w, c = W.get_value(), b.get_value()
    train()
    gw, gc = grad(w, c)
    np.testing.assert_allclose(W.get_value(), w - 0.1 * gw, rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), c - 0.1 * gc, rtol=1e-12)
    assert opt.keywords["learning_rate"] == 0.01  # the configured rule did not change
    # called with neither loss nor params: the rule configured with the overrides
    again = opt(momentum=0.9)
    assert again.keywords == {"learning_rate": 0.01, "momentum": 0.9}
    with pytest.raises(TypeError, match="momentum: got an unexpected keyword argument "
                                        "'beta1'; its hyperparameters are learning_rate"):
        opt(loss, [W, b], beta1=0.9)
    with pytest.raises(TypeError, match="hyperparameters only by name"):
        opt(loss, [W, b], 0.1)
    with pytest.raises(ValueError, match="negative"):
        opt(loss, [W, b], learning_rate=-1.0)


def test_a_step_scheduler_written_for_pymc_partials(model):
    """The step scheduler of pymc issue 6954, in our words: it swaps the configured
    learning rate for a shared variable by editing ``keywords`` in place, and adds that
    variable's update, driven by the rule's own step counter (the last update)."""
    W, b, loss, grad = model

    def step_scheduler(optimizer, every, gamma):
        shared_lr = pytensor.shared(float(optimizer.keywords["learning_rate"]), "lr")
        optimizer.keywords["learning_rate"] = shared_lr

        def scheduled(loss_or_grads, params):
            updates = optimizer(loss_or_grads, params)
            t = updates[list(updates.keys())[-1]]  # the counter's new value
            updates[shared_lr] = pt.switch(pt.eq(pt.mod(t, every), 0),
                                           shared_lr * gamma, shared_lr)
            return updates

        return scheduled, shared_lr

    scheduled, lr = step_scheduler(symopt.adam(learning_rate=0.1), every=3, gamma=0.5)
    train = pytensor.function([], [], updates=scheduled(loss, [W, b]))
    adam = reference.Adam([W.get_value(), b.get_value()], learning_rate=0.1)
    expected = [W.get_value(), b.get_value()]
    for k in range(1, 8):
        train()
        expected = adam.step(expected, grad(*expected))
        adam.learning_rate = 0.1 * 0.5 ** (k // 3)  # the rate of the next step
        assert lr.get_value() == adam.learning_rate
    np.testing.assert_allclose(W.get_value(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(b.get_value(), expected[1], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Scripts unchanged but for the import: the text of the code is run, its import lines
# swapped and nothing else
# --------------------------------------------------------------------------------------


def port(source, imports):
    """``source`` with the lines starting with a key of ``imports`` given that key's value
    instead; every line that changes is an import."""
    lines = []
    for line in source.splitlines():
        new = next((ours + line[len(old):] for old, ours in imports.items()
                    if line.startswith(old)), line)
        assert new == line or line.startswith(("import ", "from ")), line
        lines.append(new)
    assert lines != source.splitlines(), "nothing to port"
    return "\n".join(lines)


def run(source, imports):
    """Run the ported ``source``; its global names afterwards."""
    namespace = {"__name__": "ported"}
    exec(compile(port(source, imports), "<ported script>", "exec"), namespace)
    return namespace


#: The import lines as a porting user changes them, and only those.
TO_SYMOPT = {
    "from lasagne.updates import": "from symopt import",
    "from lasagne import updates": "from symopt import updates",
    "import lasagne.updates as": "import symopt.updates as",
    "from pymc.variational.updates import": "from symopt import",
    "from pymc.variational import updates": "from symopt import updates",
    "import pymc.variational.updates as": "import symopt.updates as",
}

#: Lasagne's idioms (written for PyTensor): clip the gradients' total norm, Nesterov
#: momentum on them, a max-norm constraint on W's update, the updates of a layer merged in.
LASAGNE_SCRIPT = """
import numpy as np
import pytensor
import pytensor.tensor as T
from lasagne.updates import nesterov_momentum, norm_constraint, total_norm_constraint
import lasagne.updates as lu

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
W = pytensor.shared(rng.normal(size=(3, 2)), name="W")
b = pytensor.shared(np.zeros(2), name="b")
running = pytensor.shared(np.zeros(2), name="running")
x, y = T.matrix("x"), T.matrix("y")
out = T.dot(x, W) + b
loss = T.mean((out - y) ** 2)
params = [W, b]
grads = lu.get_or_compute_grads(loss, params)
grads, norm = total_norm_constraint(grads, max_norm=0.5, return_norm=True)
updates = nesterov_momentum(grads, params, learning_rate=0.1, momentum=0.9)
updates[W] = norm_constraint(updates[W], max_norm=1.0)
updates.update({running: 0.9 * running + 0.1 * out.mean(axis=0)})
assert W in updates and len(updates.keys()) == 5
train = pytensor.function([x, y], [loss, norm], updates=updates)
history = [train(X, Y) for _ in range(5)]
"""


def test_a_lasagne_script_runs_with_its_import_changed():
    ns = run(LASAGNE_SCRIPT, TO_SYMOPT)
    X, Y = ns["X"], ns["Y"]
    # the script's W before training: its generator's draws after X and Y
    w = np.random.default_rng(0).normal(size=16 * 3 + 16 * 2 + 3 * 2)[-6:].reshape(3, 2)
    c, mean = np.zeros(2), np.zeros(2)
    vw, vc, constrained = np.zeros_like(w), np.zeros_like(c), 0
    for loss, norm in ns["history"]:
        r = X @ w + c - Y
        assert float(loss) == pytest.approx((r**2).mean(), rel=1e-12)
        gw, gc = 2 / Y.size * X.T @ r, 2 / Y.size * r.sum(0)
        n = np.sqrt((gw**2).sum() + (gc**2).sum())
        assert float(norm) == pytest.approx(n, rel=1e-12)
        gw, gc = gw * min(n, 0.5) / (1e-7 + n), gc * min(n, 0.5) / (1e-7 + n)
        mean = 0.9 * mean + 0.1 * (X @ w + c).mean(axis=0)
        vw, vc = 0.9 * vw - 0.1 * gw, 0.9 * vc - 0.1 * gc
        w_new, c = w + 0.9 * vw - 0.1 * gw, c + 0.9 * vc - 0.1 * gc
        cols = np.sqrt((w_new**2).sum(axis=0, keepdims=True))
        w = w_new * np.minimum(cols, 1.0) / (1e-7 + cols)
        constrained += (cols > 1.0).sum()
    assert constrained > 0  # the max-norm constraint acted
    np.testing.assert_allclose(ns["W"].get_value(), w, rtol=1e-12)
    np.testing.assert_allclose(ns["b"].get_value(), c, rtol=1e-12)
    np.testing.assert_allclose(ns["running"].get_value(), mean, rtol=1e-12)


#: PyMC's idioms: the module imported whole, a rule configured as a partial and called
#: with an override, the updates read and extended as its OrderedDict.
PYMC_STYLE_SCRIPT = """
import numpy as np
import pytensor
import pytensor.tensor as pt
from pymc.variational import updates

optimizer = updates.adagrad_window(learning_rate=0.01, n_win=3)
assert optimizer.keywords["n_win"] == 3
w = pytensor.shared(np.array([1.0, -2.0, 0.5]), name="w")
steps = pytensor.shared(np.int64(0), name="steps")
loss = ((w - 3.0) ** 2).sum()
step_updates = optimizer(loss, [w], learning_rate=0.2)
step_updates.update([(steps, steps + 1)])
for var, expr in step_updates.items():
    if var is w:
        step_updates[var] = var + pt.clip(expr - var, -0.25, 0.25)
step = pytensor.function([], loss, updates=step_updates)
losses = [float(step()) for _ in range(6)]
"""


def test_a_pymc_style_script_runs_with_its_import_changed():
    ns = run(PYMC_STYLE_SCRIPT, TO_SYMOPT)
    window = reference.AdagradWindow([np.array([1.0, -2.0, 0.5])], learning_rate=0.2,
                                     n_win=3)
    w = np.array([1.0, -2.0, 0.5])
    for loss in ns["losses"]:
        assert loss == pytest.approx(((w - 3.0) ** 2).sum(), rel=1e-12)
        (proposed,) = window.step([w], [2 * (w - 3.0)])
        w = w + np.clip(proposed - w, -0.25, 0.25)
    np.testing.assert_allclose(ns["w"].get_value(), w, rtol=1e-12)
    assert ns["steps"].get_value() == 6 and ns["losses"][-1] < ns["losses"][0]


def test_the_updates_module_answers_lasagnes_and_pymcs_names():
    from symopt import updates

    for name in updates.PORTED:
        assert getattr(updates, name) is getattr(symopt, name), name
    assert set(updates.PORTED) <= set(dir(updates))
    with pytest.raises(AttributeError, match="has no attribute 'nadam'"):
        updates.nadam  # noqa: B018 (not a name of theirs)


# --------------------------------------------------------------------------------------
# Lasagne's tests/test_updates.py, rewritten for PyTensor and symopt (24 cases)
# --------------------------------------------------------------------------------------

# After 10 steps on f(A) + f(B), f(X) = sum([0.1, 0.2, 0.3] * X**2), from ones: the
# values Lasagne's tests took from torch.optim (Lasagne's comment: computed with
# https://gist.github.com/ebenolson/931e879ed38f257253d2), which its rules match.
TORCH_VALUES = {
    "sgd": [0.81707280688755, 0.6648326359915, 0.5386151140949],
    "momentum": [0.6848486952183, 0.44803321781003, 0.27431190123502],
    "nesterov_momentum": [0.67466543592725, 0.44108468114241, 0.2769002108997],
    "adagrad": [0.55373120047759, 0.55373120041518, 0.55373120039438],
    "rmsprop": [0.83205403985348, 0.83205322744821, 0.83205295664444],
    "adadelta": [0.95453237704725, 0.9545237471374, 0.95452214847397],
    "adam": [0.90034972009036, 0.90034967993061, 0.90034966654402],
    "adamax": [0.90211749000754, 0.90211748762402, 0.90211748682951],
    "amsgrad": [0.90034979581833, 0.90034979581833, 0.90034979581833],
}
LASAGNE_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.5}),
    ("nesterov_momentum", {"learning_rate": 0.1, "momentum": 0.5}),
    ("adagrad", {"learning_rate": 0.1}),
    ("rmsprop", {"learning_rate": 0.01}),
    ("adadelta", {}),
    ("adam", {"learning_rate": 0.01}),
    ("adamax", {"learning_rate": 0.01}),
    ("amsgrad", {"learning_rate": 0.01}),
]
# the float32 cases spell every hyperparameter out
FLOAT32_CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.5}),
    ("nesterov_momentum", {"learning_rate": 0.1, "momentum": 0.5}),
    ("adagrad", {"learning_rate": 0.1, "epsilon": 1e-6}),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-6}),
    ("adadelta", {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-6}),
    ("adam", {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
    ("adamax", {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
    ("amsgrad", {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}),
]


def _weighted_squares(X):
    return (pt.as_tensor_variable(np.array([0.1, 0.2, 0.3])) * X**2).sum()


# the Adam family in Lasagne's own epsilon form too
LASAGNE_FORM = [(method, {**kwargs, "epsilon_placement": "before_correction"})
                for method, kwargs in LASAGNE_CASES if method in ("adam", "adamax", "amsgrad")]


@pytest.mark.parametrize("method, kwargs", LASAGNE_CASES + LASAGNE_FORM)
def test_lasagne_toy_problem_values(method, kwargs):
    """Unchanged."""
    floatX = pytensor.config.floatX
    A = pytensor.shared(np.ones(3, dtype=floatX))
    B = pytensor.shared(np.ones(3, dtype=floatX))
    updates = getattr(symopt, method)(_weighted_squares(A) + _weighted_squares(B), [A, B],
                                      **kwargs)
    step = pytensor.function([], [], updates=updates)
    for _ in range(10):
        step()
    np.testing.assert_allclose(A.get_value(), B.get_value())
    np.testing.assert_allclose(A.get_value(), TORCH_VALUES[method], rtol=1e-5)


@pytest.mark.parametrize("method, kwargs", FLOAT32_CASES)
def test_lasagne_float32_stays_float32(method, kwargs):
    """Changed: Lasagne iterates the dict (its keys); ours iterate ``keys()``, since
    iterating the list yields pairs. The Adam family's step counter is int64 (exact
    however long training runs), Lasagne's a floatX scalar; every other updated
    variable, and every update expression, is float32."""
    with pytensor.config.change_flags(floatX="float32"):
        A = pytensor.shared(np.ones(3, dtype="float32"))
        B = pytensor.shared(np.ones(3, dtype="float32"))
        loss = _weighted_squares(A) + _weighted_squares(B)
        for hyper in (kwargs, {k: np.float32(v) for k, v in kwargs.items()}):
            updates = getattr(symopt, method)(loss, [A, B], **hyper)
            counters = [v for v in updates.keys() if getattr(state_tag(v), "role", "") == "t"]
            assert all(v.dtype == "int64" for v in counters)
            assert len(counters) == (method in ("adam", "adamax", "amsgrad"))
            assert all(v.dtype == "float32" for v in updates.keys() if v not in counters)
            assert all(e.dtype == "float32" for v, e in updates.items() if v not in counters)


def test_lasagne_get_or_compute_grads():
    """Changed: Lasagne's test updates integer shared variables (``shared(1)``), which
    symopt refuses (gradient descent moves a parameter by fractions: an integer one
    would be truncated); here they are floats. The refusal is a ValueError too."""
    A = pytensor.shared(1.0)
    B = pytensor.shared(1.0)
    loss = A + B
    grads = symopt.get_or_compute_grads(loss, [A, B])
    assert symopt.get_or_compute_grads(grads, [A, B]) is grads
    with pytest.raises(ValueError):
        symopt.get_or_compute_grads(grads, [A])
    C = pt.dscalar()
    with pytest.raises(ValueError):
        symopt.get_or_compute_grads(A + C, [A, C])
    with pytest.raises(ValueError, match="has dtype int64"):
        symopt.get_or_compute_grads(pytensor.shared(1) * 1.0, [pytensor.shared(1)])


def _column_norms(value, norm_axes):
    """The L2 norms over ``norm_axes`` (Lasagne's ``compute_norms``, our own NumPy)."""
    return np.sqrt((value**2).sum(axis=tuple(norm_axes)))


@pytest.mark.parametrize("ndim", [2, 3])
def test_lasagne_norm_constraint(ndim):
    max_norm = 0.01
    value = np.random.default_rng(ndim).normal(size=(25,) * ndim)
    param = pytensor.shared(value.astype(pytensor.config.floatX))
    update = symopt.norm_constraint(param, max_norm)
    pytensor.function([], [], updates=[(param, update)])()
    assert param.dtype == update.dtype
    default_axes = (0,) if ndim == 2 else tuple(range(1, ndim))
    assert np.max(_column_norms(param.get_value(), default_axes)) <= max_norm * (1 + 1e-5)


def test_lasagne_norm_constraint_norm_axes():
    max_norm, norm_axes = 0.01, (0, 2)
    value = np.random.default_rng(4).normal(size=(10, 20, 30, 40))
    param = pytensor.shared(value.astype(pytensor.config.floatX))
    update = symopt.norm_constraint(param, max_norm, norm_axes=norm_axes)
    pytensor.function([], [], updates=[(param, update)])()
    assert param.dtype == update.dtype
    assert np.max(_column_norms(param.get_value(), norm_axes)) <= max_norm * (1 + 1e-5)


def test_lasagne_norm_constraint_dim6_raises():
    param = pytensor.shared(np.random.default_rng(6).normal(size=(1, 2, 3, 4, 5, 6)))
    with pytest.raises(ValueError, match="Unsupported tensor dimensionality"):
        symopt.norm_constraint(param, 0.01)


def test_lasagne_total_norm_constraint():
    x1, x2 = pt.scalar(), pt.matrix()
    threshold = 5.0
    tensors1 = symopt.total_norm_constraint([x1, x2], threshold, return_norm=False)
    tensors2, norm = symopt.total_norm_constraint([x1, x2], threshold, return_norm=True)
    f1 = pytensor.function([x1, x2], [tensors1[0], tensors1[1]])
    f2 = pytensor.function([x1, x2], [tensors2[0], tensors2[1], norm])
    x_test = np.arange(1 + 9, dtype=pytensor.config.floatX)
    x1_test, x2_test = x_test[-1], x_test[:9].reshape((3, 3))
    x1_out1, x2_out1 = f1(x1_test, x2_test)
    x1_out2, x2_out2, norm_out = f2(x1_test, x2_test)
    np.testing.assert_array_almost_equal(x1_out1, x1_out2)
    np.testing.assert_array_almost_equal(x2_out1, x2_out2)
    x_out = [float(x1_out1)] + list(x2_out1.flatten())
    np.testing.assert_array_almost_equal(np.linalg.norm(x_test), norm_out)
    np.testing.assert_array_almost_equal(np.linalg.norm(x_out), threshold)


# --------------------------------------------------------------------------------------
# PyMC's test_updates_fast, rewritten (9 optimizers x 3 problems x 2 x 4 = 216 cases)
# --------------------------------------------------------------------------------------

PYMC_OPTIMIZERS = ["sgd", "momentum", "nesterov_momentum", "adagrad", "rmsprop", "adadelta",
                   "adam", "adamax", "adagrad_window"]

_a = pytensor.shared(1.0)
_b = _a * 2
_m = pytensor.shared(np.zeros((10,), pytensor.config.floatX))
_n = _m.sum()
_m2 = pytensor.shared(np.zeros((10, 10, 10), pytensor.config.floatX))
_n2 = _b + _n + _m2.sum()


def _reads_as_pymc_dict(updates, params):
    """What ``isinstance(updates, dict)`` stood for: the mapping of PyMC's OrderedDict."""
    assert isinstance(updates, symopt.Updates)
    as_dict = dict(updates)
    assert list(as_dict) == updates.keys() and len(as_dict) == len(updates)
    for p in params:
        assert p in updates and updates[p] is as_dict[p]
    return True


@pytest.mark.parametrize("opt", PYMC_OPTIMIZERS)
@pytest.mark.parametrize("getter", [
    lambda t: t,              # loss and params: updates
    lambda t: (None, t[1]),   # no loss: ValueError
    lambda t: (t[0], None),   # no params: ValueError
    lambda t: (None, None),   # neither: a configured rule
], ids=["all_params", "missing_loss", "missing_params", "all_missing"])
@pytest.mark.parametrize("kwargs", [{}, {"learning_rate": 1e-2}],
                         ids=["without_args", "with_args"])
@pytest.mark.parametrize("loss_and_params", [(_b, [_a]), (_n, [_m]), (_n2, [_a, _m, _m2])],
                         ids=["scalar", "matrix", "mixed"])
def test_pymc_updates_fast(opt, loss_and_params, kwargs, getter):
    """Changed: ``assert isinstance(updates, dict)`` became the mapping checks of
    ``_reads_as_pymc_dict``: our updates are the list of pairs that also reads as one."""
    rule = getattr(symopt, opt)
    loss, params = getter(loss_and_params)
    args = {**kwargs, "loss_or_grads": loss, "params": params}
    if loss is None and params is None:
        configured = rule(**args)
        assert callable(configured)
        assert _reads_as_pymc_dict(configured(_b, [_a]), [_a])
        assert _reads_as_pymc_dict(rule(_b, [_a]), [_a])
    elif loss is None or params is None:
        with pytest.raises(ValueError):
            rule(**args)
    else:
        assert _reads_as_pymc_dict(rule(**args), params)
