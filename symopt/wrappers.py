r"""Wrappers that map a rule's updates to new updates.

- :func:`apply_momentum` and :func:`apply_nesterov_momentum`: momentum on top of any
  rule's updates, as Lasagne's ``apply_momentum`` does it;
- :func:`apply_norm_constraint`: a max-norm constraint on updated weights;
- :func:`skip_nonfinite`: the NaN guard, which makes a step all-or-nothing.

Each takes what a rule returned (:class:`symopt.Updates`, a plain list of pairs, or a
Lasagne-style dict) and returns the same kind: a dict of the same class for a dict, else
:class:`symopt.Updates` (a list of pairs that also reads as a mapping).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.scalar import add as scalar_add
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.type import TensorType

from symopt._checks import check_params, describe, like_param
from symopt.blocks import trace
from symopt.constraints import norm_constraint
from symopt.state import state_tag, tag_state
from symopt.updates import Updates

if TYPE_CHECKING:
    from pytensor.graph.basic import Variable
    from pytensor.tensor.sharedvar import TensorSharedVariable

    from symopt._typing import Params, Scalar

    #: a rule's updates: (variable, expression) pairs
    Pairs = Sequence[tuple[Variable, Variable]]

#: updates given as a dict come back as that dict's class
_D = TypeVar("_D", bound=dict[Any, Any])

__all__ = ["apply_momentum", "apply_nesterov_momentum", "apply_norm_constraint",
           "skip_nonfinite"]


def _step_of(param, expression):
    """The step ``s`` of an update ``param + s``.

    Updates made by symopt are literally ``param + s``, and ``s`` is taken from the graph,
    so that momentum on top of them is bit for bit the rule with momentum built in; for
    any other update expression the step is ``expression - param``.
    """
    node = expression.owner
    if (
        node is not None
        and isinstance(node.op, Elemwise)
        and node.op.scalar_op == scalar_add
        and len(node.inputs) == 2
        and node.inputs[0] is param
    ):
        return node.inputs[1]
    return expression - param


def _pairs(updates):
    """The ``(variable, expression)`` pairs of a dict or of a list of pairs."""
    return list(updates.items() if isinstance(updates, dict) else updates)


def _same_kind(updates, pairs):
    """``pairs`` as the kind ``updates`` was: its dict class, else :class:`Updates`."""
    return type(updates)(pairs) if isinstance(updates, dict) else Updates(pairs)


def _with_trace(updates, params, block):
    pairs = _pairs(updates)
    if params is None:
        params = [var for var, _ in pairs if state_tag(var) is None]
    params = check_params(params)
    expressions = {id(var): expr for var, expr in pairs}
    for p in params:
        if id(p) not in expressions:
            raise ValueError(f"{describe(p)} is in params but has no update in updates")
    steps = [_step_of(p, expressions[id(p)]) for p in params]
    new_steps, state = block.transform(steps, params)
    new = {id(p): like_param(p + s, p) for p, s in zip(params, new_steps)}
    result = [(var, new.get(id(var), expr)) for var, expr in pairs] + state
    return _same_kind(updates, result)


@overload
def apply_momentum(updates: _D, params: Params | None = None, momentum: Scalar = 0.9) -> _D: ...
@overload
def apply_momentum(updates: Pairs, params: Params | None = None,
                   momentum: Scalar = 0.9) -> Updates: ...
def apply_momentum(updates: Pairs | _D, params: Params | None = None,
                   momentum: Scalar = 0.9) -> Updates | _D:
    r"""Add classical momentum to the updates of any rule.

    For each parameter with update :math:`\theta + s`:

    .. math:: v \leftarrow \mu\, v + s, \qquad \theta \leftarrow \theta + v

    Parameters
    ----------
    updates : Updates, list of (SharedVariable, TensorVariable) or dict
        What a rule returned (symopt's, Lasagne-style dicts, or hand-written).
    params : list of SharedVariable, optional
        Which parameters get momentum; by default every updated variable that is not
        optimizer state.
    momentum : float or scalar variable, default 0.9

    Returns
    -------
    Updates or dict
        The same kind as ``updates`` (a dict of its class, else :class:`symopt.Updates`),
        with the velocities' updates appended.
        ``apply_momentum(sgd(loss, params, lr), momentum=mu)`` equals
        ``momentum(loss, params, lr, mu)`` bit for bit.
    """
    return _with_trace(updates, params, trace(momentum))


@overload
def apply_nesterov_momentum(updates: _D, params: Params | None = None,
                            momentum: Scalar = 0.9) -> _D: ...
@overload
def apply_nesterov_momentum(updates: Pairs, params: Params | None = None,
                            momentum: Scalar = 0.9) -> Updates: ...
def apply_nesterov_momentum(updates: Pairs | _D, params: Params | None = None,
                            momentum: Scalar = 0.9) -> Updates | _D:
    r"""Add Nesterov momentum to the updates of any rule.

    .. math:: v \leftarrow \mu\, v + s, \qquad \theta \leftarrow \theta + \mu\, v + s

    See :func:`apply_momentum` for the arguments; ``apply_nesterov_momentum(sgd(...))``
    equals :func:`symopt.nesterov_momentum` bit for bit.
    """
    return _with_trace(updates, params, trace(momentum, nesterov=True))


@overload
def apply_norm_constraint(updates: _D, params: Params, max_norm: Scalar,
                          norm_axes: Sequence[int] | None = None,
                          epsilon: Scalar = 1e-7) -> _D: ...
@overload
def apply_norm_constraint(updates: Pairs, params: Params, max_norm: Scalar,
                          norm_axes: Sequence[int] | None = None,
                          epsilon: Scalar = 1e-7) -> Updates: ...
def apply_norm_constraint(updates: Pairs | _D, params: Params, max_norm: Scalar,
                          norm_axes: Sequence[int] | None = None,
                          epsilon: Scalar = 1e-7) -> Updates | _D:
    """Apply :func:`norm_constraint` to the updated values of ``params`` in ``updates``.

    The max-norm regularisation of the slides, "after each training step", folded into
    the same compiled update. Returns the same kind as ``updates`` (a dict of its class,
    else :class:`symopt.Updates`).
    """
    params = check_params(params)
    pairs = _pairs(updates)
    chosen = {id(p) for p in params}
    found = {id(var) for var, _ in pairs} & chosen
    for p in params:
        if id(p) not in found:
            raise ValueError(f"{describe(p)} is in params but has no update in updates")
    result = [
        (var, var.type.filter_variable(norm_constraint(e, max_norm, norm_axes, epsilon))
         if id(var) in chosen else e)
        for var, e in pairs
    ]
    return _same_kind(updates, result)


def _is_tensor(variable):
    return isinstance(variable.type, TensorType)


def _check_counter(counter):
    if not isinstance(counter, SharedVariable):
        raise TypeError(f"skip_nonfinite: counter must be a shared variable holding an integer "
                        f"scalar (pytensor.shared(np.int64(0))), got {describe(counter)}")
    if not _is_tensor(counter) or counter.ndim != 0 or counter.dtype[:3] not in ("int", "uin"):
        what = (f"a {counter.ndim}-d {counter.dtype} tensor" if _is_tensor(counter)
                else f"a {counter.type}")
        raise TypeError(f"skip_nonfinite: counter ({describe(counter)}) must hold an integer "
                        f"scalar, to count skipped steps exactly; it holds {what}")


@overload
def skip_nonfinite(updates: _D, counter: TensorSharedVariable | None = None,
                   return_counter: Literal[False] = False) -> _D: ...
@overload
def skip_nonfinite(updates: Pairs, counter: TensorSharedVariable | None = None,
                   return_counter: Literal[False] = False) -> Updates: ...
@overload
def skip_nonfinite(updates: Pairs | _D, counter: TensorSharedVariable | None = None, *,
                   return_counter: Literal[True]) -> tuple[Updates | _D, TensorSharedVariable]: ...
def skip_nonfinite(updates: Pairs | _D, counter: TensorSharedVariable | None = None,
                   return_counter: bool = False
                   ) -> Updates | _D | tuple[Updates | _D, TensorSharedVariable]:
    """Make the updates all-or-nothing: if any new value is NaN or inf, nothing changes.

    Every floating-point update expression (parameters and optimizer state) is checked;
    if one of them holds a non-finite value, every variable keeps its old value for this
    step, including the rule's step counters, and ``counter`` is incremented. The book
    advises watching for NaN values; this keeps one bad batch from destroying the model.
    State that is not a tensor (ESGD's random generator) moves on all the same: after a
    skipped step the next one draws new random numbers.

    Parameters
    ----------
    updates : list of (SharedVariable, TensorVariable) or dict
    counter : int shared scalar, optional
        Where to count the skipped steps: a shared variable holding an integer scalar
        (anything else is refused); by default a new one named ``nonfinite.skips``,
        which is optimizer state (see :func:`symopt.get_state`).
    return_counter : bool, default False
        Also return the counter.

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> x = pt.dscalar("x")
    >>> ups, skips = skip_nonfinite(symopt.sgd((w * x).sum(), [w], 0.1), return_counter=True)
    >>> step = pytensor.function([x], [], updates=ups)
    >>> _ = step(np.nan); _ = step(1.0)
    >>> w.get_value(), int(skips.get_value())
    (array([0.9]), 1)
    """
    pairs = _pairs(updates)
    if counter is None:
        counter = tag_state(pytensor.shared(np.int64(0), name="nonfinite.skips"),
                            "skip_nonfinite", "skips")
    _check_counter(counter)
    # pt.isfinite does not exist in PyTensor 2.38: "neither NaN nor inf" works in both.
    checks = [~pt.any(pt.or_(pt.isnan(e), pt.isinf(e)))
              for _, e in pairs if _is_tensor(e) and e.dtype.startswith("float")]
    if not checks:
        raise ValueError("skip_nonfinite: there is no floating-point update to check")
    finite = functools.reduce(pt.and_, checks)
    # a variable that is not a tensor (ESGD's random generator) cannot be switched: it
    # moves on, so a skipped step draws new random numbers at the next one
    guarded = [(var, var.type.filter_variable(pt.switch(finite, e, var)) if _is_tensor(e)
                else e) for var, e in pairs]
    guarded.append((counter, pt.switch(finite, counter, counter + 1)))
    result = _same_kind(updates, guarded)
    return (result, counter) if return_counter else result
