"""Fixtures for the lab tests."""

import pytest

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: only speeds things up
    threadpool_limits = None


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """Run these tests' small matrix products on one BLAS thread.

    On a busy machine, OpenBLAS threads competing for cores make a 50 x 784 product
    a hundred times slower; the tests' matrices are too small to gain from threads.
    """
    if threadpool_limits is None:
        yield
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
