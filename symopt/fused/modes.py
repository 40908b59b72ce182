"""Compile modes for training functions: PyTensor's modes with measured rewrite choices.

``training_mode(backend)`` is what the examples and benchmarks pass to
``pytensor.function(..., mode=...)``. Each choice it makes against PyTensor's default
is listed in :data:`CHOICES` with the measurement behind it (``benchmarks/README.md``,
"Training modes"):

- C backends: ``local_dot22_to_dot22scalar`` is excluded. The rewrite folds a scalar
  factor into a matrix product (``Dot22Scalar``); in the gradient of an MLP's loss the
  scaled product and the unscaled one are then both kept, so a GEMM is computed twice.
  In graphs that update symopt's parameters PyTensor's default modes no longer do this
  either (:mod:`symopt.fused.products` reuses the plain product); the training mode
  leaves the rewrite out for any graph. The Numba backend does not run this rewrite
  (``Dot22Scalar`` is a C op).

- C backends: a real BLAS. A pip install of PyTensor usually finds none
  (``blas__ldflags`` is empty), and then ``mode="C"`` cannot compile a matrix product and
  the C VM runs it through NumPy. :func:`configure_blas` looks for an installed OpenBLAS
  (or reference BLAS) and sets the flags; when there is none it warns, saying what to
  install. The Numba backend calls SciPy's BLAS and needs none of this.

>>> import pytensor, symopt
>>> mode = symopt.fused.modes.training_mode("c")
>>> isinstance(mode, pytensor.compile.mode.Mode)
True
"""

from __future__ import annotations

import glob
import os
import warnings

import pytensor
from pytensor.compile.mode import get_mode

__all__ = ["BACKENDS", "CHOICES", "NoBlasWarning", "configure_blas", "find_blas",
           "training_mode"]

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
    if backend != "numba":
        configure_blas()
    mode = get_mode(BACKENDS[backend])
    excluded = list(CHOICES[backend])
    return mode.excluding(*excluded) if excluded else mode


class NoBlasWarning(UserWarning):
    """PyTensor's C backend has no BLAS to link to."""


#: the libraries :func:`find_blas` looks for, best first (the linkable ``.so`` name)
BLAS_LIBRARIES = ("openblas", "blis", "blas")

#: the linker's own directories: a library there needs no ``-L``
LINKER_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
               "/usr/lib")

#: where :func:`find_blas` looks, besides ``LD_LIBRARY_PATH`` and ``$CONDA_PREFIX/lib``
LIBRARY_DIRS = LINKER_DIRS + ("/usr/local/lib", "/opt/homebrew/opt/openblas/lib",
                              "/usr/local/opt/openblas/lib")


def find_blas(dirs=None):
    """Link flags for an installed BLAS that the C backend can link to, or ``""``.

    A library counts when its unversioned ``lib<name>.so`` (``.dylib``) is there, which is
    what ``-l<name>`` links to (Debian's ``libopenblas-dev`` installs it; the runtime
    package alone does not). A directory outside the linker's default path is given
    with ``-L`` and ``-Wl,-rpath``.
    """
    if dirs is None:
        dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
        if os.environ.get("CONDA_PREFIX"):
            dirs.append(os.path.join(os.environ["CONDA_PREFIX"], "lib"))
        dirs += list(LIBRARY_DIRS)
    for name in BLAS_LIBRARIES:
        for d in dirs:
            if glob.glob(os.path.join(d, f"lib{name}.so")) or glob.glob(
                    os.path.join(d, f"lib{name}.dylib")):
                return f"-l{name}" if d in LINKER_DIRS else f"-L{d} -Wl,-rpath,{d} -l{name}"
    return ""


def configure_blas(warn=True):
    """Give PyTensor's C backend a BLAS when it has none; return the flags in use.

    Does nothing when ``pytensor.config.blas__ldflags`` is already set (PyTensor found a
    BLAS, or the user set ``PYTENSOR_FLAGS=blas__ldflags=...``). Otherwise sets it to
    :func:`find_blas`'s flags, or, when none is installed, warns with a
    :class:`NoBlasWarning` that says what to install, and returns ``""``.
    """
    with warnings.catch_warnings():  # PyTensor's own warning names conda; ours is below
        warnings.simplefilter("ignore", UserWarning)
        current = pytensor.config.blas__ldflags
    if current:
        return current
    flags = find_blas()
    if flags:
        pytensor.config.blas__ldflags = flags
        return flags
    if warn:
        warnings.warn(
            "PyTensor's C backend has no BLAS (blas__ldflags is empty) and symopt found "
            f"none of {', '.join('lib' + n + '.so' for n in BLAS_LIBRARIES)}: mode='C' cannot "
            "compile matrix products and the C VM runs them through NumPy. Install "
            "OpenBLAS (Debian/Ubuntu: apt-get install libopenblas-dev; conda: conda "
            "install openblas) or set PYTENSOR_FLAGS=blas__ldflags=... yourself. The "
            "Numba backend (PyTensor's default) does not need it.",
            NoBlasWarning, stacklevel=2)
    return ""
