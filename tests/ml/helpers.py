"""Shared helpers for the ML tests."""
from __future__ import annotations

from training.ml.algorithms import ALGORITHMS, Algorithm
from training.ml.problem import ProblemType

#: Small models keep the whole ML test run short.
FAST_PARAMS = {"n_estimators": 15, "max_iter": 20}


def fast_params(algorithm: Algorithm) -> dict:
    return {k: v for k, v in FAST_PARAMS.items() if k in algorithm.search_space}


def algorithm_problem_pairs() -> list[tuple[str, ProblemType]]:
    """Every registered algorithm with every problem type it claims to support."""
    return [(key, p) for key, algorithm in ALGORITHMS.items() for p in ProblemType if p in algorithm.problem_types]


def pair_id(pair) -> str:
    return f"{pair[0]}-{pair[1].value}" if isinstance(pair, tuple) else str(pair)
