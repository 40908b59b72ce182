r"""Many parameters in one shared vector, each a view of it.

A compiled PyTensor function returns every shared variable it updates, and PyTensor's
Numba linker (PyTensor 3's default) compiles that function in a time that grows faster
than the number of its outputs: Adam over 100 separate tensors updates 300 shared
variables (each parameter and its two moments) and takes minutes to compile cold
(``benchmarks/README.md``, "Many tensors"). :class:`FlatParameters` keeps the
parameters of a model in one vector, as JAX's ``ravel_pytree`` does: the model reads
each parameter as a view, the rule updates one vector, and the function has three
updates whatever the number of parameters. PyMC's ``pm.fit`` does the same with its
flat ``mu`` and ``rho``.

The update of an elementwise rule is the same whether its parameters are separate or
flat (each element's update depends only on that element). A rule that is not
elementwise (LAMB's per-layer trust ratio, Muon, Adafactor's factored moments, a
per-tensor norm constraint) would see one tensor where there were many;
:func:`symopt.apply` refuses the flat vector for such a rule rather than compute a
different algorithm.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.gradient import DisconnectedType

from symopt._checks import FLOAT_DTYPES, ParamError

__all__ = ["FlatParameters", "flat_layout", "refuse_flat"]

#: The tag a flat vector carries, read by :func:`flat_layout`.
_TAG = "symopt_flat_layout"


class FlatParameters:
    r"""Parameters of any shapes kept in one 1-D shared vector; the model reads views.

    Parameters
    ----------
    values : sequence or mapping of array_like
        The parameters' initial values, in order (a list) or by name (a dict). Each is
        copied into its slice of the vector.
    name : str, default "theta"
        The vector's name; a view of entry ``k`` is named ``"theta[k]"``.
    dtype : str, optional
        The vector's dtype, ``"float32"`` or ``"float64"``. By default the values' own
        dtype, which must then be the same for all of them (a float value in a list of
        integers is not guessed at: pass ``dtype``).

    Attributes
    ----------
    vector : SharedVariable
        The one parameter to give the rule: ``symopt.adam(loss, [flat.vector])``.
    views : list or dict of TensorVariable
        One symbolic view per value, shaped as the value (static shape included), in the
        structure of ``values``: build the model from these.
    keys, shapes, offsets : tuple
        Each entry's key (its index for a list), shape, and first element in the vector.

    Examples
    --------
    A linear model whose weight and bias live in one vector, trained by Adam:

    >>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
    >>> flat = symopt.FlatParameters({"w": np.zeros((3, 2)), "b": np.zeros(2)})
    >>> flat.vector.get_value().shape
    (8,)
    >>> x, y = pt.matrix("x"), pt.matrix("y")
    >>> loss = ((x @ flat.views["w"] + flat.views["b"] - y) ** 2).mean()
    >>> train = pytensor.function([x, y], loss,
    ...                           updates=symopt.adam(loss, [flat.vector], 0.1))
    >>> xs = np.random.default_rng(0).normal(size=(50, 3))
    >>> ys = xs @ np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]) + 0.5
    >>> losses = [float(train(xs, ys)) for _ in range(500)]
    >>> losses[-1] < 1e-3 * losses[0]
    True
    >>> np.round(flat.get_values()["b"], 2)
    array([0.5, 0.5])
    """

    def __init__(self, values: Sequence | Mapping, name: str = "theta",
                 dtype: str | None = None):
        if isinstance(values, Mapping):
            keys, arrays = list(values.keys()), list(values.values())
        elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
            keys, arrays = list(range(len(values))), list(values)
        else:
            raise TypeError("values must be a list or a dict of arrays, got "
                            f"{type(values).__name__}")
        if not arrays:
            raise ValueError("values is empty: there are no parameters to keep")
        arrays = [_as_array(v, k) for k, v in zip(keys, arrays, strict=True)]
        dtype = _common_dtype(keys, arrays, dtype)
        sizes = [a.size for a in arrays]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        flat = np.empty(int(offsets[-1]), dtype=dtype)
        for a, start, stop in zip(arrays, offsets[:-1], offsets[1:], strict=True):
            flat[start:stop] = a.ravel()
        self.vector = pytensor.shared(flat, name=name, shape=flat.shape)
        self.keys = tuple(keys)
        self.shapes = tuple(a.shape for a in arrays)
        self.offsets = tuple(int(o) for o in offsets[:-1])
        setattr(self.vector.tag, _TAG, self)
        views = _unravel(self.vector.type, self.shapes, self.offsets, name)(self.vector)
        views = list(views) if isinstance(views, (list, tuple)) else [views]  # one value
        for key, view in zip(self.keys, views, strict=True):
            view.name = f"{name}[{key}]"
        self.views: list | dict = (dict(zip(keys, views, strict=True))
                                   if isinstance(values, Mapping) else views)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return (f"FlatParameters({self.vector.name!r}: {len(self)} parameters, "
                f"{self.vector.get_value(borrow=True).size} elements, {self.vector.dtype})")

    def get_values(self) -> list | dict:
        """The parameters' current values, copies shaped as given, in the given structure."""
        flat = self.vector.get_value(borrow=True)
        arrays = [flat[start:start + int(np.prod(shape, dtype=int))].reshape(shape).copy()
                  for shape, start in zip(self.shapes, self.offsets, strict=True)]
        return (dict(zip(self.keys, arrays, strict=True))
                if isinstance(self.views, dict) else arrays)

    def set_values(self, values: Sequence | Mapping) -> None:
        """Set every parameter at once: all values are checked before the vector changes."""
        if isinstance(self.views, dict):
            if not isinstance(values, Mapping) or set(values) != set(self.keys):
                given = list(values) if isinstance(values, Mapping) else type(values).__name__
                raise ValueError(f"values must be a dict with the keys {list(self.keys)}, "
                                 f"got {given}")
            arrays = [values[k] for k in self.keys]
        else:
            if isinstance(values, Mapping) or len(values) != len(self.keys):
                raise ValueError(f"values must be a list of {len(self.keys)} arrays")
            arrays = list(values)
        flat = self.vector.get_value()
        for key, value, shape, start in zip(self.keys, arrays, self.shapes, self.offsets,
                                            strict=True):
            array = _as_array(value, key)
            if array.shape != shape:
                raise ValueError(f"values[{key!r}] has shape {array.shape}, the parameter "
                                 f"{shape}")
            flat[start:start + array.size] = array.ravel()
        self.vector.set_value(flat, borrow=True)


def _unravel(vector_type, shapes, offsets, name) -> OpFromGraph:
    """The views as one inlined graph whose gradient is the views' gradients joined.

    Taken apart, the gradient of each view is written into a vector of zeros (PyTensor's
    gradient of a slice): a pass that fills the whole vector, then one per view. Joined,
    each element is written once. After compiling, the views are plain slices and
    reshapes (``inline=True``), on every backend.
    """
    vector = vector_type()
    outs = [vector[start:start + int(np.prod(shape, dtype=int))].reshape(shape, ndim=len(shape))
            for shape, start in zip(shapes, offsets, strict=True)]

    def joined_gradient(inputs, outputs, output_grads):
        parts = [(pt.zeros_like(out) if isinstance(g.type, DisconnectedType) else g).ravel()
                 for out, g in zip(outputs, output_grads, strict=True)]
        return [pt.concatenate(parts)]

    # PyTensor 3 calls the override ``pullback``; 2.x (PyMC's) ``lop_overrides``
    override = ("pullback" if "pullback" in inspect.signature(OpFromGraph).parameters
                else "lop_overrides")
    options: dict[str, Any] = {override: joined_gradient}
    return OpFromGraph([vector], outs, inline=True, name=f"unravel_{name}", **options)


def flat_layout(param) -> FlatParameters | None:
    """The :class:`FlatParameters` whose vector ``param`` is, or None."""
    return getattr(getattr(param, "tag", None), _TAG, None)


def _as_array(value, key) -> np.ndarray:
    if hasattr(value, "get_value"):
        raise TypeError(f"values[{key!r}] is a shared variable; pass its value "
                        "(.get_value()): the flat vector holds its own copy")
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"values[{key!r}] has dtype {array.dtype}, not a number")
    return array


def _common_dtype(keys, arrays, dtype) -> str:
    if dtype is None:
        dtypes = {str(a.dtype) for a in arrays}
        if len(dtypes) > 1:
            found = ", ".join(f"{k!r}: {a.dtype}" for k, a in zip(keys, arrays, strict=True))
            raise ParamError(f"values have different dtypes ({found}); one vector has one "
                             "dtype: pass dtype='float32' or 'float64'")
        dtype = dtypes.pop()
    if str(dtype) not in FLOAT_DTYPES:
        raise ParamError(f"dtype {dtype} is not one the rules update; the vector needs "
                         f"one of {', '.join(FLOAT_DTYPES)} (pass dtype=)")
    return str(dtype)


def refuse_flat(params, rule_name: str) -> None:
    """Raise if a rule that is not elementwise is given a :class:`FlatParameters` vector."""
    for i, p in enumerate(params):
        layout = flat_layout(p)
        if layout is not None:
            raise ParamError(
                f"params[{i}] ({p.name!r}) is a FlatParameters vector ({len(layout)} "
                f"parameters), and {rule_name} is not elementwise: it would treat them as "
                "one tensor (one norm, one trust ratio, one factored moment), a different "
                "algorithm; give it the parameters as separate shared variables"
            )
