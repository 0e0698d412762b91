"""Turn a DataFrame's columns into model features with one ``ColumnTransformer``.

Every helper used inside the transformer is a module-level function, so the
fitted pipeline can be saved with skops and loaded back without pickle.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from training.ml.columns import (
    BOOLEAN, CATEGORICAL, DATETIME, FALSE_STRINGS, IDENTIFIER, NUMERIC, TEXT, TRUE_STRINGS,
    infer_column_kind, parse_datetimes,
)

#: Categories seen fewer times than this are grouped into one "infrequent" feature.
MIN_CATEGORY_FREQUENCY = 5
#: At most this many one-hot features per categorical column (including "infrequent").
MAX_CATEGORIES = 20
MISSING_CATEGORY = "(missing)"
DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")


# --- functions run inside the fitted pipeline (module level: skops-safe) ---------------------

def to_float_frame(X: pd.DataFrame) -> np.ndarray:
    """Numbers as float64; text that is not a number and +/-inf become NaN (then imputed)."""
    frame = pd.DataFrame(X).apply(pd.to_numeric, errors="coerce")
    array = frame.to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isfinite(array), array, np.nan)


def to_str_frame(X: pd.DataFrame) -> np.ndarray:
    """Categories as Python strings in an object array, missing values as NaN."""
    frame = pd.DataFrame(X).astype(object)
    return frame.map(lambda v: np.nan if pd.isna(v) else str(v)).to_numpy(dtype=object)


def _to_bool(value) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.number)) and value in (0, 1):
        return float(value)
    text = str(value).strip().lower()
    if text in TRUE_STRINGS or text == "1":
        return 1.0
    if text in FALSE_STRINGS or text == "0":
        return 0.0
    return np.nan


def to_bool_frame(X: pd.DataFrame) -> np.ndarray:
    """True/yes/1 -> 1.0, false/no/0 -> 0.0, anything else (or missing) -> NaN."""
    frame = pd.DataFrame(X).astype(object)
    return frame.map(lambda v: np.nan if pd.isna(v) else _to_bool(v)).to_numpy(dtype=float)


def datetime_parts(X: pd.DataFrame) -> np.ndarray:
    """For each column, ``DATETIME_PARTS`` as numbers (NaN when the value is not a date)."""
    frame = pd.DataFrame(X)
    blocks = []
    for column in frame.columns:
        parsed = parse_datetimes(frame[column])
        blocks.append(np.column_stack([
            getattr(parsed.dt, part).to_numpy(dtype=float, na_value=np.nan) for part in DATETIME_PARTS
        ]))
    return np.hstack(blocks) if blocks else np.empty((len(frame), 0))


def datetime_part_names(transformer, input_features) -> np.ndarray:
    return np.asarray([f"{column}_{part}" for column in input_features for part in DATETIME_PARTS], dtype=object)


# --- one small pipeline per kind -------------------------------------------------------------

def _numeric(scale: bool) -> Pipeline:
    steps = [
        ("to_float", FunctionTransformer(to_float_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categorical(scale: bool) -> Pipeline:
    # Missing is kept as its own category: that it is missing is often informative.
    return Pipeline([
        ("to_str", FunctionTransformer(to_str_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
        ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=MIN_CATEGORY_FREQUENCY,
                                  max_categories=MAX_CATEGORIES, sparse_output=False)),
    ])


def _boolean(scale: bool) -> Pipeline:
    return Pipeline([
        ("to_bool", FunctionTransformer(to_bool_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
    ])


def _datetime(scale: bool) -> Pipeline:
    steps = [
        ("parts", FunctionTransformer(datetime_parts, feature_names_out=datetime_part_names)),
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
    ]
    if scale:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


#: kind -> (builder, one transformer per column?). One-hot widths differ per column, so
#: categorical columns get their own transformer; that keeps feature -> column mapping exact.
KIND_TRANSFORMERS: dict[str, tuple[Callable[[bool], Pipeline], bool]] = {
    NUMERIC: (_numeric, False),
    BOOLEAN: (_boolean, False),
    DATETIME: (_datetime, False),
    CATEGORICAL: (_categorical, True),
}

DROPPED_KINDS = {
    IDENTIFIER: "looks like an identifier (a different value in almost every row), which cannot generalise",
    TEXT: "is free text (long, mostly distinct strings); text features are not supported yet",
}


@dataclass
class PreprocessPlan:
    """An unfitted transformer plus what was decided about each column and why."""

    transformer: ColumnTransformer
    used_columns: list[str]
    kinds: dict[str, str]
    dropped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _drop_reason(series: pd.Series, kind: str) -> str | None:
    if series.isna().all():
        return "has no values"
    if series.nunique(dropna=True) <= 1 and not series.isna().any():
        return "has the same value in every row"
    return DROPPED_KINDS.get(kind)


def plan_preprocessing(X: pd.DataFrame, *, scale_numeric: bool,
                       kinds: dict[str, str] | None = None) -> PreprocessPlan:
    """Decide, column by column, how ``X`` becomes features.

    ``kinds`` may override inferred kinds (e.g. from the dataset profile).
    Unusable columns are left out and reported in ``dropped`` with a reason.
    """
    kinds = {**{c: infer_column_kind(X[c]) for c in X.columns if c not in (kinds or {})}, **(kinds or {})}
    used: dict[str, str] = {}
    dropped: dict[str, str] = {}
    notes: list[str] = []
    for column in X.columns:
        reason = _drop_reason(X[column], kinds[column])
        if reason:
            dropped[column] = reason
            notes.append(f"Column '{column}' is not used: it {reason}.")
        else:
            used[column] = kinds[column]

    groups: dict[str, list[str]] = {}
    for column, kind in used.items():
        groups.setdefault(kind, []).append(column)
    transformers = []
    for kind, columns in groups.items():
        build, per_column = KIND_TRANSFORMERS[kind]
        chunks = [[c] for c in columns] if per_column else [columns]
        transformers += [
            (f"{kind}_{i}" if per_column else kind, build(scale_numeric), chunk) for i, chunk in enumerate(chunks)
        ]
    for column in groups.get(CATEGORICAL, []):
        n_distinct = X[column].nunique()
        if n_distinct > MAX_CATEGORIES:
            notes.append(
                f"Column '{column}' has {n_distinct} categories; the {MAX_CATEGORIES - 1} most frequent are "
                f"encoded and the rest are grouped as 'infrequent'."
            )
    transformer = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0,
                                    verbose_feature_names_out=True)
    return PreprocessPlan(transformer=transformer, used_columns=list(used), kinds=used,
                          dropped=dropped, notes=notes)


def feature_sources(fitted: ColumnTransformer) -> list[str]:
    """For each output feature of a fitted transformer, the input column it came from.

    Relies on every transformer producing the same number of features per input
    column, column by column (true for the groups built by ``plan_preprocessing``).
    """
    n_features = sum(s.stop - s.start for s in fitted.output_indices_.values())
    sources = [""] * n_features
    for name, _, columns in fitted.transformers_:
        span = fitted.output_indices_.get(name)
        if not span or span.stop == span.start or name == "remainder":
            continue
        width = (span.stop - span.start) // len(columns)
        for i, column in enumerate(columns):
            for j in range(span.start + i * width, span.start + (i + 1) * width):
                sources[j] = column
    return sources
