"""Train one algorithm on one DataFrame: validate, search, refit, evaluate, explain.

``TrainConfig.validate`` checks everything a user could get wrong before any
fitting starts; ``train`` then runs and reports progress through a callback
that may raise ``JobCancelled`` / ``JobTimedOut`` to stop it.
"""
from __future__ import annotations

import math
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from training.ml.algorithms import algorithms_for, get_algorithm
from training.ml.columns import column_schema
from training.ml.errors import MLInputError
from training.ml.importance import feature_importance
from training.ml.jsonable import plain
from training.ml.metrics import evaluate, get_metric
from training.ml.preprocess import plan_preprocessing
from training.ml.problem import ProblemType, detect_problem_type, resolve_problem_type
from training.ml.search import ProgressFn, SearchTask, get_searcher, no_progress
from training.ml.threads import limit_threads

#: More than this share of missing target values is refused rather than silently dropped.
MAX_MISSING_TARGET_SHARE = 0.5
MIN_ROWS = 10
MAX_TEST_FRAME_ROWS = 2000
MAX_WARNING_NOTES = 5

#: Overall progress: where each stage starts.
_SEARCH_START, _REFIT_AT, _EVALUATE_AT, _IMPORTANCE_AT = 0.05, 0.85, 0.92, 0.96


class JobSettings:
    """What the job configs (TrainConfig, AutoMLConfig) share: built from a job's stored dict, refusing
    unknown names and naming the first missing required one; features default to every other column."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("target",)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MLInputError(f"unknown setting(s): {', '.join(unknown)}; settings are: {', '.join(sorted(known))}",
                               field=unknown[0])
        missing = [name for name in cls.REQUIRED if name not in data]
        if missing:
            raise MLInputError(f"'{missing[0]}' is required", field=missing[0])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def feature_columns(self, df: pd.DataFrame) -> list[str]:
        return list(self.features) if self.features is not None else [c for c in df.columns if c != self.target]


@dataclass
class TrainConfig(JobSettings):
    target: str
    algorithm: str
    features: list[str] | None = None
    problem_type: str = "auto"
    search: str = "none"
    n_trials: int = 20
    time_limit_s: float | None = None
    metric: str | None = None
    cv_folds: int = 5
    test_size: float = 0.2
    random_state: int = 42
    params: dict[str, Any] = field(default_factory=dict)
    n_threads: int = 1
    #: After the evaluation on the test part, fit the final model again on every row (test part included).
    refit_on_all_rows: bool = False

    REQUIRED: ClassVar[tuple[str, ...]] = ("target", "algorithm")

    def validate(self, df: pd.DataFrame) -> None:
        """Raise ``MLInputError`` naming the field for anything that would make training fail."""
        self._validate_settings()
        algorithm = get_algorithm(self.algorithm)
        get_searcher(self.search)
        features = self._validate_columns(df)
        y = df[self.target]
        self._validate_target(y)
        y = y.dropna()
        problem_type = resolve_problem_type(self.problem_type, y)
        if problem_type not in algorithm.problem_types:
            raise MLInputError(
                f"algorithm '{algorithm.key}' does not support {problem_type.value}; algorithms that do: "
                f"{', '.join(a.key for a in algorithms_for(problem_type))}",
                field="algorithm",
            )
        get_metric(self.metric, problem_type)
        algorithm.validate_params(self.params)
        self._validate_rows(y, problem_type)
        plan = plan_preprocessing(df.loc[y.index, features], scale_numeric=algorithm.needs_scaling)
        if not plan.used_columns:
            reasons = "; ".join(f"'{c}' {r}" for c, r in plan.dropped.items())
            raise MLInputError(f"none of the feature columns can be used: {reasons}", field="features")

    def _validate_settings(self) -> None:
        checks = [
            ("algorithm", self.algorithm != "auto",
             "'auto' is not an algorithm; use AutoML to try several algorithms, or pick one"),
            ("cv_folds", isinstance(self.cv_folds, int) and self.cv_folds >= 2,
             f"cv_folds must be a whole number of at least 2, got {self.cv_folds!r}"),
            ("test_size", isinstance(self.test_size, (int, float)) and 0 < self.test_size < 0.9,
             f"test_size must be between 0 and 0.9 (exclusive), got {self.test_size!r}"),
            ("n_trials", isinstance(self.n_trials, int) and self.n_trials >= 1,
             f"n_trials must be a whole number of at least 1, got {self.n_trials!r}"),
            ("time_limit_s", self.time_limit_s is None or (isinstance(self.time_limit_s, (int, float))
                                                           and self.time_limit_s > 0),
             f"time_limit_s must be a positive number of seconds or empty, got {self.time_limit_s!r}"),
            ("n_threads", isinstance(self.n_threads, int) and self.n_threads >= 1,
             f"n_threads must be a whole number of at least 1, got {self.n_threads!r}"),
            ("random_state", isinstance(self.random_state, int),
             f"random_state must be a whole number, got {self.random_state!r}"),
            ("params", isinstance(self.params, dict), "params must be an object of parameter names and values"),
            ("refit_on_all_rows", isinstance(self.refit_on_all_rows, bool), "refit_on_all_rows must be true or false"),
            ("features", self.features is None or (isinstance(self.features, (list, tuple))
                                                   and all(isinstance(c, str) for c in self.features)),
             "features must be a list of column names, or empty for all columns but the target"),
        ]
        for name, ok, message in checks:
            if not ok:
                raise MLInputError(message, field=name)

    def _validate_columns(self, df: pd.DataFrame) -> list[str]:
        available = ", ".join(map(str, df.columns))
        if self.target not in df.columns:
            raise MLInputError(f"target column '{self.target}' is not in the dataset; columns are: {available}",
                               field="target")
        features = self.feature_columns(df)
        unknown = [c for c in features if c not in df.columns]
        if unknown:
            raise MLInputError(
                f"feature column{'s' if len(unknown) > 1 else ''} {', '.join(repr(c) for c in unknown)} "
                f"not in the dataset; columns are: {available}",
                field="features",
            )
        if self.target in features:
            raise MLInputError(f"the target '{self.target}' cannot also be a feature; remove it from features",
                               field="features")
        if not features:
            raise MLInputError("no feature columns; choose at least one column besides the target", field="features")
        duplicated = sorted({c for c in features if features.count(c) > 1})
        if duplicated:
            raise MLInputError(f"feature column(s) listed twice: {', '.join(duplicated)}", field="features")
        return features

    def _validate_target(self, y: pd.Series) -> None:
        missing_share = float(y.isna().mean()) if len(y) else 1.0
        if missing_share > MAX_MISSING_TARGET_SHARE:
            raise MLInputError(
                f"target '{self.target}' is missing in {missing_share:.0%} of rows (more than "
                f"{MAX_MISSING_TARGET_SHARE:.0%}); clean the data or choose another target",
                field="target",
            )
        values = y.dropna()
        if values.nunique() < 2:
            shown = f"the value {values.iloc[0]!r}" if len(values) else "no values"
            raise MLInputError(f"target '{self.target}' is constant ({shown} in every row); there is nothing "
                               f"to predict", field="target")

    def _validate_rows(self, y: pd.Series, problem_type: ProblemType) -> None:
        n_rows = len(y)
        n_test = math.ceil(n_rows * self.test_size)
        n_train = n_rows - n_test
        if n_rows < MIN_ROWS:
            raise MLInputError(f"only {n_rows} rows have a target value; at least {MIN_ROWS} are needed",
                               field="target")
        if self.cv_folds > n_train:
            raise MLInputError(
                f"cv_folds = {self.cv_folds} is more than the {n_train} training rows "
                f"({n_rows} rows minus the test part); lower cv_folds", field="cv_folds")
        if not problem_type.is_classification:
            return
        counts = y.value_counts()
        if n_test < len(counts):
            raise MLInputError(
                f"the test part ({n_test} rows at test_size = {self.test_size}) is smaller than the number of "
                f"classes ({len(counts)}); raise test_size", field="test_size")
        needed = _rows_needed_per_class(self.cv_folds, self.test_size)
        rare = counts[counts < needed]
        if len(rare):
            listed = ", ".join(f"'{label}' ({count} rows)" for label, count in rare.items())
            raise MLInputError(
                f"class{'es' if len(rare) > 1 else ''} {listed} of '{self.target}' "
                f"{'are' if len(rare) > 1 else 'is'} too small: with cv_folds = {self.cv_folds} and "
                f"test_size = {self.test_size} every class needs at least {needed} rows "
                f"({self.cv_folds} for the folds plus its share of the test part); lower cv_folds, "
                f"or remove or merge rare classes",
                field="cv_folds",
            )


def _rows_needed_per_class(cv_folds: int, test_size: float) -> int:
    """Smallest class size that still leaves ``cv_folds`` rows after the stratified test split."""
    count = cv_folds
    while count - math.ceil(count * test_size) < cv_folds:
        count += 1
    return count


@dataclass
class TrainResult:
    pipeline: Pipeline
    problem_type: ProblemType
    problem_type_reason: str
    target: str
    algorithm: str
    search: str
    metric: str
    greater_is_better: bool
    classes: list | None
    best_params: dict[str, Any]
    trials: list[dict]
    cv_mean: float | None
    cv_std: float | None
    test_metrics: dict
    importance: list[dict]
    importance_method: str
    feature_schema: list[dict]
    used_columns: list[str]
    dropped_columns: dict[str, str]
    notes: list[str]
    test_frame: pd.DataFrame
    n_rows_train: int
    n_rows_test: int
    duration_s: float
    versions: dict[str, str]

    def summary(self) -> dict[str, Any]:
        """Everything except the pipeline and test frame, JSON-safe (for the job row)."""
        skip = {"pipeline", "test_frame"}
        return plain({f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip})


def library_versions() -> dict[str, str]:
    import optuna
    import scipy
    import skops
    import sklearn
    import xgboost
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__, "pandas": pd.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "optuna": optuna.__version__, "skops": skops.__version__}


def _scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A callback mapping a stage's 0..1 onto ``start``..``end`` of the whole job."""
    return lambda stage, fraction: progress(stage, start + (end - start) * fraction)


def _problem_reason(config: TrainConfig, y: pd.Series, problem_type: ProblemType) -> str:
    detected, reason = detect_problem_type(y)
    if config.problem_type == "auto":
        return reason
    if detected is problem_type:
        return f"chosen by the user (detection agrees: {reason})"
    return f"chosen by the user (detection suggested {detected.value}: {reason})"


def _split(X: pd.DataFrame, y: pd.Series, config: TrainConfig, problem_type: ProblemType):
    return train_test_split(X, y, test_size=config.test_size, random_state=config.random_state,
                            stratify=y if problem_type.is_classification else None)


def _test_frame(X_test: pd.DataFrame, y_test: pd.Series, random_state: int) -> pd.DataFrame:
    frame = X_test.assign(**{y_test.name: y_test})
    if len(frame) > MAX_TEST_FRAME_ROWS:
        frame = frame.sample(MAX_TEST_FRAME_ROWS, random_state=random_state)
    return frame.copy()


def _warning_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    messages = list(dict.fromkeys(f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught))
    notes = [f"Warning while fitting: {m}" for m in messages[:MAX_WARNING_NOTES]]
    if len(messages) > MAX_WARNING_NOTES:
        notes.append(f"... and {len(messages) - MAX_WARNING_NOTES} other warnings.")
    return notes


def refit_on_all_rows(pipeline: Pipeline, X_train: pd.DataFrame, X_test: pd.DataFrame, y_train: pd.Series,
                      y_test: pd.Series) -> tuple[Pipeline, pd.DataFrame, str]:
    """The evaluated pipeline's settings fitted again on the training and test parts together: the model to
    register when every row should count (small tables). Its test metrics are those of the evaluated fit."""
    X_all, y_all = pd.concat([X_train, X_test]), pd.concat([y_train, y_test])
    final = clone(pipeline).fit(X_all, y_all)
    return final, X_all, (f"The registered model was refit on all {len(y_all):,} rows after its evaluation; the test "
                          f"metrics describe the same settings fitted on the {len(y_train):,} training rows.")


def train(df: pd.DataFrame, config: TrainConfig, progress: ProgressFn = no_progress) -> TrainResult:
    """Validate, search, refit the best parameters on the training part and evaluate on the test part."""
    started = time.monotonic()
    progress("preparing", 0.0)
    config.validate(df)
    algorithm = get_algorithm(config.algorithm)
    notes: list[str] = []

    y_all = df[config.target]
    missing = int(y_all.isna().sum())
    if missing:
        notes.append(f"Dropped {missing} row(s) with no value for the target '{config.target}'.")
    keep = y_all.notna()
    y = y_all[keep]
    problem_type = resolve_problem_type(config.problem_type, y)
    if problem_type is ProblemType.REGRESSION:
        y = y.astype(float)
    reason = _problem_reason(config, y, problem_type)
    notes.append(f"Problem type: {problem_type.value} ({reason}).")
    metric = get_metric(config.metric, problem_type)
    fixed_params = algorithm.validate_params(config.params)

    X = df.loc[keep, config.feature_columns(df)]
    X_train, X_test, y_train, y_test = _split(X, y, config, problem_type)
    plan = plan_preprocessing(X_train, scale_numeric=algorithm.needs_scaling)
    notes += plan.notes
    X_train, X_test = X_train[plan.used_columns], X_test[plan.used_columns]
    notes.append(f"Split {len(y)} rows into {len(y_train)} for training and {len(y_test)} for testing"
                 f"{' (stratified by class)' if problem_type.is_classification else ''}.")
    progress("preparing", _SEARCH_START)

    with limit_threads(config.n_threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        task = SearchTask(X=X_train, y=y_train, problem_type=problem_type, algorithm=algorithm, metric=metric,
                          preprocessor=plan.transformer, fixed_params=fixed_params, n_trials=config.n_trials,
                          time_limit_s=config.time_limit_s, cv_folds=config.cv_folds,
                          random_state=config.random_state, n_threads=config.n_threads,
                          progress=_scaled(progress, _SEARCH_START, _REFIT_AT))
        search = get_searcher(config.search).run(task)
        notes += search.notes

        progress("refitting best model", _REFIT_AT)
        pipeline = task.make_pipeline(search.best_params)
        pipeline.fit(X_train, y_train)

        progress("evaluating", _EVALUATE_AT)
        test_metrics = evaluate(pipeline, X_test, y_test, problem_type, random_state=config.random_state)
        test_value = test_metrics["scores"].get(metric.key)
        if test_value is not None:
            notes.append(f"Test {metric.key}: {test_value:.4g}.")

        progress("computing feature importance", _IMPORTANCE_AT)
        importance = feature_importance(pipeline, X_test, y_test, metric=metric, n_threads=config.n_threads,
                                        random_state=config.random_state)
        X_seen = X_train
        if config.refit_on_all_rows:
            progress("refitting on all rows", _IMPORTANCE_AT)
            pipeline, X_seen, note = refit_on_all_rows(pipeline, X_train, X_test, y_train, y_test)
            notes.append(note)
    notes += _warning_notes(caught)

    result = TrainResult(
        pipeline=pipeline,
        problem_type=problem_type,
        problem_type_reason=reason,
        target=config.target,
        algorithm=algorithm.key,
        search=config.search,
        metric=metric.key,
        greater_is_better=metric.greater_is_better,
        classes=plain(pipeline.classes_) if problem_type.is_classification else None,
        best_params=plain({**algorithm.defaults, **search.best_params}),
        trials=plain(search.trials),
        cv_mean=search.best["cv_mean"],
        cv_std=search.best["cv_std"],
        test_metrics=test_metrics,
        importance=importance.features,
        importance_method=importance.method,
        feature_schema=[column_schema(X_seen[c], plan.kinds[c]) for c in plan.used_columns],
        used_columns=plan.used_columns,
        dropped_columns=plan.dropped,
        notes=notes,
        test_frame=_test_frame(X_test, y_test, config.random_state),
        n_rows_train=len(y_train),
        n_rows_test=len(y_test),
        duration_s=round(time.monotonic() - started, 3),
        versions=library_versions(),
    )
    progress("done", 1.0)
    return result
