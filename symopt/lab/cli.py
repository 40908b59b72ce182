"""The ``symopt`` console command: the lab's tools from a shell.

Each subcommand is one function ``add_<name>(subparsers)`` that adds its parser and sets
its handler (``handler(args) -> exit status``); :data:`SUBCOMMANDS` lists them, and
adding a subcommand is adding a function there. ``symopt <subcommand> --help`` describes
every option.

Exit status: 0 when everything asked for was done, 1 when some runs or checks failed, 2
for a usage error.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

__all__ = ["SUBCOMMANDS", "build_parser", "main"]


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; descriptions and epilogs keep their lines."""


class _SetDefaultsFormatter(_Formatter):
    """:class:`_Formatter` without ``(default: None)`` or ``(default: False)``: options
    without a set default, and flags, say in their help what they do otherwise."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.nargs == "*" \
                or action.default == []:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------------------------------
# symopt compare
# ---------------------------------------------------------------------------------------


def add_compare(subparsers):
    """``symopt compare``: the main job, every rule and text form on the image data."""
    from symopt.lab import compare

    p = subparsers.add_parser(
        "compare", formatter_class=_SetDefaultsFormatter, epilog=compare.EXAMPLES,
        help="train every rule and text form on the image data (the main job)",
        description="Train each update rule of symopt, and the source texts' forms, on the\n"
                    "same 784-600-10 MLP on Fashion-MNIST (the full set when installed in\n"
                    "/usr/share/datasets/fashion-mnist, else the subset shipped with symopt);\n"
                    "write a results table (comparison.md/.csv/.json), figures (library.png,\n"
                    "texts.png, summary.png) and every history to OUT.")
    compare.add_arguments(p)
    p.set_defaults(handler=run_compare)
    return p


def run_compare(args):
    """The handler of ``symopt compare``."""
    from symopt.lab import compare, kit

    with kit.limit_threads(1):
        compare.run(args)
    return 0


# ---------------------------------------------------------------------------------------
# symopt curves record / check
# ---------------------------------------------------------------------------------------

_CURVES_EPILOG = """\
examples:
  symopt curves check                       # the analytic problems' curves (minutes)
  symopt curves check --runslow             # also logistic regression and the MLP
  symopt curves check -- -k adam            # more pytest options after --
  symopt curves record --runslow            # re-record every curve (about 25 minutes)

Both run pytest on the recorded-curve tests of a source checkout (tests/curves, found
from the current directory upwards, or --tests); recording rewrites
tests/curves/recorded/*.json with new tolerance envelopes.
"""


def _find_curve_tests(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "tests" / "curves"
        if (candidate / "test_curves.py").is_file():
            return candidate
    return None


def add_curves(subparsers):
    """``symopt curves record|check``: the recorded curves, through pytest."""
    p = subparsers.add_parser(
        "curves", formatter_class=_SetDefaultsFormatter, epilog=_CURVES_EPILOG,
        help="check the recorded curves, or re-record them",
        description="Check every form's training curves against the recorded ones (with\n"
                    "their tolerance envelopes), or record them anew, by running pytest on\n"
                    "a source checkout's tests/curves.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("check", "compare new runs with the recorded curves"),
                         ("record", "record the curves anew (rewrites tests/curves/recorded)")):
        a = actions.add_parser(action, formatter_class=_SetDefaultsFormatter,
                               epilog=_CURVES_EPILOG,
                               help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("--tests", type=Path, default=None, metavar="DIR",
                       help="the curve tests' directory (default: tests/curves of the "
                            "checkout around the current directory)")
        a.add_argument("--runslow", action="store_true",
                       help="include the image problems (logistic regression, the MLP), "
                            "whose graphs take minutes to compile cold")
        a.add_argument("--workers", default="0", metavar="N",
                       help="pytest-xdist workers ('auto' for one per core, 0 for none)")
        a.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                       help="more pytest options, after --")
        a.set_defaults(handler=run_curves, record=action == "record")
    return p


def curves_command(args) -> tuple[list[str], Path]:
    """The pytest command line ``symopt curves`` runs, and the checkout it runs in."""
    tests = args.tests if args.tests is not None else _find_curve_tests(Path.cwd())
    if tests is None or not Path(tests).is_dir():
        raise _UsageError("no tests/curves found from the current directory upwards; run "
                          "in a source checkout of symopt or give --tests DIR")
    command = [sys.executable, "-m", "pytest", str(tests), "-q"]
    command += ["-p", "no:xdist"] if str(args.workers) == "0" else ["-n", str(args.workers)]
    if args.record:
        command.append("--record-curves")
    if args.runslow:
        command.append("--runslow")
    # pytest runs from the checkout's root, where its configuration and conftest.py are
    root = Path(tests).resolve().parents[1]
    return command + list(args.pytest_args), root


def run_curves(args):
    """The handler of ``symopt curves record|check``: pytest's own exit status."""
    command, root = curves_command(args)
    print(f"running in {root}:", shlex.join(command), file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=root).returncode


# ---------------------------------------------------------------------------------------
# symopt sweep
# ---------------------------------------------------------------------------------------

_SWEEP_EPILOG = """\
examples:
  symopt sweep --problem quadratic --rules sgd,adam --learning-rates 0.01,0.1 \\
               --seeds 0,1 --steps 50 --workers 2 --out results/sweep
  symopt sweep --problem quadratic --rules sgd,adam --learning-rates 0.01,0.1 \\
               --seeds 0,1 --steps 50 --scheduler tcp://host:8786 --out results/sweep
  symopt sweep --problem quadratic_deep,logistic --rules all \\
               --learning-rates default,log:1e-4:1:9 --seeds 0-4 --steps 200
  symopt sweep --problem my_package.problems:ridge --rules adam \\
               --grid beta2=0.99,0.999 --learning-rates log:1e-3:1e-1:5

values: numbers separated by commas; log:START:STOP:COUNT for COUNT log-spaced values
from START to STOP; default for each rule's own default; true/false.

user problems: package.module:function, called as function(dtype="float64") on the
client and on each worker (which must be able to import it); it returns
(loss, params), a symopt.lab.sweep_problems.SweepProblem or a symopt.lab.problems.Problem.
See symopt.lab.sweep_problems.

output (in --out): results.jsonl (one JSON record per run, appended; re-running the
same command runs only what is missing), failures.jsonl, sweep.json, summary.md and
summary.csv, learning_rates_<problem>.png, curves_<problem>.png, profile.png (two or
more problems).
"""


def add_sweep(subparsers):
    """``symopt sweep``: train a grid of rules x hyperparameters x seeds x problems."""
    from symopt.lab.sweep_problems import problem_names

    p = subparsers.add_parser(
        "sweep", formatter_class=_Formatter, epilog=_SWEEP_EPILOG,
        help="train a grid of rules, learning rates, seeds and problems on Dask",
        description="Train every combination of rules, learning rates (and other "
                    "hyperparameters), seeds and problems as Dask tasks, on a local "
                    "cluster or an existing one; append one record per run to "
                    "OUT/results.jsonl (resuming where a previous run stopped) and write "
                    "a summary table and figures.")
    what = p.add_argument_group("what to run")
    what.add_argument("--problem", action="append", required=True, metavar="PROBLEMS",
                      help="problems, separated by commas (repeatable): the lab's "
                           f"({', '.join(problem_names())}) or package.module:function")
    what.add_argument("--rules", action="append", required=True, metavar="RULES",
                      help="rules, separated by commas (repeatable): names in symopt.RULES "
                           "or symopt.lab.forms.FORMS, 'all' (every library rule) or "
                           "'forms' (every form)")
    what.add_argument("--learning-rates", default="default", metavar="VALUES",
                      help="learning rates: numbers, log:START:STOP:COUNT, and/or default "
                           "(each rule's own)")
    what.add_argument("--grid", action="append", default=[], metavar="NAME=VALUES",
                      help="another hyperparameter and its values, e.g. beta2=0.99,0.999 "
                           "(repeatable; applies to the rules that have it)")
    what.add_argument("--seeds", default="0", metavar="SEEDS",
                      help="seeds: whole numbers and ranges, e.g. 0,1 or 0-4")
    what.add_argument("--steps", type=int, default=100,
                      help="training steps (mini-batches for problems with data) per run")
    what.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                      help="float type of parameters and data")
    what.add_argument("--backend", choices=["numba", "c", "default"], default="numba",
                      help="PyTensor backend: Numba, the C virtual machine, or PyTensor's "
                           "default mode")
    what.add_argument("--data", default="embedded", metavar="DATA",
                      help="image data for logistic and mlp: embedded (the Fashion-MNIST "
                           "subset shipped with symopt), full (the full Fashion-MNIST in "
                           "/usr/share/datasets/fashion-mnist) or a directory of IDX files")
    what.add_argument("--divergence-factor", type=float, default=1e4, metavar="F",
                      help="a run diverges when its loss is not finite or exceeds its first "
                           "loss by F times that loss's size (inf: only non-finite)")
    what.add_argument("--eval-every", type=int, default=0, metavar="N",
                      help="also evaluate the loss on the problem's evaluation set every N "
                           "steps (problems with data; 0: only at the end)")
    where = p.add_argument_group("where to run")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local Dask cluster (default: one per "
                            "core)")
    where.add_argument("--threads-per-worker", type=int, default=1, metavar="N",
                       help="threads of each local worker")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of an existing Dask scheduler (tcp://host:8786) to run "
                            "on instead of a local cluster")
    where.add_argument("--retries", type=int, default=1,
                       help="times a run that raised an error is retried")
    output = p.add_argument_group("output")
    output.add_argument("--out", default="results/sweep", metavar="DIR",
                        help="output directory (results.jsonl, summary, figures)")
    output.add_argument("--curve-every", type=int, default=None, metavar="N",
                        help="keep every N-th step of each loss curve (the mean of each N "
                             "mini-batch losses); default: at most 200 points per curve")
    output.add_argument("--progress", choices=["auto", "tqdm", "lines", "none"],
                        default="auto",
                        help="progress display: a tqdm bar on a terminal (auto), plain "
                             "lines (for logs), or none")
    output.add_argument("--no-report", action="store_true",
                        help="do not write the summary table and figures")
    output.add_argument("--dry-run", action="store_true",
                        help="check the grid and the problems, say how many runs are left, "
                             "run nothing")
    p.set_defaults(handler=run_sweep)
    return p


def run_sweep(args):
    """The handler of ``symopt sweep``: a bad grid or option, a problem that does not build
    or an output directory in use by another sweep is a usage error (exit status 2)."""
    from symopt.lab.sweep_grid import SweepSpecError
    from symopt.lab.sweep_log import SweepLockedError
    from symopt.lab.sweep_problems import ProblemBuildError

    try:
        return _run_sweep(args)
    except (SweepSpecError, ProblemBuildError, SweepLockedError) as err:
        raise _UsageError(str(err)) from None


def _run_sweep(args):
    from symopt.lab.sweep import sweep
    from symopt.lab.sweep_grid import parse_grid_option, parse_seeds, parse_values, split_list

    grid = {}
    for option in args.grid:
        name, values = parse_grid_option(option)
        grid[name] = grid.get(name, []) + values
    result = sweep(
        [p for text in args.problem for p in split_list(text)],
        [r for text in args.rules for r in split_list(text)],
        parse_values(args.learning_rates, "--learning-rates"), grid,
        parse_seeds(args.seeds), steps=args.steps, dtype=args.dtype, backend=args.backend,
        data=args.data, out=args.out, workers=args.workers,
        threads_per_worker=args.threads_per_worker, scheduler=args.scheduler,
        retries=args.retries, divergence_factor=args.divergence_factor,
        eval_every=args.eval_every, curve_every=args.curve_every, progress=args.progress,
        report=not args.no_report, command=args.command_line, dry_run=args.dry_run)
    summary = result.paths.get("summary.md")
    if summary is not None:
        print(summary.read_text().split("\n\nMade by:")[0].rstrip())
    return 0 if result.ok else 1


class _UsageError(Exception):
    """A request that cannot be run as given (exit status 2)."""


#: The subcommands, each a function adding its parser; add new ones here.
SUBCOMMANDS = [add_compare, add_curves, add_sweep]


def build_parser():
    """The ``symopt`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="symopt", formatter_class=_Formatter,
        description="symopt's lab from the shell: the rules compared on image data, "
                    "the recorded curves, and sweeps on Dask.")
    subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None):
    """Run ``symopt`` with ``argv`` (``sys.argv[1:]`` by default); return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["symopt", *argv])
    try:
        return args.handler(args)
    except _UsageError as err:
        print(f"symopt {args.subcommand}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
