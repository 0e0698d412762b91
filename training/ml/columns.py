"""Column kinds: how a column is read before any model sees it.

``infer_column_kind`` is shared with the dataset profile, so the kind shown to
the user is the kind the trainer uses.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from training.ml.jsonable import plain, plain_float

NUMERIC, CATEGORICAL, BOOLEAN, DATETIME, TEXT, IDENTIFIER = (
    "numeric", "categorical", "boolean", "datetime", "text", "identifier",
)
COLUMN_KINDS = (NUMERIC, CATEGORICAL, BOOLEAN, DATETIME, TEXT, IDENTIFIER)

TRUE_STRINGS = frozenset({"true", "t", "yes", "y"})
FALSE_STRINGS = frozenset({"false", "f", "no", "n"})

#: Fewer non-missing rows than this and no column is called an identifier.
MIN_ROWS_FOR_IDENTIFIER = 20
#: Strings this long on average, mostly distinct, are free text rather than categories.
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_DISTINCT_SHARE = 0.5
#: Short strings distinct in at least this share of rows are identifiers (codes, e-mails, names).
IDENTIFIER_MIN_DISTINCT_SHARE = 0.95
#: Share of sampled strings that must parse as dates for a column to be a datetime.
DATETIME_MIN_PARSED_SHARE = 0.95
DATETIME_SAMPLE = 200
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^id[_\s-]|^index$", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Parse a column to naive UTC datetimes; anything unparseable becomes NaT.

    ISO 8601 is tried first (fast, unambiguous); other formats fall back to
    per-value parsing.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype(object).where(values.notna(), None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        if parsed.notna().sum() < text.notna().sum():
            parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None)


def _looks_boolean(values: pd.Series) -> bool:
    lowered = {str(v).strip().lower() for v in pd.unique(values)}
    return len(lowered) == 2 and lowered <= (TRUE_STRINGS | FALSE_STRINGS) and bool(lowered & TRUE_STRINGS)


def _looks_datetime(values: pd.Series) -> bool:
    sample = values.sample(min(len(values), DATETIME_SAMPLE), random_state=0).astype(str)
    # A date has digits and a separator; this rules out "May" and bare numbers like "2021".
    if not sample.map(lambda s: bool(_HAS_DIGIT.search(s)) and len(s) >= 6).all():
        return False
    if pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5:
        return False
    return parse_datetimes(sample).notna().mean() >= DATETIME_MIN_PARSED_SHARE


def _looks_like_sequence(values: pd.Series) -> bool:
    """Distinct integers close to a contiguous run (1, 2, 3 ... with a few gaps)."""
    span = float(values.max()) - float(values.min()) + 1
    return span <= 1.1 * len(values)


def _is_integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values):
        return True
    array = values.to_numpy(dtype=float, na_value=np.nan)
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


def _numeric_kind(values: pd.Series, name: str) -> str:
    if len(values) >= MIN_ROWS_FOR_IDENTIFIER and _is_integer_valued(values) and values.is_unique:
        if _ID_NAME.search(name) or _looks_like_sequence(values):
            return IDENTIFIER
    return NUMERIC


def _string_kind(values: pd.Series) -> str:
    if _looks_boolean(values):
        return BOOLEAN
    strings = values.astype(str)
    distinct_share = strings.nunique() / len(strings)
    if strings.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and distinct_share >= TEXT_MIN_DISTINCT_SHARE:
        return TEXT
    if _looks_datetime(values):
        return DATETIME
    if len(strings) >= MIN_ROWS_FOR_IDENTIFIER and distinct_share >= IDENTIFIER_MIN_DISTINCT_SHARE:
        return IDENTIFIER
    return CATEGORICAL


def infer_column_kind(series: pd.Series) -> str:
    """One of ``COLUMN_KINDS`` for a column, judged from its dtype and non-missing values.

    - bool dtype, or two strings like yes/no, true/false -> boolean
    - datetime dtype, or strings that parse as dates -> datetime
    - integers distinct in every row that count up (or are named like ``*_id``) -> identifier
    - other numbers -> numeric
    - long, mostly distinct strings -> text; short strings distinct in nearly every row -> identifier
    - other strings and pandas categories -> categorical
    """
    values = series.dropna()
    name = str(series.name or "")
    if pd.api.types.is_bool_dtype(series):
        return BOOLEAN
    if pd.api.types.is_datetime64_any_dtype(series):
        return DATETIME
    if isinstance(series.dtype, pd.CategoricalDtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(series):
        return _numeric_kind(values, name) if len(values) else NUMERIC
    if len(values) == 0:
        return CATEGORICAL
    if values.map(lambda v: isinstance(v, bool)).all():
        return BOOLEAN
    return _string_kind(values)


MAX_SCHEMA_CATEGORIES = 100


def _numeric_schema(values: pd.Series) -> dict:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return {"min": plain_float(numbers.min()) if len(numbers) else None,
            "max": plain_float(numbers.max()) if len(numbers) else None}


def _categorical_schema(values: pd.Series) -> dict:
    counts = values.dropna().astype(str).value_counts()
    return {"categories": [str(c) for c in counts.index[:MAX_SCHEMA_CATEGORIES]],
            "n_categories": int(len(counts))}


def _datetime_schema(values: pd.Series) -> dict:
    parsed = parse_datetimes(values).dropna()
    return {"min": plain(parsed.min()) if len(parsed) else None,
            "max": plain(parsed.max()) if len(parsed) else None}


def _boolean_schema(values: pd.Series) -> dict:
    return {"values": sorted({plain(v) if isinstance(v, (bool, np.bool_)) else str(v) for v in values.dropna().unique()}, key=str)}


_SCHEMA_DETAILS = {
    NUMERIC: _numeric_schema,
    CATEGORICAL: _categorical_schema,
    DATETIME: _datetime_schema,
    BOOLEAN: _boolean_schema,
}


def column_schema(series: pd.Series, kind: str) -> dict:
    """What a caller must send for this column at prediction time (JSON-safe)."""
    details = _SCHEMA_DETAILS.get(kind, lambda _: {})(series)
    return {"name": str(series.name), "kind": kind, "dtype": str(series.dtype),
            "nullable": bool(series.isna().any()), **details}
