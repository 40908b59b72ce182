"""The ``symopt`` console command: its subcommands, their options and what they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symopt.lab import cli

ROOT = Path(__file__).resolve().parents[2]


def test_symopt_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: symopt")
    for name in ("compare", "curves"):
        assert f"    {name}  " in text, text


@pytest.mark.parametrize("argv, options", [
    (["compare"], ["--out", "--epochs", "--quick", "--rules", "--lr", "--no-progress",
                   "symopt compare --rules adam,sgd,book.adam"]),
    (["curves", "check"], ["--runslow", "--tests", "--workers", "symopt curves check"]),
    (["curves", "record"], ["--runslow", "symopt curves record --runslow"]),
])
def test_each_subcommand_has_help(argv, options, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: symopt {' '.join(argv)}")
    for option in options:
        assert option in text, option
    assert "(default: None)" not in text and "(default: False)" not in text


def test_a_missing_or_unknown_subcommand_is_a_usage_error(capsys):
    for argv in ([], ["fly"], ["curves"], ["curves", "redo"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2, argv
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_compare_parses_the_main_jobs_options():
    args = cli.build_parser().parse_args(
        ["compare", "--quick", "--rules", "adam,sgd", "--lr", "sgd=0.1", "--epochs", "3"])
    assert args.handler is cli.run_compare
    assert (args.quick, args.rules, args.lr, args.epochs) == (True, "adam,sgd", ["sgd=0.1"], 3)
    assert args.out == "results" and not args.no_progress  # progress on by default


def test_curves_runs_pytest_on_the_checkouts_curve_tests(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT / "symopt" / "lab")  # found from below the checkout's root
    args = cli.build_parser().parse_args(["curves", "record", "--runslow", "--", "-k", "adam"])
    command, root = cli.curves_command(args)
    assert root == ROOT
    assert command == [sys.executable, "-m", "pytest", str(ROOT / "tests" / "curves"), "-q",
                       "-p", "no:xdist", "--record-curves", "--runslow", "-k", "adam"]
    args = cli.build_parser().parse_args(["curves", "check", "--workers", "auto"])
    command, _ = cli.curves_command(args)
    assert "--record-curves" not in command and command[-2:] == ["-n", "auto"]
    monkeypatch.chdir(tmp_path)  # outside a checkout: a clear error, exit status 2
    assert cli.main(["curves", "check"]) == 2


def test_curves_check_passes_pytests_result_through(monkeypatch):
    ran = []
    monkeypatch.setattr(cli.subprocess, "run",
                        lambda command, cwd: ran.append((command, cwd))
                        or subprocess.CompletedProcess(command, 1))
    monkeypatch.chdir(ROOT)
    assert cli.main(["curves", "check", "--", "-k", "toy"]) == 1
    [(command, cwd)] = ran
    assert cwd == ROOT and command[-2:] == ["-k", "toy"]


def test_the_command_is_installed_as_symopt():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.scripts]\nsymopt = "symopt.lab.cli:main"' in text
    done = subprocess.run([sys.executable, "-m", "symopt.lab.cli", "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "compare" in done.stdout


def test_compare_replot_redraws_the_committed_run_without_training(tmp_path):
    import shutil

    source = ROOT / "docs" / "results" / "compare_rules"
    shutil.copy(source / "comparison.json", tmp_path / "comparison.json")
    shutil.copytree(source / "histories", tmp_path / "histories")
    assert cli.main(["compare", "--replot", "--out", str(tmp_path)]) == 0
    for name in ("library.png", "texts.png", "summary.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
