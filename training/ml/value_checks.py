"""Warnings for values that change meaning at prediction time, per record and named by column.

A value can be valid and still not mean what the caller thinks:

- ``unseen_category``: a category the model never saw (``Oslo`` for a model trained on
  ``oslo``) is one-hot encoded like an infrequent one, or as nothing at all;
- ``out_of_range``: a number or a date far outside what training saw is extrapolated (a
  tree model treats it like the largest value it saw, a linear model follows its line);
- ``unreadable_value``: a value that the column's reading cannot read (text that is not a
  number in the column's format, a date in no format it knows, ``inf``) is treated as
  missing and imputed. Real-time requests refuse such values with a 400 instead; batch
  and evaluation inputs get the warning;
- ``ignored_column``: a column the model does not use (real-time only, once per request).

Each ``ColumnCheck`` knows what training saw of one column (its feature schema entry:
``categories``/``n_categories``, ``min``/``max``) and answers for one read value
(``check``, the real-time path) or for a whole read column (``check_column``, batch and
evaluation) with the same thresholds and the same messages.

"Far outside": more than ``FAR_OUTSIDE_SHARE`` of the training range below its minimum or
above its maximum (for a range of 18 to 90, below 10.8 or above 97.2). A range is a poor
guide near its ends, so a value just past it is not flagged; the share is this module's
choice, not a standard.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.ml.columns import CATEGORICAL, DATETIME, NUMERIC
from training.ml.reading import ColumnReading, shown, unreadable_mask

UNSEEN_CATEGORY, OUT_OF_RANGE, UNREADABLE, IGNORED_COLUMN, MORE = (
    "unseen_category", "out_of_range", "unreadable_value", "ignored_column", "more_warnings")
FAR_OUTSIDE_SHARE = 0.1
#: A real-time answer lists at most this many warnings, then one saying how many more there were.
MAX_RESPONSE_WARNINGS = 100
#: A batch or evaluation summary keeps this many example rows per column and code.
MAX_SUMMARY_EXAMPLES = 5


@dataclass(frozen=True)
class ValueWarning:
    """One value (or column) that changed meaning: ``record`` is the 0-based record or row, None for a request."""

    record: int | None
    column: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number_text(value: float) -> str:
    return f"{value:.6g}"


def _naive_utc(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _date_text(value: np.datetime64) -> str:
    text = str(np.datetime64(value, "s")).replace("T", " ")
    return text[:10] if text.endswith("00:00:00") else text


class ColumnCheck:
    """What training saw of one column, to name the values that fall outside it."""

    def __init__(self, entry: Mapping[str, Any]):
        self.name = str(entry["name"])
        self.kind = entry.get("kind")
        self.reading = ColumnReading.from_dict(entry.get("reading"), kind=self.kind)
        self.categories: frozenset[str] | None = None
        self._folded: dict[str, str] = {}
        self.low = self.high = None
        self._range_text = ""
        if self.kind == CATEGORICAL:
            categories = [str(c) for c in entry.get("categories") or []]
            # Only a complete list tells unseen from rare: an old schema kept the 100 most frequent.
            if categories and entry.get("n_categories", len(categories)) <= len(categories):
                self.categories = frozenset(categories)
                self._folded = {c.casefold(): c for c in categories}
        elif self.kind in (NUMERIC, DATETIME) and entry.get("min") is not None and entry.get("max") is not None:
            try:
                self._set_range(entry["min"], entry["max"])
            except (TypeError, ValueError, OverflowError):  # a range that is not numbers or dates: nothing to check
                self.low = self.high = None

    def _set_range(self, minimum: Any, maximum: Any) -> None:
        if self.kind == NUMERIC:
            low, high = float(minimum), float(maximum)
            margin = FAR_OUTSIDE_SHARE * (high - low)
            self.low, self.high = low - margin, high + margin
            self._range_text = f"{_number_text(low)} to {_number_text(high)}"
            return
        low, high = (np.datetime64(_naive_utc(pd.Timestamp(v)), "us") for v in (minimum, maximum))
        margin = (high - low) * FAR_OUTSIDE_SHARE
        self.low, self.high = low - margin, high + margin
        self._range_text = f"{_date_text(low)} to {_date_text(high)}"

    @property
    def active(self) -> bool:
        """Whether any value of this column can draw a warning."""
        return self.categories is not None or self.low is not None

    # --- messages ---------------------------------------------------------------------------------
    def unseen_message(self, value: str) -> str:
        same = self._folded.get(value.casefold())
        if same is not None:
            return (f"{value!r} was not seen in training, but {same!r} was (categories are compared exactly, case "
                    f"included); the model treats {value!r} as a category it does not know")
        return f"{value!r} was not seen in training; the model treats it as a category it does not know"

    def range_message(self, value: Any) -> str:
        if self.kind == NUMERIC:
            return (f"{_number_text(value)} is far outside the range seen in training ({self._range_text}); the "
                    f"model extrapolates")
        return f"{_date_text(value)} is far outside the dates seen in training ({self._range_text})"

    def unreadable_message(self, raw: Any) -> str:
        return f"{shown(raw)} cannot be read as {self.reading.describe()}; it is treated as missing"

    # --- one value --------------------------------------------------------------------------------
    def check(self, value: Any) -> tuple[str, str] | None:
        """(code, message) for one read value that changed meaning, else None (missing values never warn)."""
        if self.categories is not None:
            if type(value) is str and value not in self.categories:
                return UNSEEN_CATEGORY, self.unseen_message(value)
            return None
        if self.low is not None and value == value and not pd.isna(value) and (
                value < self.low or value > self.high):
            return OUT_OF_RANGE, self.range_message(value)
        return None

    # --- a whole column ---------------------------------------------------------------------------
    def check_column(self, raw: pd.Series | None, read: pd.Series) -> list[tuple[np.ndarray, str, Callable[[int], str]]]:
        """(rows mask, code, message for row i) for every kind of warning this column has in ``read``.

        ``raw`` is the column before reading (None when it was not read here): present values that
        did not read are ``unreadable_value``; infinite numbers are too (the pipeline imputes them).
        """
        found = []
        if raw is not None:
            bad = unreadable_mask(raw, read)
            if self.kind == NUMERIC:
                numbers = read.to_numpy(dtype=float, na_value=np.nan)
                bad |= np.isinf(numbers)
            if bad.any():
                raw_values = raw.to_numpy(dtype=object)
                found.append((bad, UNREADABLE, lambda i: self.unreadable_message(raw_values[i])))
        if self.categories is not None:
            values = read.to_numpy(dtype=object)
            present = read.notna().to_numpy()
            unseen = present & ~read.isin(self.categories).to_numpy()
            if unseen.any():
                found.append((unseen, UNSEEN_CATEGORY, lambda i: self.unseen_message(str(values[i]))))
        elif self.low is not None:
            if self.kind == NUMERIC:
                values = read.to_numpy(dtype=float, na_value=np.nan)
                with np.errstate(invalid="ignore"):
                    far = np.isfinite(values) & ((values < self.low) | (values > self.high))
            else:
                values = read.to_numpy(dtype="datetime64[us]")
                far = ~np.isnat(values) & ((values < self.low) | (values > self.high))
            if far.any():
                found.append((far, OUT_OF_RANGE, lambda i: self.range_message(values[i])))
        return found


def column_checks(feature_schema: Iterable[Mapping[str, Any]]) -> dict[str, ColumnCheck]:
    """Column -> check, for every column of a feature schema."""
    return {str(entry["name"]): ColumnCheck(entry) for entry in feature_schema}


def frame_warnings(raw: pd.DataFrame | None, read: pd.DataFrame, checks: Mapping[str, ColumnCheck], *,
                   offset: int = 0) -> list[ValueWarning]:
    """Every warning of a read frame, row by row in column order; ``offset`` is added to the row numbers."""
    found: list[ValueWarning] = []
    for column, check in checks.items():
        if column not in read.columns:
            continue
        for mask, code, message in check.check_column(None if raw is None else raw[column], read[column]):
            found += [ValueWarning(offset + int(i), column, code, message(int(i))) for i in np.flatnonzero(mask)]
    found.sort(key=lambda w: w.record)
    return found


def capped(warnings: list[ValueWarning], limit: int = MAX_RESPONSE_WARNINGS) -> list[dict[str, Any]]:
    """At most ``limit`` warnings as dicts, then one saying how many were left out."""
    listed = [w.as_dict() for w in warnings[:limit]]
    if len(warnings) > limit:
        listed.append(ValueWarning(None, None, MORE, f"... and {len(warnings) - limit} more warnings").as_dict())
    return listed


class WarningSummary:
    """Counts of warnings per column and code over many chunks, with a few example rows each (batch, evaluation)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str | None, str], dict[str, Any]] = {}

    def add(self, warnings: Iterable[ValueWarning]) -> None:
        for w in warnings:
            entry = self._entries.setdefault((w.column, w.code), {"column": w.column, "code": w.code, "count": 0,
                                                                 "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < MAX_SUMMARY_EXAMPLES:
                entry["examples"].append({"row": w.record, "message": w.message})

    def as_list(self) -> list[dict[str, Any]]:
        """[{column, code, count, examples: [{row, message}]}], most frequent first."""
        return sorted(self._entries.values(), key=lambda e: (-e["count"], str(e["column"]), e["code"]))

    @property
    def total(self) -> int:
        return sum(e["count"] for e in self._entries.values())
