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

import json
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable


@dataclass(frozen=True)
class StateTag:
    """What a state variable is: the rule block that owns it, its role, its parameter."""

    rule: str
    role: str
    param: SharedVariable | None = None
    #: for a flat buffer of the fused path: the parameters it holds, end to end
    members: tuple = ()


def tag_state(var, rule, role, param=None):
    """Mark ``var`` as optimizer state of ``rule`` (and of ``param``, if given)."""
    var.tag.symopt_state = StateTag(rule=rule, role=role, param=param)
    return var


def param_state(param, role, rule, fill=0.0, extra_axes=()):
    """A shared variable shaped and typed like ``param``, filled with ``fill``.

    It has the parameter's dtype and static shape (so its broadcast pattern too), and is
    named ``<param name>.<role>``. ``extra_axes`` appends axes of those lengths to the
    shape, for state that keeps several values per element (``adagrad_window``'s window
    of past squared gradients); such state cannot live on the fused path, whose flat
    buffers are parameter-shaped.
    """
    if isinstance(param, SharedVariable):
        shape = param.get_value(borrow=True).shape
    else:  # the fused path's flat stand-in for many parameters: a vector of static length
        shape = param.type.shape
    extra_axes = tuple(int(n) for n in extra_axes)
    value = np.full(shape + extra_axes, fill, dtype=param.dtype)
    var = pytensor.shared(value, name=f"{param.name or 'param'}.{role}",
                          shape=param.type.shape + extra_axes)
    return tag_state(var, rule, role, param)


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
    for p in tag.members:
        shape = p.get_value(borrow=True).shape
        piece = StateSlice(var, start, shape, f"{p.name or 'param'}.{tag.role}")
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


def get_state(updates, include_params=False):
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
        ``W``) gets a ``#2`` suffix on its second occurrence, so that rebuilding the same
        graph gives the same keys.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.zeros(3), name="w")
    >>> list(get_state(symopt.adam((w ** 2).sum(), [w])))
    ['w.m', 'w.v', 'adam.t']
    """
    pairs = updates.items() if isinstance(updates, dict) else updates
    chosen = [piece for var, _ in pairs if include_params or state_tag(var) is not None
              for piece in _expanded(var)]
    return OrderedDict(zip(_unique_keys(chosen), chosen))


def _to_array(value):
    """A value as a plain array: random generators become their state, as JSON text."""
    if isinstance(value, np.random.Generator):
        return np.array(json.dumps(value.bit_generator.state))
    return value


def _from_saved(saved, current):
    """Undo :func:`_to_array` for a variable whose current value is ``current``."""
    if isinstance(current, np.random.Generator):
        state = json.loads(str(saved))
        generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
        generator.bit_generator.state = state
        return generator
    return saved


def save_state(updates, file, include_params=True):
    """Save the values of a rule's state (and by default its parameters) to a ``.npz`` file.

    Random generators (ESGD's probes) are saved as their bit generator's state. Loading
    with :func:`load_state` into the same graph rebuilt from scratch resumes training bit
    for bit.
    """
    values = {key: _to_array(var.get_value())
              for key, var in get_state(updates, include_params).items()}
    np.savez(file, **values)


def load_state(updates, file, include_params=True):
    """Load values written by :func:`save_state` into a rule's state variables.

    Raises
    ------
    FileNotFoundError
        If ``file`` does not exist.
    ValueError
        If the file's names, shapes or dtypes do not match the state of ``updates``.
    """
    if isinstance(file, (str, os.PathLike)) and not os.path.exists(file):
        raise FileNotFoundError(f"no optimizer state file at {os.fspath(file)!r}")
    targets = get_state(updates, include_params)
    with np.load(file) as saved:
        missing = [k for k in targets if k not in saved.files]
        extra = [k for k in saved.files if k not in targets]
        if missing or extra:
            raise ValueError(
                f"the saved state does not match these updates: missing {missing}, "
                f"unexpected {extra}"
            )
        for key, var in targets.items():
            value = saved[key]
            current = var.get_value(borrow=True)
            if isinstance(current, np.random.Generator):
                if value.dtype.kind != "U":
                    raise ValueError(f"saved {key!r} is not a random generator's state")
            elif value.shape != current.shape or value.dtype != current.dtype:
                raise ValueError(
                    f"saved {key!r} has shape {value.shape} and dtype {value.dtype}, "
                    f"but the variable has shape {current.shape} and dtype {current.dtype}"
                )
        for key, var in targets.items():
            var.set_value(_from_saved(saved[key], var.get_value(borrow=True)))
