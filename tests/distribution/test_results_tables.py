"""The README's results and performance tables are generated from the committed result
files (``scripts/results_tables.py``): they are up to date, and they follow the files."""

from __future__ import annotations

import json
import shutil

from ._files import ROOT, load


def _script():
    return load("scripts/results_tables.py")


def test_the_readme_tables_are_up_to_date():
    tables = _script()
    assert tables.main(["--check"]) == 0, "run python scripts/results_tables.py"
    readme = (ROOT / "README.md").read_text()
    for name in tables.TABLES:
        if name == "main_job":  # in the docs only
            continue
        assert f"<!-- results_tables.py: {name} -->\n| " in readme, name


def test_the_tables_follow_the_result_files(tmp_path):
    tables = _script()
    for path in ["docs/results", "benchmarks/results"]:
        shutil.copytree(ROOT / path, tmp_path / path,
                        ignore=shutil.ignore_patterns("histories", "*.png"))
    header, rows, sources = tables.studies(tmp_path)
    main_row = next(row for row in rows if row[0].startswith("main job"))[1]
    assert main_row.startswith("best validation accuracy 0.843 (lion), last 0.665 (adagrad_window)")
    comparison = tmp_path / "docs/results/compare_rules/comparison.json"
    results = json.loads(comparison.read_text())
    next(r for r in results if r["rule"] == "nadam")["valid_accuracy"] = 0.9
    next(r for r in results if r["rule"] == "book.nag")["valid_accuracy"] = 0.5
    comparison.write_text(json.dumps(results))
    _, rows, _ = tables.studies(tmp_path)
    main_row = next(row for row in rows if row[0].startswith("main job"))[1]
    assert main_row.startswith("best validation accuracy 0.900 (nadam), last 0.500 "
                               "(book.nag)"), main_row
    assert "each text form scores exactly" not in main_row  # book.nag no longer does
    text = tables.update_readme((ROOT / "README.md").read_text(), tmp_path)
    assert "0.900 (nadam)" in text
    assert tables.update_readme(text, tmp_path) == text  # idempotent


def test_the_many_tensors_table_reads_one_source_per_number():
    tables = _script()
    _, rows, sources = tables.many_tensors(ROOT)
    cells = {row[0]: row[2] for row in rows}
    peers = json.loads((ROOT / "benchmarks/results/archive/multi_tensor_peers.json")
                       .read_text())["rows"]
    torch = {r["threads"]: r["min"] for r in peers if r["framework"] == "torch"
             and r["backend"] == "fused" and r["k"] == 100}
    assert cells["torch.optim fused Adam: step on 1 / 2 threads"] == (
        f"{torch[1] * 1e3:.2f} / {torch[2] * 1e3:.2f} ms")
    assert all(source.startswith("benchmarks/results/") for source in sources)
