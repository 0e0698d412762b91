"""Suggestions: problem type, metric, ranked algorithms, search settings and warnings, with reasons."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from training.ml.algorithms import algorithms_for
from training.ml.errors import MLInputError
from training.ml.problem import ProblemType
from training.ml.suggest import SAMPLE_ROWS, suggest


def _frame(loader) -> pd.DataFrame:
    return loader(as_frame=True).frame


def _kinds(answer: dict, column: str | None = None) -> set[str]:
    return {w["kind"] for w in answer["warnings"] if column is None or w["column"] == column}


@pytest.mark.parametrize(
    ("loader", "problem_type", "metric"),
    [(load_breast_cancer, "binary", "roc_auc"), (load_iris, "multiclass", "log_loss"),
     (load_diabetes, "regression", "rmse")],
    ids=["breast_cancer", "iris", "diabetes"],
)
def test_bundled_datasets_get_sensible_suggestions(loader, problem_type, metric):
    # Given a clean bundled dataset / When suggestions are asked for its target
    answer = suggest(_frame(loader), "target")
    # Then problem type, metric and algorithms fit it, each with a reason, and the answer is JSON
    assert answer["problem_type"] == problem_type and answer["reason"]
    assert answer["metric"] == metric and answer["metric_reason"]
    keys = [a["key"] for a in answer["algorithms"]]
    assert sorted(keys) == sorted(a.key for a in algorithms_for(ProblemType(problem_type)))
    assert all(a["reason"] for a in answer["algorithms"])
    assert answer["search"]["method"] in {"none", "random", "bayesian"}
    assert answer["search"]["cv_folds"] >= 2 and answer["search"]["n_trials"] >= 1 and answer["search"]["reason"]
    assert not _kinds(answer) & {"leakage", "identifier", "mostly_missing"}
    assert answer["sampled"] is False
    json.dumps(answer, allow_nan=False)


def test_small_data_ranks_a_baseline_first_and_large_data_ranks_boosting_first():
    # Given a small and a large binary dataset
    rng = np.random.default_rng(0)
    small = _frame(load_breast_cancer).sample(200, random_state=0)
    n = 300_000
    large = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n)})
    large["y"] = (large["a"] * large["b"] + rng.normal(size=n) > 0).astype(int)
    # When ranked / Then the linear baseline leads on few rows and boosted trees lead on many
    small_first = suggest(small, "target")["algorithms"][0]
    assert small_first["baseline"] and "baseline" in small_first["reason"]
    assert suggest(large, "y")["algorithms"][0]["family"] == "boosted trees"


def test_imbalanced_binary_target_is_explained():
    frame = _frame(load_breast_cancer)
    positives = frame[frame["target"] == 0].head(12)
    frame = pd.concat([frame[frame["target"] == 1], positives])
    answer = suggest(frame, "target")
    assert answer["metric"] == "roc_auc" and "imbalanced" in answer["metric_reason"]
    assert answer["class_balance"]["minority_share"] < 0.1
    assert "tiny_class" in _kinds(answer)


def test_planted_leakage_is_flagged():
    # Given breast cancer plus a noisy copy of the target and the label as text
    frame = _frame(load_breast_cancer)
    rng = np.random.default_rng(1)
    frame["leak"] = frame["target"] + rng.normal(scale=0.1, size=len(frame))
    frame["label_text"] = frame["target"].map({0: "bad", 1: "good"})
    # When suggestions are asked
    answer = suggest(frame, "target")
    # Then both are flagged as leakage, and no ordinary column is
    leaks = {w["column"] for w in answer["warnings"] if w["kind"] == "leakage"}
    assert leaks == {"leak", "label_text"}


def test_leakage_in_regression_is_flagged():
    frame = _frame(load_diabetes)
    frame["target_x2"] = frame["target"] * 2 + 1
    assert "leakage" in _kinds(suggest(frame, "target"), "target_x2")


def test_identifier_and_mostly_missing_columns_are_flagged(mixed_df):
    # Given customers with id columns and a column missing in 80 % of rows
    frame = mixed_df.copy()
    frame["notes_score"] = np.where(np.arange(len(frame)) % 5 == 0, 1.0, np.nan)
    # When / Then
    answer = suggest(frame, "churn")
    assert "identifier" in _kinds(answer, "customer_id")
    assert "identifier" in _kinds(answer, "code")
    assert "mostly_missing" in _kinds(answer, "notes_score")


def test_too_few_rows_and_tiny_classes_are_flagged():
    frame = pd.DataFrame({"x": np.arange(40, dtype=float), "y": ["a"] * 37 + ["b"] * 3})
    answer = suggest(frame, "y")
    assert {"too_few_rows", "tiny_class"} <= _kinds(answer)
    assert answer["search"]["cv_folds"] <= 3


@pytest.mark.parametrize(("frame", "target"), [
    (pd.DataFrame({"a": [1, 2, 3]}), "missing"),
    (pd.DataFrame({"a": [1, 2, 3], "y": [5, 5, 5]}), "y"),
], ids=["unknown", "constant"])
def test_unknown_or_constant_target_is_refused(frame, target):
    with pytest.raises(MLInputError) as caught:
        suggest(frame, target)
    assert caught.value.field == "target"


def test_a_million_rows_are_answered_in_seconds_from_a_sample():
    # Given a million rows
    rng = np.random.default_rng(0)
    n = 1_000_000
    frame = pd.DataFrame({"id": np.arange(n), "a": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)})
    frame["y"] = (frame["a"] + rng.normal(size=n) > 0).astype(int)
    # When
    started = time.monotonic()
    answer = suggest(frame, "y")
    # Then it was fast, and says it used a sample
    assert time.monotonic() - started < 10
    assert answer["sampled"] is True and answer["sample_rows"] == SAMPLE_ROWS and answer["rows"] == n
    assert "identifier" in _kinds(answer, "id")


def test_profile_and_total_rows_drive_the_plan():
    # Given a 2,000-row sample of a dataset said to have 5 million rows
    frame = _frame(load_breast_cancer).sample(400, random_state=0)
    answer = suggest(frame, "target", total_rows=5_000_000)
    # Then the search plan is that of a very large dataset, and class counts are scaled up
    assert answer["sampled"] is True and answer["rows"] == 5_000_000
    assert answer["search"]["method"] in {"random", "none"}
    assert sum(answer["class_balance"]["counts"].values()) == pytest.approx(5_000_000, rel=0.01)
