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


class _UsageError(Exception):
    """A request that cannot be run as given (exit status 2)."""


#: The subcommands, each a function adding its parser; add new ones here.
SUBCOMMANDS = [add_compare, add_curves]


def build_parser():
    """The ``symopt`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="symopt", formatter_class=_Formatter,
        description="symopt's lab from the shell: the rules compared on image data, and "
                    "the recorded curves.")
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
