"""Text the pages include that is produced, not written: the command's ``--help`` and
the results tables (``scripts/results_tables.py``), refreshed at each build."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _help(argv: list[str]) -> str:
    from symopt.lab import cli

    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to this width
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            cli.main([*argv, "--help"])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def _results_tables():
    spec = importlib.util.spec_from_file_location("results_tables",
                                                  ROOT / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_all(directory: Path) -> None:
    """Write every generated include into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, argv in [("symopt", []), ("compare", ["compare"]),
                       ("curves-check", ["curves", "check"]),
                       ("curves-record", ["curves", "record"])]:
        _write(directory / f"cli-{name}.txt", _help(argv))
    write_gallery(directory.parent / "gallery")
    if (ROOT / "scripts" / "results_tables.py").is_file():
        tables = _results_tables()
        for name, text in tables.rst_tables(ROOT).items():
            _write(directory / f"{name}.rst", text)


# ---------------------------------------------------------------------------------------
# The gallery: one page per example, from its script and its committed results
# ---------------------------------------------------------------------------------------

#: Each example: its script, its title, its results directory, figures and tables.
GALLERY = [
    ("compare_rules", "The main job: every rule on the image data", "compare_rules",
     ["summary.png", "library.png", "texts.png"], ["comparison.csv"]),
    ("blog_toy", "The blog's toy", "blog_toy", ["toy.png"], ["iterations.csv"]),
    ("blog_mlp", "The blog's MLP, and the book's rules", "blog_mlp",
     ["blog.png", "book.png"], ["blog.csv", "book.csv"]),
    ("lecture_logreg", "The lecture: logistic regression and Rprop", "lecture_logreg",
     ["minibatch.png", "minibatch_steps.png", "fullbatch.png"], ["results.csv"]),
    ("course_note", "The course note: optimizers, decay, normalisation", "course_note",
     ["optimizers.png", "optimizers_steps.png", "decay.png", "normalisation.png"],
     ["results.csv"]),
    ("slides_techniques", "The slides' techniques", "slides_techniques",
     ["small_network.png", "overfitting.png", "gradients.png"],
     ["small_network.csv", "overfitting.csv", "gradients.csv"]),
    ("second_order", "Second-order methods", "second_order",
     ["logreg/cost_vs_iterations.png", "logreg/cost_vs_time.png",
      "mlp/cost_vs_iterations.png", "mlp/cost_vs_time.png",
      "synthetic/cost_vs_iterations.png"], []),
]


def _docstring(script: Path) -> str:
    """The script's docstring as reStructuredText: its indented command lines, which the
    scripts write as plain indented text, become literal blocks."""
    import ast

    lines = (ast.get_docstring(ast.parse(script.read_text())) or "").splitlines()
    out = []
    for i, line in enumerate(lines):
        starts_block = (line.startswith("    ") and i > 0 and not lines[i - 1].strip())
        if starts_block:
            before = next((x for x in reversed(lines[:i - 1]) if x.strip()), "")
            if not before.rstrip().endswith("::") and not before.startswith(" "):
                out[-1:] = ["", "::", ""]
        out.append(line)
    return "\n".join(out)


def _commands(readme: Path) -> dict[str, str]:
    """The first code block of each section of docs/results/README.md, by its directory."""
    import re

    commands = {}
    for section in re.split(r"\n## ", readme.read_text()):
        link = re.search(r"\[`([a-z_]+)/`\]", section.split("\n")[0])
        block = re.search(r"```\n(.*?)```", section, re.S)
        if link and block:
            commands[link.group(1)] = block.group(1).rstrip()
    return commands


def _cell(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value.replace("|", "/") or "-"
    if number.is_integer() and "." not in value and "e" not in value.lower():
        return value
    return f"{number:.4g}"


def csv_table(path: Path, caption: str) -> str:
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    lines = [f".. list-table:: {caption}", "   :header-rows: 1", ""]
    for row in rows:
        cells = [_cell(c) if i else c for i, c in enumerate(row)] if row is not rows[0] else row
        lines.append(f"   * - {cells[0] or '-'}")
        lines += [f"     - {c or '-'}" for c in cells[1:]]
    return "\n".join(lines) + "\n"


def write_gallery(directory: Path) -> None:
    """Write ``gallery/index.rst`` and one page per example into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    commands = _commands(ROOT / "docs" / "results" / "README.md")
    index = ["Gallery", "=======", "",
             "The examples in ``examples/``, each run in full on a shared 2-core machine; the "
             "figures and tables are the committed results in ``docs/results/``. Click a "
             "figure for its study: the question, the command, every figure and table, and "
             "the script.", "", ".. include:: ../_generated/studies.rst", ""]
    for script, title, results, figures, tables in GALLERY:
        rel = f"../results/{results}"
        index += [f".. figure:: {rel}/{figures[0]}", "   :width: 48%",
                  f"   :target: {script}.html", "   :alt: " + title, "",
                  f"   :doc:`{script}`", ""]
        page = [title, "=" * len(title), "", _docstring(ROOT / "examples" / f"{script}.py"),
                "", "Command", "-------", "", ".. code-block:: bash", ""]
        page += ["   " + line for line in commands.get(results, f"python examples/{script}.py")
                 .splitlines()] + ["", "Figures", "-------", ""]
        for figure in figures:
            page += [f".. figure:: {rel}/{figure}", "   :width: 100%", "",
                     f"   ``docs/results/{results}/{figure}``", ""]
        if script == "compare_rules":
            page += ["Every form", "----------", "", ".. include:: ../_generated/main_job.rst",
                     ""]
        if tables:
            page += ["Tables", "------", ""]
            for table in tables:
                page += [csv_table(ROOT / "docs" / "results" / results / table,
                                   f"``docs/results/{results}/{table}``"), ""]
        page += ["The script", "----------", "",
                 f".. literalinclude:: ../../examples/{script}.py", "   :language: python", ""]
        _write(directory / f"{script}.rst", "\n".join(page))
    index += [".. toctree::", "   :hidden:", ""]
    index += [f"   {script}" for script, *_ in GALLERY] + [""]
    _write(directory / "index.rst", "\n".join(index))
