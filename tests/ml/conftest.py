"""Small datasets and a cache of trained models shared by the ML tests (no database)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from tests.ml.helpers import fast_params
from training.ml.problem import ProblemType
from training.ml.trainer import TrainConfig, TrainResult, train

@pytest.fixture(scope="session")
def binary_df() -> pd.DataFrame:
    """Breast cancer, 200 rows, with text labels so label handling is exercised."""
    frame = load_breast_cancer(as_frame=True).frame.sample(200, random_state=0).reset_index(drop=True)
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="session")
def multiclass_df() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return frame


@pytest.fixture(scope="session")
def regression_df() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame.sample(250, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="session")
def datasets(binary_df, multiclass_df, regression_df) -> dict[ProblemType, pd.DataFrame]:
    return {ProblemType.BINARY: binary_df, ProblemType.MULTICLASS: multiclass_df,
            ProblemType.REGRESSION: regression_df}


@pytest.fixture(scope="session")
def mixed_df() -> pd.DataFrame:
    """Every column kind: identifiers, free text, dates as strings, yes/no, categories with gaps."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n),
        "code": [f"C-{i:05d}" for i in rng.permutation(n)],
        "city": rng.choice(["Paris", "Lyon", "Nice", None], n),
        "signup": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "active": rng.choice(["yes", "no"], n),
        "comment": [f"Customer wrote a fairly long comment, number {i}, about item {rng.integers(10**6)}"
                    for i in range(n)],
        "amount": rng.normal(100, 20, n),
    })
    frame.loc[::10, "amount"] = np.nan
    frame["churn"] = np.where(frame["city"].eq("Paris") | frame["active"].eq("no"), "yes", "no")
    return frame


@pytest.fixture(scope="session")
def trained(datasets) -> Callable[[str, ProblemType], TrainResult]:
    """Train each (algorithm, problem type) once per session and reuse the result."""
    from training.ml.algorithms import get_algorithm

    cache: dict[tuple[str, ProblemType], TrainResult] = {}

    def get(key: str, problem_type: ProblemType) -> TrainResult:
        if (key, problem_type) not in cache:
            config = TrainConfig(target="target", algorithm=key, problem_type=problem_type.value, cv_folds=3,
                                 params=fast_params(get_algorithm(key)))
            cache[key, problem_type] = train(datasets[problem_type], config)
        return cache[key, problem_type]

    return get

