"""The sweep's parts without a cluster: grid, keys, worker cache, results log, report, CLI.

The tests with real Dask clusters are in ``test_sweep_cluster.py``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytensor
import pytest

import symopt
from symopt.lab import sweep_worker
from symopt.lab.cli import build_parser, main
from symopt.lab.problems import make_problem
from symopt.lab.sweep import _Progress, interleave_graphs, sweep
from symopt.lab.sweep_grid import (
    SweepSpecError,
    check_rule_settings,
    config_key,
    expand_grid,
    graph_key,
    parse_grid_option,
    parse_seeds,
    parse_values,
)
from symopt.lab.sweep_log import ResultsLog, SweepLockedError, read_records
from symopt.lab.sweep_problems import ProblemBuildError, build_problem
from symopt.lab.sweep_report import (
    final_value,
    performance_profile,
    summary_rows,
    write_report,
)

USER = "tests.lab.sweep_user_problems"


# ---------------------------------------------------------------------------------------
# Grid
# ---------------------------------------------------------------------------------------


def test_values_numbers_log_ranges_defaults_and_booleans():
    assert parse_values("0.01, 1e-1") == [0.01, 0.1]
    assert parse_values("log:1e-4:1e-1:4") == [1e-4, 1e-3, 1e-2, 1e-1]
    assert parse_values("log:1e-4:1:9")[1] == 0.000316228          # 6 significant digits
    assert parse_values("default,true,False") == ["default", True, False]
    assert parse_seeds("0-2,5,1") == [0, 1, 2, 5]
    assert parse_grid_option("beta2=0.99,0.999") == ("beta2", [0.99, 0.999])


@pytest.mark.parametrize("text, message", [
    ("log:1e-4:1e-1", r"'log:1e-4:1e-1' is not log:START:STOP:COUNT"),
    ("log:0:1:3", "START and STOP must be positive"),
    ("log:1e-3:1e-1:x", "COUNT must be a whole number"),
    ("log:1e-3:1e-1:1", "COUNT must be at least 2"),
    ("0.1,fast", "'fast' is not a number"),
    ("nan", "not a finite number"),
    ("", "no values given"),
])
def test_bad_values_name_the_option_and_the_value(text, message):
    with pytest.raises(SweepSpecError, match=message) as info:
        parse_values(text, "--learning-rates")
    assert str(info.value).startswith("--learning-rates: ")


@pytest.mark.parametrize("text, message", [
    ("beta2", "is not NAME=VALUES"), ("=0.9", "is not NAME=VALUES"),
    ("learning_rate=0.1", "--learning-rates"), ("beta2=", "--grid beta2: no values"),
])
def test_bad_grid_options(text, message):
    with pytest.raises(SweepSpecError, match=message):
        parse_grid_option(text)


def test_bad_seeds():
    with pytest.raises(SweepSpecError, match="'-1' is not a seed"):
        parse_seeds("0,-1")
    with pytest.raises(SweepSpecError, match="runs backwards"):
        parse_seeds("4-2")


def test_grid_applies_each_hyperparameter_to_the_rules_that_have_it():
    configs = expand_grid(["toy"], ["sgd", "adam"], [0.01, "default"], {"beta2": [0.99, 0.999]},
                          seeds=[0, 1], steps=5)
    by_rule = {}
    for c in configs:
        by_rule.setdefault(c["rule"], []).append(c)
    assert len(by_rule["sgd"]) == 2 * 2                    # no beta2: lr x seeds
    assert len(by_rule["adam"]) == 2 * 2 * 2               # lr x beta2 x seeds
    assert sorted({c["hyperparameters"]["learning_rate"] for c in by_rule["sgd"]}) == [1e-3, 0.01]
    adam = by_rule["adam"][0]["hyperparameters"]
    assert adam == {"beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8, "learning_rate": 0.01}


def test_the_same_run_asked_twice_is_one_run():
    configs = expand_grid(["toy"], ["sgd", "sgd"], [0.01, 1e-2, "default", 0.001],
                          seeds=[0, 0], steps=5)
    assert len(configs) == 2
    assert len({config_key(c) for c in configs}) == 2


def test_config_keys_are_stable():
    """A key is the run's identity in every results file written so far: it may not move."""
    [config] = expand_grid(["quadratic"], ["adam"], [0.01], seeds=[3], steps=50)
    assert config == {
        "problem": "quadratic", "rule": "adam", "seed": 3, "steps": 50, "dtype": "float64",
        "backend": "numba", "divergence_factor": 1e4, "eval_every": 0,
        "hyperparameters": {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999,
                            "epsilon": 1e-8}}
    assert config_key(config) == "0e75d103a7a74ca5"
    assert config_key(dict(reversed(list(config.items())))) == config_key(config)
    assert config_key({**config, "seed": 4}) != config_key(config)
    [image] = expand_grid(["logistic"], ["sgd"], [0.1], seeds=[0], steps=5, data="embedded")
    assert image["data"] == "embedded"


def test_graph_keys_leave_numbers_out_but_keep_zeros_and_flags():
    a, b = expand_grid(["toy"], ["rmsprop"], [0.01, 0.1], {"momentum": [0.0]}, seeds=[0])
    assert graph_key(a) == graph_key(b)
    [c] = expand_grid(["toy"], ["rmsprop"], [0.01], {"momentum": [0.9]}, seeds=[0])
    [d] = expand_grid(["toy"], ["rmsprop"], [0.01], {"centered": [True]}, seeds=[0])
    assert len({graph_key(a), graph_key(c), graph_key(d)}) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"rules": ["adma"]}, r"unknown rule 'adma'; did you mean adam"),
    ({"grid": {"nesterov": [True]}}, r"--grid nesterov: none of the rules has .*sgd: "),
    ({"steps": 0}, "--steps must be a whole number >= 1"),
    ({"dtype": "float16"}, "--dtype must be one of"),
    ({"backend": "jax"}, "--backend must be one of"),
    ({"seeds": [-1]}, "--seeds must be whole numbers"),
    ({"learning_rates": ["fast"]}, "is not a number or 'default'"),
    ({"rules": ["blog.MomentumUpdate(cm)"]}, None),
])
def test_bad_specs_get_clear_errors(kwargs, message):
    args = {"problems": ["toy"], "rules": ["sgd"], "learning_rates": [0.01], **kwargs}
    if message is None:
        assert expand_grid(**args)
        return
    with pytest.raises(SweepSpecError, match=message):
        expand_grid(**args)


def test_values_a_rule_rejects_fail_before_any_run_with_its_message():
    configs = expand_grid(["toy"], ["adam"], [0.01], {"beta2": [1.5]}, seeds=[0])
    with pytest.raises(SweepSpecError, match=r"rule 'adam' with beta1=0.9, beta2=1.5.*: beta2"):
        check_rule_settings(configs)
    configs = expand_grid(["toy"], ["sgd"], [-0.1], seeds=[0])
    with pytest.raises(SweepSpecError, match="learning_rate must be >= 0"):
        check_rule_settings(configs)


# ---------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------


def test_user_problems_build_and_failures_say_which_and_why():
    problem = build_problem(f"{USER}:small_quadratic")
    assert problem.deterministic and [p.name for p in problem.params] == ["w"]
    with pytest.raises(ProblemBuildError, match=rf"problem '{USER}:broken' failed to build: "
                                                "RuntimeError: this problem is broken on purpose"):
        build_problem(f"{USER}:broken")
    with pytest.raises(ProblemBuildError, match="ModuleNotFoundError: No module named 'nowhere'"):
        build_problem("nowhere:problem")
    with pytest.raises(ProblemBuildError, match="has no function 'missing'"):
        build_problem(f"{USER}:missing")
    with pytest.raises(ProblemBuildError, match="unknown problem; the lab's are .*quadratic_deep"):
        build_problem("quadratc")


def test_quadratic_deep_is_deepobs_problem():
    """100 dimensions, 90 eigenvalues in (0, 1) and 10 in (30, 60), start at ones,
    mini-batches of 128 from 1000 points (7 per epoch), loss 0.5 (theta-x)^T Q (theta-x)."""
    problem = make_problem("quadratic_deep")
    eigenvalues = np.linalg.eigvalsh(problem.arrays["hessian"])
    assert (eigenvalues[:90] > 0).all() and (eigenvalues[:90] < 1).all()
    assert (eigenvalues[90:] > 30).all() and (eigenvalues[90:] < 60).all()
    np.testing.assert_allclose(np.sort(problem.arrays["eigenvalues"]), eigenvalues, rtol=1e-10)
    [(name, theta)] = problem.initial
    assert theta.shape == (100,) and (theta == 1).all()
    batches = list(problem.batches(8))
    assert [b[0].shape for b in batches] == [(128, 100)] * 8
    train = problem.evaluation["train"][0]
    assert train.shape == (1000, 100) and abs(train.std() - 0.6) < 0.01
    epoch = np.concatenate([b[0] for b in batches[:7]])
    assert len({tuple(row) for row in epoch}) == 7 * 128            # no repeats in an epoch
    params = problem.new_params()
    loss = pytensor.function(problem.inputs, problem.cost(params, problem.inputs))
    x = batches[0][0]
    d = theta - x
    expected = 0.5 * np.mean(np.einsum("bi,ij,bj->b", d, problem.arrays["hessian"], d))
    np.testing.assert_allclose(loss(x), expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# The worker: one compile per graph, hyperparameters set per run
# ---------------------------------------------------------------------------------------


def _reference_losses(rule, seed, steps, **hyper):
    """The lab quadratic trained with constant hyperparameters, in a graph of its own."""
    problem = make_problem("quadratic", "float64", seed)
    params = problem.new_params()
    cost = problem.cost(params, [])
    step = pytensor.function([], cost, updates=symopt.RULES[rule](cost, params, **hyper))
    return [float(step()) for _ in range(steps)]


def test_runs_of_one_rule_with_different_learning_rates_compile_once():
    sweep_worker.clear_cache()
    configs = expand_grid(["quadratic"], ["adam"], [0.01, 0.1], seeds=[1], steps=20)
    records = [sweep_worker.run_config(c) for c in configs]
    assert [r["compiled"] for r in records] == [True, False]
    assert sweep_worker.COMPILES[graph_key(configs[0])] == 1
    assert sum(1 for key in sweep_worker.COMPILES if key[0] != "evaluation") == 1
    for config, record in zip(configs, records):
        expected = _reference_losses("adam", 1, 21, **config["hyperparameters"])
        # curves keep 7 significant digits; the final loss all of them
        np.testing.assert_allclose(record["curve"]["loss"], expected[:20], rtol=1e-6)
        assert math.isclose(record["final_loss"], expected[20], rel_tol=1e-10)
        assert record["curve"]["step"] == list(range(20))
    assert records[0]["final_loss"] != records[1]["final_loss"]
    # the seed chose the matrix: the first loss is 0.5 x*^T A x* of seed 1's quadratic
    arrays = make_problem("quadratic", "float64", 1).arrays
    x_star = arrays["x_star"]
    assert math.isclose(records[0]["initial_loss"], 0.5 * x_star @ arrays["a"] @ x_star,
                        rel_tol=1e-6)


def test_a_diverging_run_is_a_result_marked_diverged():
    sweep_worker.clear_cache()
    fast, ok = expand_grid(["quadratic"], ["sgd"], [0.1, 1e-4], seeds=[0], steps=30)
    diverged, fine = sweep_worker.run_config(fast), sweep_worker.run_config(ok)
    assert diverged["diverged"] and diverged["final_loss"] is None
    assert 1 <= diverged["diverged_at"] < 5             # past 1e4 x the first loss at once
    assert not fine["diverged"] and fine["final_loss"] < fine["initial_loss"]
    assert final_value(diverged) == math.inf
    [patient] = expand_grid(["quadratic"], ["sgd"], [0.1], seeds=[0], steps=400,
                            divergence_factor=math.inf)
    record = sweep_worker.run_config(patient)
    assert record["diverged"] and record["diverged_at"] > diverged["diverged_at"]
    assert record["curve"]["loss"][-1] is None or not math.isfinite(record["curve"]["loss"][-1])


def test_data_problems_report_the_training_set_loss_and_the_test_metrics():
    sweep_worker.clear_cache()
    [config] = expand_grid(["logistic"], ["adam"], [0.01], seeds=[0], steps=20, eval_every=10)
    record = sweep_worker.run_config(config, curve_every=5)
    assert record["final_loss_on"] == "train set"
    assert record["final_loss"] == record["metrics"]["train_loss"]
    assert 0.1 < record["metrics"]["test_accuracy"] <= 1.0
    assert record["evaluations"]["step"] == [10]
    assert record["best_loss"] == min(record["evaluations"]["loss"][0], record["final_loss"])
    assert record["curve"] == {**record["curve"], "step": [4, 9, 14, 19],
                               "kind": "mean of 5 steps"}
    assert record["initial_loss"] == pytest.approx(math.log(10), rel=1e-6)  # zero weights


# ---------------------------------------------------------------------------------------
# The results log
# ---------------------------------------------------------------------------------------


def test_appends_are_whole_lines_and_keys_are_never_written_twice(tmp_path):
    with ResultsLog(tmp_path) as log:
        assert log.append({"key": "a", "value": 1.0})
        assert not log.append({"key": "a", "value": 2.0})
        assert log.append({"key": "b", "value": 3.0})
    text = (tmp_path / "results.jsonl").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    with ResultsLog(tmp_path) as log:
        assert set(log.records) == {"a", "b"} and log.records["a"]["value"] == 1.0


def test_a_torn_last_line_is_ignored_and_cut_off_before_the_next_append(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsLog(tmp_path) as log:
        log.append({"key": "a", "value": 1.0})
    whole = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"key": "b", "val')                    # a write killed halfway
    records, problems = read_records(path)
    assert [r["key"] for r in records] == ["a"]
    assert problems and "has no newline" in problems[0]
    with pytest.warns(UserWarning, match="write cut short"):
        log = ResultsLog(tmp_path).open()
    assert path.read_bytes() == whole                    # the fragment is gone
    log.append({"key": "b", "value": 2.0})
    log.close()
    assert [r["key"] for r in read_records(path)[0]] == ["a", "b"]
    assert read_records(path)[1] == []


def test_a_bad_line_inside_is_skipped_with_a_message(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\nnot json\n{"no": "key"}\n{"key": "a"}\n{"key": "b"}\n')
    records, problems = read_records(path)
    assert [r["key"] for r in records] == ["a", "b"]
    assert [p.split(": ")[0] for p in problems] == ["results.jsonl, line 2"] * 1 + [
        "results.jsonl, line 3", "results.jsonl, line 4"]


@pytest.mark.skipif(os.name != "posix", reason="the lock is POSIX flock")
def test_one_sweep_at_a_time_writes_a_directory(tmp_path):
    with ResultsLog(tmp_path):
        with pytest.raises(SweepLockedError, match=f"process {os.getpid()}"):
            ResultsLog(tmp_path).open()
    with ResultsLog(tmp_path):                           # free again
        pass


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def _record(problem, rule, lr, seed, final, diverged=False):
    config = {"problem": problem, "rule": rule, "seed": seed,
              "hyperparameters": {"learning_rate": lr}}
    return {"key": f"{problem}-{rule}-{lr}-{seed}", "config": config, "diverged": diverged,
            "final_loss": None if diverged else final, "best_loss": final,
            "curve": {"step": [0, 1, 2], "loss": [2.0, final * 2, final], "kind": "per step"},
            "metrics": {}}


def _records():
    records = []
    for seed, noise in enumerate([1.0, 1.1, 0.9]):
        records += [_record("p1", "a", 0.1, seed, 1.0 * noise),
                    _record("p1", "a", 0.01, seed, 2.0 * noise),
                    _record("p1", "b", 0.1, seed, 5.0, diverged=seed > 0),
                    _record("p1", "b", 0.01, seed, 3.0 * noise),
                    _record("p2", "a", 0.1, seed, 4.0 * noise),
                    _record("p2", "b", 0.1, seed, 0.5 * noise)]
    return records


def test_the_summary_picks_each_rules_best_median_and_gives_the_spread():
    rows = {(r["problem"], r["rule"]): r for r in summary_rows(_records(), {"a": 0.01})}
    a = rows["p1", "a"]
    assert (a["learning_rate"], a["median_final_loss"]) == (0.1, 1.0)
    assert (a["min_final_loss"], a["max_final_loss"], a["seeds"]) == (0.9, 1.1, 3)
    assert (a["default_learning_rate"], a["median_at_default"]) == (0.01, 2.0)
    b = rows["p1", "b"]                                   # lr 0.1: 2 of 3 seeds diverged
    assert (b["learning_rate"], b["median_final_loss"], b["diverged_runs"]) == (0.01, 3.0, 2)
    assert rows["p2", "b"]["median_final_loss"] == 0.5


def test_performance_profiles_count_problems_within_a_factor_of_the_best():
    taus, fractions = performance_profile(
        {"p1": {"a": 1.0, "b": 3.0, "c": math.inf}, "p2": {"a": 4.0, "b": 0.5, "c": 1.0},
         "zero": {"a": 0.0, "b": 1.0}}, taus=[1, 2, 3, 8, 100])
    # p1: a 1, b 3, c inf; p2: a 8, b 1, c 2; "zero" is left out (no ratio to 0)
    assert fractions == {"a": [0.5, 0.5, 0.5, 1.0, 1.0], "b": [0.5, 0.5, 1.0, 1.0, 1.0],
                         "c": [0.0, 0.5, 0.5, 0.5, 0.5]}


def test_the_report_writes_tables_and_figures(tmp_path):
    paths = write_report(_records(), tmp_path, defaults={"a": 0.01}, command="symopt sweep x")
    assert set(paths) == {"summary.md", "summary.csv", "learning_rates_p1.png", "curves_p1.png",
                          "learning_rates_p2.png", "curves_p2.png", "profile.png"}
    for path in paths.values():
        assert path.stat().st_size > 0
    text = paths["summary.md"].read_text()
    assert "| p1 | b | 0.01 |" in text and "symopt sweep x" in text
    assert paths["summary.csv"].read_text().splitlines()[0].startswith(
        "problem,rule,learning_rate,median_final_loss")


def test_progress_lines_say_done_total_failures_and_eta():
    import io

    out = io.StringIO()
    progress = _Progress(4, "lines", stream=out, interval=0.0)
    progress.update(diverged=True)
    progress.update(failed=True)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("sweep: 1/4 runs (25%), 1 diverged, 0 failed, 00:00 elapsed, ETA ")
    assert "2/4 runs (50%), 1 diverged, 1 failed" in out.getvalue().splitlines()[1]


# ---------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------


def test_sweep_help_describes_every_option(capsys):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["sweep"]
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 20
    for action in options:
        assert action.help and action.option_strings[-1] in text, action.dest
    assert "log:START:STOP:COUNT" in text and "package.module:function" in text


def test_the_command_reports_a_bad_grid_or_problem_once_and_exits_2(tmp_path, capsys):
    base = ["sweep", "--rules", "sgd", "--steps", "5", "--out", str(tmp_path)]
    assert main([*base, "--problem", "toy", "--grid", "beta2=0.9,x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "symopt sweep: error: --grid beta2: 'x' is not a number (give numbers, "
        "log:START:STOP:COUNT, or default)")
    assert main([*base, "--problem", "toy", "--learning-rates", "log:1e-3:1"]) == 2
    assert "is not log:START:STOP:COUNT" in capsys.readouterr().err
    assert main([*base, "--problem", f"toy,{USER}:broken"]) == 2
    err = capsys.readouterr().err
    assert err.count("failed to build") == 1 and "broken on purpose" in err
    assert not (tmp_path / "results.jsonl").exists()


def test_runs_are_submitted_with_different_graphs_first():
    configs = expand_grid(["toy"], ["sgd", "adam", "momentum"], [0.01, 0.1], seeds=[0, 1])
    order = [(c["rule"], c["hyperparameters"]["learning_rate"], c["seed"])
             for c in interleave_graphs(configs)]
    assert order[:3] == [("sgd", 0.01, 0), ("adam", 0.01, 0), ("momentum", 0.01, 0)]
    assert sorted(order) == sorted((c["rule"], c["hyperparameters"]["learning_rate"],
                                    c["seed"]) for c in configs)
    assert [o for o in order if o[0] == "adam"] == [("adam", 0.01, 0), ("adam", 0.01, 1),
                                                    ("adam", 0.1, 0), ("adam", 0.1, 1)]


def test_a_dry_run_counts_the_runs_left(tmp_path):
    messages = []
    result = sweep(["toy", "quadratic"], ["sgd", "adam"], [0.01, 0.1], seeds=[0, 1], steps=5,
                   out=tmp_path, dry_run=True, say=messages.append)
    assert result.cluster == {"dry_run": 16} and result.new == 0
    assert messages == [f"sweep: 16 runs in the grid, 0 already in {tmp_path}/results.jsonl, "
                        "16 to run"]
