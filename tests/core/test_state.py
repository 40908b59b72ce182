"""Optimizer state: names, tags, ``get_state``, and save/load that resumes bit for bit."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytensor
import pytest

import symopt
from symopt.lab.rulebook import ROWS, state_names
from symopt.state import BIT_GENERATORS, StateTag, state_tag

from .toys import Quadratic, step_function, values


@pytest.fixture(scope="module")
def problem():
    return Quadratic(seed=4)




@pytest.mark.parametrize("name", sorted(symopt.RULES))
def test_state_names_and_tags(problem, name):
    W, b = params = problem.shared()
    row = ROWS[name]
    updates = symopt.RULES[name](problem.loss(params), params)
    assert [var.name for var, _ in updates] == ["W", "b"] + state_names(name)
    state = symopt.get_state(updates)
    assert list(state) == state_names(name)
    assert list(symopt.get_state(updates, include_params=True)) == ["W", "b"] + state_names(name)
    for key, var in state.items():
        tag = state_tag(var)
        owner, role = key.rsplit(".", 1)
        assert tag.role == role
        if owner == name:  # the rule's own: the counter, or state of the rule as a whole
            assert tag.param is None and tag.rule == name
            assert role == "t" or role in row.scalars
            if role == "t":
                assert var.dtype == "int64" and var.get_value() == 0
            elif role == "rng":
                assert isinstance(var.get_value(), np.random.Generator)
            else:  # a scalar of the parameters' dtype, zero until the first step
                assert var.type.ndim == 0 and var.dtype == W.dtype
                assert var.get_value() == 0
            continue
        assert tag.param is {"W": W, "b": b}[owner]
        if role in row.unshaped:  # factored statistics, a scalar per tensor
            assert var.dtype == tag.param.dtype and var.ndim <= tag.param.ndim
        else:
            if role == "window":  # adagrad_window: the parameter's type and a last axis
                window = var.type.shape[-1]
                assert window == 10 and var.get_value().shape[-1] == window
                assert var.type == tag.param.type.clone(shape=tag.param.type.shape + (window,))
            else:
                assert var.type == tag.param.type
        np.testing.assert_array_equal(var.get_value(), 0)
    assert state_tag(W) is None


def test_tag_contents_and_centred_momentum_rmsprop_state(problem):
    W, b = params = problem.shared()
    updates = symopt.rmsprop(problem.loss(params), params, momentum=0.9, centered=True)
    assert list(symopt.get_state(updates)) == [
        "W.mean_square", "W.mean_grad", "b.mean_square", "b.mean_grad", "W.velocity",
        "b.velocity"]
    velocity = symopt.get_state(updates)["W.velocity"]
    assert state_tag(velocity) == StateTag(rule="momentum", role="velocity", param=W)


def test_rprop_step_sizes_start_at_the_learning_rate(problem):
    params = problem.shared()
    updates = symopt.rprop(problem.loss(params), params, learning_rate=0.25)
    state = symopt.get_state(updates)
    step_function(updates)()
    np.testing.assert_array_equal(state["b.step_size"].get_value(), [0.25, 0.25])
    assert state["rprop.t"].get_value() == 1


def test_counter_counts_steps_exactly(problem):
    params = problem.shared()
    updates = symopt.adam(problem.loss(params), params)
    counter = symopt.get_state(updates)["adam.t"]
    step = step_function(updates)
    for _ in range(7):
        step()
    assert counter.get_value() == 7 and counter.get_value().dtype == np.int64


def test_two_parameters_with_one_name_get_distinct_keys_but_no_checkpoint(tmp_path):
    """In memory the second ``w`` is ``w#2``; in a file that key could hold either ``w``
    once the graph is rebuilt in another order (they were swapped silently): saving and
    loading refuse, saying how to name them."""
    a = pytensor.shared(np.ones(2), name="w")
    b = pytensor.shared(np.ones(3), name="w")
    c = pytensor.shared(np.ones(1))
    updates = symopt.momentum(((a**2).sum() + (b**2).sum() + (c**2).sum()), [a, b, c])
    keys = list(symopt.get_state(updates, include_params=True))
    assert keys == ["w", "w#2", "unnamed", "w.velocity", "w.velocity#2", "param.velocity"]
    message = (r"two or more variables are named 'w', 'w.velocity', so a checkpoint could not "
               r"tell them apart; give every parameter a name of its own when you create it, "
               r"e.g. pytensor.shared\(value, name='hidden.W'\)")
    with pytest.raises(ValueError, match=message):
        symopt.save_state(updates, tmp_path / "state.npz")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"variables are named 'w.velocity', so"):
        symopt.save_state(updates, tmp_path / "state.npz", include_params=False)
    c.name = "c"
    b.name = "w2"
    fine = symopt.momentum(((a**2).sum() + (b**2).sum() + (c**2).sum()), [a, b, c])
    symopt.save_state(fine, tmp_path / "state.npz")
    # the old updates still hold two velocities named w.velocity
    with pytest.raises(ValueError, match=r"variables are named 'w.velocity', so"):
        symopt.load_state(updates, tmp_path / "state.npz")


# --------------------------------------------------------------------------------------
# save_state / load_state
# --------------------------------------------------------------------------------------

RESUME_CASES = [  # (rule, hyperparameters, wrapped in skip_nonfinite): the rows' own,
    (name, row.resume, False) for name, row in ROWS.items() if row.resume is not None
] + [("adam", ROWS["adam"].resume, True)]  # and Adam behind the NaN guard


def build(problem, name, kwargs, guard=False):
    params = problem.shared()
    updates = symopt.RULES[name](problem.loss(params), params, **kwargs)
    if guard:
        updates = symopt.skip_nonfinite(updates)
    return params, updates


@pytest.mark.parametrize("name, kwargs, guard", RESUME_CASES,
                         ids=[c[0] + ("+skip_nonfinite" if c[2] else "") for c in RESUME_CASES])
def test_save_then_load_into_a_rebuilt_graph_resumes_bit_for_bit(problem, tmp_path, name,
                                                                 kwargs, guard):
    path = tmp_path / "state.npz"
    params, updates = build(problem, name, kwargs, guard)
    step = step_function(updates)
    for _ in range(10):
        step()
    symopt.save_state(updates, path)
    saved_keys = sorted(np.load(path).files)
    assert saved_keys == sorted(symopt.get_state(updates, include_params=True))
    for _ in range(10):
        step()
    continuous = values(params)

    # a fresh graph: new shared variables, new compile; only the file links the two
    fresh_params, fresh_updates = build(problem, name, kwargs, guard)
    symopt.load_state(fresh_updates, path)
    fresh_step = step_function(fresh_updates)
    for _ in range(10):
        fresh_step()
    for got, expected in zip(values(fresh_params), continuous):
        np.testing.assert_array_equal(got, expected)

    # and the optimizer state mattered: parameters alone do not resume the run
    bare_params, bare_updates = build(problem, name, kwargs, guard)
    with np.load(path) as saved:
        for p in bare_params:
            p.set_value(saved[p.name])
    bare_step = step_function(bare_updates)
    for _ in range(10):
        bare_step()
    assert any(not np.allclose(a, b, rtol=1e-8) for a, b in zip(values(bare_params), continuous))


def test_load_state_without_parameters_leaves_them_alone(problem, tmp_path):
    path = tmp_path / "state.npz"
    params, updates = build(problem, "momentum", {"learning_rate": 0.1})
    step_function(updates)()
    symopt.save_state(updates, path, include_params=False)
    assert sorted(np.load(path).files) == ["W.velocity", "b.velocity"]
    fresh_params, fresh_updates = build(problem, "momentum", {"learning_rate": 0.1})
    symopt.load_state(fresh_updates, path, include_params=False)
    np.testing.assert_array_equal(symopt.get_state(fresh_updates)["W.velocity"].get_value(),
                                  symopt.get_state(updates)["W.velocity"].get_value())
    np.testing.assert_array_equal(fresh_params[0].get_value(), problem.initial()[0])


def test_load_state_errors(problem, tmp_path):
    _, updates = build(problem, "adam", {})
    with pytest.raises(FileNotFoundError, match="no optimizer state file at .*missing.npz"):
        symopt.load_state(updates, tmp_path / "missing.npz")

    path = tmp_path / "adam.npz"
    symopt.save_state(updates, path)
    _, momentum_updates = build(problem, "momentum", {})
    with pytest.raises(ValueError, match=r"does not match.*missing \['W.velocity'.*"
                                         r"unexpected \['W.m'"):
        symopt.load_state(momentum_updates, path)

    W = pytensor.shared(np.zeros((2, 3)), name="W")
    b = pytensor.shared(np.zeros(2), name="b")
    loss = (W**2).sum() + (b**2).sum()
    with pytest.raises(ValueError, match=r"saved 'W' has shape \(3, 2\).*shape \(2, 3\)"):
        symopt.load_state(symopt.adam(loss, [W, b]), path)

    W32 = pytensor.shared(np.zeros((3, 2), dtype="float32"), name="W")
    b32 = pytensor.shared(np.zeros(2, dtype="float32"), name="b")
    loss32 = (W32**2).sum() + (b32**2).sum()
    with pytest.raises(ValueError, match="dtype float64.*dtype float32"):
        symopt.load_state(symopt.adam(loss32, [W32, b32]), path)
    # nothing was half-loaded by the failed attempts
    np.testing.assert_array_equal(W32.get_value(), 0)


# --------------------------------------------------------------------------------------
# checkpoints: the path written, any names, atomic saves, loads that check everything
# --------------------------------------------------------------------------------------


def _trained(problem, name="adam", kwargs=None, steps=3):
    params, updates = build(problem, name, kwargs or {})
    step = step_function(updates)
    for _ in range(steps):
        step()
    return params, updates


def _snapshot(updates):
    out = {}
    for key, var in symopt.get_state(updates, include_params=True).items():
        value = var.get_value()
        out[key] = (json.dumps(value.bit_generator.state)
                    if isinstance(value, np.random.Generator) else np.copy(value))
    return out


def _assert_same_snapshot(a, b):
    assert list(a) == list(b)
    for key in a:
        if isinstance(a[key], str):
            assert a[key] == b[key], key
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_path_given_is_the_path_written(problem, tmp_path):
    """save_state(u, "ckpt") wrote ckpt.npz, and load_state(u, "ckpt") then failed."""
    _, updates = _trained(problem)
    path = tmp_path / "ckpt"
    symopt.save_state(updates, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    _, fresh = build(problem, "adam", {})
    symopt.load_state(fresh, str(path))
    _assert_same_snapshot(_snapshot(fresh), _snapshot(updates))
    # an open file works too, both ways
    with open(tmp_path / "other", "wb") as handle:
        symopt.save_state(updates, handle)
    with open(tmp_path / "other", "rb") as handle:
        symopt.load_state(fresh, handle)


def test_names_that_were_the_writer_s_own_arguments(tmp_path):
    """np.savez(file, **values) took a parameter named 'file' as its own argument (an
    error) and one named 'allow_pickle' as a flag (left out of the file, silently)."""
    params = [pytensor.shared(np.full(2, float(i + 1)), name=n)
              for i, n in enumerate(["file", "allow_pickle", "args", "kwds"])]
    loss = sum((p**2).sum() for p in params)
    updates = symopt.adam(loss, params, 0.1)
    step_function(updates)()
    path = tmp_path / "state.npz"
    symopt.save_state(updates, path)
    with np.load(path) as saved:
        assert sorted(saved.files) == sorted(symopt.get_state(updates, include_params=True))
    fresh = [pytensor.shared(np.zeros(2), name=p.name) for p in params]
    fresh_updates = symopt.adam(sum((p**2).sum() for p in fresh), fresh, 0.1)
    symopt.load_state(fresh_updates, path)
    _assert_same_snapshot(_snapshot(fresh_updates), _snapshot(updates))


def test_a_checkpoint_has_the_permissions_of_a_plain_file(problem, tmp_path):
    _, updates = _trained(problem)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    symopt.save_state(updates, tmp_path / "state.npz")
    assert (tmp_path / "state.npz").stat().st_mode == plain.stat().st_mode
    os.chmod(tmp_path / "state.npz", 0o600)
    symopt.save_state(updates, tmp_path / "state.npz")  # an existing file keeps its own
    assert (tmp_path / "state.npz").stat().st_mode & 0o777 == 0o600


_INTERRUPTED_SAVE = """
import resource, signal, sys
import numpy as np, pytensor, symopt
signal.signal(signal.SIGXFSZ, signal.SIG_IGN if sys.argv[2] == "error" else signal.SIG_DFL)
W = pytensor.shared(np.full((400, 300), 7.0), name="W")
b = pytensor.shared(np.full(300, 7.0), name="b")
updates = symopt.adam((W ** 2).sum() + (b ** 2).sum(), [W, b])
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    symopt.save_state(updates, sys.argv[1])
except OSError as err:
    print("OSError", err.errno)
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["error", "killed"])
def test_a_save_interrupted_mid_write_leaves_the_previous_checkpoint(problem, tmp_path, how):
    """A save that fails half-way (the file-size limit hit: an error, or the process
    killed by SIGXFSZ) used to leave a truncated file where the old checkpoint was. Now
    the old one is still there, byte for byte, and loads."""
    W = pytensor.shared(np.ones((400, 300)), name="W")
    b = pytensor.shared(np.ones(300), name="b")
    updates = symopt.adam((W ** 2).sum() + (b ** 2).sum(), [W, b])
    path = tmp_path / "state.npz"
    symopt.save_state(updates, path)
    old = path.read_bytes()
    assert len(old) > 4 * 65536
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(symopt.__file__).parents[1])] + os.environ.get("PYTHONPATH", "").split(
            os.pathsep)))
    result = subprocess.run([sys.executable, "-c", _INTERRUPTED_SAVE, str(path), how],
                            env=env, capture_output=True, text=True, timeout=300)
    if how == "error":
        assert result.returncode == 3, result.stderr
        assert result.stdout.split() == ["OSError", str(errno.EFBIG)]
        # the temporary file was removed
        assert sorted(p.name for p in tmp_path.iterdir()) == ["state.npz"]
    else:
        assert result.returncode == -signal.SIGXFSZ, result.stderr
        # a killed process cannot clean up: its temporary file stays, beside the old one
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.npz"]
        assert all(n.startswith(".state.npz.") and n.endswith(".tmp") for n in leftovers)
    assert path.read_bytes() == old
    W.set_value(np.zeros((400, 300)))
    symopt.load_state(updates, path)
    np.testing.assert_array_equal(W.get_value(), 1.0)


def _esgd(problem):
    params = problem.shared()
    updates = symopt.esgd(problem.loss(params), params, learning_rate=0.05, seed=1)
    for var in symopt.get_state(updates, include_params=True).values():
        value = var.get_value()
        if not isinstance(value, np.random.Generator):  # values that are not the defaults
            var.set_value(np.asarray(value + (1 if value.dtype.kind == "i" else 0.25),
                                     dtype=value.dtype))
    return updates


def _npz(path, **arrays):
    """An .npz written with NumPy itself, crafted entry by entry."""
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _bad_files(problem, directory):
    """Every kind of bad checkpoint for ESGD's updates on the problem: (file, message)."""
    good = directory / "good.npz"
    symopt.save_state(_esgd(problem), good)
    with np.load(good) as saved:
        entries = {k: saved[k] for k in saved.files}
    raw = good.read_bytes()
    state = json.loads(str(entries["esgd.rng"]))

    def crafted(name, **changes):
        path = directory / name
        _npz(path, **{**entries, **changes})
        return path

    def written(name, data):
        path = directory / name
        path.write_bytes(data)
        return path

    one_npy = directory / "one.npy"
    np.save(one_npy, np.zeros(3))
    other_zip = directory / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("notes.txt", "not an array")
    pickled = directory / "pickled.npz"
    _npz(pickled, **{**entries, "W": np.array([{"a": 1}], dtype=object)})
    corrupted = bytearray(raw)
    start = raw.index(b"W.npy")
    corrupted[start + 200: start + 260] = b"\xff" * 60
    return [
        (written("empty.npz", b""), r"'.*empty.npz' is empty, not an optimizer checkpoint"),
        (written("truncated.npz", raw[:len(raw) // 2]),
         r"'.*truncated.npz' is damaged or not an optimizer checkpoint.*BadZipFile"),
        (written("text.npz", b"W = [1, 2]\n"),
         r"'.*text.npz' is not an optimizer checkpoint: it is not an .npz \(zip\) archive"),
        (written("corrupted.npz", bytes(corrupted)),
         r"'.*corrupted.npz' is damaged or not an optimizer checkpoint"),
        (one_npy, r"'.*one.npy' holds a single .npy array, not an optimizer checkpoint"),
        (other_zip, r"'.*other.zip': the entry 'notes.txt' is not a NumPy array"),
        (pickled, r"'.*pickled.npz' is damaged.*allow_pickle=False"),
        (crafted("extra.npz", extra=np.zeros(1)), r"unexpected \['extra'\]"),
        (crafted("shape.npz", W=np.zeros((2, 3))),
         r"saved 'W' has shape \(2, 3\).*shape \(3, 2\)"),
        (crafted("dtype.npz", b=entries["b"].astype("float32")),
         r"saved 'b' has shape \(2,\) and dtype float32.*dtype float64"),
        (crafted("counter.npz", **{"esgd.t": np.float64(3)}), r"saved 'esgd.t'.*dtype float64"),
        (crafted("rng-array.npz", **{"esgd.rng": np.zeros(3)}),
         r"saved 'esgd.rng' is not a random generator's state"),
        (crafted("rng-json.npz", **{"esgd.rng": np.array("{not json")}),
         r"saved 'esgd.rng' is not a random generator's state"),
        (crafted("rng-seed.npz", **{"esgd.rng": np.array(json.dumps(
            {**state, "bit_generator": "seed"}))}),
         r"saved 'esgd.rng' names the bit generator 'seed'; a checkpoint may only hold one of "
         r"PCG64, PCG64DXSM, Philox, SFC64, MT19937"),
        (crafted("rng-getattr.npz", **{"esgd.rng": np.array(json.dumps(
            {**state, "bit_generator": "__class__"}))}), r"names the bit generator '__class__'"),
        (crafted("rng-list.npz", **{"esgd.rng": np.array("[1, 2]")}),
         r"names the bit generator None"),
        (crafted("rng-state.npz", **{"esgd.rng": np.array(json.dumps(
            {**state, "state": {"state": "x", "inc": 1}}))}),
         r"saved 'esgd.rng' is not a valid PCG64 state"),
    ]


def test_every_kind_of_bad_file_is_refused_and_changes_nothing(problem, tmp_path):
    """A load checks the whole file before it sets anything: it raised BadZipFile,
    EOFError or TypeError on damaged files, set the parameters before finding the
    generator state wrong, and called whatever NumPy function the file named (``seed``
    reseeded NumPy's global generator)."""
    updates = _esgd(problem)
    before = _snapshot(updates)
    global_rng = np.random.get_state()
    cases = _bad_files(problem, tmp_path)
    for path, message in cases:
        with pytest.raises(symopt.CheckpointError, match=message):
            symopt.load_state(updates, path)
        _assert_same_snapshot(_snapshot(updates), before)
    np.testing.assert_array_equal(np.random.get_state()[1], global_rng[1])
    with pytest.raises(symopt.CheckpointError, match="is a directory"):
        symopt.load_state(updates, tmp_path)
    # and the good file loads
    symopt.load_state(updates, tmp_path / "good.npz")


@pytest.mark.parametrize("name", sorted(BIT_GENERATORS))
def test_generator_states_of_every_allowed_bit_generator_load(problem, tmp_path, name):
    updates = _esgd(problem)
    [rng] = [v for v in symopt.get_state(updates).values()
             if isinstance(v.get_value(), np.random.Generator)]
    rng.set_value(np.random.Generator(getattr(np.random, name)(5)))
    symopt.save_state(updates, tmp_path / "state.npz")
    expected = rng.get_value().random(3)
    rng.set_value(np.random.default_rng(0))
    symopt.load_state(updates, tmp_path / "state.npz")
    assert type(rng.get_value().bit_generator).__name__ == name
    np.testing.assert_array_equal(rng.get_value().random(3), expected)
