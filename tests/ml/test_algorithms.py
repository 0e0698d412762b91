import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from tests.ml.helpers import algorithm_problem_pairs, pair_id
from training.ml.algorithms import ALGORITHMS, algorithms_for, get_algorithm
from training.ml.errors import MLInputError
from training.ml.metrics import get_metric
from training.ml.problem import ProblemType

PAIRS = algorithm_problem_pairs()


def test_registry_has_the_promised_algorithms():
    assert {"logistic_regression", "linear_regression", "ridge", "random_forest", "extra_trees",
            "hist_gradient_boosting", "xgboost"} <= set(ALGORITHMS)
    assert {a.key for a in algorithms_for(ProblemType.REGRESSION)} >= {"ridge", "linear_regression", "xgboost"}
    assert "logistic_regression" not in {a.key for a in algorithms_for(ProblemType.REGRESSION)}


def _baseline_score(result, df) -> float:
    """What predicting the majority class / the mean scores on the same test rows."""
    train_y = df.loc[~df.index.isin(result.test_frame.index), "target"]
    test_X, test_y = result.test_frame[result.used_columns], result.test_frame["target"]
    if result.problem_type.is_classification:
        dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(train_y), 1)), train_y)
        return get_metric(result.metric, result.problem_type).score(dummy, np.zeros((len(test_X), 1)), test_y)
    dummy = DummyRegressor().fit(np.zeros((len(train_y), 1)), train_y)
    return float(np.sqrt(np.mean((dummy.predict(np.zeros((len(test_y), 1))) - test_y) ** 2)))


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_every_algorithm_beats_a_trivial_baseline(pair, trained, datasets):
    # Given an algorithm and a problem type it supports / When it is trained
    key, problem_type = pair
    result = trained(key, problem_type)
    # Then its test score on the optimised metric clearly beats predicting the majority / the mean
    score = result.test_metrics["scores"][result.metric]
    baseline = _baseline_score(result, datasets[problem_type])
    if result.greater_is_better:
        assert score > baseline + 0.2, (score, baseline)
    else:
        assert score < 0.9 * baseline, (score, baseline)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p[1].is_classification], ids=pair_id)
def test_classifiers_answer_with_the_original_labels(pair, trained):
    result = trained(*pair)
    X = result.test_frame[result.used_columns]
    assert set(result.pipeline.predict(X)) <= set(result.classes)
    assert set(result.classes) == set(result.test_frame["target"])


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_estimators_use_the_given_thread_count_never_all_cores(pair):
    key, problem_type = pair
    estimator = get_algorithm(key).build(problem_type, {}, n_threads=2, random_state=0)
    thread_params = {k: v for k, v in estimator.get_params(deep=True).items() if k.endswith(("n_jobs", "nthread"))}
    # None only where the parameter has no effect (LogisticRegression since sklearn 1.8): limit_threads caps those
    assert all(v in (2, None) for v in thread_params.values()), thread_params
    if key in {"random_forest", "extra_trees", "xgboost", "linear_regression"}:
        assert 2 in thread_params.values()


def test_limit_threads_caps_native_pools():
    from threadpoolctl import threadpool_info

    from training.ml.threads import limit_threads

    get_algorithm("hist_gradient_boosting")  # sklearn's OpenMP runtime is loaded by now
    with limit_threads(1):
        pools = threadpool_info()
    assert pools and all(pool["num_threads"] == 1 for pool in pools)


def test_xgboost_uses_the_hist_tree_method():
    estimator = get_algorithm("xgboost").build(ProblemType.REGRESSION, {}, n_threads=1, random_state=0)
    assert estimator.get_params()["tree_method"] == "hist"


def test_unknown_algorithm_lists_the_available_ones():
    with pytest.raises(MLInputError) as error:
        get_algorithm("random_forrest")
    assert error.value.field == "algorithm"
    assert "random_forest" in error.value.message and "xgboost" in error.value.message


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_estimators": 0}, "'n_estimators' = 0 is invalid; it must be a whole number from 10 to 500"),
        ({"n_estimators": 2.5}, "whole number"),
        ({"max_features": "most"}, "one of: sqrt, 0.5, 1.0"),
        ({"learning_rate": 0.1}, "unknown parameter for random_forest: learning_rate; valid parameters are:"),
    ],
)
def test_bad_params_are_refused_with_the_allowed_range(params, message):
    with pytest.raises(MLInputError) as error:
        get_algorithm("random_forest").validate_params(params)
    assert error.value.field == "params"
    assert message in error.value.message


def test_valid_params_are_coerced_to_their_types():
    params = get_algorithm("random_forest").validate_params({"n_estimators": 50.0, "max_depth": None})
    assert params == {"n_estimators": 50, "max_depth": None}
    assert type(params["n_estimators"]) is int


def test_registry_description_is_data_for_forms():
    description = get_algorithm("xgboost").describe()
    assert description["problem_types"] == ["binary", "multiclass", "regression"]
    assert description["search_space"]["max_depth"] == {"type": "IntRange", "low": 2, "high": 12, "log": False,
                                                         "none_allowed": False}
