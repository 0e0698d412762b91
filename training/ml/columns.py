"""Column kinds, and what a model version records about each column it uses.

How a column's values are *read* (number and date formats, boolean spellings) and how
its kind is inferred live in ``training.ml.reading``; this module holds the kinds, the
rules that tell categories, identifiers and free text apart once the values are read
(``sniff_kind``), and the feature schema entry of a column (``column_schema``).
"""
from __future__ import annotations

import re
import warnings
from datetime import datetime

import numpy as np
import pandas as pd

from training.ml.jsonable import plain, plain_float

NUMERIC, CATEGORICAL, BOOLEAN, DATETIME, TEXT, IDENTIFIER = (
    "numeric", "categorical", "boolean", "datetime", "text", "identifier",
)
COLUMN_KINDS = (NUMERIC, CATEGORICAL, BOOLEAN, DATETIME, TEXT, IDENTIFIER)

# A cell whose trimmed text is one of these is missing (pandas' defaults plus a few); ingestion and
# every reading route use the same list.
NA_TOKENS = (
    "", "NA", "N/A", "n/a", "N/a", "na", "NaN", "nan", "NAN", "-NaN", "-nan",
    "NULL", "null", "Null", "None", "none", "NONE", "<NA>", "#N/A", "#N/A N/A", "#NA",
    "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN", "?",
)

TRUE_STRINGS = frozenset({"true", "t", "yes", "y"})
FALSE_STRINGS = frozenset({"false", "f", "no", "n"})

#: Fewer non-missing rows than this and no column is called an identifier.
MIN_ROWS_FOR_IDENTIFIER = 20
#: Strings this long on average, mostly distinct, are free text rather than categories.
TEXT_MIN_MEAN_LENGTH = 30
TEXT_MIN_DISTINCT_SHARE = 0.5
#: Short strings distinct in at least this share of rows are identifiers (codes, e-mails, names).
IDENTIFIER_MIN_DISTINCT_SHARE = 0.95
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^id[_\s-]|^index$", re.IGNORECASE)


def parse_datetimes(values: pd.Series) -> pd.Series:
    """The legacy date reading: ISO 8601, else pandas' per-value guess; anything unparseable becomes NaT.

    Only for versions trained before column readings were stored (``reading.ColumnReading.legacy``)
    and for raw text handed straight to an old pipeline: it may read ``01/02/2024`` as 2 January in
    one row and 1 February in another. Everything else reads dates with one explicit format per
    column (``training.ml.reading``).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    present = values.dropna()
    if len(present) and present.map(lambda v: isinstance(v, (datetime, np.datetime64))).all():
        # already read (a column's reading made them dates): taken as they are, nothing to guess
        return pd.to_datetime(values, utc=True).dt.tz_localize(None)
    text = values.astype(object).where(values.notna(), None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=True)
        if parsed.notna().sum() < text.notna().sum():
            parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None)


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
    if len(values) and set(pd.unique(values.to_numpy(dtype=float, na_value=np.nan)).tolist()) == {0.0, 1.0}:
        return BOOLEAN
    return NUMERIC


def _string_kind(values: pd.Series) -> str:
    strings = values.astype(str)
    distinct_share = strings.nunique() / len(strings)
    if strings.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and distinct_share >= TEXT_MIN_DISTINCT_SHARE:
        return TEXT
    if len(strings) >= MIN_ROWS_FOR_IDENTIFIER and distinct_share >= IDENTIFIER_MIN_DISTINCT_SHARE:
        return IDENTIFIER
    return CATEGORICAL


#: kind of the read values -> rule refining it from their spread (kinds not listed stay as they are)
_REFINE = {NUMERIC: _numeric_kind, CATEGORICAL: lambda values, name: _string_kind(values)}


def sniff_kind(read: pd.Series, name: str, kind: str) -> str:
    """Settle a column's kind from its values once read as ``kind``.

    - numbers distinct in every row that count up (or are named like ``*_id``) -> identifier;
      numbers that are only 0 and 1 -> boolean; other numbers -> numeric
    - long, mostly distinct text -> text; short text distinct in nearly every row -> identifier;
      other text -> categorical
    - booleans and dates stay what they are.
    """
    values = read.dropna()
    if not len(values) or kind not in _REFINE:
        return kind
    return _REFINE[kind](values, name)


def infer_column_kind(series: pd.Series) -> str:
    """The kind of a column held in memory, from every value (``reading.infer_reading(series).kind``)."""
    from training.ml.reading import infer_reading

    return infer_reading(series).kind


#: Categories listed in a feature schema (most frequent first); past this, unseen ones cannot be told.
MAX_SCHEMA_CATEGORIES = 1000


def _numeric_schema(values: pd.Series) -> dict:
    numbers = pd.to_numeric(values, errors="coerce")
    numbers = numbers[np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))]
    if not len(numbers):
        return {"min": None, "max": None}
    return {"min": plain_float(numbers.min()), "max": plain_float(numbers.max()),
            "mean": plain_float(numbers.mean()), "std": plain_float(numbers.std()) if len(numbers) > 1 else None,
            "quantiles": {str(q): plain_float(v) for q, v in numbers.quantile([0.01, 0.5, 0.99]).items()}}


def _categorical_schema(values: pd.Series) -> dict:
    counts = values.dropna().astype(str).value_counts()
    return {"categories": [str(c) for c in counts.index[:MAX_SCHEMA_CATEGORIES]],
            "n_categories": int(len(counts))}


def _datetime_schema(values: pd.Series) -> dict:
    parsed = parse_datetimes(values).dropna()
    return {"min": plain(parsed.min()) if len(parsed) else None,
            "max": plain(parsed.max()) if len(parsed) else None}


def _boolean_schema(values: pd.Series) -> dict:
    return {"values": sorted({plain(v) if isinstance(v, (bool, np.bool_)) else str(v)
                              for v in values.dropna().unique()}, key=str)}


_SCHEMA_DETAILS = {
    NUMERIC: _numeric_schema,
    CATEGORICAL: _categorical_schema,
    DATETIME: _datetime_schema,
    BOOLEAN: _boolean_schema,
}


def column_schema(series: pd.Series, kind: str, reading: dict | None = None) -> dict:
    """What a caller must send for this column at prediction time, and what training saw (JSON-safe).

    ``series`` holds the values as read (see ``training.ml.reading``). Keys: ``name``,
    ``kind``, ``dtype``, ``nullable``, ``reading`` (the stored reading, when given), then by
    kind: numbers ``min``, ``max``, ``mean``, ``std``, ``quantiles`` {"0.01", "0.5", "0.99"};
    dates ``min``, ``max`` (ISO strings); categories ``categories`` (most frequent first, at
    most ``MAX_SCHEMA_CATEGORIES``) and ``n_categories``; booleans ``values``.
    """
    details = _SCHEMA_DETAILS.get(kind, lambda _: {})(series)
    entry = {"name": str(series.name), "kind": kind, "dtype": str(series.dtype),
             "nullable": bool(series.isna().any()), **details}
    if reading is not None:
        entry["reading"] = reading
    return entry
