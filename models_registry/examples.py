"""An example record for a version's try-it form, built from its feature schema.

Each column kind has its own maker (data, not an if/elif chain). A value is written the way the column's stored
reading reads it (``ColumnReading.write``: "1250,5" for a column of decimal-comma numbers, "15.06.2023" for one
of dd.mm.yyyy dates), so the example also shows how to write the column's values. A kind with no maker, a schema
entry missing the keys a maker reads (no min/max, a column that was all missing), or a value the prediction path
would refuse all end in ``null`` for that column: the record is always one the predict endpoint accepts, so the
version page never fails on a schema it does not know.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC
from training.ml.errors import MLInputError
from training.ml.reading import ColumnReading
from training.ml.records import RecordValidator

#: Decimal places of the numbers a person is shown to edit.
DIGITS = 4


def _first(values: Any) -> Any:
    return values[0] if isinstance(values, list) and values else None


def _numeric(column: dict) -> Any:
    low, high = column.get("min"), column.get("max")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        return None
    middle = (low + high) / 2
    return round(middle) if float(low).is_integer() and float(high).is_integer() else round(middle, DIGITS)


def _datetime(column: dict) -> Any:
    try:
        low, high = pd.Timestamp(column.get("min")), pd.Timestamp(column.get("max"))
    except (TypeError, ValueError):
        return None
    if pd.isna(low) or pd.isna(high):
        return None
    middle = low + (high - low) / 2
    dates_only = low == low.normalize() and high == high.normalize()
    return (middle.normalize() if dates_only else middle).to_pydatetime()


def _categorical(column: dict) -> Any:
    return _first(column.get("categories"))


def _boolean(column: dict) -> Any:
    return _first(column.get("values"))


MAKERS: dict[str, Callable[[dict], Any]] = {
    NUMERIC: _numeric,
    DATETIME: _datetime,
    CATEGORICAL: _categorical,
    BOOLEAN: _boolean,
}


def _any_kind(column: dict) -> Any:
    """For a kind without a maker: an observed value if the schema lists any, else nothing."""
    return _first(column.get("categories")) or _first(column.get("values"))


def example_record(feature_schema: list[dict]) -> dict[str, Any]:
    """``{column: value}`` for every column of ``feature_schema``: the middle of a numeric or date range, the
    most frequent category, a boolean's first spelling, each written in the column's reading format; ``None``
    where the schema does not say. Every value is checked by the prediction path's own validator, and one it
    refuses is replaced by ``None``."""
    record: dict[str, Any] = {}
    for column in feature_schema:
        name = str(column.get("name"))
        try:
            reading = ColumnReading.from_dict(column.get("reading"), kind=column.get("kind"))
            record[name] = reading.write(MAKERS.get(column.get("kind"), _any_kind)(column))
        except (AttributeError, KeyError, TypeError, ValueError):  # a schema shape not seen before: left to fill
            record[name] = None
    try:
        validator = RecordValidator(feature_schema)
    except (KeyError, TypeError, ValueError):
        return record
    for name, value in record.items():
        if value is None:
            continue
        try:
            validator.to_frame([{**dict.fromkeys(record), name: value}], max_records=1)
        except MLInputError:
            record[name] = None
    return record
