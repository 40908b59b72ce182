"""The package's layout: the library never loads the lab, and every rule has its row."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import symopt
from symopt.lab import reference, rulebook


def _modules_after(code):
    """The symopt modules (and a few heavy ones) loaded by ``code`` in a fresh interpreter."""
    probe = (f"{code}\nimport sys\n"
             "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('symopt', 'matplotlib', 'scipy', 'numba', 'torch', 'jax'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_import_symopt_loads_the_library_only():
    loaded = _modules_after("import symopt\n"
                            "[getattr(symopt, name) for name in symopt.__all__]")
    assert not any(m.startswith("symopt.lab") for m in loaded), sorted(loaded)
    # what PyTensor itself loads is not ours to avoid (PyTensor 2.38 imports SciPy)
    heavy = {m.split(".")[0] for m in loaded - _modules_after("import pytensor")}
    assert not heavy & {"matplotlib", "scipy", "numba", "torch", "jax"}, sorted(heavy)


def test_no_library_module_imports_the_lab():
    """Not even lazily, inside a function: the lab may import the library, never back."""
    root = Path(inspect.getfile(symopt)).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if root / "lab" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("symopt.lab")]
    assert not offenders


def test_everything_in_all_exists_and_nothing_public_is_left_out():
    for name in symopt.__all__:
        assert hasattr(symopt, name), name
    public = {n for n, v in vars(symopt).items()
              if not n.startswith("_") and callable(v) and getattr(v, "__module__", "")
              .startswith("symopt")}
    assert public <= set(symopt.__all__), sorted(public - set(symopt.__all__))


@pytest.mark.parametrize("old, new", sorted(symopt.MOVED.items()))
def test_moved_modules_still_answer_with_a_warning(old, new):
    with pytest.warns(DeprecationWarning, match=f"symopt.{old} moved to {new}"):
        module = getattr(symopt, old)
    assert module.__name__ == new


def test_every_rule_has_its_row_and_a_kind():
    assert rulebook.missing_rows() == []
    for name, rule in symopt.RULES.items():
        assert rule.kind in symopt.KINDS, name
        assert isinstance(rule.stochastic, bool), name
        assert rulebook.ROWS[name].cases, name


def test_the_references_do_not_import_symopt():
    """The NumPy transcriptions stay independent of what they check."""
    tree = ast.parse(inspect.getsource(reference))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m and m.startswith("symopt")], imported


def test_transforms_declare_whether_they_are_elementwise():
    elementwise = [symopt.scale(2.0), symopt.negate(), symopt.trace(), symopt.scale_by_adam(),
                   symopt.scale_by_rprop(), symopt.clip(1.0), symopt.add_decayed_weights(0.1)]
    assert all(t.elementwise for t in elementwise)
    assert not symopt.clip_by_global_norm(1.0).elementwise
    assert symopt.chain(*elementwise).elementwise
    clipped = symopt.chain(symopt.clip_by_global_norm(1.0), symopt.sgd(learning_rate=0.1))
    assert not clipped.elementwise
    # a plain function declares nothing, so it is not taken as elementwise
    assert not symopt.chain(lambda steps, params: (steps, [])).elementwise
    # every rule declares it, and its row agrees (no fused case for the others)
    for name in symopt.RULES:
        elementwise = symopt.RULES[name](learning_rate=0.1).elementwise
        assert elementwise == (rulebook.ROWS[name].fused is not None), name
    across = {name for name in symopt.RULES if not symopt.RULES[name](learning_rate=0.1)
              .elementwise}
    assert across == {"adafactor", "adagrad_window", "adahessian", "lamb", "lars", "muon",
                      "novograd", "prodigy", "sam", "shampoo", "soap", "sophia"}


def test_rules_carry_annotations_into_their_signature():
    """IDEs and Sphinx read the rule's own signature; type checkers read symopt/_typing.py."""
    empty = inspect.Parameter.empty
    for name, rule in symopt.RULES.items():
        signature = inspect.signature(rule)
        parameters = signature.parameters
        assert parameters["loss_or_grads"].annotation == "LossOrGrads | None", name
        assert parameters["params"].annotation == "Params | None", name
        assert parameters["fuse"].annotation == "Fuse", name
        assert signature.return_annotation == "Updates | ConfiguredRule", name
        assert rule.__annotations__["return"] == "Updates | ConfiguredRule", name
        hyper = [p for p in parameters if p not in ("loss_or_grads", "params", "fuse")]
        assert all(parameters[p].annotation is not empty for p in hyper), name
    assert inspect.signature(symopt.adam).parameters["learning_rate"].annotation == (
        "LearningRate")


def test_the_type_aliases_resolve_without_loading_anything_new():
    """symopt._typing is only imported for type checkers, and imports only what is loaded."""
    assert "symopt._typing" not in _modules_after("import symopt")
    assert _modules_after("import symopt._typing") - _modules_after("import symopt") == {
        "symopt._typing"}
