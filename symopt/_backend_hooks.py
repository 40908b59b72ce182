"""Register symopt's Ops with a PyTensor backend when that backend is loaded, not before.

PyTensor's JAX and PyTorch backends convert each Op through a dispatcher
(``jax_funcify``, ``pytorch_funcify``) that lives in a module importing JAX or PyTorch.
symopt must not import either (``import symopt`` stays light), yet its Ops must be
registered before a function is compiled for those backends, which happens inside
PyTensor, the first time the backend's module is imported. :func:`when_imported` runs a
registration right after a named module has been executed, or at once if it already
has been.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading

__all__ = ["register_numba", "when_imported"]

_PENDING: dict[str, list] = {}  # module name -> [callback(module), ...]
_LOCK = threading.Lock()


def when_imported(name, callback):
    """Call ``callback(module)`` once the module ``name`` is imported (now, if it is)."""
    with _LOCK:
        module = sys.modules.get(name)
        if module is None:
            _PENDING.setdefault(name, []).append(callback)
            if not any(isinstance(f, _Finder) for f in sys.meta_path):
                sys.meta_path.insert(0, _Finder())
            return
    callback(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a watched module so that the module's
    callbacks run after it has been executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PENDING:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


class _Loader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        with _LOCK:
            callbacks = _PENDING.pop(module.__name__, [])
        for callback in callbacks:
            callback(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


_NUMBA_DONE: set = set()


def register_numba(op_type, funcify):
    """Register ``funcify(op, node) -> (function, cache key)`` as the Numba code of
    ``op_type``, once, when an Op of it first builds a node (not at import: Numba takes
    half a second to import). Nothing happens without PyTensor 3's Numba dispatch."""
    if op_type in _NUMBA_DONE:
        return
    _NUMBA_DONE.add(op_type)
    try:
        from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
    except ImportError:  # PyTensor 2 or no Numba: the C and Python linkers
        return

    @register_funcify_and_cache_key(op_type)
    def numba_funcify(op, node=None, **kwargs):
        return funcify(op, node)
