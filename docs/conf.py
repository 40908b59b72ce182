"""Sphinx configuration of symopt's documentation (``bash scripts/docs.sh`` builds it).

Sphinx with numpydoc, autodoc and autosummary: symopt's docstrings are numpydoc (the
convention of NumPy, SciPy and PyTensor, whose references the pages link to), with their
equations in ``.. math::`` blocks, which Sphinx renders as they are; mkdocstrings would
need its own docstring parser and a Markdown rewrite of the equations. The API pages are
written from the package at each build (``docs/_api.py``), so a new public name is
documented without editing a list.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import _api  # noqa: E402
import _generated  # noqa: E402

import symopt  # noqa: E402

project = "symopt"
author = "symopt developers"
copyright = "2026, symopt developers"
release = symopt.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "results/**/histories", "**/README.md"]
root_doc = "index"
default_role = "py:obj"

# API pages: one per module, written here; autosummary writes one per name under them
_api.write_api_pages(HERE / "api")
_generated.write_all(HERE / "_generated")
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters section says the types
autodoc_mock_imports = []

numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
# Offline builds (CI, this machine) cannot fetch the inventories: links are then plain.
if os.environ.get("SYMOPT_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

# MathJax from the machine (Debian's libjs-mathjax) when present, so that pages read
# offline render their equations; else from the CDN that Sphinx uses by default.
_LOCAL_MATHJAX = Path("/usr/share/javascript/mathjax")
html_static_path = ["_static"]
html_css_files = ["custom.css"]
if (_LOCAL_MATHJAX / "MathJax.js").is_file():
    _copy = HERE / "_build" / "mathjax"
    if not (_copy / "MathJax.js").is_file():
        shutil.copytree(_LOCAL_MATHJAX, _copy, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("unpacked", "test", "*.map"))
    html_static_path.append(str(_copy))
    mathjax_path = "MathJax.js?config=TeX-AMS-MML_HTMLorMML"

html_theme = "pydata_sphinx_theme"
html_title = f"symopt {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_context = {"default_mode": "light"}
# the guide's pages have no sub-pages: no left sidebar, so tables and equations get room
html_sidebars = {page: [] for page in ("index", "rules", "texts", "usage", "architecture",
                                       "command", "reliability", "performance", "changelog",
                                       "gallery/index")}
html_show_sourcelink = False

suppress_warnings: list[str] = []
nitpicky = False
