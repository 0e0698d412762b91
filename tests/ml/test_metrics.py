import json

import numpy as np
import pytest

from training.ml.errors import MLInputError
from training.ml.metrics import (
    MAX_CURVE_POINTS, MAX_RESIDUAL_POINTS, classification_report, get_metric, regression_report,
)
from training.ml.problem import ProblemType


def test_defaults_per_problem_type():
    assert get_metric(None, ProblemType.BINARY).key == "roc_auc"
    assert get_metric(None, ProblemType.MULTICLASS).key == "f1_macro"
    rmse = get_metric(None, ProblemType.REGRESSION)
    assert rmse.key == "rmse" and rmse.greater_is_better is False


@pytest.mark.parametrize(("key", "problem_type"), [("rmse", ProblemType.BINARY), ("accuracy", ProblemType.REGRESSION),
                                                   ("auc", ProblemType.BINARY)])
def test_unknown_or_inapplicable_metric_lists_the_valid_ones(key, problem_type):
    with pytest.raises(MLInputError) as error:
        get_metric(key, problem_type)
    assert error.value.field == "metric"
    assert ("roc_auc" if problem_type.is_classification else "rmse") in error.value.message


def test_binary_report_is_json_safe_with_bounded_curves():
    # Given many test rows with noisy probabilities
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes"], 5000)
    p_yes = np.clip((y == "yes") * 0.3 + rng.uniform(0, 0.7, 5000), 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes > 0.5, "yes", "no")
    # When the report is built
    report = classification_report(y, pred, proba, np.array(["no", "yes"]))
    # Then it is plain JSON, curves are downsampled, and the matrix carries its labels
    json.dumps(report, allow_nan=False)
    assert len(report["roc_curve"]["fpr"]) <= MAX_CURVE_POINTS
    assert len(report["pr_curve"]["precision"]) <= MAX_CURVE_POINTS
    assert report["roc_curve"]["positive_label"] == "yes"
    assert report["confusion_matrix"]["labels"] == ["no", "yes"]
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == 5000
    assert 0.6 < report["scores"]["roc_auc"] < 1


def test_undefined_scores_are_none_not_nan():
    # Only one class present in the test rows: ROC AUC is undefined
    report = classification_report(np.array(["a"] * 4), np.array(["a"] * 4), np.array([[0.9, 0.1]] * 4),
                                   np.array(["a", "b"]))
    assert report["scores"]["roc_auc"] is None
    assert report["roc_curve"] is None
    json.dumps(report, allow_nan=False)


def test_regression_report_guards_zero_targets_and_caps_points():
    y = np.r_[np.zeros(100), np.full(1000, 10.0)]
    pred = np.r_[np.ones(100), np.full(1000, 11.0)]
    report = regression_report(y, pred)
    json.dumps(report, allow_nan=False)
    assert report["scores"]["mape"] == pytest.approx(0.1)  # zeros are left out, not divided by
    assert report["scores"]["rmse"] == pytest.approx(1.0)
    assert len(report["residuals"]["points"]["predicted"]) == MAX_RESIDUAL_POINTS
    assert report["residuals"]["summary"]["median"] == pytest.approx(-1.0)


def test_mape_is_none_when_every_target_is_zero():
    assert regression_report(np.zeros(5), np.ones(5))["scores"]["mape"] is None


def test_every_score_a_report_gives_has_a_direction():
    # Given the reports of a classifier and a regressor
    from training.ml.metrics import greater_is_better

    y = np.array(["a", "b", "a", "b", "a", "b"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3], [0.3, 0.7]])
    classification = classification_report(y, np.where(proba[:, 1] > 0.5, "b", "a"), proba, np.array(["a", "b"]))
    regression = regression_report(np.arange(6.0), np.arange(6.0) + 0.5)
    # Then the compare page can tell the best value of each of their scores
    for name in [*classification["scores"], *regression["scores"]]:
        assert greater_is_better(name) is not None, name
    assert greater_is_better("mse") is False and greater_is_better("r2") is True and greater_is_better("log_loss") is False
    assert greater_is_better("no such score") is None
