"""AutoML: validation, a budgeted search across algorithms, a registered-ready result, cancel and early stop."""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from sklearn.ensemble import VotingClassifier, VotingRegressor

from training.ml.algorithms import get_algorithm
from training.ml.artifacts import dump_pipeline, load_pipeline
from training.ml.automl import AutoMLConfig, AutoMLResult, build_ensemble, run_automl
from training.ml.errors import JobCancelled, MLInputError
from training.ml.preprocess import plan_preprocessing
from training.ml.problem import ProblemType
from training.ml.trainer import TrainResult

LEADERBOARD_KEYS = {"rank", "algorithm", "params", "cv_mean", "cv_std", "fit_time_s", "predict_time_per_row_ms",
                    "model_size_bytes", "state", "fidelity"}


def _allowed_wall_time(budget: float) -> float:
    return budget + 15 if budget <= 60 else budget * 1.10


@pytest.mark.parametrize(("change", "field"), [
    ({"target": "nope"}, "target"),
    ({"time_budget_s": 1}, "time_budget_s"),
    ({"cv_folds": 1}, "cv_folds"),
    ({"algorithms": ["no_such_thing"]}, "algorithms"),
    ({"algorithms": ["ridge"]}, "algorithms"),  # regression only, the target is binary
    ({"metric": "rmse"}, "metric"),
    ({"features": ["target"]}, "features"),
    ({"ensemble": "yes"}, "ensemble"),
], ids=lambda v: str(v))
def test_validate_names_the_field(binary_df, change, field):
    config = AutoMLConfig(**{"target": "target", **change})
    with pytest.raises(MLInputError) as caught:
        config.validate(binary_df)
    assert caught.value.field == field


def test_from_dict_refuses_unknown_settings():
    with pytest.raises(MLInputError) as caught:
        AutoMLConfig.from_dict({"target": "y", "budget": 3})
    assert caught.value.field == "budget"


@pytest.fixture(scope="module")
def binary_run(binary_df):
    stages: list[tuple[str, float]] = []
    started = time.monotonic()
    # Three quick families, so that even a busy machine gets through more than one in 10 s.
    config = AutoMLConfig(target="target", time_budget_s=10, cv_folds=3, n_threads=2,
                          algorithms=["logistic_regression", "random_forest", "extra_trees"])
    result = run_automl(binary_df, config, progress=lambda stage, fraction: stages.append((stage, fraction)))
    return result, stages, time.monotonic() - started


def test_small_budget_search_stays_within_budget_and_tries_several_algorithms(binary_run):
    # Given a 10 s budget / When AutoML runs
    result, stages, wall = binary_run
    # Then it ends within the budget rule and compared several algorithms
    assert wall <= _allowed_wall_time(10)
    assert isinstance(result, AutoMLResult) and isinstance(result, TrainResult)
    complete = [row for row in result.leaderboard if row["state"] == "complete" and row["number"] is not None]
    assert len({row["algorithm"] for row in complete}) > 1
    assert all(LEADERBOARD_KEYS <= set(row) for row in result.leaderboard)
    ranks = [row["rank"] for row in result.leaderboard if row["rank"] is not None]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert any(row["model_size_bytes"] for row in result.leaderboard)
    assert {row["state"] for row in result.leaderboard} <= {"complete", "pruned", "failed"}


def test_progress_reports_candidates_against_the_budget(binary_run):
    _, stages, _ = binary_run
    fold_stages = [s for s, _ in stages if s.startswith("candidate")]
    assert fold_stages and all(re.match(r"candidate \d+: \w+, fold \d/3", s) for s in fold_stages)
    assert any("· best roc_auc" in s for s in fold_stages)
    fractions = [f for _, f in stages]
    assert all(0 <= f <= 1 for f in fractions) and fractions[-1] == 1.0


def test_result_is_ready_to_register(binary_run, binary_df):
    result, _, _ = binary_run
    # The pipeline has the usual two steps, predicts the original labels and survives a skops round trip
    assert [name for name, _ in result.pipeline.steps] == ["preprocess", "model"]
    X = result.test_frame[result.used_columns]
    loaded = load_pipeline(dump_pipeline(result.pipeline))
    np.testing.assert_array_equal(loaded.predict_proba(X), result.pipeline.predict_proba(X))
    assert set(loaded.predict(X)) <= {"malignant", "benign"}
    assert result.classes == ["benign", "malignant"] and result.metric == "roc_auc" and result.greater_is_better
    assert result.test_metrics["scores"]["roc_auc"] > 0.9
    assert result.cv_mean is not None and result.importance and result.feature_schema
    assert result.ensemble["reason"] and isinstance(result.ensemble["chosen"], bool)
    assert result.algorithm in {"ensemble", "logistic_regression", "random_forest", "extra_trees"}
    summary = result.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["leaderboard"] and summary["algorithm"] == result.algorithm


@pytest.mark.parametrize("problem_type", [ProblemType.MULTICLASS, ProblemType.REGRESSION])
def test_an_ensemble_pipeline_round_trips_with_skops(problem_type, datasets):
    # Given an ensemble of a scaled linear model and a label-encoded XGBoost (or forest)
    frame = datasets[problem_type]
    X, y = frame.drop(columns="target"), frame["target"]
    plans = {scale: plan_preprocessing(X, scale_numeric=scale).transformer for scale in (False, True)}
    linear = "logistic_regression" if problem_type.is_classification else "ridge"
    members = [("linear", get_algorithm(linear), {}, 1.0),
               ("xgb", get_algorithm("xgboost"), {"n_estimators": 15}, 2.0)]
    pipeline = build_ensemble(members, problem_type, plans).fit(X, y)
    # When saved and loaded / Then it predicts identically, and is a soft vote / weighted mean
    loaded = load_pipeline(dump_pipeline(pipeline))
    model = pipeline.named_steps["model"]
    if problem_type.is_classification:
        assert isinstance(model, VotingClassifier) and model.voting == "soft"
        np.testing.assert_allclose(loaded.predict_proba(X), pipeline.predict_proba(X))
    else:
        assert isinstance(model, VotingRegressor)
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))


def _cancel_after(n_candidates: int):
    def progress(stage: str, fraction: float) -> None:
        match = re.match(r"candidate (\d+)", stage)
        if match and int(match.group(1)) > n_candidates:
            raise JobCancelled
    return progress


def test_cancel_raises_by_default(multiclass_df):
    config = AutoMLConfig(target="target", time_budget_s=30, cv_folds=3)
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        run_automl(multiclass_df, config, progress=_cancel_after(2))
    assert time.monotonic() - started < 15


def test_cancel_can_keep_the_best_so_far(multiclass_df):
    config = AutoMLConfig(target="target", time_budget_s=30, cv_folds=3, keep_best_on_cancel=True)
    started = time.monotonic()
    result = run_automl(multiclass_df, config, progress=_cancel_after(2))
    assert time.monotonic() - started < 15
    assert result.cancelled and any("Cancelled" in note for note in result.notes)
    assert len([row for row in result.leaderboard if row["state"] == "complete"]) >= 1
    assert result.pipeline.predict(result.test_frame[result.used_columns]).shape == (len(result.test_frame),)
    assert result.test_metrics["scores"]["accuracy"] is not None


def test_should_stop_early_ends_the_search_gracefully(regression_df):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 8

    started = time.monotonic()
    result = run_automl(regression_df, AutoMLConfig(target="target", time_budget_s=30, cv_folds=3,
                                                    algorithms=["ridge", "random_forest", "xgboost"]),
                        should_stop_early=stop)
    assert time.monotonic() - started < 15
    assert result.stopped_early and result.problem_type is ProblemType.REGRESSION
    assert {row["algorithm"] for row in result.leaderboard} <= {"ridge", "random_forest", "xgboost", "ensemble"}
    assert result.test_metrics["scores"]["rmse"] > 0


def test_refit_on_all_rows_within_the_budget(regression_df):
    started = time.monotonic()
    result = run_automl(regression_df, AutoMLConfig(target="target", time_budget_s=8, cv_folds=3, refit_on_all_rows=True,
                                                    algorithms=["ridge", "random_forest"]))
    assert time.monotonic() - started < _allowed_wall_time(8)
    assert any("refit on all 250 rows" in note for note in result.notes), result.notes
    bmi = next(s for s in result.feature_schema if s["name"] == "bmi")
    assert bmi["max"] == regression_df["bmi"].max() and bmi["min"] == regression_df["bmi"].min()
