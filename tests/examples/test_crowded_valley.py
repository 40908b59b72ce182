"""The Crowded-Valley analysis (examples/crowded_valley.py) on records made by hand:
which learning rate is "tuned", what "at its default" reads, and which records count."""

import json
import math
from pathlib import Path

import pytest


def png(path):
    path = Path(path)
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def record(problem, rule, lr, seed, final, diverged=False):
    return {"key": f"{problem}-{rule}-{lr}-{seed}", "diverged": diverged,
            "final_loss": None if diverged else final, "metrics": {},
            "config": {"problem": problem, "rule": rule, "seed": seed, "steps": 10,
                       "hyperparameters": {"learning_rate": lr}}}


def records():
    # adam (default 0.001) is best at 0.01; sgd (default 0.001) diverges at 0.1 and is best
    # at its default; the seeds' spread is 1 and 3 around each median.
    out = []
    for problem, scale in (("p1", 1.0), ("p2", 10.0)):
        for rule, finals in (("adam", {0.001: 4.0, 0.01: 2.0, 0.1: 8.0}),
                             ("sgd", {0.001: 3.0, 0.01: 5.0, 0.1: None})):
            for lr, final in finals.items():
                for seed, shift in enumerate((-1.0, 0.0, 3.0)):
                    out.append(record(problem, rule, lr, seed,
                                      None if final is None else scale * (final + shift),
                                      diverged=final is None))
    return out


def test_each_rule_is_read_at_its_default_and_at_its_best_median(example):
    cv = example("crowded_valley")
    results = cv.analyse(cv.collect(records()))
    adam, sgd = results["p1"]["adam"], results["p1"]["sgd"]
    assert (adam["default_lr"], adam["default"]) == (0.001, 4.0)
    assert (adam["tuned_lr"], adam["tuned"]) == (0.01, 2.0)
    assert (sgd["tuned_lr"], sgd["tuned"], sgd["default"]) == (0.001, 3.0, 3.0)
    assert results["p2"]["adam"]["tuned"] == 20.0
    assert [cv.final_value(r) for r in sgd["tuned_runs"]] == [2.0, 3.0, 6.0]


def test_the_tables_and_figures(example, tmp_path):
    pytest.importorskip("matplotlib")
    cv = example("crowded_valley")
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records()))
    cv.main([str(tmp_path)])
    text = (tmp_path / "study.md").read_text()
    assert "| adam | 0.001 | 4 (3-7) | 0.01 | 2 (1-5) |" in text
    # best at default: sgd 3 on p1; adam tuned (2) beats it by more than 2 %, sgd does not
    assert "| p1 | 3 (sgd) | 2 (adam) | 2 | 2.5 | 1 of 2: adam |" in text
    for name in ("defaults_vs_tuned.png", "profile_defaults.png", "profile_tuned.png"):
        assert png(tmp_path / name)


def test_only_the_last_sweeps_grid_counts_unless_asked(example, tmp_path):
    cv = example("crowded_valley")
    recs = records()
    keep = [r["key"] for r in recs if r["config"]["hyperparameters"]["learning_rate"] < 0.1]
    (tmp_path / "sweep.json").write_text(json.dumps({"keys": keep}))
    assert [r["key"] for r in cv.last_grid(recs, tmp_path)] == keep
    assert len(cv.last_grid(recs, tmp_path, all_records=True)) == len(recs)
    assert len(cv.last_grid(recs, tmp_path / "elsewhere")) == len(recs)
    assert math.isinf(cv.final_value(recs[-1]))
