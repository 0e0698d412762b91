"""Cap the native thread pools (BLAS, OpenMP) a fit may use.

Estimators that take ``n_jobs`` get ``n_threads`` from the registry, but some
(``LogisticRegression``, ``HistGradientBoosting*``) parallelise through BLAS or
OpenMP only; those obey the limits set here.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import joblib
from threadpoolctl import threadpool_limits


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Limit every BLAS/OpenMP pool in this process to ``n`` threads for the block."""
    if n < 1:
        raise ValueError(f"n_threads must be at least 1, got {n}")
    with threadpool_limits(limits=n):
        yield


@contextmanager
def job_threads(n: int) -> Iterator[None]:
    """A job's threads, for native pools and joblib alike. Job workers are daemon processes: joblib may not
    start processes there (its default backend would fall back to one thread, with a warning), threads it may."""
    with limit_threads(n), joblib.parallel_config(backend="threading", n_jobs=n):
        yield
