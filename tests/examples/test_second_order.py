"""examples/second_order.py on the one-hidden-layer network (``--hidden``), in quick mode.

The logistic-regression runs, the data sources and ``--help`` are tested in
tests/second_order/test_example.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest


def png(path) -> bool:
    path = Path(path)
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("hidden", [0, 3])
def test_second_order_numpy_cost_is_the_model_cost(example, hidden):
    """The cost the traces record (NumPy, on the flat vector) is the cost that is trained."""
    import pytensor

    second_order = example("second_order")
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 5)), (rng.random(40) < 0.5).astype(float)
    loss, _, params, inputs = second_order.build_model(5, 0.1, hidden)
    for p in params:  # away from the initial values, which are zero for logistic regression
        p.set_value(p.get_value() + rng.normal(size=p.get_value().shape))
    theta = second_order.theta_of(params)
    assert theta.shape == (sum(p.get_value().size for p in params),)
    expected = pytensor.function(inputs, loss)(X, y)
    assert second_order.numpy_cost(X, y, 0.1, hidden)(theta) == pytest.approx(expected, rel=1e-12)


def test_second_order_hidden_trains_the_network(example, tmp_path, capsys):
    second_order = example("second_order")
    traces, step_cost = second_order.main([
        "--out", str(tmp_path), "--quick", "--hidden", "8",
        "--methods", "adam", "L-BFGS-B", "HF", "--measure-steps", "0"])
    assert set(traces) == {"adam", "L-BFGS-B", "HF (Gauss-Newton)"} and step_cost == {}
    costs = {name: [c for _, _, c in trace.points] for name, trace in traces.items()}
    starts = {c[0] for c in costs.values()}
    assert len(starts) == 1 and 0.6 < starts.pop() < 0.8  # the same random start, ~log 2
    for name, c in costs.items():
        assert np.all(np.isfinite(c)) and c[-1] < c[0], name
    assert costs["L-BFGS-B"][-1] < 0.9 * costs["L-BFGS-B"][0]

    assert png(tmp_path / "cost_vs_iterations.png") and png(tmp_path / "cost_vs_time.png")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["hidden"] == 8 and results["optimum"] is None
    lowest = min(min(c) for c in costs.values())
    assert results["reference"] == lowest
    best = min(costs, key=lambda name: min(costs[name]))
    assert results["reference_is"] == f"the lowest cost reached (by {best})"
    final = results["final"]
    assert set(final) == set(traces)
    for name, row in final.items():
        assert row["cost"] == costs[name][-1]
        assert row["cost_minus_reference"] == costs[name][-1] - lowest
        assert row["cost_minus_reference"] >= 0
    out = capsys.readouterr().out
    assert "MLP(8 tanh units)" in out and f"(by {best})" in out
