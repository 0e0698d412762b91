"""Cap the native thread pools (BLAS, OpenMP) a fit may use.

Estimators that take ``n_jobs`` get ``n_threads`` from the registry, but some
(``LogisticRegression``, ``HistGradientBoosting*``) parallelise through BLAS or
OpenMP only; those obey the limits set here.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Limit every BLAS/OpenMP pool in this process to ``n`` threads for the block."""
    if n < 1:
        raise ValueError(f"n_threads must be at least 1, got {n}")
    with threadpool_limits(limits=n):
        yield
