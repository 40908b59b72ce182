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
            raise TypeError(
                f"params[{i}] is a {describe(p)}, not a shared variable; update rules can "
                "only update shared variables (make one with pytensor.shared)"
            )
        dtype = getattr(p, "dtype", None)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(
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


def check_positive_int(value, name):
    """``value`` as an int if it is a positive integer (not a bool), or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonzero(value):
    """False only for a literal zero: a rule may then leave a term out of its graph."""
    return not _is_number(value) or float(value) != 0


def as_scalar(value, dtype):
    """A hyperparameter as a scalar of exactly ``dtype``, so it never upcasts a parameter."""
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
