"""The pytest plugin of the recorded curves: ``--record-curves``.

Add ``pytest_plugins = ["symopt.lab.pytest_plugin"]`` to a ``conftest.py``; then
``pytest --record-curves`` (or ``--record-curves=missing``: only the curves a file
lacks) makes :func:`symopt.lab.curves.assert_curve_matches` (and
:func:`symopt.lab.curves.recording`) re-record instead of compare.
"""

from symopt.lab import curves


def pytest_addoption(parser):
    parser.addoption("--record-curves", nargs="?", const="all", default=None,
                     choices=("all", "missing"),
                     help="re-record symopt regression curves instead of comparing them; "
                          "'missing' records only the curves a file lacks (a new rule's)")


def pytest_configure(config):
    option = config.getoption("--record-curves", default=None)
    curves._RECORD_FLAG["on"] = option is not None
    curves._RECORD_FLAG["missing"] = option == "missing"
