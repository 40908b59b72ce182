"""Input checks shared by every rule.

Each check fails early, with a message that names the offending argument, so that a
user never has to read a PyTensor traceback to learn that a parameter was not shared.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable

#: The parameter dtypes the rules update. float16 is refused (see :func:`check_params`).
FLOAT_DTYPES = ("float32", "float64")


class ParamError(TypeError, ValueError):
    """A parameter that cannot be updated: not a shared variable, or not floating point.

    Both a ``TypeError`` (what symopt has always raised) and a ``ValueError`` (what
    Lasagne and PyMC document for a parameter that is not shared), so code written for
    either catches it.
    """


def describe(var) -> str:
    """A short human name for a variable, for error messages."""
    name = getattr(var, "name", None)
    kind = type(var).__name__
    return f"{kind} {name!r}" if name else kind


def check_params(params) -> list:
    """Return ``params`` as a list of floating-point shared variables, or raise."""
    if params is None:
        raise ValueError("params is required: pass the list of shared variables to update")
    if isinstance(params, Variable):
        params = [params]
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of shared variables, got {type(params).__name__}")
    if not params:
        raise ValueError("params is empty: there is nothing to update")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, SharedVariable):
            raise ParamError(
                f"params[{i}] is a {describe(p)}, not a shared variable; update rules can "
                "only update shared variables (make one with pytensor.shared)"
            )
        dtype = getattr(p, "dtype", None)
        if dtype == "float16":
            raise TypeError(
                f"params[{i}] ({describe(p)}) is float16, which symopt's rules do not "
                "update: their small constants vanish there (Adam's epsilon=1e-8 is 0 in "
                "float16, and 0/0 is NaN) and PyTensor's Numba backend has no float16; keep "
                "the parameter in float32 (a float32 master copy, cast to float16 where the "
                "model needs it)"
            )
        if dtype not in FLOAT_DTYPES:
            raise ParamError(
                f"params[{i}] ({describe(p)}) has dtype {dtype}; gradient descent needs a "
                f"floating-point parameter ({', '.join(FLOAT_DTYPES)})"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}] ({describe(p)}) appears twice in params")
        seen.add(id(p))
    return list(params)


def like_param(x, param):
    """``x`` cast to ``param``'s dtype and given ``param``'s static type (shape, broadcast)."""
    x = pt.as_tensor_variable(x)
    if x.dtype != param.dtype:
        x = pt.cast(x, param.dtype)
    return param.type.filter_variable(x, allow_convert=True)


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"


def known_value(value):
    """The value of a hyperparameter when it is known now: a number, a constant's, a
    shared variable's current one; None for a symbolic scalar."""
    if _is_number(value):
        return np.asarray(value)
    if isinstance(value, Constant):
        return np.asarray(value.data)
    if isinstance(value, SharedVariable):
        return np.asarray(value.get_value(borrow=True))
    return None


def _check_range(v, name, shown, low, high, low_open, high_open, where=""):
    """``v`` (a float) against the bounds; ``shown`` is how the user wrote it, ``where``
    says in which dtype ``v`` is (empty: as given)."""
    if not np.isfinite(v):
        if where:
            raise ValueError(f"{name}={shown} is {v} in {where}: too large for the "
                             f"parameters' dtype")
        raise ValueError(f"{name} must be finite, got {shown}")
    became = f" (it is {v!r} in {where})" if where else ""
    if low is not None and (v < low or (low_open and v == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        if where:
            raise ValueError(f"{name} must be {bound} in {where}, the dtype it is used in, "
                             f"got {shown}{became}")
        what = "negative" if low == 0 and not low_open and v < 0 else "out of range"
        raise ValueError(f"{name} must be {bound}, got {shown} ({what})")
    if high is not None and (v > high or (high_open and v == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        if where:
            raise ValueError(f"{name} must be {bound} in {where}, the dtype it is used in, "
                             f"got {shown}{became}")
        raise ValueError(f"{name} must be {bound}, got {shown} (out of range)")


def check_hyper(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """Check a hyperparameter: a real number in range, or a symbolic/shared scalar.

    Numbers, constants (``pt.constant(0.1)``) and the current value of shared variables
    are checked against the bounds now; symbolic scalars can only be checked for their
    shape and dtype, since their value is known at run time. :func:`as_scalar` checks a
    value again in the dtype it is used in.
    """
    if isinstance(value, Variable) and not _is_number(value):
        if getattr(value, "ndim", None) != 0:
            raise ValueError(f"{name} must be a scalar, got a variable with "
                             f"ndim={getattr(value, 'ndim', None)}")
        if value.dtype[:3] not in ("flo", "int", "uin"):
            raise TypeError(f"{name} must be a real scalar, got dtype {value.dtype}")
    elif not _is_number(value):
        raise TypeError(
            f"{name} must be a number, a NumPy scalar, a shared variable or a symbolic "
            f"scalar, got {type(value).__name__}"
        )
    known = known_value(value)
    if known is not None:
        shown = repr(value) if _is_number(value) else repr(known.item())
        _check_range(float(known), name, shown, low, high, low_open, high_open)
    return value


def check_positive_int(value, name):
    """``value`` as an int if it is a positive integer (not a bool), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonzero(value):
    """False only for a literal zero: a rule may then leave a term out of its graph."""
    if isinstance(value, Hyperparameter):
        value = value.value
    return not _is_number(value) or float(value) != 0


class Hyperparameter:
    """A hyperparameter checked now, and again in each dtype it is used in.

    ``hyper = Hyperparameter(0.9, "beta1", low=0, high=1, high_open=True)`` checks the
    value as given (:func:`check_hyper`); ``hyper("float32")`` is the scalar in float32
    (:func:`as_scalar`), refused if the value is out of range there (1 - 1e-9 is 1.0 in
    float32, 1e39 is inf, 1e-50 is 0).
    """

    def __init__(self, value, name, *, low=None, high=None, low_open=False, high_open=False):
        self.bounds = {"low": low, "high": high, "low_open": low_open, "high_open": high_open}
        self.value = check_hyper(value, name, **self.bounds)
        self.name = name

    def __call__(self, dtype):
        return as_scalar(self.value, dtype, self.name, **self.bounds)

    def __repr__(self):
        return f"{self.name}={self.value!r}"


def as_scalar(value, dtype, name=None, *, low=None, high=None, low_open=False,
              high_open=False):
    """A hyperparameter as a scalar of exactly ``dtype``, so it never upcasts a parameter.

    With a ``name``, a value known now (a number, a constant, a shared variable's current
    value) is checked in ``dtype`` against the bounds, as :func:`check_hyper` checks it
    as given: ``beta1=1 - 1e-9`` is 1.0 in float32, ``learning_rate=1e39`` is inf,
    ``epsilon=1e-50`` is 0, and each is refused there with a message that says so.
    """
    if name is not None:
        known = known_value(value)
        if known is not None:
            with np.errstate(over="ignore", under="ignore"):
                in_dtype = float(np.asarray(known, dtype=dtype))
            shown = repr(value) if _is_number(value) else repr(known.item())
            _check_range(in_dtype, name, shown, low, high, low_open, high_open, where=dtype)
    if isinstance(value, Variable):
        return value if value.dtype == dtype else pt.cast(value, dtype)
    return pt.constant(np.asarray(value, dtype=dtype))


def require_loss(loss_or_grads, who):
    """Return ``loss_or_grads`` if it is a scalar floating-point loss, or raise.

    Rules and solvers that differentiate the gradient again, or evaluate it somewhere
    else than at the current parameters, cannot work from gradients alone.

    Raises
    ------
    TypeError
        If a list of gradients (or anything but a variable) is given.
    ValueError
        If the loss is not a floating-point scalar.
    """
    if isinstance(loss_or_grads, (list, tuple)):
        raise TypeError(
            f"{who} needs the loss itself, not a list of gradients: it differentiates the "
            "gradients a second time (curvature) or evaluates them at another point, which a "
            "list of gradient values does not allow; pass the scalar loss"
        )
    if loss_or_grads is None:
        raise ValueError(f"{who}: the loss is required")
    if not isinstance(loss_or_grads, Variable):
        raise TypeError(
            f"{who}: the loss must be a scalar PyTensor variable, got "
            f"{type(loss_or_grads).__name__}"
        )
    if getattr(loss_or_grads, "ndim", None) != 0:
        raise ValueError(
            f"{who}: the loss must be a scalar, got a variable with ndim={loss_or_grads.ndim}; "
            "reduce it first, e.g. with .mean() or .sum()"
        )
    if not loss_or_grads.dtype.startswith("float"):
        raise TypeError(f"{who}: the loss must be floating point, got dtype {loss_or_grads.dtype}")
    return loss_or_grads
