"""Project-wide pytest set-up: the recorded-curve plugin and the ``slow`` marker."""

import pytest

pytest_plugins = ["symopt.lab.pytest_plugin"]


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked slow (long trainings, cold compiles)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
