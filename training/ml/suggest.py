"""Suggestions for a target column: problem type, metric, algorithms, search settings, warnings.

Everything is computed on a random sample of at most ``SAMPLE_ROWS`` rows (the
answer says so), so a million-row dataset is answered in seconds. Algorithms are
ranked by their registry ``Traits`` against descriptors of the data; search plans
and thresholds are tables below, not branches.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from training.ml.algorithms import DESCRIPTOR_PHRASES, algorithms_for, data_descriptors, rank_algorithms
from training.ml.columns import CATEGORICAL, IDENTIFIER, NUMERIC, infer_column_kind
from training.ml.errors import MLInputError
from training.ml.jsonable import plain
from training.ml.metrics import METRICS
from training.ml.problem import ProblemType, detect_problem_type, resolve_problem_type

SAMPLE_ROWS = 50_000
#: The single-column leakage check fits on at most this many rows.
LEAKAGE_ROWS = 5_000
LEAKAGE_MAX_COLUMNS = 300
#: A column alone scoring this well (ROC AUC / accuracy / R² on held-out rows) is suspicious.
LEAKAGE_SCORE = 0.98
MOSTLY_MISSING = 0.5
TINY_CLASS_SHARE = 0.05
IMBALANCED_BINARY_SHARE = 0.2
#: A multiclass target is imbalanced when its smallest class is under this share of an even split.
IMBALANCED_MULTICLASS_RATIO = 0.5
MIN_ROWS_PER_FOLD = 20
DEFAULT_TEST_SIZE = 0.2
#: |skewness| above this with outliers: mean absolute error rather than RMSE.
SKEWED_TARGET = 2.0

#: Search settings by training-set size (rows × columns of work), smallest first:
#: (up to this many cells, method, n_trials, cv_folds, time budget in s, why).
SEARCH_PLANS: list[tuple[float, str, int, int, int, str]] = [
    (2e5, "bayesian", 40, 5, 60,
     "the data is small: every fit takes well under a second, so 5-fold CV and a Bayesian search are cheap"),
    (5e6, "bayesian", 30, 5, 300,
     "medium-sized data: a Bayesian search (Optuna TPE, pruning weak trials after two folds) finds good "
     "settings in a few minutes"),
    (5e7, "random", 15, 3, 900,
     "large data: each fit takes a while, so fewer, independent random trials on 3 folds"),
    (math.inf, "none", 1, 3, 1800,
     "very large data: the defaults are a strong start and each fit is slow; tune later on a sample"),
]


def _target_series(df: pd.DataFrame, target: str) -> pd.Series:
    if target not in df.columns:
        raise MLInputError(f"target column '{target}' is not in the dataset; columns are: "
                           f"{', '.join(map(str, df.columns))}", field="target")
    y = df[target].dropna()
    if y.nunique() < 2:
        shown = f"the value {y.iloc[0]!r}" if len(y) else "no values"
        raise MLInputError(f"target '{target}' is constant ({shown} in every row); there is nothing to predict",
                           field="target")
    return y


def _profile_columns(profile: dict | None) -> dict[str, dict]:
    return {c["name"]: c for c in (profile or {}).get("columns", [])}


def _class_balance(y: pd.Series, total_rows: int) -> dict[str, Any]:
    counts = y.astype(str).value_counts()
    shares = counts / counts.sum()
    scale = total_rows / len(y)
    return {
        "counts": {label: int(round(count * scale)) for label, count in counts.head(100).items()},
        "shares": {label: round(float(share), 4) for label, share in shares.head(100).items()},
        "n_classes": int(len(counts)),
        "majority_class": str(counts.index[0]),
        "minority_class": str(counts.index[-1]),
        "minority_share": round(float(shares.iloc[-1]), 4),
        "imbalance_ratio": round(float(counts.iloc[0] / counts.iloc[-1]), 2),
        "estimated_from_sample": scale != 1,
    }


def _metric(problem_type: ProblemType, y: pd.Series, balance: dict | None) -> tuple[str, str]:
    if problem_type is ProblemType.BINARY:
        share = balance["minority_share"]
        if share < IMBALANCED_BINARY_SHARE:
            return "roc_auc", (f"the classes are imbalanced (minority '{balance['minority_class']}' is {share:.1%}): "
                               f"ROC AUC judges how well positives are ranked above negatives whatever the "
                               f"threshold, where accuracy would reward always predicting the majority; "
                               f"report F1 too for the chosen threshold")
        return "roc_auc", ("the classes are balanced enough; ROC AUC measures ranking quality independent of "
                           "the decision threshold")
    if problem_type is ProblemType.MULTICLASS:
        even = 1 / balance["n_classes"]
        if balance["minority_share"] < IMBALANCED_MULTICLASS_RATIO * even:
            return "f1_macro", (f"the classes are imbalanced (smallest '{balance['minority_class']}' is "
                                f"{balance['minority_share']:.1%}); macro F1 weighs every class equally")
        return "log_loss", ("the classes are balanced; log loss judges the predicted probabilities of every "
                            "class, rewarding confident correct answers and calibrated ones")
    values = pd.to_numeric(y, errors="coerce").dropna()
    skew = float(values.skew()) if len(values) > 2 else 0.0
    if abs(skew) > SKEWED_TARGET:
        return "mae", (f"the target is strongly skewed (skewness {skew:.1f}); mean absolute error is not "
                       f"dominated by a few extreme values as RMSE would be (report R² alongside)")
    return "rmse", "RMSE is in the target's own units and penalises large errors; R² is reported alongside"


def _algorithms(problem_type: ProblemType, descriptors: dict[str, float]) -> list[dict[str, Any]]:
    ranked = rank_algorithms(algorithms_for(problem_type), descriptors)
    out = []
    for algorithm, score in ranked:
        traits = algorithm.traits
        reason = traits.summary
        effect = traits.strongest_effect(descriptors)
        if effect is not None:
            helps, hurts = DESCRIPTOR_PHRASES[effect[0]]
            reason += f"; {helps if effect[1] > 0 else hurts} here"
        if traits.baseline:
            reason += " (train it first as a fast baseline)"
        out.append({"key": algorithm.key, "label": algorithm.label, "family": traits.family,
                     "score": round(score, 3), "baseline": traits.baseline, "reason": reason})
    return out


def _search(n_rows: int, n_features: int, min_class_count: int | None) -> dict[str, Any]:
    cells = n_rows * max(n_features, 1)
    limit, method, n_trials, folds, budget, reason = next(plan for plan in SEARCH_PLANS if cells <= plan[0])
    n_train = int(n_rows * (1 - DEFAULT_TEST_SIZE))
    folds_reason = f"{folds} folds"
    fits = max(2, min(folds, n_train // MIN_ROWS_PER_FOLD))
    if min_class_count is not None:
        fits = min(fits, max(2, int(min_class_count * (1 - DEFAULT_TEST_SIZE))))
    if fits < folds:
        folds, folds_reason = fits, f"{fits} folds (so every fold keeps enough rows of each class)"
    return {"method": method, "n_trials": n_trials, "cv_folds": folds, "time_budget_s": budget,
            "reason": f"{n_rows:,} rows × {n_features} columns: {reason}; {folds_reason}."}


# --- warnings ----------------------------------------------------------------------------------

def _warning(kind: str, column: str | None, message: str) -> dict[str, Any]:
    return {"kind": kind, "column": column, "message": message}


def _single_column_score(x: pd.Series, y: pd.Series, kind: str, problem_type: ProblemType,
                         random_state: int) -> tuple[float, str] | None:
    """How well ``x`` alone predicts ``y`` on held-out rows (a depth-4 tree, or a per-category table)."""
    stratify = y if problem_type.is_classification and y.value_counts().min() >= 2 else None
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=random_state, stratify=stratify)
    except ValueError:
        return None
    if kind == NUMERIC or pd.api.types.is_bool_dtype(x):
        model_cls = DecisionTreeClassifier if problem_type.is_classification else DecisionTreeRegressor
        model = model_cls(max_depth=4, random_state=random_state)
        model.fit(x_tr.to_numpy(dtype=float).reshape(-1, 1), y_tr)
        features = x_te.to_numpy(dtype=float).reshape(-1, 1)
        if problem_type is ProblemType.BINARY:
            proba = model.predict_proba(features)[:, 1]
            return _auc(y_te == model.classes_[1], proba), "ROC AUC"
        if problem_type is ProblemType.MULTICLASS:
            return accuracy_score(y_te, model.predict(features)), "accuracy"
        return r2_score(y_te, model.predict(features)), "R²"
    # A category -> target table learnt on one part, applied to the other (unseen -> overall).
    keys_tr, keys_te = x_tr.astype(str).fillna("(missing)"), x_te.astype(str).fillna("(missing)")
    if problem_type is ProblemType.BINARY:
        positive = sorted(y.unique(), key=str)[1]
        rate = (y_tr == positive).groupby(keys_tr).mean()
        scores = keys_te.map(rate).fillna(float((y_tr == positive).mean()))
        return _auc(y_te == positive, scores.to_numpy(dtype=float)), "ROC AUC"
    if problem_type is ProblemType.MULTICLASS:
        majority = y_tr.groupby(keys_tr).agg(lambda v: v.value_counts().index[0])
        predicted = keys_te.map(majority).fillna(y_tr.value_counts().index[0])
        return accuracy_score(y_te.astype(str), predicted.astype(str)), "accuracy"
    means = y_tr.groupby(keys_tr).mean()
    return r2_score(y_te, keys_te.map(means).fillna(float(y_tr.mean()))), "R²"


def _auc(truth: pd.Series | np.ndarray, scores: np.ndarray) -> float:
    truth = np.asarray(truth, dtype=int)
    return float(roc_auc_score(truth, scores)) if 0 < truth.sum() < len(truth) else float("nan")


def _leakage_warnings(X: pd.DataFrame, y: pd.Series, kinds: dict[str, str], problem_type: ProblemType,
                      random_state: int) -> list[dict]:
    if len(y) > LEAKAGE_ROWS:
        keep = y.sample(LEAKAGE_ROWS, random_state=random_state).index
        X, y = X.loc[keep], y.loc[keep]
    if problem_type is ProblemType.REGRESSION:
        y = y.astype(float)
    found = []
    for column in list(X.columns)[:LEAKAGE_MAX_COLUMNS]:
        x = X[column]
        if kinds[column] == IDENTIFIER or x.isna().all() or x.nunique() < 2:
            continue
        if kinds[column] == NUMERIC and not pd.api.types.is_numeric_dtype(x):
            x = pd.to_numeric(x, errors="coerce")
        scored = _single_column_score(x, y, kinds[column], problem_type, random_state)
        if scored is None or not math.isfinite(scored[0]) or scored[0] < LEAKAGE_SCORE:
            continue
        value, name = scored
        found.append(_warning(
            "leakage", column,
            f"column '{column}' alone predicts '{y.name}' almost perfectly ({name} {value:.3f} on held-out rows "
            f"with a one-column model); if it is known only after the outcome (or derived from it) it leaks "
            f"the answer: remove it from the features"))
    return found


def _column_warnings(X: pd.DataFrame, kinds: dict[str, str], profile_columns: dict[str, dict]) -> list[dict]:
    found = []
    for column in X.columns:
        if kinds[column] == IDENTIFIER:
            found.append(_warning("identifier", column,
                                  f"column '{column}' looks like an identifier (a different value in almost every "
                                  f"row); it cannot generalise and is left out of training"))
        known = profile_columns.get(column)
        missing = known["missing_fraction"] if known and "missing_fraction" in known else float(X[column].isna().mean())
        if missing > MOSTLY_MISSING:
            found.append(_warning("mostly_missing", column,
                                  f"column '{column}' is missing in {missing:.0%} of rows; it adds little and its "
                                  f"imputed values may mislead; consider dropping it"))
    return found


def _row_warnings(n_rows: int, problem_type: ProblemType, balance: dict | None, folds: int) -> list[dict]:
    found = []
    n_train = int(n_rows * (1 - DEFAULT_TEST_SIZE))
    if n_train < folds * MIN_ROWS_PER_FOLD:
        found.append(_warning("too_few_rows", None,
                              f"only {n_rows} rows: with {folds}-fold cross-validation each validation fold has "
                              f"about {n_train // folds} rows, so scores will be noisy; collect more data or use "
                              f"fewer folds"))
    if balance is None:
        return found
    for label, count in balance["counts"].items():
        share = balance["shares"][label]
        if share < TINY_CLASS_SHARE or count < 2 * folds:
            found.append(_warning("tiny_class", None,
                                  f"class '{label}' has only {count} rows ({share:.1%}); with {folds} folds it is "
                                  f"barely seen in each: collect more examples, merge it with a similar class, "
                                  f"or judge the model with a metric that weighs classes equally"))
    return found


def suggest(df_or_sample: pd.DataFrame, target: str, *, profile: dict | None = None,
            total_rows: int | None = None, random_state: int = 0) -> dict:
    """Recommended problem type, metric, algorithms and search settings for ``target``, with reasons.

    ``df_or_sample`` may be the whole dataset or a sample of it; ``total_rows`` (or
    ``profile["rows"]``) gives the real size, which drives the search settings. The
    answer is JSON-safe.
    """
    y_all = _target_series(df_or_sample, target)
    sample = df_or_sample
    if len(sample) > SAMPLE_ROWS:
        sample = sample.sample(SAMPLE_ROWS, random_state=random_state)
    total = int(total_rows or (profile or {}).get("rows") or len(df_or_sample))
    sample = sample[sample[target].notna()]
    y = sample[target]
    if y.nunique() < 2:  # very rare second value lost by sampling: use the full target column
        y = y_all
        sample = df_or_sample.loc[y.index]
    target_rows = int(round(total * len(y_all) / len(df_or_sample)))

    detected, reason = detect_problem_type(y)
    problem_type = resolve_problem_type(detected.value, y)
    features = [c for c in sample.columns if c != target]
    X = sample[features]
    profile_columns = _profile_columns(profile)
    kinds = {c: profile_columns.get(c, {}).get("kind") or infer_column_kind(X[c]) for c in features}

    balance = _class_balance(y, target_rows) if problem_type.is_classification else None
    metric, metric_reason = _metric(problem_type, y, balance)
    usable = [c for c in features if kinds[c] != IDENTIFIER]
    descriptors = data_descriptors(
        n_rows=target_rows, n_features=len(usable),
        categorical_share=sum(kinds[c] == CATEGORICAL for c in usable) / max(len(usable), 1),
        missing_share=float(X[usable].isna().to_numpy().mean()) if usable else 0.0)
    min_class = min(balance["counts"].values()) if balance else None
    search = _search(target_rows, len(usable), min_class)

    warnings = _leakage_warnings(X, y, kinds, problem_type, random_state)
    warnings += _column_warnings(X, kinds, profile_columns)
    warnings += _row_warnings(target_rows, problem_type, balance, search["cv_folds"])

    return plain({
        "target": target,
        "rows": target_rows,
        "sampled": len(y) < target_rows,
        "sample_rows": int(len(y)),
        "problem_type": problem_type.value,
        "reason": reason,
        "class_balance": balance,
        "metric": metric,
        "metric_label": METRICS[metric].label,
        "metric_reason": metric_reason,
        "algorithms": _algorithms(problem_type, descriptors),
        "search": search,
        "warnings": warnings,
        "descriptors": {k: round(v, 3) for k, v in descriptors.items()},
    })
