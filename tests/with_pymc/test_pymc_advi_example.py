"""examples/pymc_advi.py in its quick form: the rules drive ADVI, the table and figure
are written (the full run is in docs/results/pymc_advi)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymc", reason="PyMC is not installed in this environment")

pytestmark = pytest.mark.pymc

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "pymc_advi.py"


def test_quick_run_on_the_logistic_regression(tmp_path):
    spec = importlib.util.spec_from_file_location("pymc_advi", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows = script.main(["--quick", "--models", "logistic", "--out", str(tmp_path)])
    assert [r["rule"] for r in rows] == ["adam", "rprop (full batch)", script.SCHEDULED]
    assert all(np.isfinite(r["final -ELBO"]) for r in rows)
    by_rule = {r["rule"]: r for r in rows}
    assert by_rule["rprop (full batch)"]["stochastic"] is False
    assert by_rule["adam"]["iterations"] == 400
    assert (tmp_path / "logistic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    histories = np.load(tmp_path / "logistic_histories.npz")
    assert sorted(histories.files) == sorted(r["rule"] for r in rows)
    assert [histories[r["rule"]].size for r in rows] == [r["iterations"] for r in rows]
    table = (tmp_path / "results.md").read_text()
    assert "python examples/pymc_advi.py --quick --models logistic" in table
    assert json.loads((tmp_path / "results.json").read_text())[0]["model"] == "logistic"


def test_the_models_are_what_the_docstring_says():
    spec = importlib.util.spec_from_file_location("pymc_advi", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    county, floor, y = script.radon_like(0, groups=30)
    sizes = np.bincount(county)
    assert sizes.size == 30 and sizes.min() >= 2 and sizes.max() <= 40
    assert set(np.unique(floor)) == {0.0, 1.0} and y.shape == county.shape
    model = script.logistic_model(0, features=10)
    assert model["beta"].type.shape == (10,) and model["y"].owner is not None
