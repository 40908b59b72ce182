"""Sweeps on real Dask clusters: a LocalCluster of two worker processes, and a scheduler
and workers started as separate processes, as on a real cluster.

Small on purpose (the toy quadratics, 20-30 steps): what is tested is the engine, resume,
compile-once, worker death and failures, not the optimizers.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from symopt.lab.cli import main  # noqa: E402
from symopt.lab.sweep import sweep  # noqa: E402
from symopt.lab.sweep_grid import config_key, graph_key  # noqa: E402
from symopt.lab.sweep_log import read_records  # noqa: E402

from .sweep_user_problems import DIE_ONCE  # noqa: E402

pytestmark = pytest.mark.xdist_group("dask")   # one cluster at a time, in one test process

USER = "tests.lab.sweep_user_problems"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def die_once_marker(tmp_path_factory):
    return tmp_path_factory.mktemp("die-once") / "died"


@pytest.fixture(scope="module")
def client(die_once_marker):
    """Two worker processes, one thread each, as ``symopt sweep --workers 2`` starts them.

    Workers inherit this process's environment (the marker's path) and, being spawned,
    its ``sys.path``, so they import the tests' user problems."""
    os.environ[DIE_ONCE] = str(die_once_marker)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
    os.environ.pop(DIE_ONCE, None)


def _lines(path):
    return Path(path).read_text().splitlines()


def test_a_sweep_completes_resumes_and_grows(client, tmp_path):
    args = dict(problems=["quadratic"], rules=["sgd", "adam"], seeds=[0, 1], steps=20,
                out=tmp_path, client=client, progress="none", say=lambda m: None)
    first = sweep(learning_rates=[1e-3, 0.01], **args)
    assert (first.new, first.skipped, first.ok, len(first.records)) == (8, 0, True, 8)
    by_setting = {(r["config"]["rule"], r["config"]["hyperparameters"]["learning_rate"],
                   r["config"]["seed"]): r for r in first.records}
    # the quadratic's largest curvature is 1000: SGD diverges past 2e-3, Adam does not
    assert all(by_setting["sgd", 0.01, s]["diverged"] for s in (0, 1))
    assert not any(r["diverged"] for k, r in by_setting.items() if k[:2] != ("sgd", 0.01))
    assert len({r["worker"]["pid"] for r in first.records}) == 2      # both workers worked
    # each worker compiled each rule's graph once, whatever the learning rates and seeds
    compiled = collections.Counter((r["worker"]["pid"], graph_key(r["config"]))
                                   for r in first.records if r["compiled"])
    ran = {(r["worker"]["pid"], graph_key(r["config"])) for r in first.records}
    assert set(compiled) == ran and set(compiled.values()) == {1}
    assert {p.name for p in tmp_path.iterdir()} >= {
        "results.jsonl", "sweep.json", "summary.md", "summary.csv",
        "learning_rates_quadratic.png", "curves_quadratic.png"}
    results = tmp_path / "results.jsonl"
    before = results.read_bytes()

    again = sweep(learning_rates=[1e-3, 0.01], **args)
    assert (again.new, again.skipped, len(again.records)) == (0, 8, 8)
    assert results.read_bytes() == before                             # nothing recomputed

    grown = sweep(learning_rates=[1e-3, 0.01, 3e-3], **args)
    assert (grown.new, grown.skipped, len(grown.records)) == (4, 8, 12)
    assert results.read_bytes().startswith(before)                    # only appended
    keys = [json.loads(line)["key"] for line in _lines(results)]
    assert len(keys) == len(set(keys)) == 12
    meta = json.loads((tmp_path / "sweep.json").read_text())
    assert meta["runs"] == 12 and meta["new"] == 4 and len(meta["cluster"]["workers"]) == 2
    # one PyTensor compile directory shared by the workers of this machine
    assert len(meta["cluster"]["compiledirs"]) == 1


def test_a_worker_killed_mid_sweep_loses_no_run(client, tmp_path, die_once_marker):
    """The run with seed 1 kills its worker the first time: the scheduler gives it to the
    other worker (the nanny restarts the dead one) and every run is recorded once."""
    assert not die_once_marker.exists()
    result = sweep([f"{USER}:dies_once"], ["sgd", "momentum"], [0.05, 0.1], seeds=[0, 1, 2],
                   steps=20, out=tmp_path, client=client, retries=1, progress="none",
                   say=lambda m: None)
    assert die_once_marker.exists()                                   # a worker did die
    assert result.ok and result.new == 12
    records, problems = read_records(tmp_path / "results.jsonl")
    assert problems == [] and len(records) == 12
    assert len({r["key"] for r in records}) == 12
    seed_1 = [r for r in records if r["config"]["seed"] == 1]
    assert len(seed_1) == 4 and not any(r["diverged"] for r in records)
    # the seed set the start: 0.5 * sum(k * (seed - 1)^2), k = 1..4
    assert {r["config"]["seed"]: r["initial_loss"] for r in records} == {0: 5.0, 1: 0.0, 2: 5.0}


def test_a_diverging_rule_is_recorded_as_diverged(client, tmp_path):
    result = sweep(["toy"], ["sgd", "adam"], [1.0], seeds=[0], steps=20, out=tmp_path,
                   client=client, progress="none", say=lambda m: None)
    assert result.ok and len(result.records) == 2
    sgd, adam = sorted(result.records, key=lambda r: r["config"]["rule"] != "sgd")
    assert sgd["diverged"] and sgd["final_loss"] is None and sgd["diverged_at"] <= 3
    assert not adam["diverged"] and adam["final_loss"] is not None
    summary = (tmp_path / "summary.md").read_text()
    assert "| toy | sgd | 1 | diverged | diverged | diverged | 1 | 1 |" in summary


def test_a_problem_that_fails_on_the_workers_is_reported_once(client, tmp_path):
    messages = []
    result = sweep([f"{USER}:fails_on_workers", "toy"], ["sgd"], [0.01, 0.02], seeds=[0, 1],
                   steps=10, out=tmp_path, client=client, retries=0, progress="none",
                   say=messages.append)
    assert not result.ok and len(result.records) == 4                 # toy's runs all done
    assert {f["config"]["problem"] for f in result.failures} == {f"{USER}:fails_on_workers"}
    assert all(f["error_type"] == "ProblemBuildError" for f in result.failures)
    on_worker = [m for m in messages if "(on a worker)" in m]
    assert len(on_worker) == 1 and "RuntimeError: no data on this worker" in on_worker[0]
    assert len(_lines(tmp_path / "failures.jsonl")) == len(result.failures) == 4
    assert all(config_key(f["config"]) == f["key"] for f in result.failures)


def test_the_command_as_written_runs_on_its_own_local_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status = main(["sweep", "--problem", "quadratic", "--rules", "sgd,adam", "--learning-rates",
                   "0.01,0.1", "--seeds", "0,1", "--steps", "50", "--workers", "2", "--out",
                   "results/sweep", "--progress", "lines"])
    out, err = capsys.readouterr()
    assert status == 0
    assert "| quadratic | adam | 0.1 |" in out
    assert "sweep: 8/8 runs (100%)" in err and "starting a local Dask cluster of 2" in err
    records, _ = read_records(tmp_path / "results/sweep/results.jsonl")
    assert len(records) == 8
    meta = json.loads((tmp_path / "results/sweep/sweep.json").read_text())
    assert meta["command"].startswith("symopt sweep --problem quadratic --rules sgd,adam")


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_the_command_runs_on_a_separately_started_scheduler_and_workers(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes, as on a cluster, on a free
    port of localhost; ``symopt sweep --scheduler`` runs on them."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop(DIE_ONCE, None)
    processes = []
    try:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        assert _wait_for(scheduler_file.exists), "the scheduler did not start"
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file",
                 str(scheduler_file), "--nthreads", "1", "--no-dashboard"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address) as c:
            c.wait_for_workers(2, timeout=120)
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "symopt.lab.cli", "sweep", "--problem",
             f"quadratic,{USER}:small_quadratic", "--rules", "sgd,adam", "--learning-rates",
             "1e-3,0.01", "--seeds", "0,1", "--steps", "30", "--scheduler", address,
             "--out", str(out), "--progress", "lines"],
            env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        records, problems = read_records(out / "results.jsonl")
        assert problems == [] and len(records) == 16
        meta = json.loads((out / "sweep.json").read_text())
        assert meta["cluster"]["scheduler"] == address
        assert len(meta["cluster"]["workers"]) == 2
        assert (out / "profile.png").exists()                 # two problems: a profile
        again = subprocess.run(
            [sys.executable, "-m", "symopt.lab.cli", "sweep", "--problem",
             f"quadratic,{USER}:small_quadratic", "--rules", "sgd,adam", "--learning-rates",
             "1e-3,0.01", "--seeds", "0,1", "--steps", "30", "--scheduler", address,
             "--out", str(out), "--progress", "none"],
            env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0 and "16 already in" in again.stderr
        assert len(read_records(out / "results.jsonl")[0]) == 16
    finally:
        for p in reversed(processes):
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
