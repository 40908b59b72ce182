"""Optimizer state: named shared variables tied to their parameter, saved and restored.

Every accumulator a rule creates is a shared variable named ``<param>.<role>`` (for
example ``W.velocity`` or ``W.m``), and every step counter ``<rule>.t`` (``adam.t``).
Each carries a :class:`StateTag` in ``var.tag.symopt_state`` that says which rule made
it and for which parameter, so state is found by that tag and never by its name.

The fused multi-tensor path (:mod:`symopt.fused`) keeps one flat buffer per accumulator
for many parameters (``fused_float32.m``); its tag lists those parameters, and
:func:`get_state` hands out each one's slice under the per-tensor name (``W.m``), so
checkpoints do not depend on the path that wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytensor.graph.basic import Variable

    #: a rule's updates: (variable, expression) pairs
    Pairs = Sequence[tuple[Variable, Variable]]


@dataclass(frozen=True)
class StateTag:
    """What a state variable is: the rule block that owns it, its role, its parameter."""

    rule: str
    role: str
    param: SharedVariable | None = None
    #: for a flat buffer of the fused path: the parameters it holds, end to end
    members: tuple = ()
    #: and their shapes when the buffer was laid out (a parameter may be given another)
    member_shapes: tuple = ()


def tag_state(var, rule, role, param=None):
    """Mark ``var`` as optimizer state of ``rule`` (and of ``param``, if given)."""
    var.tag.symopt_state = StateTag(rule=rule, role=role, param=param)
    return var


def param_state(param, role, rule, fill=0.0, extra_axes=(), shape_of=None):
    """A shared variable shaped and typed like ``param``, filled with ``fill``.

    It has the parameter's dtype and static shape (so its broadcast pattern too), and is
    named ``<param name>.<role>``. ``shape_of`` maps the parameter's shape to another
    (a factored statistic's ``shape[:-1] + (1,)``, a per-tensor scalar's ``()``); it is
    applied to the value's shape and to the static shape alike. ``extra_axes`` appends
    axes of those lengths to the shape, for state that keeps several values per element
    (``adagrad_window``'s window of past squared gradients). State of either kind cannot
    live on the fused path, whose flat buffers are parameter-shaped.
    """
    if isinstance(param, SharedVariable):
        shape = param.get_value(borrow=True).shape
    else:  # the fused path's flat stand-in for many parameters: a vector, its length tagged
        shape = (param.tag.symopt_length,)
    static = param.type.shape
    if shape_of is not None:
        shape, static = tuple(shape_of(tuple(shape))), tuple(shape_of(tuple(static)))
    extra_axes = tuple(int(n) for n in extra_axes)
    value = np.full(tuple(shape) + extra_axes, fill, dtype=param.dtype)
    var = pytensor.shared(value, name=f"{param.name or 'param'}.{role}",
                          shape=tuple(static) + extra_axes)
    return tag_state(var, rule, role, param)


def rule_state(rule, role, dtype, fill=0.0):
    """A scalar shared variable of ``dtype`` named ``<rule>.<role>``, kept for the rule as
    a whole (Prodigy's step-size estimate, the schedule-free average's weights)."""
    var = pytensor.shared(np.asarray(fill, dtype=dtype), name=f"{rule}.{role}", shape=())
    return tag_state(var, rule, role)


def step_counter(rule):
    """An int64 scalar shared variable named ``<rule>.t``, starting at 0.

    Rules add 1 before using it, so the first step sees ``t = 1``. It is an integer so
    that it counts exactly however long training runs; rules cast it to each parameter's
    dtype where they need it in arithmetic.
    """
    return tag_state(pytensor.shared(np.int64(0), name=f"{rule}.t"), rule, "t")


def state_tag(var):
    """The :class:`StateTag` of a state variable, or None for anything else."""
    tag = getattr(var, "tag", None)
    return getattr(tag, "symopt_state", None)


def mark_updated(param):
    """Mark ``param`` as updated by a symopt rule, so that :mod:`symopt.fused.rewrite`
    takes its update loop even when the rule keeps no state (``sgd``)."""
    tag = getattr(param, "tag", None)
    if tag is not None:
        tag.symopt_updated = True


def updated_by_symopt(var):
    """Whether ``var`` is symopt state or a parameter a symopt rule updates."""
    return state_tag(var) is not None or bool(getattr(getattr(var, "tag", None),
                                                      "symopt_updated", False))


class StateSlice:
    """One parameter's part of a flat state buffer, read and written like a shared variable."""

    def __init__(self, buffer, start, shape, name):
        self.buffer, self.start, self.shape, self.name = buffer, start, shape, name
        self.stop = start + int(np.prod(shape))

    @property
    def dtype(self):
        return self.buffer.dtype

    def get_value(self, borrow=False):
        flat = self.buffer.get_value(borrow=True)[self.start: self.stop].reshape(self.shape)
        return flat if borrow else flat.copy()

    def set_value(self, value):
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            raise ValueError(f"{self.name}: shape {value.shape}, expected {self.shape}")
        flat = self.buffer.get_value(borrow=True)
        flat[self.start: self.stop] = value.reshape(-1)
        self.buffer.set_value(flat, borrow=True)

    def __repr__(self):
        return f"StateSlice({self.name!r} of {self.buffer.name!r})"


def _expanded(var):
    """``[var]``, or for a fused flat buffer one :class:`StateSlice` per parameter."""
    tag = state_tag(var)
    if tag is None or not tag.members:
        return [var]
    slices, start = [], 0
    shapes = tag.member_shapes or [p.get_value(borrow=True).shape for p in tag.members]
    for p, shape in zip(tag.members, shapes, strict=True):
        piece = StateSlice(var, start, tuple(shape), f"{p.name or 'param'}.{tag.role}")
        slices.append(piece)
        start = piece.stop
    return slices


def _unique_keys(variables):
    keys, counts = [], {}
    for var in variables:
        base = var.name or "unnamed"
        counts[base] = counts.get(base, 0) + 1
        keys.append(base if counts[base] == 1 else f"{base}#{counts[base]}")
    return keys


def _chosen(updates, include_params):
    pairs = updates.items() if isinstance(updates, dict) else updates
    return [piece for var, _ in pairs if include_params or state_tag(var) is not None
            for piece in _expanded(var)]


def get_state(updates: Pairs | dict[Any, Any], include_params: bool = False
              ) -> OrderedDict[str, SharedVariable | StateSlice]:
    """The state variables of a rule's updates, by name.

    Parameters
    ----------
    updates : list of (SharedVariable, TensorVariable) or dict
        What a rule returned.
    include_params : bool
        Also include the parameters themselves (everything needed to resume training).

    Returns
    -------
    OrderedDict of str to SharedVariable (or StateSlice)
        In the order of ``updates``, the fused path's flat buffers split into one
        :class:`StateSlice` per parameter; a name that occurs twice (two parameters both called
        ``W``) gets a ``#2`` suffix on its second occurrence. :func:`save_state` and
        :func:`load_state` refuse such names: which ``W`` is which would depend on the
        order in which a rebuilt graph lists them.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.zeros(3), name="w")
    >>> list(get_state(symopt.adam((w ** 2).sum(), [w])))
    ['w.m', 'w.v', 'adam.t']
    """
    chosen = _chosen(updates, include_params)
    return OrderedDict(zip(_unique_keys(chosen), chosen))


# ---------------------------------------------------------------------------------------
# checkpoints

#: The NumPy bit generators a checkpoint may name, and the only names looked up.
BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
    "MT19937": np.random.MT19937,
}

_NAMING = ("give every parameter a name of its own when you create it, e.g. "
           "pytensor.shared(value, name='hidden.W'): its state is named after it")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into these updates; the message says why."""


def _checkpoint_state(updates, include_params):
    """``get_state``, refusing two variables of one name (their order would decide which
    value goes where)."""
    chosen = _chosen(updates, include_params)
    names = [var.name or "unnamed" for var in chosen]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two or more variables are named {', '.join(map(repr, repeated))}, "
                         f"so a checkpoint could not tell them apart; {_NAMING}")
    return OrderedDict(zip(names, chosen))


def _plain(state):
    """A bit generator's state with its arrays as lists (MT19937, Philox and SFC64 keep
    arrays in theirs), for JSON; their ``state`` setters take lists back."""
    if isinstance(state, dict):
        return {key: _plain(value) for key, value in state.items()}
    return state.tolist() if isinstance(state, np.ndarray) else state


def _to_array(value):
    """A value as a plain array: random generators become their state, as JSON text."""
    if isinstance(value, np.random.Generator):
        return np.array(json.dumps(_plain(value.bit_generator.state)))
    return np.asarray(value)


def _write_npz(fileobj, values):
    """An ``.npz`` archive (what ``np.load`` reads) of ``values``, any keys, no pickles."""
    with zipfile.ZipFile(fileobj, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        for key, value in values.items():
            with archive.open(f"{key}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)


def _new_file_mode(path):
    """The permissions a plain ``open(path, "w")`` would give (the old file's if any)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (where the system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_state(updates: Pairs | dict[Any, Any], file: str | os.PathLike[str] | IO[bytes],
               include_params: bool = True) -> None:
    """Save the values of a rule's state (and by default its parameters) to an ``.npz`` file.

    The file is written as databases write theirs: to a temporary file in the same
    directory, flushed and synced to disk, then renamed over ``file``, so a save that is
    interrupted (a full disk, a killed process) leaves the previous checkpoint as it was.
    ``file`` is the path written (no ``.npz`` is appended) or an open binary file (then
    written in place, without those guarantees). Random generators (ESGD's probes) are
    saved as their bit generator's state, as JSON text; nothing is pickled. Loading with
    :func:`load_state` into the same graph rebuilt from scratch resumes training bit for
    bit.

    Raises
    ------
    ValueError
        If two variables to save have the same name (give each parameter its own name).
    OSError
        If the file cannot be written; ``file`` is then unchanged.

    Examples
    --------
    >>> import os, tempfile, numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    >>> updates = symopt.adam((w ** 2).sum(), [w], learning_rate=0.1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step()
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint")
    >>> save_state(updates, path)
    >>> sorted(np.load(path).files)
    ['adam.t', 'w', 'w.m', 'w.v']
    """
    values = {key: _to_array(var.get_value(borrow=True))
              for key, var in _checkpoint_state(updates, include_params).items()}
    if hasattr(file, "write"):
        _write_npz(file, values)
        return
    path = os.fspath(file)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_npz(handle, values)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _what_file(file):
    return repr(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else repr(file)


def _read_checkpoint(file):
    """Every array of the checkpoint ``file``, read and checked as an archive of arrays
    (no pickles), or a :class:`CheckpointError` saying what is wrong with it."""
    where = _what_file(file)
    if isinstance(file, (str, os.PathLike)):
        if not os.path.exists(file):
            raise FileNotFoundError(f"no optimizer state file at {os.fspath(file)!r}")
        if os.path.isdir(file):
            raise CheckpointError(f"{where} is a directory, not an optimizer checkpoint")
        with open(file, "rb") as handle:
            head = handle.read(6)
    else:
        position = file.tell()
        head = file.read(6)
        file.seek(position)
    if not head:
        raise CheckpointError(f"{where} is empty, not an optimizer checkpoint (an .npz "
                              "archive written by symopt.save_state)")
    if head.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{where} holds a single .npy array, not an optimizer "
                              "checkpoint (an .npz archive written by symopt.save_state)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise CheckpointError(f"{where} is not an optimizer checkpoint: it is not an .npz "
                              f"(zip) archive (it starts with {head[:4]!r})")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            NotImplementedError) as err:
        raise CheckpointError(f"{where} is damaged or not an optimizer checkpoint: it cannot "
                              f"be read as an .npz archive of arrays ({type(err).__name__}: "
                              f"{err})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"{where}: the entry {key!r} is not a NumPy array")
    return arrays


def _generator_from(saved, key, where):
    """A ``np.random.Generator`` with the bit generator state ``saved`` (JSON text), of a
    bit generator in :data:`BIT_GENERATORS`, or a :class:`CheckpointError`."""
    if saved.dtype.kind != "U" or saved.shape != ():
        raise CheckpointError(f"{where}: saved {key!r} is not a random generator's state")
    try:
        state = json.loads(str(saved))
    except ValueError as err:
        raise CheckpointError(f"{where}: saved {key!r} is not a random generator's state "
                              f"({err})") from None
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if not isinstance(name, str) or name not in BIT_GENERATORS:
        raise CheckpointError(
            f"{where}: saved {key!r} names the bit generator {name!r}; a checkpoint may "
            f"only hold one of {', '.join(BIT_GENERATORS)}")
    bit_generator = BIT_GENERATORS[name](0)
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise CheckpointError(f"{where}: saved {key!r} is not a valid {name} state "
                              f"({type(err).__name__}: {err})") from None
    return np.random.Generator(bit_generator)


def load_state(updates: Pairs | dict[Any, Any], file: str | os.PathLike[str] | IO[bytes],
               include_params: bool = True) -> None:
    """Load values written by :func:`save_state` into a rule's state variables.

    The whole file is read and checked before any variable changes: it must be an
    ``.npz`` archive of arrays (nothing is unpickled), with exactly the names of the
    state of ``updates``, each with its variable's shape and dtype, and random generator
    states of the bit generators in :data:`BIT_GENERATORS` (no other name from the file
    is looked up). A file that fails any check changes nothing. Checkpoints written
    before duplicate names were refused (with ``#2`` keys) cannot be loaded.

    Raises
    ------
    FileNotFoundError
        If ``file`` does not exist.
    CheckpointError
        (a ``ValueError``) If the file is empty, truncated, damaged, not an ``.npz``
        archive, or its names, shapes, dtypes or generator states do not match the state
        of ``updates``.
    ValueError
        If two variables of ``updates`` have the same name.

    Examples
    --------
    >>> import os, tempfile, numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    >>> updates = symopt.momentum((w ** 2).sum(), [w], learning_rate=0.1)
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step()
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
    >>> save_state(updates, path)
    >>> _ = step(); w.get_value()
    array([0.46, 0.92])
    >>> load_state(updates, path); w.get_value()
    array([0.8, 1.6])
    """
    targets = _checkpoint_state(updates, include_params)
    where = _what_file(file)
    saved = _read_checkpoint(file)
    missing = [k for k in targets if k not in saved]
    extra = [k for k in saved if k not in targets]
    if missing or extra:
        raise CheckpointError(
            f"the saved state in {where} does not match these updates: missing {missing}, "
            f"unexpected {extra}"
        )
    values = {}
    for key, var in targets.items():
        value, current = saved[key], var.get_value(borrow=True)
        if isinstance(current, np.random.Generator):
            values[key] = _generator_from(value, key, where)
        elif value.shape != current.shape or value.dtype != current.dtype:
            raise CheckpointError(
                f"saved {key!r} has shape {value.shape} and dtype {value.dtype}, "
                f"but the variable has shape {current.shape} and dtype {current.dtype}"
            )
        else:
            values[key] = value
    for key, var in targets.items():
        var.set_value(values[key])
