"""benchmarks/report.py turns a run's results.json into its report and tables.

A run of benchmarks/run.py ends in report.write_all; a wrapped line there once made the
report's header call a string, and every run failed at its last step. The committed
results of the full round-1 run (every section) and of a quick run are written again.
"""

from __future__ import annotations

import json

import pytest

from ._files import ROOT, load


def _report():
    return load("benchmarks/report.py")


@pytest.mark.parametrize("quick", [False, True])
def test_the_report_is_written_from_the_committed_results(tmp_path, quick):
    payload = json.loads((ROOT / "benchmarks/results/results.json").read_text())
    payload["meta"]["quick"] = quick
    _report().write_all(payload, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# symopt benchmark results\n")
    assert ("QUICK run (small sizes, few repeats)" in text) == quick
    assert "| symopt-numba | 1 | 1e+06 params |" in text
    assert (tmp_path / "update.csv").read_text().count("\n") > 100
