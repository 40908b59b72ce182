"""The documentation's API reference covers every public module and name (the build
itself, ``bash scripts/docs.sh``, runs with warnings as errors)."""

from __future__ import annotations

from ._files import ROOT, load


def _api():
    return load("docs/_api.py")


def test_every_public_module_has_a_page(tmp_path):
    api = _api()
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
             for p in (ROOT / "symopt").rglob("*.py")}
    public = {m for m in files if not any(part.startswith("_") for part in m.split("."))}
    modules = api.write_api_pages(tmp_path)
    assert set(modules) == public
    assert {p.stem for p in tmp_path.glob("*.rst")} == public | {"index"}


def test_every_public_name_is_listed_once_where_it_is_defined(tmp_path):
    api = _api()
    modules = api.write_api_pages(tmp_path)
    documented = set(modules)
    for module in modules:
        page = (tmp_path / f"{module}.rst").read_text()
        for name in api.public_names(module):
            target = api.canonical(module, name, documented)
            if target in documented:  # a module: it has its own page
                continue
            home = target.rpartition(".")[0]
            assert f"   {target.removeprefix(module + '.')}\n" in page, (module, name)
            if home != module:  # re-exported: defined, with a page, where it lives
                assert f"   {name}\n" in (tmp_path / f"{home}.rst").read_text(), target
    rules = (tmp_path / "symopt.rules.rst").read_text()
    assert ":toctree: generated" in rules and "   adam\n" in rules
    top = (tmp_path / "symopt.rst").read_text()
    assert "   rules.adam\n" in top and "   rules.RULES\n" in top  # symopt.adam -> its home


def test_the_docs_build_treats_warnings_as_errors():
    script = (ROOT / "scripts" / "docs.sh").read_text()
    assert "-m sphinx -b html -W --keep-going" in script and "docs/_build/html" in script
