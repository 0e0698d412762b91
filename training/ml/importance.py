"""Feature importance, always reported per original input column."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from training.ml.metrics import Metric
from training.ml.preprocess import feature_sources
from training.ml.threads import limit_threads

PERMUTATION_MAX_ROWS = 500
PERMUTATION_REPEATS = 3


@dataclass
class Importance:
    method: str  # "model" (the model's own) or "permutation"
    features: list[dict]  # [{"feature": column, "importance": float}], most important first


def _model_scores(model) -> np.ndarray | None:
    """Per-feature importance the model itself offers: ``feature_importances_`` or mean |coef_|."""
    try:
        return np.asarray(model.feature_importances_, dtype=float)
    except AttributeError:
        pass
    coef = getattr(model, "coef_", None)
    if coef is None:
        return None
    coef = np.abs(np.asarray(coef, dtype=float))
    return coef.mean(axis=0) if coef.ndim == 2 else coef


def _ranked(scores: dict[str, float]) -> list[dict]:
    total = sum(max(v, 0.0) for v in scores.values())
    rows = [{"feature": column, "importance": (max(v, 0.0) / total if total > 0 else 0.0)}
            for column, v in scores.items()]
    return sorted(rows, key=lambda r: r["importance"], reverse=True)


def model_importance(pipeline: Pipeline) -> Importance | None:
    """The model's own importances summed back from encoded features to input columns."""
    scores = _model_scores(pipeline.named_steps["model"])
    if scores is None:
        return None
    sources = feature_sources(pipeline.named_steps["preprocess"])
    if len(sources) != len(scores):
        return None
    per_column: dict[str, float] = {c: 0.0 for c in pipeline.named_steps["preprocess"].feature_names_in_}
    for column, score in zip(sources, scores):
        per_column[column] += float(score) if np.isfinite(score) else 0.0
    return Importance("model", _ranked(per_column))


def permuted_importance(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, *, metric: Metric,
                        n_threads: int, random_state: int) -> Importance:
    """Drop in score when one input column is shuffled, on at most 500 rows."""
    if len(X) > PERMUTATION_MAX_ROWS:
        X = X.sample(PERMUTATION_MAX_ROWS, random_state=random_state)
        y = y.loc[X.index]
    with limit_threads(n_threads):
        result = permutation_importance(pipeline, X, y, scoring=metric.signed_score,
                                        n_repeats=PERMUTATION_REPEATS, n_jobs=n_threads,
                                        random_state=random_state)
    return Importance("permutation", _ranked(dict(zip(X.columns, result.importances_mean.tolist()))))


def feature_importance(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series, *, metric: Metric,
                       n_threads: int = 1, random_state: int = 42) -> Importance:
    """The model's own importances when it has them, else permutation importance on ``X``/``y``."""
    return model_importance(pipeline) or permuted_importance(
        pipeline, X, y, metric=metric, n_threads=n_threads, random_state=random_state)
