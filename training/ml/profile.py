"""What a dataset holds, column by column, for the dataset page and the job form.

Every column is first *read* with its ``ColumnReading`` (number format, date format,
boolean spellings: see ``training.ml.reading``), decided from every value of the column
at ingestion; the profile shows the reading and describes the values as read.

Counts that must be exact (rows, missing values, min, max, mean, std) are computed
over the whole file, one batch at a time, and only for the columns that need it:
Parquet statistics already give the missing count of text columns. Everything that
needs the values together (kind, distinct count, histogram, top values) is computed
on a random sample of at most ``sample_rows`` rows, and the profile says so.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, IDENTIFIER, NUMERIC, TEXT
from training.ml.errors import MLInputError
from training.ml.jsonable import plain, plain_float
from training.ml.problem import detect_problem_type
from training.ml.reading import (
    ColumnReading, FormatEvidence, clean_text, is_european, read_target, reading_of_arrow_type, refine_kind,
    typed_reading, unreadable_mask,
)

HISTOGRAM_BINS = 20
TOP_VALUES = 10
BATCH_ROWS = 131_072
#: Sampling reads whole row groups picked at random, this many times the sample size in all.
SAMPLE_READ_FACTOR = 4
#: Names that say "this is what to predict", most telling first (compared case-insensitively).
TARGET_NAMES = (
    "target", "label", "labels", "class", "y", "outcome", "churn", "churned", "survived",
    "default", "fraud", "is_fraud", "exited", "response", "result",
)
_NOT_TARGETS = {IDENTIFIER, TEXT, DATETIME}


def profile_parquet(path: str | os.PathLike, *, sample_rows: int = 200_000,
                    readings: dict[str, dict] | None = None) -> dict:
    """A JSON-safe profile of a Parquet file (no numpy types, no NaN).

    ``readings`` maps columns to stored readings (``ColumnReading.as_dict()``, as ingestion
    or the user gave them); a text column without one is read as categories. With
    ``readings`` None they are inferred from the whole file (``infer_readings_parquet``).

    Keys: ``rows``, ``n_columns``, ``sampled``, ``sample_size``, ``columns`` (one dict per
    column, see ``_profile_column``), ``suggested_target``, ``suggested_problem_type`` and
    ``suggested_problem_type_reason``.
    """
    parquet = pq.ParquetFile(path)
    fields = list(parquet.schema_arrow)
    rows = parquet.metadata.num_rows
    if readings is None:
        readings = infer_readings_parquet(parquet)
    stored = {f.name: ColumnReading.from_dict(readings[f.name]) if readings.get(f.name) else None for f in fields}
    exact = _exact_stats(parquet, stored)
    sample, sampled = _sample(parquet, sample_rows)
    frame = sample.replace_schema_metadata(None).to_pandas()  # no index rebuilt from pandas metadata

    columns, read_columns = [], {}
    for i, f in enumerate(fields):
        raw = frame.iloc[:, i].rename(f.name)
        reading = stored[f.name] or typed_reading(raw)
        read = reading.read(raw) if reading is not None else raw
        reading = refine_kind(reading, read, f.name)
        read_columns[f.name] = (reading, read)
        columns.append(_profile_column(f, raw, read, reading, exact[i], rows))
    target = suggest_target(columns, rows)
    problem_type = reason = None
    if target is not None:
        try:
            reading, read = read_columns[target]
            detected, reason = detect_problem_type(read_target(frame[target], reading))
            problem_type = detected.value
        except MLInputError as exc:
            reason = exc.message
    return {
        "rows": rows,
        "n_columns": len(fields),
        "sampled": sampled,
        "sample_size": len(frame),
        "columns": columns,
        "suggested_target": target,
        "suggested_problem_type": problem_type,
        "suggested_problem_type_reason": reason,
    }


def profile_readings(profile: dict) -> dict[str, ColumnReading]:
    """Column -> reading stored in a dataset profile (columns of profiles made before readings have none)."""
    return {c["name"]: ColumnReading.from_dict(c["reading"]) for c in profile.get("columns", []) if c.get("reading")}


def infer_readings_parquet(parquet: pq.ParquetFile) -> dict[str, dict]:
    """Readings of a Parquet file's columns, text columns from every value (see ``FormatEvidence``)."""
    fields = list(parquet.schema_arrow)
    text = [i for i, f in enumerate(fields) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    evidence = {i: FormatEvidence() for i in text}
    if text:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[fields[i].name for i in text],
                                          use_pandas_metadata=False):
            for i, column in zip(text, batch.columns):
                evidence[i].observe(clean_text(column))
    european = is_european(None, evidence.values())
    readings = {}
    for i, f in enumerate(fields):
        reading = evidence[i].reading(european=european) if i in evidence else reading_of_arrow_type(f.type)
        if reading is not None:
            readings[f.name] = reading.as_dict()
    return readings


def preview_parquet(path: str | os.PathLike, n: int = 20) -> dict:
    """The column names and the first ``n`` rows as lists of JSON values (dates as ISO strings)."""
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    batch = next(parquet.iter_batches(batch_size=n), None) if n > 0 else None
    if batch is None:
        return {"columns": names, "rows": []}
    values = [column.to_pylist() for column in batch.columns]
    return {"columns": names, "rows": [[plain(v) for v in row] for row in zip(*values)]}


def suggest_target(columns: list[dict], rows: int) -> str | None:
    """A column named like a target, else the last column a model could predict.

    A candidate has at least two distinct values and is not an identifier, free text or
    a date.
    """
    usable = [c for c in columns if c["missing"] < rows and (c["distinct"] or 0) >= 2
              and c["kind"] not in _NOT_TARGETS]
    by_name = {c["name"].strip().lower(): c["name"] for c in usable}
    for name in TARGET_NAMES:
        if name in by_name:
            return by_name[name]
    return usable[-1]["name"] if usable else None


# --- whole-file statistics ---------------------------------------------------------

@dataclass
class _Exact:
    missing: int = 0
    minimum: object = None
    maximum: object = None
    count: int = 0  # finite numbers seen, for the mean and std
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    read: bool = field(default=False)
    unreadable: int = 0  # present values the column's reading cannot read (counted in missing too)

    def add_numbers(self, values: np.ndarray) -> None:
        """Merge a batch's finite values (Chan et al.: stable without a second pass)."""
        if not len(values):
            return
        n, mean = len(values), float(values.mean())
        with np.errstate(over="ignore", invalid="ignore"):  # values near 1e308: the std is then undefined
            m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        low, high = float(values.min()), float(values.max())
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)

    def add_extremes(self, low, high) -> None:
        if low is not None:
            self.minimum = low if self.minimum is None else min(self.minimum, low)
        if high is not None:
            self.maximum = high if self.maximum is None else max(self.maximum, high)

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else None


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _exact_stats(parquet: pq.ParquetFile, readings: dict[str, ColumnReading | None]) -> list[_Exact]:
    """Missing counts for every column; min/max/mean/std for numbers, min/max for dates.

    Numbers and dates are read (they are cheap, and NaN is missing too, which the
    statistics do not count), as are text columns whose reading makes numbers or dates
    of them (a value it cannot read counts as missing); other columns use the Parquet
    statistics when every row group has them, and are read otherwise.
    """
    fields = list(parquet.schema_arrow)
    stats = [_Exact() for _ in fields]
    metadata = parquet.metadata
    leaf = {metadata.schema.column(j).path: j for j in range(metadata.num_columns)}
    to_read = []
    for i, f in enumerate(fields):
        nulls = _statistics_nulls(metadata, leaf.get(f.name))
        if _is_number(f.type) or pa.types.is_temporal(f.type) or nulls is None or _converts(f, readings.get(f.name)):
            to_read.append(i)
        else:
            stats[i].missing = nulls
    if not to_read:
        return stats
    names = [fields[i].name for i in to_read]
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=names, use_pandas_metadata=False):
        for i, column in zip(to_read, batch.columns):
            reading = readings.get(fields[i].name)
            if _converts(fields[i], reading):
                _accumulate_read(stats[i], reading, column)
            else:
                _accumulate(stats[i], fields[i].type, column)
    return stats


def _converts(f: pa.Field, reading: ColumnReading | None) -> bool:
    """Whether a text column is read as numbers or dates (its statistics need the values read)."""
    return (reading is not None and reading.kind in (NUMERIC, DATETIME)
            and not (_is_number(f.type) or pa.types.is_temporal(f.type)))


def _accumulate_read(stats: _Exact, reading: ColumnReading, column: pa.Array) -> None:
    raw = column.to_pandas()
    read = reading.read(raw)
    stats.missing += int(read.isna().sum())
    stats.unreadable += int(unreadable_mask(raw, read).sum())
    if reading.kind == NUMERIC:
        numbers = read.to_numpy(dtype=float, na_value=np.nan)
        stats.add_numbers(numbers[np.isfinite(numbers)])
    elif read.notna().any():
        stats.add_extremes(read.min().to_pydatetime(), read.max().to_pydatetime())


def _statistics_nulls(metadata: pq.FileMetaData, j: int | None) -> int | None:
    if j is None:
        return None
    total = 0
    for r in range(metadata.num_row_groups):
        statistics = metadata.row_group(r).column(j).statistics
        if statistics is None or not statistics.has_null_count:
            return None
        total += statistics.null_count
    return total


def _accumulate(stats: _Exact, arrow_type: pa.DataType, column: pa.Array) -> None:
    stats.missing += column.null_count
    if _is_number(arrow_type):
        numbers = column.drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(numbers)
        stats.missing += int(np.isnan(numbers).sum())
        stats.add_numbers(numbers[finite])
    elif pa.types.is_temporal(arrow_type) and len(column) > column.null_count:
        extremes = pc.min_max(column)
        stats.add_extremes(extremes["min"].as_py(), extremes["max"].as_py())


# --- sample --------------------------------------------------------------------------

def _sample(parquet: pq.ParquetFile, sample_rows: int, seed: int = 0) -> tuple[pa.Table, bool]:
    """All rows if there are few, else ``sample_rows`` rows drawn at random.

    The rows come from row groups picked at random until about ``SAMPLE_READ_FACTOR``
    times the sample size is covered, so a huge file costs no more than a big one.
    """
    metadata = parquet.metadata
    if metadata.num_rows <= sample_rows:
        return parquet.read(use_pandas_metadata=False), False
    rng = np.random.default_rng(seed)
    groups, covered = [], 0
    for g in rng.permutation(metadata.num_row_groups):
        groups.append(int(g))
        covered += metadata.row_group(int(g)).num_rows
        if covered >= SAMPLE_READ_FACTOR * sample_rows:
            break
    groups.sort()
    wanted = np.sort(rng.choice(covered, size=min(sample_rows, covered), replace=False))
    taken, offset = [], 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, use_pandas_metadata=False):
        lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
        if hi > lo:
            taken.append(batch.take(pa.array(wanted[lo:hi] - offset)))
        offset += batch.num_rows
    return pa.Table.from_batches(taken, schema=parquet.schema_arrow), True


# --- one column ----------------------------------------------------------------------

def _profile_column(f: pa.Field, raw: pd.Series, read: pd.Series, reading: ColumnReading | None, exact: _Exact,
                    rows: int) -> dict:
    """name, dtype (as stored), kind, reading, missing, missing_fraction, distinct, then by kind:

    - numbers: min, max, mean, std (whole file) and histogram {edges, counts} (sample);
    - dates: min, max as ISO strings (whole file);
    - categorical, boolean and text: top, the most frequent values as written [{value, count}] (sample);
    - ``unreadable``: values the reading cannot read (they count as missing), when there are any.
    """
    kind = reading.kind if reading is not None else CATEGORICAL
    numbers = pd.api.types.is_numeric_dtype(read) and not pd.api.types.is_bool_dtype(read)
    entry = {
        "name": f.name,
        "dtype": _dtype_label(f.type),
        "kind": kind,
        "reading": reading.as_dict() if reading is not None else None,
        "missing": exact.missing,
        "missing_fraction": round(exact.missing / rows, 6) if rows else 0.0,
        "distinct": int(read.nunique(dropna=True)),
    }
    if exact.unreadable:
        entry["unreadable"] = exact.unreadable
    if numbers:
        entry.update(min=plain_float(exact.minimum), max=plain_float(exact.maximum),
                     mean=plain_float(exact.mean) if exact.count else None,
                     std=plain_float(exact.std), histogram=_histogram(read, entry["distinct"]))
    elif pd.api.types.is_datetime64_any_dtype(read):
        entry.update(min=plain(exact.minimum), max=plain(exact.maximum))
    if kind in (CATEGORICAL, BOOLEAN, TEXT):
        counts = raw.value_counts(dropna=True).head(TOP_VALUES)
        entry["top"] = [{"value": plain(value), "count": int(count)} for value, count in counts.items()]
    return entry


def _histogram(series: pd.Series, distinct: int) -> dict | None:
    """At most 20 equal-width bins over the sample; infinities go in the end bins."""
    values = series.to_numpy(dtype=float, na_value=np.nan)
    values = values[~np.isnan(values)]
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    values = np.clip(values, finite.min(), finite.max())
    counts, edges = np.histogram(values, bins=max(1, min(HISTOGRAM_BINS, distinct)))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _dtype_label(t: pa.DataType) -> str:
    if pa.types.is_floating(t):
        return f"float{t.bit_width}"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_timestamp(t):
        return f"datetime ({t.tz})" if t.tz else "datetime"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_dictionary(t):
        return _dtype_label(t.value_type)
    return str(t)
