"""examples/second_order.py runs, writes its figures, and documents itself."""

import importlib.util
import json
import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "second_order.py")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("second_order_example", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help(example, capsys):
    with pytest.raises(SystemExit) as exit_:
        example.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--out" in out and "--data" in out and "module:function" in out


def test_quick_run_writes_figures(example, tmp_path, capsys):
    out = tmp_path / "figures"
    traces, step_cost = example.main([
        "--out", str(out), "--quick", "--methods", "esgd", "trust-ncg",
        "--measure-steps", "0"])  # the step timings compile six more functions
    assert {p.name for p in out.iterdir()} == {"cost_vs_iterations.png", "cost_vs_time.png",
                                             "results.json", "final.md", "final.csv",
                                             "final.json"}
    results = json.loads((out / "results.json").read_text())
    final = json.loads((out / "final.json").read_text())
    assert [row["method"] for row in final] == ["esgd", "trust-ncg"]
    assert final[1]["cost_minus_reference"] == pytest.approx(
        results["final"]["trust-ncg"]["cost_minus_reference"])
    assert set(results["traces"]) == {"esgd", "trust-ncg"}
    assert results["traces"]["trust-ncg"][-1][2] - results["optimum"] < 1e-6
    assert step_cost == {}
    assert "optimum" in capsys.readouterr().out


def test_pluggable_data_source(example, tmp_path, monkeypatch):
    X, y = example.load_data("synthetic", 0, (0, 1), 50, 4)
    assert X.shape == (50, 4) and set(y) <= {0.0, 1.0}
    (tmp_path / "images_stub.py").write_text(
        "import numpy as np\n"
        "def load(seed):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    return rng.random((30, 2, 2)) * 255, np.arange(30) % 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    X, y = example.load_data("images_stub:load", 0, (1, 2), 50, 4)
    assert X.shape == (20, 4)  # images flattened, class 0 dropped
    assert sorted(set(y)) == [0.0, 1.0] and abs(X.mean()) < 1e-12  # standardised
    try:
        import symopt.lab.data  # noqa: F401  (written for issue 3)
    except ImportError:
        pass
    else:
        X, y = example.load_data("fashion-mnist", 0, (0, 6), 50, 4)
        assert X.shape[1] == 784 and len(X) >= 1000 and sorted(set(y)) == [0.0, 1.0]
    with pytest.raises(SystemExit, match="module:function"):
        example.load_data("nonsense", 0, (0, 1), 50, 4)
    with pytest.raises(SystemExit, match="cannot load"):
        example.load_data("no_such_module_xyz:load", 0, (0, 1), 50, 4)
