import json

import numpy as np
import pandas as pd
import pytest

from training.ml.errors import JobCancelled, JobTimedOut, MLInputError
from training.ml.problem import ProblemType
from training.ml.trainer import MAX_TEST_FRAME_ROWS, TrainConfig, train


def _with_rare_class(df: pd.DataFrame) -> pd.DataFrame:
    rare = df.index[df["target"] == "setosa"][3:]
    return df.drop(index=rare)


def _constant_target(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(target="benign")


def _mostly_missing_target(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(target=df["target"].where(df.index < 50))


@pytest.mark.parametrize(
    ("dataset", "change", "settings", "field", "message"),
    [
        ("binary", None, {"target": "targett"}, "target", "column 'targett' is not in the dataset; columns are: "),
        ("binary", None, {"features": ["mean radius", "mean radiuss"]}, "features", "'mean radiuss'"),
        ("binary", None, {"features": ["mean radius", "target"]}, "features", "cannot also be a feature"),
        ("binary", _constant_target, {}, "target", "constant"),
        ("binary", _mostly_missing_target, {}, "target", "missing in 75% of rows"),
        ("multiclass", _with_rare_class, {"cv_folds": 5}, "cv_folds", "class 'setosa' (3 rows)"),
        ("regression", None, {"algorithm": "logistic_regression"}, "algorithm", "algorithms that do: linear_regression"),
        ("binary", None, {"algorithm": "ridge"}, "algorithm", "does not support binary"),
        ("binary", None, {"algorithm": "auto"}, "algorithm", "AutoML"),
        ("binary", None, {"algorithm": "svm"}, "algorithm", "available algorithms are: "),
        ("binary", None, {"metric": "rmse"}, "metric", "does not apply to binary"),
        ("binary", None, {"params": {"n_estimators": -5}}, "params", "from 10 to 500"),
        ("binary", None, {"params": {"depth": 3}}, "params", "max_depth"),
        ("binary", None, {"cv_folds": 1}, "cv_folds", "at least 2"),
        ("binary", None, {"cv_folds": 500}, "cv_folds", "training rows"),
        ("binary", None, {"test_size": 0.95}, "test_size", "between 0 and 0.9"),
        ("binary", None, {"n_trials": 0}, "n_trials", "at least 1"),
        ("binary", None, {"search": "exhaustive"}, "search", "bayesian"),
        ("binary", None, {"problem_type": "regression"}, "problem_type", "numeric target"),
        ("multiclass", None, {"problem_type": "binary"}, "problem_type", "exactly 2 classes"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_validation_names_the_field_before_any_fitting(dataset, change, settings, field, message, datasets):
    # Given a bad setting or bad data
    df = {"binary": datasets[ProblemType.BINARY], "multiclass": datasets[ProblemType.MULTICLASS],
          "regression": datasets[ProblemType.REGRESSION]}[dataset]
    df = change(df) if change else df
    config = TrainConfig(**{"target": "target", "algorithm": "random_forest", **settings})
    stages = []
    # When training starts, Then it fails with the field named and a message saying what to do
    with pytest.raises(MLInputError) as error:
        train(df, config, progress=lambda stage, fraction: stages.append(stage))
    assert error.value.field == field
    assert message in error.value.message
    # And nothing was fitted
    assert stages == ["preparing"]


def test_train_result_contract(binary_df):
    # Given a binary dataset with text labels and a few missing targets
    df = binary_df.copy()
    df.loc[:4, "target"] = None
    progress = []
    # When a small random search is run
    result = train(df, TrainConfig(target="target", algorithm="xgboost", search="random", n_trials=3, cv_folds=3,
                                   params={"n_estimators": 15}),
                   progress=lambda stage, fraction: progress.append((stage, fraction)))
    # Then the result carries everything the job page and the prediction API need
    assert result.problem_type is ProblemType.BINARY and "2 distinct values" in result.problem_type_reason
    assert result.classes == ["benign", "malignant"]
    assert set(result.pipeline.predict(result.test_frame[result.used_columns])) <= {"benign", "malignant"}
    assert len(result.trials) == 3 and result.best_params["n_estimators"] == 15
    assert result.cv_mean == max(t["cv_mean"] for t in result.trials if t["state"] == "complete")
    assert result.test_metrics["scores"]["roc_auc"] > 0.9
    assert result.n_rows_train + result.n_rows_test == len(df) - 5
    assert any("Dropped 5 row(s)" in note for note in result.notes)
    assert list(result.test_frame.columns) == result.used_columns + ["target"]
    assert {s["name"] for s in result.feature_schema} == set(result.used_columns)
    assert all(s["kind"] == "numeric" and s["min"] <= s["max"] for s in result.feature_schema)
    assert {"scikit-learn", "xgboost", "pandas", "numpy", "optuna"} <= set(result.versions)
    json.dumps(result.summary(), allow_nan=False)
    # And importance is per original column and sums to one
    assert {row["feature"] for row in result.importance} == set(result.used_columns)
    assert sum(row["importance"] for row in result.importance) == pytest.approx(1)
    # And progress went from 0 to 1 through the named stages
    stages = [s for s, _ in progress]
    assert stages[0] == "preparing" and stages[-1] == "done"
    assert "trial 1/3, fold 1/3" in stages and "refitting best model" in stages and "evaluating" in stages
    fractions = [f for _, f in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1


def test_importance_points_at_the_informative_categorical_column(mixed_df):
    result = train(mixed_df, TrainConfig(target="churn", algorithm="random_forest", cv_folds=3,
                                         params={"n_estimators": 30}))
    ranked = [row["feature"] for row in result.importance]
    assert result.importance_method == "model"
    assert set(ranked[:2]) == {"city", "active"}  # the columns churn was made from
    categories = next(s for s in result.feature_schema if s["name"] == "city")["categories"]
    assert set(categories) == {"Paris", "Lyon", "Nice"}


def test_permutation_importance_for_models_without_their_own(regression_df):
    result = train(regression_df, TrainConfig(target="target", algorithm="hist_gradient_boosting", cv_folds=3,
                                              params={"max_iter": 20}))
    assert result.importance_method == "permutation"
    assert {row["feature"] for row in result.importance} == set(result.used_columns)
    assert result.importance[0]["feature"] in {"bmi", "s5"}  # the two strongest signals in this dataset


@pytest.mark.parametrize("exception", [JobCancelled, JobTimedOut])
@pytest.mark.parametrize("at_stage", ["trial 2/3, fold 1/3", "refitting best model", "evaluating"])
def test_stop_raised_from_progress_ends_training_immediately(exception, at_stage, binary_df):
    stages = []

    def progress(stage: str, fraction: float) -> None:
        stages.append(stage)
        if stage == at_stage:
            raise exception

    with pytest.raises(exception):
        train(binary_df, TrainConfig(target="target", algorithm="logistic_regression", search="random",
                                     n_trials=3, cv_folds=3), progress=progress)
    assert stages[-1] == at_stage


def test_test_frame_is_capped(regression_df):
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"x": rng.normal(size=12_000)})
    big["target"] = 3 * big["x"] + rng.normal(size=12_000)
    result = train(big, TrainConfig(target="target", algorithm="linear_regression", cv_folds=2))
    assert result.n_rows_test == 2400
    assert len(result.test_frame) == MAX_TEST_FRAME_ROWS
    assert result.test_metrics["scores"]["r2"] > 0.85


def test_config_from_dict_rejects_unknown_settings():
    with pytest.raises(MLInputError) as error:
        TrainConfig.from_dict({"target": "y", "algorithm": "ridge", "folds": 3})
    assert error.value.field == "folds"
    assert "cv_folds" in error.value.message
    config = TrainConfig.from_dict({"target": "y", "algorithm": "ridge", "cv_folds": 3})
    assert config.as_dict()["cv_folds"] == 3


def test_fitting_warnings_reach_the_job_log(binary_df):
    result = train(binary_df, TrainConfig(target="target", algorithm="logistic_regression", cv_folds=3,
                                          params={"max_iter": 2}))
    assert any(note.startswith("Warning while fitting: ConvergenceWarning") for note in result.notes)


def test_refit_on_all_rows_registers_a_model_that_saw_every_row(regression_df):
    config = dict(target="target", algorithm="ridge", cv_folds=3)
    evaluated = train(regression_df, TrainConfig(**config))
    final = train(regression_df, TrainConfig(**config, refit_on_all_rows=True))
    # The test metrics are those of the evaluated fit, identical in both runs...
    assert final.test_metrics["scores"] == evaluated.test_metrics["scores"]
    assert any("refit on all 250 rows" in note for note in final.notes)
    # ...while the registered model and its schema come from every row, test part included
    bmi = next(s for s in final.feature_schema if s["name"] == "bmi")
    assert bmi["min"] == regression_df["bmi"].min() and bmi["max"] == regression_df["bmi"].max()
    X = regression_df.drop(columns=["target"])
    assert not np.allclose(final.pipeline.predict(X), evaluated.pipeline.predict(X))


def test_a_long_xgboost_fit_stops_between_boosting_rounds(binary_df):
    from training.ml.interrupt import interruptible

    rounds = []

    def check():
        rounds.append(1)
        if len(rounds) == 5:
            raise JobCancelled()

    config = TrainConfig(target="target", algorithm="xgboost", cv_folds=2, params={"n_estimators": 1000})
    with interruptible(check), pytest.raises(JobCancelled):
        train(binary_df, config)
    assert len(rounds) == 5  # stopped inside the first fold's fit, after its fifth round of a thousand
    # Outside a job the same model trains to the end, and its file loads (the callback is an allowed type)
    from training.ml.artifacts import dump_pipeline, load_pipeline

    result = train(binary_df, TrainConfig(target="target", algorithm="xgboost", cv_folds=2, params={"n_estimators": 20}))
    assert load_pipeline(dump_pipeline(result.pipeline)).predict(result.test_frame[result.used_columns]).size
