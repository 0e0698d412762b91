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
from training.ml.columns import BOOLEAN, CATEGORICAL, NUMERIC, column_schema
from training.ml.errors import MLInputError
from training.ml.importance import feature_importance
from training.ml.jsonable import plain
from training.ml.metrics import evaluate, get_metric
from training.ml.preprocess import plan_preprocessing
from training.ml.problem import ProblemType, detect_problem_type, resolve_problem_type
from training.ml.reading import (
    ColumnReading, infer_readings, kind_name, read_frame, read_target, reading_for_kind,
)
from training.ml.search import ProgressFn, SearchTask, get_searcher, no_progress
from training.ml.threads import limit_threads

#: More than this share of missing target values is refused rather than silently dropped.
MAX_MISSING_TARGET_SHARE = 0.5
#: Numbers larger than this in magnitude are refused up front: tree models and XGBoost compute in single
#: precision (largest value 3.4e38, so larger ones become infinite) and scaling squares values, which
#: overflows double precision past about 1e154; either way the fit fails with "Input X contains NaN".
MAX_ABS_VALUE = 1e38
#: Kinds a target can have (text and identifier columns are ignored, a date is not something to predict here).
TARGET_KINDS = (NUMERIC, CATEGORICAL, BOOLEAN)
MIN_ROWS = 10
MAX_TEST_FRAME_ROWS = 2000
MAX_WARNING_NOTES = 5

#: Overall progress: where each stage starts.
_SEARCH_START, _REFIT_AT, _EVALUATE_AT, _IMPORTANCE_AT = 0.05, 0.85, 0.92, 0.96


@dataclass
class PreparedData:
    """A job's data as read: what ``JobSettings.prepare`` hands to training after checking it."""

    readings: dict[str, ColumnReading]  # every feature and the target
    features: list[str]
    X: pd.DataFrame  # the feature columns read, rows with a target value only
    y: pd.Series  # the target read, without missing values
    missing_target: int  # rows dropped for having no (readable) target value
    problem_type: ProblemType
    problem_type_reason: str

    @property
    def kinds(self) -> dict[str, str]:
        return {c: self.readings[c].kind for c in self.features}

    def target_schema(self, y_test: pd.Series, classes: list | None) -> dict[str, Any]:
        """What a version records of its target: the reading, and for regression the spread (``std_test`` is the
        standard deviation on the test split, the scale predictions of every route must agree within)."""
        reading = self.readings[self.y.name]
        schema: dict[str, Any] = {"name": str(self.y.name), "kind": reading.kind, "reading": reading.as_dict()}
        if self.problem_type.is_classification:
            return {**schema, "classes": plain(classes)}
        y = self.y.astype(float)
        return plain({**schema, "min": y.min(), "max": y.max(), "mean": y.mean(), "std": y.std(),
                      "std_test": float(np.std(np.asarray(y_test, dtype=float)))})


class JobSettings:
    """What the job configs (TrainConfig, AutoMLConfig) share: built from a job's stored dict, refusing
    unknown names and naming the first missing required one; features default to every other column;
    columns are read with the dataset's stored readings, the job's own kinds, or readings inferred here."""

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

    # --- reading the columns ------------------------------------------------------------------------
    def _validate_reading_settings(self) -> None:
        kinds, readings = self.column_kinds, self.column_readings
        if kinds is not None and not (isinstance(kinds, dict) and all(
                isinstance(k, str) and isinstance(v, (str, dict)) for k, v in kinds.items())):
            raise MLInputError('column_kinds must be an object of column: kind (numeric, categorical, boolean, date, '
                               'text, identifier), or column: {"kind": ..., "format": ...}', field="column_kinds")
        if readings is not None and not (isinstance(readings, dict) and all(
                isinstance(k, str) and isinstance(v, dict) for k, v in readings.items())):
            raise MLInputError("column_readings must be an object of column: reading", field="column_readings")

    def resolve_readings(self, df: pd.DataFrame, columns: list[str]) -> dict[str, ColumnReading]:
        """Each of ``columns`` with its reading: the job's ``column_kinds`` first (checked against the values:
        400 naming the column when a kind cannot apply), then the stored ``column_readings``, then inferred."""
        readings: dict[str, ColumnReading] = {}
        for column, choice in (self.column_kinds or {}).items():
            if column not in df.columns:
                raise MLInputError(f"column_kinds names '{column}', which is not in the dataset; columns are: "
                                   f"{', '.join(map(str, df.columns))}", field="column_kinds")
            kind, format_key = (choice.get("kind"), choice.get("format")) if isinstance(choice, dict) else (choice, None)
            kind_name(kind, field="column_kinds")
            if column in columns:
                readings[column] = reading_for_kind(df[column], kind, name=column, format_key=format_key)
        for column, stored in (self.column_readings or {}).items():
            if column in columns and column not in readings:
                readings[column] = ColumnReading.from_dict(stored)
        rest = [c for c in columns if c not in readings]
        if rest:
            readings.update(infer_readings(df[rest]))
        return readings

    def prepare(self, df: pd.DataFrame) -> PreparedData:
        """Check the columns, read them, check the target as read; raise ``MLInputError`` naming the field."""
        self._validate_reading_settings()
        features = self._validate_columns(df)
        readings = self.resolve_readings(df, [*features, self.target])
        if readings[self.target].source == "user" and readings[self.target].kind not in TARGET_KINDS:
            raise MLInputError(f"the target '{self.target}' is declared {readings[self.target].kind} in column_kinds; a "
                               f"target must be numeric, categorical or boolean", field="column_kinds")
        y_read = read_target(df[self.target], readings[self.target])
        self._validate_target(y_read, readings[self.target])
        y = y_read.dropna()
        problem_type, reason = _problem_type(self.problem_type, y, readings[self.target])
        X = read_frame(df.loc[y.index, features], readings)
        _check_magnitudes(X, {c: readings[c].kind for c in features}, y, problem_type)
        return PreparedData(readings=readings, features=features, X=X, y=y,
                            missing_target=int(len(y_read) - len(y)), problem_type=problem_type,
                            problem_type_reason=reason)


def _check_magnitudes(X: pd.DataFrame, kinds: dict[str, str], y: pd.Series, problem_type: ProblemType) -> None:
    """400 naming the column when a number is beyond ``MAX_ABS_VALUE`` (the fit would fail in the worker)."""
    columns = [(c, X[c], "features") for c, kind in kinds.items() if kind == NUMERIC]
    if problem_type is ProblemType.REGRESSION:
        columns.append((y.name, y, "target"))
    for column, values, field_name in columns:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            huge = np.isfinite(numbers) & (np.abs(numbers) > MAX_ABS_VALUE)
        if huge.any():
            largest = float(np.max(np.abs(numbers[huge])))
            raise MLInputError(
                f"column '{column}' holds {int(huge.sum())} value(s) beyond ±{MAX_ABS_VALUE:.0e} (up to "
                f"{largest:.3g}); models compute in single precision, which cannot hold them: rescale the column "
                f"(for example divide it by a power of ten) or leave those values empty", field=field_name)


def _problem_type(requested: str, y: pd.Series, reading: ColumnReading) -> tuple[ProblemType, str]:
    """The problem type and why; a target the user declared categorical is a classification target."""
    if requested == "auto" and reading.source == "user" and reading.kind in (CATEGORICAL, BOOLEAN):
        requested = ProblemType.BINARY.value if y.nunique() == 2 else ProblemType.MULTICLASS.value
        problem_type = resolve_problem_type(requested, y)
        return problem_type, f"the target was declared {reading.kind} and has {y.nunique()} classes"
    problem_type = resolve_problem_type(requested, y)
    detected, reason = detect_problem_type(y)
    if requested == "auto":
        return problem_type, reason
    if detected is problem_type:
        return problem_type, f"chosen by the user (detection agrees: {reason})"
    return problem_type, f"chosen by the user (detection suggested {detected.value}: {reason})"


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
    #: The user's kinds for some columns (column -> kind, or {"kind", "format"}), checked against their values.
    column_kinds: dict[str, Any] | None = None
    #: The dataset's stored readings (column -> ``ColumnReading.as_dict()``); columns without one are inferred.
    column_readings: dict[str, dict] | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("target", "algorithm")

    def validate(self, df: pd.DataFrame) -> None:
        """Raise ``MLInputError`` naming the field for anything that would make training fail."""
        self.prepare(df)

    def prepare(self, df: pd.DataFrame) -> PreparedData:
        """``JobSettings.prepare`` plus this algorithm's checks: everything that would make training fail."""
        self._validate_settings()
        algorithm = get_algorithm(self.algorithm)
        get_searcher(self.search)
        data = super().prepare(df)
        y, problem_type = data.y, data.problem_type
        if problem_type not in algorithm.problem_types:
            raise MLInputError(
                f"algorithm '{algorithm.key}' does not support {problem_type.value}; algorithms that do: "
                f"{', '.join(a.key for a in algorithms_for(problem_type))}",
                field="algorithm",
            )
        get_metric(self.metric, problem_type)
        algorithm.validate_params(self.params)
        self._validate_rows(y, problem_type)
        check_features(data)
        return data

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

    def _validate_target(self, y: pd.Series, reading: ColumnReading | None = None) -> None:
        """``y`` is the target as read: missing (or unreadable) beyond the limit, infinite values and a constant
        target are refused here rather than failing in the worker."""
        missing_share = float(y.isna().mean()) if len(y) else 1.0
        if missing_share > MAX_MISSING_TARGET_SHARE:
            unreadable = f", {reading.describe()}" if reading is not None and reading.kind == NUMERIC else ""
            raise MLInputError(
                f"target '{self.target}' is missing in {missing_share:.0%} of rows (more than "
                f"{MAX_MISSING_TARGET_SHARE:.0%}{unreadable}); clean the data or choose another target",
                field="target",
            )
        values = y.dropna()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            infinite = ~np.isfinite(values.to_numpy(dtype=float))
            if infinite.any():
                rows = ", ".join(str(i) for i in values.index[infinite][:5])
                raise MLInputError(
                    f"target '{self.target}' has {int(infinite.sum())} infinite value(s) (at rows {rows}); a model "
                    f"cannot learn from them: remove those rows or leave the value empty", field="target")
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


def check_features(data: PreparedData) -> None:
    """At least one feature must be usable once read (400 listing why each is not)."""
    plan = plan_preprocessing(data.X, scale_numeric=False, kinds=data.kinds)
    if not plan.used_columns:
        reasons = "; ".join(f"'{c}' {r}" for c, r in plan.dropped.items())
        raise MLInputError(f"none of the feature columns can be used: {reasons}", field="features")


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
    target_schema: dict
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


def feature_schema(X_seen: pd.DataFrame, used: list[str], data: PreparedData) -> list[dict]:
    """The feature schema of a version: each used column as training saw it, with its reading."""
    return [column_schema(X_seen[c], data.readings[c].kind, reading=data.readings[c].as_dict()) for c in used]


def reading_notes(data: PreparedData) -> list[str]:
    """Job log lines saying how columns were read when that is worth knowing (formats, ambiguity, the user's kinds)."""
    notes = []
    for column, reading in data.readings.items():
        if reading.source == "user" or reading.ambiguous or reading.unreadable or (
                reading.format_key not in (None, "plain", "iso8601")):
            notes.append(f"Column '{column}' is read as {reading.describe()}"
                         f"{' (chosen by the user)' if reading.source == 'user' else ''}.")
    return notes


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
    data = config.prepare(df)
    algorithm = get_algorithm(config.algorithm)
    notes: list[str] = reading_notes(data)

    if data.missing_target:
        notes.append(f"Dropped {data.missing_target} row(s) with no value for the target '{config.target}'.")
    y, problem_type, reason = data.y, data.problem_type, data.problem_type_reason
    if problem_type is ProblemType.REGRESSION:
        y = y.astype(float)
    notes.append(f"Problem type: {problem_type.value} ({reason}).")
    metric = get_metric(config.metric, problem_type)
    fixed_params = algorithm.validate_params(config.params)

    X_train, X_test, y_train, y_test = _split(data.X, y, config, problem_type)
    plan = plan_preprocessing(X_train, scale_numeric=algorithm.needs_scaling, kinds=data.kinds)
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
        feature_schema=feature_schema(X_seen, plan.used_columns, data),
        target_schema=data.target_schema(y_test, plain(pipeline.classes_) if problem_type.is_classification else None),
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
