"""Fixtures for the example tests: the scripts in examples/ as modules, on one BLAS thread."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: only speeds things up
    threadpool_limits = None


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """The examples' matrices are small; OpenBLAS threads on busy cores only slow them down."""
    if threadpool_limits is None:
        yield
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield


@pytest.fixture(scope="session")
def example():
    """``example("blog_toy")`` loads examples/blog_toy.py as a module (its ``main`` takes
    argv); the scripts import the lab's kit like any user code, nothing on sys.path."""
    loaded = {}

    def load(name):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"examples.{name}",
                                                          EXAMPLES / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load
