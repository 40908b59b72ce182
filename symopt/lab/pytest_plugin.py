"""The pytest plugin of the recorded curves: ``--record-curves``.

Add ``pytest_plugins = ["symopt.lab.pytest_plugin"]`` to a ``conftest.py``; then
``pytest --record-curves`` makes :func:`symopt.lab.curves.assert_curve_matches` (and
:func:`symopt.lab.curves.recording`) re-record instead of compare.
"""

from symopt.lab import curves


def pytest_addoption(parser):
    parser.addoption("--record-curves", action="store_true", default=False,
                     help="re-record symopt regression curves instead of comparing them")


def pytest_configure(config):
    curves._RECORD_FLAG["on"] = bool(config.getoption("--record-curves", default=False))
