"""Compile modes for training functions: PyTensor's modes with measured rewrite choices.

``training_mode(backend)`` is what the examples and benchmarks pass to
``pytensor.function(..., mode=...)``. Each choice it makes against PyTensor's default
is listed in :data:`CHOICES` with the measurement behind it (``benchmarks/README.md``,
"Training modes"):

- C backends: ``local_dot22_to_dot22scalar`` is excluded. The rewrite folds a scalar
  factor into a matrix product (``Dot22Scalar``); in the gradient of an MLP's loss the
  scaled product and the unscaled one are then both kept, so a GEMM is computed twice.
  The Numba backend does not run this rewrite (``Dot22Scalar`` is a C op).

>>> import pytensor, symopt
>>> mode = symopt.modes.training_mode("c")
>>> isinstance(mode, pytensor.compile.mode.Mode)
True
"""

from __future__ import annotations

import pytensor
from pytensor.compile.mode import get_mode

__all__ = ["BACKENDS", "CHOICES", "training_mode"]

#: backend name -> PyTensor mode name
BACKENDS = {"numba": "NUMBA", "c": "CVM", "c-linker": "C"}

#: backend name -> the rewrites excluded there, each with its reason
CHOICES = {
    "numba": {},
    "c": {"local_dot22_to_dot22scalar": "computes an MLP gradient's GEMM twice"},
    "c-linker": {"local_dot22_to_dot22scalar": "computes an MLP gradient's GEMM twice"},
}


def training_mode(backend=None):
    """PyTensor's mode for ``backend``, with the rewrite choices of :data:`CHOICES`.

    Parameters
    ----------
    backend : {"numba", "c", "c-linker"} or None
        ``"numba"`` (PyTensor 3's default), ``"c"`` (the C virtual machine, PyTensor's
        ``"CVM"``: C thunks, Python where an op has no C code) or ``"c-linker"``
        (PyTensor's all-C ``"C"`` mode). None picks the backend of PyTensor's default
        linker.

    Returns
    -------
    pytensor.compile.mode.Mode
    """
    if backend is None:
        linker = pytensor.compile.mode.get_default_mode().linker
        backend = "numba" if type(linker).__name__ == "NumbaLinker" else "c"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    mode = get_mode(BACKENDS[backend])
    excluded = list(CHOICES[backend])
    return mode.excluding(*excluded) if excluded else mode
