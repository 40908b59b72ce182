"""Input checks shared by every rule.

Each check fails early, with a message that names the offending argument, so that a
user never has to read a PyTensor traceback to learn that a parameter was not shared.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

FLOAT_DTYPES = ("float16", "float32", "float64")


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


def check_hyper(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """Check a hyperparameter: a real number in range, or a symbolic/shared scalar.

    Numbers are checked against the bounds now; symbolic scalars can only be checked for
    their shape and dtype, since their value is known at run time.
    """
    if _is_number(value):
        v = float(value)
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if low is not None and (v < low or (low_open and v == low)):
            bound = f"> {low}" if low_open else f">= {low}"
            what = "negative" if low == 0 and not low_open and v < 0 else "out of range"
            raise ValueError(f"{name} must be {bound}, got {value!r} ({what})")
        if high is not None and (v > high or (high_open and v == high)):
            bound = f"< {high}" if high_open else f"<= {high}"
            raise ValueError(f"{name} must be {bound}, got {value!r} (out of range)")
        return value
    if isinstance(value, Variable):
        if getattr(value, "ndim", None) != 0:
            raise ValueError(f"{name} must be a scalar, got a variable with ndim={value.ndim}")
        if value.dtype[:3] not in ("flo", "int", "uin"):
            raise TypeError(f"{name} must be a real scalar, got dtype {value.dtype}")
        if isinstance(value, SharedVariable):
            check_hyper(np.asarray(value.get_value()), name, low=low, high=high,
                        low_open=low_open, high_open=high_open)
        return value
    raise TypeError(
        f"{name} must be a number, a NumPy scalar, a shared variable or a symbolic scalar, "
        f"got {type(value).__name__}"
    )


def as_scalar(value, dtype):
    """A hyperparameter as a scalar of exactly ``dtype``, so it never upcasts a parameter."""
    if isinstance(value, Variable):
        return value if value.dtype == dtype else pt.cast(value, dtype)
    return pt.constant(np.asarray(value, dtype=dtype))
