"""partition, masked, multi_steps, lookahead, ema and in-graph schedules, step by step.

Every case runs in one compiled function (one compilation for the file), on the quadratic
of :mod:`tests.core.toys`, and is compared with a NumPy transcription written here from
the definitions (optax's documented semantics, the Lookahead paper) and, where optax has
the same piece, with optax in float64. Tolerance: relative 1e-10 over 14 steps; the
implementations order a few operations differently (optax's Adam adds ``eps_root`` and
divides the moments separately), which leaves differences of a few ulps, while any
difference of equation changes the values from the first step where it acts.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytest

import symopt
from symopt.state import state_tag

from .toys import Quadratic

STEPS = 14
SAVE_AT = 6
RTOL = 1e-10
LR, WD = 0.05, 0.1
WARMUP = dict(init_value=0.0, peak_value=0.05, warmup_steps=5, decay_steps=30, end_value=1e-3)


# -- the NumPy transcription ---------------------------------------------------------------
# A rule is (init(params) -> state, update(grads, state, params) -> (steps, state)), on
# lists of arrays; a learning rate is a number or a function of the count.

def np_warmup_cosine(n, init_value, peak_value, warmup_steps, decay_steps, end_value):
    if n < warmup_steps:
        return init_value + (peak_value - init_value) * n / warmup_steps
    k = min(n - warmup_steps, decay_steps - warmup_steps)
    cosine = 0.5 * (1 + np.cos(np.pi * k / (decay_steps - warmup_steps)))
    return end_value + (peak_value - end_value) * cosine


def np_adam(lr, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8):
    def init(params):
        return {"m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params],
                "t": 0}

    def update(grads, state, params):
        t = state["t"] + 1
        rate = lr(state["t"]) if callable(lr) else lr
        m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
        v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
        steps = [-rate * ((mi / (1 - b1**t)) / (np.sqrt(vi / (1 - b2**t)) + eps) + weight_decay * p)
                 for mi, vi, p in zip(m, v, params)]
        return steps, {"m": m, "v": v, "t": t}

    return init, update


np_sgd = (lambda params: None, lambda grads, state, params: ([-LR * g for g in grads], state))


def np_pick(items, chosen):
    return [x for x, c in zip(items, chosen) if c]


def np_masked(rule, mask, others):
    init, update = rule

    def update_masked(grads, state, params):
        sub, state = update(np_pick(grads, mask), state, np_pick(params, mask))
        sub = iter(sub)
        return [next(sub) if c else (g if others == "pass" else 0 * g)
                for g, c in zip(grads, mask)], state

    return (lambda params: init(np_pick(params, mask))), update_masked


def np_partition(rules, labels):
    def init(params):
        return {k: r[0](np_pick(params, [lab == k for lab in labels])) for k, r in rules.items()}

    def update(grads, state, params):
        steps, new = list(grads), {}
        for k, (_, upd) in rules.items():
            chosen = [lab == k for lab in labels]
            sub, new[k] = upd(np_pick(grads, chosen), state[k], np_pick(params, chosen))
            positions = [i for i, c in enumerate(chosen) if c]
            for i, s in zip(positions, sub):
                steps[i] = s
        return steps, new

    return init, update


def np_multi_steps(rule, every):
    init, update = rule

    def update_acc(grads, state, params):
        k = state["k"]
        acc = [a + (g - a) / (k + 1) for a, g in zip(state["acc"], grads)]
        if k == every - 1:
            steps, inner = update(acc, state["inner"], params)
            return steps, {"k": 0, "acc": [0 * a for a in acc], "inner": inner}
        return [0 * g for g in grads], {"k": k + 1, "acc": acc, "inner": state["inner"]}

    return (lambda params: {"k": 0, "acc": [np.zeros_like(p) for p in params],
                            "inner": init(params)}), update_acc


def np_lookahead(rule, k, alpha):
    """The paper's Algorithm 1: k fast steps, then slow += alpha (fast - slow), fast = slow."""
    init, update = rule

    def update_la(grads, state, params):
        steps, inner = update(grads, state["inner"], params)
        fast = [p + s for p, s in zip(params, steps)]
        t = state["t"] + 1
        slow = state["slow"]
        if t % k == 0:
            slow = [s + alpha * (f - s) for s, f in zip(slow, fast)]
            fast = slow
        return [f - p for f, p in zip(fast, params)], {"t": t, "slow": slow, "inner": inner}

    return (lambda params: {"t": 0, "slow": [p.copy() for p in params],
                            "inner": init(params)}), update_la


def np_run(problem, rule, steps=STEPS):
    init, update = rule
    params = problem.initial()
    state = init(params)
    trajectory, states = [], []
    for _ in range(steps):
        s, state = update(problem.grad(params), state, params)
        params = [p + si for p, si in zip(params, s)]
        trajectory.append(params)
        states.append(state)
    return trajectory, states


def np_ema(trajectory, decay, debias):
    average, out = [np.zeros_like(p) for p in trajectory[0]], []
    for t, params in enumerate(trajectory, start=1):
        average = [decay * a + (1 - decay) * p for a, p in zip(average, params)]
        out.append([a / (1 - decay**t) if debias else a for a in average])
    return out


# -- the cases, all in one compiled function -------------------------------------------------

def decay_label(p):
    return "decay" if p.ndim > 1 else "no_decay"


def build_cases(problem):
    cases = {}

    def add(name, make):
        params = problem.shared(suffix=f"_{name}")
        opt = make(params)
        cases[name] = (params, opt if isinstance(opt, list) else opt(problem.loss(params), params))

    add("partition", lambda ps: symopt.partition(
        {"decay": symopt.adamw(learning_rate=LR, weight_decay=WD),
         "no_decay": symopt.adam(learning_rate=LR)}, labels=decay_label))
    add("partition_dict", lambda ps: symopt.partition(
        {"a": symopt.adam(learning_rate=LR), "s": symopt.sgd(learning_rate=LR)},
        labels={ps[0]: "s", ps[1]: "a"}))
    add("masked_rule", lambda ps: symopt.masked(
        symopt.adamw(learning_rate=LR, weight_decay=WD), {ps[0]: True, ps[1]: False}))
    add("masked_block", lambda ps: symopt.chain(
        symopt.masked(symopt.add_decayed_weights(WD), lambda p: p.ndim > 1),
        symopt.adam(learning_rate=LR)))
    add("multi_steps", lambda ps: symopt.multi_steps(
        symopt.adam(learning_rate=symopt.schedules.warmup_cosine_decay(**WARMUP)), every=3))
    add("lookahead", lambda ps: symopt.lookahead(
        symopt.adam(learning_rate=LR), sync_period=4, slow_step_size=0.5))
    add("schedule", lambda ps: symopt.adam(
        learning_rate=symopt.schedules.warmup_cosine_decay(**WARMUP)))
    add("ema", lambda ps: symopt.ema(symopt.adam(problem.loss(ps), ps, LR), decay=0.9))
    add("ema_biased", lambda ps: symopt.ema(symopt.adam(problem.loss(ps), ps, LR), decay=0.9,
                                            debias=False))
    return cases


def np_rule(name):
    adam, adamw = np_adam(LR), np_adam(LR, WD)
    schedule = lambda n: np_warmup_cosine(n, **WARMUP)  # noqa: E731
    return {
        "partition": np_partition({"decay": adamw, "no_decay": adam}, ["decay", "no_decay"]),
        "partition_dict": np_partition({"a": adam, "s": np_sgd}, ["s", "a"]),
        "masked_rule": np_masked(adamw, [True, False], "freeze"),
        "masked_block": None,
        "multi_steps": np_multi_steps(np_adam(schedule), 3),
        "lookahead": np_lookahead(adam, 4, 0.5),
        "schedule": np_adam(schedule),
        "ema": adam,
        "ema_biased": adam,
    }[name]


def record(step, cases, updates):
    trajectories = {name: [] for name in cases}
    states = {name: [] for name in cases}
    for _ in range(STEPS - SAVE_AT):
        step()
        for name, (params, ups) in cases.items():
            trajectories[name].append([p.get_value() for p in params])
            states[name].append({k: v.get_value() for k, v in symopt.get_state(ups).items()})
    return trajectories, states


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The trajectories of every case, and a second run of the end after save and load."""
    problem = Quadratic()
    cases = build_cases(problem)
    updates = [u for _, ups in cases.values() for u in ups]
    step = pytensor.function([], [], updates=updates)
    first = {name: [] for name in cases}
    state = {name: [] for name in cases}
    for _ in range(SAVE_AT):
        step()
        for name, (params, ups) in cases.items():
            first[name].append([p.get_value() for p in params])
            state[name].append({k: v.get_value() for k, v in symopt.get_state(ups).items()})
    # one checkpoint per case: the cases share counter names (adam.t, ...), which one
    # checkpoint refuses to hold
    checkpoints = tmp_path_factory.mktemp("combinators")
    for name, (_, ups) in cases.items():
        symopt.save_state(ups, checkpoints / f"{name}.npz")
    rest, rest_state = record(step, cases, updates)
    for name, (_, ups) in cases.items():
        symopt.load_state(ups, checkpoints / f"{name}.npz")
    again, again_state = record(step, cases, updates)
    for name in cases:
        first[name] += rest[name]
        state[name] += rest_state[name]
    return problem, cases, first, state, (rest, rest_state, again, again_state)


NAMES = ["partition", "partition_dict", "masked_rule", "multi_steps", "lookahead", "schedule",
         "ema", "ema_biased"]


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_numpy_transcription(run, name):
    problem, _, trajectories, states, _ = run
    expected, _ = np_run(problem, np_rule(name))
    for got, want in zip(trajectories[name], expected, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=1e-14)
    if name.startswith("ema"):
        averaged = np_ema(expected, 0.9, debias=name == "ema")
        role = "average" if name == "ema" else "ema"
        for step_state, want in zip(states[name], averaged, strict=True):
            got = [step_state[f"{n}_{name}.{role}"] for n in problem.names]
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=RTOL)


def test_masked_and_lookahead_state_against_numpy(run):
    problem, _, trajectories, states, _ = run
    # the frozen parameter never moves; the masked rule keeps no state for it
    assert all(np.array_equal(t[1], problem.initial()[1]) for t in trajectories["masked_rule"])
    assert "b_masked_rule.m" not in states["masked_rule"][0]
    assert "W_masked_rule.m" in states["masked_rule"][0]
    _, np_states = np_run(problem, np_rule("lookahead"))
    for got, want in zip(states["lookahead"], np_states, strict=True):
        for n, w in zip(problem.names, want["slow"], strict=True):
            np.testing.assert_allclose(got[f"{n}_lookahead.slow"], w, rtol=RTOL)
        assert got["lookahead.t"] == want["t"]


def test_multi_steps_moves_only_every_third_call(run):
    problem, _, trajectories, states, _ = run
    moved = [not np.array_equal(a[0], b[0]) for a, b in
             zip([problem.initial()] + trajectories["multi_steps"], trajectories["multi_steps"])]
    # the first step of the rule is at the schedule's count 0, a learning rate of 0.0
    assert moved == [(i + 1) % 3 == 0 and i > 2 for i in range(STEPS)]
    # the schedule inside advances with the inner rule, once per 3 calls
    assert [int(s["learning_rate.t"]) for s in states["multi_steps"]] == \
        [(i + 1) // 3 for i in range(STEPS)]


@pytest.mark.parametrize("name", NAMES + ["masked_block"])
def test_save_and_load_mid_run_resumes_bit_for_bit(run, name):
    _, _, _, _, (rest, rest_state, again, again_state) = run
    for a, b in zip(rest[name], again[name], strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
    for a, b in zip(rest_state[name], again_state[name], strict=True):
        assert a.keys() == b.keys()
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_state_is_named_and_tagged(run):
    _, cases, _, _, _ = run
    names = {name: list(symopt.get_state(ups)) for name, (_, ups) in cases.items()}
    assert names["multi_steps"] == ["W_multi_steps.acc_grad", "b_multi_steps.acc_grad",
                                    "W_multi_steps.m", "W_multi_steps.v", "b_multi_steps.m",
                                    "b_multi_steps.v", "adam.t", "learning_rate.t",
                                    "multi_steps.t"]
    assert names["lookahead"][-3:] == ["W_lookahead.slow", "b_lookahead.slow", "lookahead.t"]
    assert names["ema"][-5:] == ["W_ema.ema", "W_ema.average", "b_ema.ema", "b_ema.average",
                                 "ema.t"]
    for _, ups in cases.values():
        for var, _ in ups:
            tag = state_tag(var)
            if tag is not None and tag.role == "t":
                assert var.dtype == "int64"
    avg = symopt.averages(cases["ema"][1])
    assert [v.name for v in avg.values()] == ["W_ema.average", "b_ema.average"]
    assert [v.name for v in symopt.averages(cases["ema_biased"][1]).values()] == \
        ["W_ema_biased.ema", "b_ema_biased.ema"]


# -- optax, step by step -------------------------------------------------------------------

@pytest.fixture(scope="module")
def optax_run():
    optax = pytest.importorskip("optax", reason="optax is an optional test dependency")
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    return optax, jnp


def optax_trajectory(problem, jnp, optax, opt, steps=STEPS):
    params = {n: jnp.asarray(x) for n, x in zip(problem.names, problem.initial())}
    state = opt.init(params)
    out = []
    for _ in range(steps):
        grads = problem.grad([np.asarray(params[n]) for n in problem.names])
        updates, state = opt.update(dict(zip(problem.names, map(jnp.asarray, grads))),
                                    state, params)
        params = optax.apply_updates(params, updates)
        out.append([np.asarray(params[n]) for n in problem.names])
    return out


def optax_rule(optax, name):
    schedule = optax.warmup_cosine_decay_schedule(
        **{k: np.float64(v) if isinstance(v, float) else v for k, v in WARMUP.items()})
    mask = {"W": True, "b": False}
    return {
        "partition": optax.partition(
            {"decay": optax.adamw(LR, weight_decay=WD), "no_decay": optax.adam(LR)},
            {"W": "decay", "b": "no_decay"}),
        "partition_dict": optax.partition({"a": optax.adam(LR), "s": optax.sgd(LR)},
                                          {"W": "s", "b": "a"}),
        "masked_rule": optax.partition({"on": optax.adamw(LR, weight_decay=WD),
                                        "off": optax.set_to_zero()}, {"W": "on", "b": "off"}),
        "masked_block": optax.chain(optax.masked(optax.add_decayed_weights(WD), mask),
                                    optax.adam(LR)),
        "multi_steps": optax.MultiSteps(optax.adam(schedule), every_k_schedule=3),
        "schedule": optax.adam(schedule),
        "ema": optax.adam(LR),
        "ema_biased": optax.adam(LR),
    }[name]


@pytest.mark.parametrize("name", ["partition", "partition_dict", "masked_rule", "masked_block",
                                  "multi_steps", "schedule", "ema", "ema_biased"])
def test_matches_optax(run, optax_run, name):
    optax, jnp = optax_run
    problem, _, trajectories, states, _ = run
    expected = optax_trajectory(problem, jnp, optax, optax_rule(optax, name))
    # optax divides its int32 count in float32 during the warm-up (0.009999999403953554 for
    # 0.01 at count 1), so with a schedule the runs agree to float32's precision on the rate
    rtol = 2e-7 if name in ("multi_steps", "schedule") else RTOL
    for got, want in zip(trajectories[name], expected, strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-14)
    if name.startswith("ema"):
        debias = name == "ema"
        ema = optax.ema(0.9, debias=debias)
        ema_state = ema.init([jnp.asarray(p) for p in expected[0]])
        role = "average" if debias else "ema"
        for params, step_state in zip(expected, states[name], strict=True):
            average, ema_state = ema.update([jnp.asarray(p) for p in params], ema_state)
            for n, a in zip(problem.names, average, strict=True):
                np.testing.assert_allclose(step_state[f"{n}_{name}.{role}"], a, rtol=RTOL)


def test_lookahead_matches_optax(run, optax_run):
    optax, jnp = optax_run
    problem, _, trajectories, states, _ = run
    opt = optax.lookahead(optax.adam(LR), sync_period=4, slow_step_size=0.5)
    start = {n: jnp.asarray(x) for n, x in zip(problem.names, problem.initial())}
    params = optax.LookaheadParams.init_synced(start)
    state = opt.init(params)
    for got, got_state in zip(trajectories["lookahead"], states["lookahead"], strict=True):
        grads = problem.grad([np.asarray(params.fast[n]) for n in problem.names])
        updates, state = opt.update(dict(zip(problem.names, map(jnp.asarray, grads))),
                                    state, params)
        params = optax.apply_updates(params, updates)
        for n, g in zip(problem.names, got, strict=True):
            np.testing.assert_allclose(g, params.fast[n], rtol=RTOL, atol=1e-14)
            np.testing.assert_allclose(got_state[f"{n}_lookahead.slow"], params.slow[n],
                                       rtol=RTOL, atol=1e-14)


# -- types, the fused path, pm.fit-style use, errors ---------------------------------------

def float32_rules(ps):
    schedule = symopt.schedules.warmup_cosine_decay(0.0, 0.1, 2, 10)
    return [
        symopt.partition({"a": symopt.adamw(learning_rate=schedule),
                          "b": symopt.sgd(learning_rate=0.1)},
                         labels=lambda p: "a" if p.ndim > 1 else "b"),
        symopt.masked(symopt.adam(learning_rate=0.1), lambda p: p.ndim > 1),
        symopt.multi_steps(symopt.momentum(learning_rate=0.1), every=2),
        symopt.lookahead(symopt.adam(learning_rate=schedule)),
    ]


def test_float32_stays_float32_everywhere():
    with pytensor.config.change_flags(floatX="float32"):
        problem = Quadratic(dtype="float32")
        for i, rule in enumerate(float32_rules(None)):
            ps = problem.shared(suffix=str(i))
            updates = symopt.ema(rule(problem.loss(ps), ps), decay=0.99)
            for var, expression in updates:
                assert expression.type == var.type, (rule, var)


def test_elementwise_wrappers_run_on_the_fused_path():
    problem = Quadratic()
    schedule = symopt.schedules.linear(0.1, 0.0, 10)
    rules = [symopt.multi_steps(symopt.adam(learning_rate=schedule), every=2),
             symopt.lookahead(symopt.momentum(learning_rate=0.1), sync_period=3)]
    built = []
    for fuse in (False, True):
        for i, rule in enumerate(rules):
            ps = problem.shared(suffix=f"{i}{fuse}")
            built.append((ps, rule(problem.loss(ps), ps, fuse=fuse)))
    assert rules[0].elementwise and rules[1].elementwise
    assert not symopt.partition({"a": symopt.sgd()}, lambda p: "a").elementwise
    step = pytensor.function([], [], updates=[u for _, ups in built for u in ups])
    for _ in range(7):
        step()
    for (plain, _), (fused, _) in zip(built[:2], built[2:]):
        for a, b in zip(plain, fused):
            np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-12)


def test_the_issue_snippet_runs_as_written():
    W = pytensor.shared(np.ones((3, 2)), name="W")
    b = pytensor.shared(np.zeros(2), name="b")
    params = [W, b]
    cost = ((W.sum(axis=0) + b - 1.0) ** 2).sum()
    opt = symopt.partition({"decay": symopt.adamw(learning_rate=1e-3, weight_decay=0.01),
                            "no_decay": symopt.adam(learning_rate=1e-3)},
                           labels=lambda p: "decay" if p.ndim > 1 else "no_decay")
    opt = symopt.masked(symopt.adamw(learning_rate=1e-3), {W: True, b: False})
    opt = symopt.multi_steps(symopt.adam(learning_rate=1e-3), every=4)
    opt = symopt.lookahead(symopt.sgd(learning_rate=0.1), sync_period=6, slow_step_size=0.5)
    updates = symopt.ema(opt(cost, params), decay=0.999, debias=True)
    avg = symopt.averages(updates)
    lr = symopt.schedules.warmup_cosine_decay(init_value=0.0, peak_value=1e-3, warmup_steps=100,
                                              decay_steps=10_000, end_value=1e-5)
    more = symopt.adam(cost, params, learning_rate=lr)
    assert set(avg) == {W, b} and len(more) == 8  # W, b, their m and v, two counters
    assert isinstance(symopt.chain(symopt.clip_by_global_norm(1.0), opt), symopt.Transform)


def test_masked_freezes_what_a_rule_would_step_and_passes_what_a_block_would():
    from symopt.combinators import _descends

    assert _descends(symopt.adam(learning_rate=0.1))
    assert _descends(symopt.scale_by_learning_rate(0.1))
    assert _descends(symopt.chain(symopt.clip_by_global_norm(1.0), symopt.adam()))
    assert _descends(symopt.chain(symopt.scale_by_adam(), symopt.scale_by_learning_rate(0.1)))
    assert not _descends(symopt.add_decayed_weights(0.1))
    assert not _descends(symopt.chain(symopt.clip(1.0), symopt.scale_by_adam()))
    W = pytensor.shared(np.ones(2), name="W")
    for rule, others in [(symopt.chain(symopt.clip(1.0), symopt.sgd(learning_rate=0.1)),
                          "freeze"), (symopt.clip(1.0), "pass")]:
        assert symopt.masked(rule, {W: False}).hyperparameters["others"] == others


def test_clear_errors():
    W = pytensor.shared(np.ones((2, 2)), name="W")
    b = pytensor.shared(np.ones(2), name="b")
    other = pytensor.shared(np.ones(2), name="other")
    loss = (W ** 2).sum() + (b ** 2).sum()
    with pytest.raises(ValueError, match="label 'x', which has no rule"):
        symopt.partition({"a": symopt.sgd()}, labels=lambda p: "x")(loss, [W, b])
    with pytest.raises(ValueError, match="labels has no label for TensorSharedVariable 'b'"):
        symopt.partition({"a": symopt.sgd()}, labels={W: "a"})(loss, [W, b])
    with pytest.raises(ValueError, match="mask names TensorSharedVariable 'other'"):
        symopt.masked(symopt.sgd(), {W: True, b: False, other: True})(loss, [W, b])
    with pytest.raises(TypeError, match="labels is keyed by 'W', a name"):
        symopt.partition({"a": symopt.sgd()}, labels={"W": "a", "b": "a"})(loss, [W, b])
    with pytest.raises(ValueError, match="mask has no True or False for"):
        symopt.masked(symopt.sgd(), {W: True})(loss, [W, b])
    with pytest.raises(TypeError, match="must be True or False"):
        symopt.masked(symopt.sgd(), lambda p: "yes")(loss, [W, b])
    with pytest.raises(ValueError, match="every must be >= 1, got 0"):
        symopt.multi_steps(symopt.sgd(), every=0)
    with pytest.raises(TypeError, match="every must be an integer"):
        symopt.multi_steps(symopt.sgd(), every=2.5)
    with pytest.raises(ValueError, match="sync_period must be >= 1"):
        symopt.lookahead(symopt.sgd(), sync_period=0)
    with pytest.raises(ValueError, match="slow_step_size must be <= 1"):
        symopt.lookahead(symopt.sgd(), slow_step_size=1.5)
    with pytest.raises(ValueError, match="decay must be <= 1"):
        symopt.ema(symopt.sgd(loss, [W, b]), decay=2.0)
    with pytest.raises(ValueError, match="keep no average"):
        symopt.averages(symopt.sgd(loss, [W, b]))
    with pytest.raises(TypeError, match="rules must be a non-empty dict"):
        symopt.partition({}, labels=lambda p: "a")
    with pytest.raises(TypeError, match="not a transform"):
        symopt.multi_steps(3, every=2)
    with pytest.raises(ValueError, match="others must be"):
        symopt.masked(symopt.sgd(), {W: True}, others="drop")
