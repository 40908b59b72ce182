r"""What every rule returns: :class:`Updates`, a list of pairs that also reads as a mapping.

The rules return ``(shared_variable, update_expression)`` pairs, as Theano-era code and
``pytensor.function(updates=...)`` expect them. Code written for ``lasagne.updates`` and
``pymc.variational.updates`` receives an ``OrderedDict`` from the same functions and uses
it as one (``updates[W] = norm_constraint(updates[W], 3)``, ``updates.update(bn_updates)``,
``for p, e in updates.items()``). :class:`Updates` serves both: it *is* the list of pairs,
and it answers the mapping idioms, keyed by the shared variable itself (by identity).

The module also answers the names of ``lasagne.updates`` and ``pymc.variational.updates``
(:data:`PORTED`, the rules and constraints of ``symopt``), so that code importing the
module ports by its import alone: ``from lasagne import updates`` or
``import pymc.variational.updates as updates`` becomes ``from symopt import updates``
(``updates.adam(...)``, ``from symopt.updates import *``).
"""

from __future__ import annotations

from pytensor.graph.basic import Variable

#: The public names of ``lasagne.updates`` and ``pymc.variational.updates``; this module
#: gives symopt's functions of the same names (loaded from ``symopt`` when asked for).
PORTED = (
    "get_or_compute_grads", "sgd", "momentum", "nesterov_momentum", "adagrad",
    "adagrad_window", "rmsprop", "adadelta", "adam", "adamax", "amsgrad",
    "apply_momentum", "apply_nesterov_momentum", "norm_constraint", "total_norm_constraint",
)

__all__ = ["Updates", *PORTED]

_MISSING = object()


class Updates(list):
    r"""A list of ``(shared_variable, update_expression)`` pairs that also reads as a mapping.

    As a list it is what it always was: iterating gives the pairs, ``len`` counts them,
    ``updates[0]`` is the first pair, slices and ``+`` give :class:`Updates` again, and
    ``pytensor.function(..., updates=updates)`` takes it as it is.

    Indexed by a variable, it is the mapping ``variable -> expression`` that Lasagne's and
    PyMC's rules return (an ``OrderedDict`` there). The two kinds of key never overlap:

    - an ``int`` (or anything with ``__index__``: a NumPy integer) or a ``slice`` is a
      position in the list;
    - a PyTensor :class:`~pytensor.graph.basic.Variable` (the shared variable being
      updated) is a key, compared by identity. ``updates[W]`` is ``W``'s expression;
      ``updates[W] = expr`` replaces it in place (its position stays) or appends
      ``(W, expr)`` for a variable that had no update; ``del updates[W]`` removes it.

    Anything else as a key raises a ``TypeError``. The mapping methods are the dict's:
    ``W in updates``, ``keys()``, ``values()``, ``items()`` (lists, in order),
    ``get``, ``setdefault``, ``update(mapping or pairs)``, ``pop(W[, default])``; and
    ``dict(updates)`` and ``OrderedDict(updates)`` give ``variable -> expression``.

    A variable has at most one update (``pytensor.function`` refuses two); the mapping
    methods read and replace the first pair of a variable.

    Parameters
    ----------
    pairs : iterable of (Variable, Variable) pairs, or a mapping, optional

    Examples
    --------
    Lasagne-style code, unchanged but for the import:

    >>> import numpy as np, pytensor, symopt
    >>> W = pytensor.shared(np.ones((2, 2)), name="W")
    >>> b = pytensor.shared(np.zeros(2), name="b")
    >>> updates = symopt.sgd((W ** 2).sum() + (b - 1.0).dot(b - 1.0), [W, b], 0.1)
    >>> updates[W] = symopt.norm_constraint(updates[W], max_norm=1.0)
    >>> W in updates, len(updates), [var.name for var in updates.keys()]
    (True, 2, ['W', 'b'])
    >>> step = pytensor.function([], [], updates=updates)
    >>> _ = step(); b.get_value(), np.linalg.norm(W.get_value(), axis=0).round(6)
    (array([0.2, 0.2]), array([1., 1.]))

    The pairs are still there, for code that loops over them:

    >>> [(var.name, expr.type.dtype) for var, expr in updates]
    [('W', 'float64'), ('b', 'float64')]
    """

    def __init__(self, pairs=()):
        super().__init__(_pairs_of(pairs))

    # -- the two kinds of key ----------------------------------------------------------

    def _position(self, key):
        """The index of ``key``'s pair, or None; ``key`` must be a Variable."""
        for i, (var, _) in enumerate(list.__iter__(self)):
            if var is key:
                return i
        return None

    def __getitem__(self, key):
        if isinstance(key, Variable):
            i = self._position(key)
            if i is None:
                raise KeyError(f"{_describe(key)} has no update here")
            return list.__getitem__(self, i)[1]
        _check_position(key)
        item = list.__getitem__(self, key)
        return Updates(item) if isinstance(key, slice) else item

    def __setitem__(self, key, value):
        if isinstance(key, Variable):
            i = self._position(key)
            if i is None:
                list.append(self, (key, value))
            else:
                list.__setitem__(self, i, (key, value))
            return
        _check_position(key)
        if isinstance(key, slice):
            value = _pairs_of(value)
        else:
            value = _pair(value)
        list.__setitem__(self, key, value)

    def __delitem__(self, key):
        if isinstance(key, Variable):
            i = self._position(key)
            if i is None:
                raise KeyError(f"{_describe(key)} has no update here")
            key = i
        _check_position(key)
        list.__delitem__(self, key)

    def __contains__(self, item):
        if isinstance(item, Variable):
            return self._position(item) is not None
        return list.__contains__(self, item)

    # -- the mapping methods -----------------------------------------------------------

    def keys(self):
        """The updated variables, in order (a list)."""
        return [var for var, _ in list.__iter__(self)]

    def values(self):
        """The update expressions, in order (a list)."""
        return [expr for _, expr in list.__iter__(self)]

    def items(self):
        """The ``(variable, expression)`` pairs, in order (a list of tuples)."""
        return [tuple(pair) for pair in list.__iter__(self)]

    def get(self, key, default=None):
        """``key``'s expression, or ``default`` when ``key`` has no update."""
        _check_key(key, "get")
        i = self._position(key)
        return default if i is None else list.__getitem__(self, i)[1]

    def setdefault(self, key, default=None):
        """``key``'s expression; when it has none, set it to ``default`` first."""
        _check_key(key, "setdefault")
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, other=(), /):
        """Set the updates of ``other`` (a mapping or pairs): replaced in place, or appended."""
        for var, expr in _pairs_of(other):
            self[var] = expr

    def pop(self, key=-1, default=_MISSING):
        """``pop()`` / ``pop(i)``: remove and return a pair, as a list does;
        ``pop(W[, default])``: remove ``W``'s update and return its expression, as a dict does.
        """
        if isinstance(key, Variable):
            i = self._position(key)
            if i is None:
                if default is _MISSING:
                    raise KeyError(f"{_describe(key)} has no update here")
                return default
            return list.pop(self, i)[1]
        if default is not _MISSING:
            raise TypeError("a default is only for pop(variable, default)")
        _check_position(key)
        return list.pop(self, key)

    # -- list operations that keep the kind --------------------------------------------

    def append(self, pair):
        list.append(self, _pair(pair))

    def insert(self, index, pair):
        list.insert(self, index, _pair(pair))

    def extend(self, pairs):
        list.extend(self, _pairs_of(pairs))

    def __iadd__(self, pairs):
        self.extend(pairs)
        return self

    def __add__(self, other):
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        return Updates(list(self) + list(other))

    def copy(self):
        return Updates(self)

    def __repr__(self):
        return f"Updates({list.__repr__(self)})"


def _describe(var):
    name = getattr(var, "name", None)
    return f"{type(var).__name__} {name!r}" if name else type(var).__name__


def _check_position(key):
    if isinstance(key, slice):
        return
    try:
        key.__index__()
    except (AttributeError, TypeError):
        raise TypeError(
            f"updates are indexed by position (an int or a slice) or by the shared variable "
            f"being updated, not by a {type(key).__name__}"
        ) from None


def _check_key(key, method):
    if not isinstance(key, Variable):
        raise TypeError(f"updates.{method}() takes the shared variable being updated, "
                        f"not a {type(key).__name__}")


def _pair(pair):
    """``pair`` as a ``(variable, expression)`` tuple, or a clear error."""
    try:
        var, expr = pair
    except (TypeError, ValueError):
        raise TypeError(f"an update is a (shared variable, expression) pair, got "
                        f"{type(pair).__name__}") from None
    if not isinstance(var, Variable):
        raise TypeError(f"an update is a (shared variable, expression) pair; its first item "
                        f"is a {type(var).__name__}")
    return (var, expr)


def _pairs_of(pairs):
    """The pairs of a mapping (``keys()`` and lookup) or of an iterable of pairs."""
    if hasattr(pairs, "keys") and not isinstance(pairs, list):
        return [_pair((var, pairs[var])) for var in pairs.keys()]
    return [_pair(pair) for pair in pairs]


def __getattr__(name):
    if name in PORTED:
        import symopt

        return getattr(symopt, name)
    raise AttributeError(f"module 'symopt.updates' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *PORTED])
