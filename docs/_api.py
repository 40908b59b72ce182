"""The API reference's pages, written from the package itself at each build.

Every module of symopt gets a page (``api/<module>.rst``) listing its public names: the
ones defined there get a page each (autosummary), and the ones it re-exports link to the
module that defines them, so that every public name is documented exactly once. A
module's public names are its ``__all__``, or else the functions and classes it defines
whose names do not start with an underscore.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

#: Modules left out of the reference (private helpers are skipped anyway).
SKIPPED = {"symopt.__main__"}

#: The sections of the reference, in order: a title and the modules in it.
SECTIONS = [
    ("The library", ["symopt", "symopt.transform", "symopt.updates", "symopt.blocks",
                     "symopt.rules",
                     "symopt.constraints", "symopt.wrappers", "symopt.regularization",
                     "symopt.schedules", "symopt.step_schedules", "symopt.combinators",
                     "symopt.state", "symopt.flat", "symopt.grads"]),
    ("Beyond first order", ["symopt.second_order", "symopt.sharpness"]),
    ("The fused multi-tensor backend", ["symopt.fused"]),
    ("The source texts' forms", ["symopt.texts"]),
    ("The lab", ["symopt.lab"]),
]


def all_modules(package: str = "symopt") -> list[str]:
    """Every public module of ``package``, the package first, in walk order."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")) or info.name in SKIPPED:
            continue
        names.append(info.name)
    return names


def _defined_in(value) -> str | None:
    if inspect.isfunction(value) or inspect.isclass(value):
        return value.__module__
    return None


def public_names(module_name: str) -> list[str]:
    """The module's public names: ``__all__``, else what it defines without a leading _."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return sorted(n for n, v in vars(module).items()
                  if not n.startswith("_") and _defined_in(v) == module_name)


def canonical(module_name: str, name: str, documented: set[str]) -> str:
    """Where ``module_name.name`` is documented: its defining module when that module
    has a page of its own, else here."""
    value = getattr(importlib.import_module(module_name), name)
    if inspect.ismodule(value):
        return value.__name__
    home = _defined_in(value)
    if home is None:  # data: the submodule that lists the same object among its names
        home = next((m for m in sorted(documented, key=len, reverse=True)
                     if m.startswith(module_name + ".") and name in public_names(m)
                     and getattr(importlib.import_module(m), name, None) is value), None)
    if home and home != module_name and home in documented:
        if name in public_names(home) or not hasattr(importlib.import_module(home), "__all__"):
            return f"{home}.{name}"
    return f"{module_name}.{name}"


def _relative(target: str, module_name: str) -> str:
    """``target`` as autosummary wants it under ``.. currentmodule:: module_name``."""
    return target.removeprefix(module_name + ".")


def _page(module_name: str, documented: set[str]) -> str:
    own, elsewhere, modules = [], [], []
    for name in public_names(module_name):
        target = canonical(module_name, name, documented)
        if target in documented:
            modules.append(target)
        elif target == f"{module_name}.{name}":
            own.append(target)
        else:
            elsewhere.append(target)
    lines = [module_name, "=" * len(module_name), "",
             f".. automodule:: {module_name}", "   :no-members:", ""]
    if own:
        lines += [".. rubric:: Defined here", "", ".. autosummary::",
                  "   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {_relative(target, module_name)}" for target in own] + [""]
    if elsewhere:
        lines += [".. rubric:: Re-exported here", "", ".. autosummary::",
                  "   :nosignatures:", ""]
        lines += [f"   {_relative(target, module_name)}" for target in elsewhere] + [""]
    subs = [m for m in sorted(documented)
            if m.rpartition(".")[0] == module_name and module_name != "symopt"]
    if subs:
        lines += [".. rubric:: Modules", "", ".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {m}" for m in subs] + [""]
    return "\n".join(lines)


def write_api_pages(directory: Path) -> list[str]:
    """Write ``index.rst`` and one page per module into ``directory``; return the modules."""
    directory.mkdir(parents=True, exist_ok=True)
    modules = all_modules()
    documented = set(modules)
    for module_name in modules:
        text = _page(module_name, documented)
        path = directory / f"{module_name}.rst"
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    tops = {top for _, group in SECTIONS for top in group}
    missing = [m for m in modules if not any(m == t or m.startswith(t + ".") for t in tops)]
    if missing:
        raise RuntimeError(f"docs/_api.py: modules in no section: {missing}")
    index = ["API reference", "=============", "",
             "Every public name of symopt, module by module. ``import symopt`` loads the "
             "library only; the lab (:mod:`symopt.lab`) is imported by what uses it.", ""]
    for title, group in SECTIONS:
        index += [title, "-" * len(title), "", ".. toctree::", "   :maxdepth: 1", ""]
        index += [f"   {m}" for m in group] + [""]
    text = "\n".join(index)
    path = directory / "index.rst"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return modules
