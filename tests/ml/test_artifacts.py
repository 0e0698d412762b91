import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from tests.ml.helpers import algorithm_problem_pairs, pair_id
from training.ml.artifacts import UntrustedArtifact, dump_pipeline, load_pipeline


@pytest.mark.parametrize("pair", algorithm_problem_pairs(), ids=pair_id)
def test_round_trip_predicts_identically(pair, trained):
    # Given a trained pipeline / When it is saved and loaded again
    result = trained(*pair)
    loaded = load_pipeline(dump_pipeline(result.pipeline))
    # Then it predicts exactly the same on the held-out rows
    X = result.test_frame[result.used_columns]
    np.testing.assert_array_equal(loaded.predict(X), result.pipeline.predict(X))
    if result.problem_type.is_classification:
        np.testing.assert_array_equal(loaded.predict_proba(X), result.pipeline.predict_proba(X))
        assert list(loaded.classes_) == result.classes


def test_round_trip_with_every_column_kind(mixed_df):
    from training.ml.trainer import TrainConfig, train

    result = train(mixed_df, TrainConfig(target="churn", algorithm="xgboost", cv_folds=3, params={"n_estimators": 15}))
    loaded = load_pipeline(dump_pipeline(result.pipeline))
    X = result.test_frame[result.used_columns]
    np.testing.assert_array_equal(loaded.predict_proba(X), result.pipeline.predict_proba(X))


def sneaky(X):
    return X


class Sneaky(LogisticRegression):
    pass


def _fitted(step) -> Pipeline:
    X, y = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), np.array([0, 0, 1, 1])
    return Pipeline([("step", step), ("model", LogisticRegression())]).fit(X, y)


@pytest.mark.parametrize(
    ("step", "refused"),
    [
        (FunctionTransformer(sneaky), "tests.ml.test_artifacts.sneaky"),
        (FunctionTransformer(np.nan_to_num), "numpy"),  # a function under a trusted prefix is still refused
    ],
    ids=["foreign-function", "numpy-function"],
)
def test_untrusted_functions_are_refused(step, refused):
    data = sio.dumps(_fitted(step))
    with pytest.raises(UntrustedArtifact, match=refused):
        load_pipeline(data)
    with pytest.raises(UntrustedArtifact):
        dump_pipeline(_fitted(step))


def test_untrusted_class_is_refused():
    X, y = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}), np.array([0, 0, 1, 1])
    data = sio.dumps(Pipeline([("model", Sneaky())]).fit(X, y))
    with pytest.raises(UntrustedArtifact, match="Sneaky"):
        load_pipeline(data)


def test_only_pipelines_and_only_skops_files_are_loaded():
    with pytest.raises(UntrustedArtifact, match="not a Pipeline"):
        load_pipeline(sio.dumps(LogisticRegression()))
    with pytest.raises(UntrustedArtifact, match="not a readable skops file"):
        load_pipeline(b"\x80\x04not a zip at all")
