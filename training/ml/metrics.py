"""Metrics: a registry for optimisation, and full test-set reports.

Every value returned here is JSON-safe (plain floats and lists, ``None`` for
anything undefined).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from training.ml.errors import MLInputError
from training.ml.jsonable import plain, plain_float
from training.ml.problem import ProblemType

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 500
#: |y| below this counts as zero for MAPE (which divides by y).
MAPE_ZERO = 1e-12

CLASSIFICATION = frozenset({ProblemType.BINARY, ProblemType.MULTICLASS})
REGRESSION = frozenset({ProblemType.REGRESSION})

ScoreFn = Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]


@dataclass(frozen=True)
class Metric:
    """A metric to optimise. ``fn(y_true, prediction, classes)`` where prediction is
    class probabilities when ``needs_proba`` and predicted values otherwise."""

    key: str
    label: str
    greater_is_better: bool
    problem_types: frozenset[ProblemType]
    needs_proba: bool
    fn: ScoreFn

    def score(self, estimator, X, y) -> float:
        """The metric in its natural units (e.g. RMSE is positive, lower is better)."""
        classes = getattr(estimator, "classes_", None)
        prediction = estimator.predict_proba(X) if self.needs_proba else estimator.predict(X)
        return float(self.fn(np.asarray(y), prediction, classes))

    def signed_score(self, estimator, X, y) -> float:
        """The metric turned so that greater is always better (a scikit-learn scorer)."""
        value = self.score(estimator, X, y)
        return value if self.greater_is_better else -value

    def is_better(self, a: float, b: float) -> bool:
        return a > b if self.greater_is_better else a < b

    def describe(self) -> dict:
        return {"key": self.key, "label": self.label, "greater_is_better": self.greater_is_better,
                "problem_types": sorted(p.value for p in self.problem_types)}


def _positive_scores(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (y == classes[1]).astype(int), proba[:, 1]


def _roc_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return skm.roc_auc_score(*_positive_scores(y, proba, classes))
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    return skm.log_loss(y, proba, labels=classes)


def _average(fn, average: str) -> ScoreFn:
    return lambda y, pred, classes: fn(y, pred, average=average, zero_division=0)


def _rmse(y, pred, classes) -> float:
    return float(np.sqrt(skm.mean_squared_error(y, pred)))


def _mape(y, pred, classes) -> float:
    """Mean absolute percentage error over rows whose true value is not zero (NaN if all are)."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    keep = np.abs(y) > MAPE_ZERO
    return float(np.mean(np.abs((y[keep] - pred[keep]) / y[keep]))) if keep.any() else float("nan")


_METRICS = [
    Metric("accuracy", "Accuracy", True, CLASSIFICATION, False, lambda y, p, c: skm.accuracy_score(y, p)),
    Metric("balanced_accuracy", "Balanced accuracy", True, CLASSIFICATION, False,
           lambda y, p, c: skm.balanced_accuracy_score(y, p)),
    Metric("f1_macro", "F1 (macro)", True, CLASSIFICATION, False, _average(skm.f1_score, "macro")),
    Metric("f1_weighted", "F1 (weighted)", True, CLASSIFICATION, False, _average(skm.f1_score, "weighted")),
    Metric("precision_macro", "Precision (macro)", True, CLASSIFICATION, False,
           _average(skm.precision_score, "macro")),
    Metric("recall_macro", "Recall (macro)", True, CLASSIFICATION, False, _average(skm.recall_score, "macro")),
    Metric("roc_auc", "ROC AUC", True, CLASSIFICATION, True, _roc_auc),
    Metric("log_loss", "Log loss", False, CLASSIFICATION, True, _log_loss),
    Metric("rmse", "Root mean squared error", False, REGRESSION, False, _rmse),
    Metric("mae", "Mean absolute error", False, REGRESSION, False, lambda y, p, c: skm.mean_absolute_error(y, p)),
    Metric("r2", "R²", True, REGRESSION, False, lambda y, p, c: skm.r2_score(y, p)),
    Metric("mape", "Mean absolute percentage error", False, REGRESSION, False, _mape),
]
METRICS: dict[str, Metric] = {m.key: m for m in _METRICS}

DEFAULT_METRICS = {
    ProblemType.BINARY: "roc_auc",
    ProblemType.MULTICLASS: "f1_macro",
    ProblemType.REGRESSION: "rmse",
}


#: Scores the test reports give besides the metrics above (not offered for optimising), and their direction.
REPORT_SCORES_GREATER_IS_BETTER = {"precision_weighted": True, "recall_weighted": True, "mse": False,
                                   "median_absolute_error": False}


def greater_is_better(name: str) -> bool | None:
    """Whether a higher value is better for a metric or a test-report score named ``name``; None for a name
    neither knows, so that a caller ranks nothing rather than guesses."""
    if name in METRICS:
        return METRICS[name].greater_is_better
    return REPORT_SCORES_GREATER_IS_BETTER.get(name)


def metrics_for(problem_type: ProblemType) -> list[Metric]:
    return [m for m in METRICS.values() if problem_type in m.problem_types]


def get_metric(key: str | None, problem_type: ProblemType) -> Metric:
    """The metric to optimise; ``None`` means the default for the problem type."""
    key = DEFAULT_METRICS[problem_type] if key is None else key
    metric = METRICS.get(key)
    if metric is None or problem_type not in metric.problem_types:
        problem = "is unknown" if metric is None else f"does not apply to {problem_type.value}"
        raise MLInputError(
            f"metric '{key}' {problem}; metrics for {problem_type.value} are: "
            f"{', '.join(m.key for m in metrics_for(problem_type))}",
            field="metric",
        )
    return metric


# --- test-set reports ------------------------------------------------------------------------

def _downsample(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` evenly spread points, keeping the first and last."""
    return np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int))


def _safe(fn: Callable[[], float]) -> float | None:
    """A metric value, or None where it is undefined (e.g. one class only in the test set)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined values are reported as None instead
            return plain_float(fn())
    except ValueError:
        return None


def _binary_curves(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict:
    y_pos, score = _positive_scores(y, proba, classes)
    if len(np.unique(y_pos)) < 2:
        return {"roc_curve": None, "pr_curve": None}
    fpr, tpr, _ = skm.roc_curve(y_pos, score)
    precision, recall, _ = skm.precision_recall_curve(y_pos, score)
    roc_keep, pr_keep = _downsample(len(fpr), MAX_CURVE_POINTS), _downsample(len(precision), MAX_CURVE_POINTS)
    return {
        "roc_curve": {"fpr": plain(fpr[roc_keep]), "tpr": plain(tpr[roc_keep]),
                      "positive_label": plain(classes[1])},
        "pr_curve": {"precision": plain(precision[pr_keep]), "recall": plain(recall[pr_keep]),
                     "average_precision": _safe(lambda: skm.average_precision_score(y_pos, score)),
                     "positive_label": plain(classes[1])},
    }


def classification_report(y_true, y_pred, proba: np.ndarray, classes: np.ndarray) -> dict:
    """Scores, confusion matrix and (binary) curves for a classifier's test predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = {
        "accuracy": _safe(lambda: skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(lambda: skm.balanced_accuracy_score(y_true, y_pred)),
        "roc_auc": _safe(lambda: _roc_auc(y_true, proba, classes)),
        "log_loss": _safe(lambda: _log_loss(y_true, proba, classes)),
    }
    for average in ("macro", "weighted"):
        for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            scores[f"{name}_{average}"] = _safe(
                lambda fn=fn, average=average: fn(y_true, y_pred, average=average, zero_division=0))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=classes)
    report = {
        "scores": scores,
        "confusion_matrix": {"labels": plain(classes), "matrix": plain(matrix)},
        "roc_curve": None,
        "pr_curve": None,
        "n_test": int(len(y_true)),
    }
    if len(classes) == 2:
        report.update(_binary_curves(y_true, proba, classes))
    return report


def regression_report(y_true, y_pred, *, random_state: int = 0) -> dict:
    """Scores, residual summary and a sample of (predicted, residual) points."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    residuals = y_true - y_pred
    mse = skm.mean_squared_error(y_true, y_pred)
    scores = {
        "r2": _safe(lambda: skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        "mae": plain_float(skm.mean_absolute_error(y_true, y_pred)),
        "mse": plain_float(mse),
        "rmse": plain_float(np.sqrt(mse)),
        "mape": plain_float(_mape(y_true, y_pred, None)),
        "median_absolute_error": plain_float(skm.median_absolute_error(y_true, y_pred)),
    }
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(y_true), size=min(len(y_true), MAX_RESIDUAL_POINTS), replace=False))
    q = np.percentile(residuals, [0, 25, 50, 75, 100])
    return {
        "scores": scores,
        "residuals": {
            "summary": {"min": plain_float(q[0]), "q1": plain_float(q[1]), "median": plain_float(q[2]),
                        "q3": plain_float(q[3]), "max": plain_float(q[4]),
                        "mean": plain_float(residuals.mean()), "std": plain_float(residuals.std())},
            "points": {"predicted": plain(y_pred[sample]), "residual": plain(residuals[sample])},
        },
        "n_test": int(len(y_true)),
    }


def evaluate(pipeline, X, y, problem_type: ProblemType, *, random_state: int = 0) -> dict:
    """The full test report for a fitted pipeline (JSON-safe)."""
    if problem_type.is_classification:
        return classification_report(y, pipeline.predict(X), pipeline.predict_proba(X), pipeline.classes_)
    return regression_report(y, pipeline.predict(X), random_state=random_state)


def evaluate_predictions(y, labels, proba, classes, problem_type: ProblemType, *, random_state: int = 0) -> dict:
    """The same report from predictions already made (labels and probabilities, or values), e.g. by a
    ``predictors.Predictor``: evaluation then answers with the numbers batch prediction writes."""
    if problem_type.is_classification:
        return classification_report(y, labels, proba, np.asarray(classes, dtype=object))
    return regression_report(y, labels, random_state=random_state)
