"""Predict every row of a stored Parquet dataset into a CSV file, in bounded memory.

The dataset is read ``chunk_rows`` rows at a time, only the columns the model uses;
each chunk is read with the model's stored column readings (``training.ml.reading``: the
rules its training data was read with), predicted and appended to the CSV before the
next is read, so memory is a few chunks plus the model whatever the number of rows.

The CSV has a ``row`` column (the 1-based row number in the dataset), ``prediction``,
for classifiers one ``proba_<class>`` column per class in the model's class order, and
``warnings``: the values of the row that changed meaning (unseen category, far outside
the training range, unreadable and treated as missing; ``training.ml.value_checks``),
empty for most rows. Text cells that a spreadsheet would run as a formula are escaped
(see ``escape_formulas``).

The file is written next to ``out_path`` under a temporary name and moved into place
at the end: a failed or cancelled run leaves nothing behind.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from training.ml.errors import MLInputError
from training.ml.reading import read_frame, readings_from_schema
from training.ml.value_checks import WarningSummary, column_checks, frame_warnings

FIELD = "dataset"
DEFAULT_CHUNK_ROWS = 50_000

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = r"^[=+\-@\t\r]"
# ... except a plain number such as "-3" or "+1.5e3", which it reads as that number.
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class BatchPredictor(Protocol):
    """What ``predict_batch`` needs of a model (``training.ml.predictors.Predictor`` has it)."""

    problem_type: str
    classes: list | None

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]: ...


def escape_formulas(values: pa.Array) -> pa.Array:
    """Prefix ``'`` to text a spreadsheet would run as a formula; other values are unchanged.

    Only text is touched: numbers (negative ones too) stay numbers. Text that is a plain
    number ("-3") is left alone, because a spreadsheet reads it as that number.
    """
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    risky = pc.and_kleene(pc.match_substring_regex(values, _FORMULA_START),
                          pc.invert(pc.match_substring_regex(values, _PLAIN_NUMBER)))
    if not pc.any(risky).as_py():
        return values
    return pc.if_else(pc.fill_null(risky, False), pc.binary_join_element_wise("'", values, ""), values)


def predict_batch(
    source: str | os.PathLike,
    predictor: BatchPredictor,
    out_path: str | os.PathLike,
    *,
    feature_schema: list[dict],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Predict every row of the Parquet file ``source`` into the CSV file ``out_path``.

    ``progress(rows_done, rows_total)`` is called after each chunk and ``check_cancel()``
    before each (it stops the run by raising, e.g. ``JobCancelled``). Raises
    ``MLInputError`` (field ``"dataset"``) before any work when the dataset lacks a
    column the model needs. Returns ``{"rows", "seconds", "columns", "warnings"}``;
    ``warnings`` summarises the values that changed meaning, per column and code:
    ``[{column, code, count, examples: [{row, message}]}]`` (rows 1-based, as in the CSV).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    started = time.perf_counter()
    needed = [str(column["name"]) for column in feature_schema]
    readings = readings_from_schema(feature_schema)
    checks = column_checks(feature_schema)
    summary = WarningSummary()
    with pq.ParquetFile(source) as parquet:
        _check_columns(parquet.schema_arrow, needed)
        output = _Output(predictor)
        rows_total = parquet.metadata.num_rows
        out_path = Path(out_path)
        fd, temp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
        temp = Path(temp_name)
        rows_done = 0
        try:
            with os.fdopen(fd, "wb") as sink, pa_csv.CSVWriter(sink, output.schema) as writer:
                for batch in parquet.iter_batches(batch_size=chunk_rows, columns=needed,
                                                  use_pandas_metadata=False):
                    if check_cancel is not None:
                        check_cancel()
                    raw = batch.to_pandas()
                    frame = read_frame(raw, readings)
                    found = frame_warnings(raw, frame, checks, offset=rows_done + 1)
                    summary.add(found)
                    labels, proba = predictor.predict(frame)
                    writer.write_batch(output.batch(rows_done, batch.num_rows, labels, proba, found))
                    rows_done += batch.num_rows
                    if progress is not None:
                        progress(rows_done, rows_total)
            os.replace(temp, out_path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return {"rows": rows_done, "seconds": round(time.perf_counter() - started, 3),
            "columns": output.schema.names, "warnings": summary.as_list()}


def _check_columns(schema: pa.Schema, needed: list[str]) -> None:
    available = set(schema.names)
    missing = [name for name in needed if name not in available]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise MLInputError(
            f"the dataset lacks the {noun} {', '.join(repr(c) for c in missing)} the model was trained on; "
            f"its columns are: {', '.join(schema.names)}", field=FIELD)


class _Output:
    """The CSV's schema, and each chunk's predictions as a record batch of that schema."""

    def __init__(self, predictor: BatchPredictor):
        self.is_classifier = predictor.problem_type != "regression"
        self.classes = list(predictor.classes or []) if self.is_classifier else []
        self.label_type = _label_type(self.classes) if self.is_classifier else pa.float64()
        fields = [pa.field("row", pa.int64()), pa.field("prediction", self.label_type)]
        fields += [pa.field(f"proba_{label}", pa.float64()) for label in self.classes]
        fields.append(pa.field("warnings", pa.string()))
        self.schema = pa.schema(fields)

    def batch(self, offset: int, n: int, labels: np.ndarray, proba: np.ndarray | None,
              found: list | None = None) -> pa.RecordBatch:
        if len(labels) != n:
            raise RuntimeError(f"the model returned {len(labels)} predictions for {n} rows")
        arrays = [pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64)),
                  escape_formulas(self._labels(labels))]
        if self.classes:
            if proba is None or proba.shape != (n, len(self.classes)):
                got = "none" if proba is None else f"shape {proba.shape}"
                raise RuntimeError(f"the model returned probabilities of {got} for {n} rows and "
                                   f"{len(self.classes)} classes")
            proba = np.asarray(proba, dtype=np.float64)
            arrays += [pa.array(proba[:, k]) for k in range(len(self.classes))]
        arrays.append(escape_formulas(_warning_cells(offset, n, found or [])))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _labels(self, labels: np.ndarray) -> pa.Array:
        labels = np.asarray(labels)
        try:
            return pa.array(labels, type=self.label_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            if pa.types.is_string(self.label_type):  # mixed labels of a text-labelled model
                return pa.array(labels.astype(str), type=pa.string())
            raise RuntimeError(f"the model returned labels that are not {self.label_type}: {exc}") from None


def _warning_cells(offset: int, n: int, found: list) -> pa.Array:
    """Each row's warnings as one cell ("city: 'Oslo' was not seen ...; amount: ..."), empty when there are none."""
    cells: list[list[str]] = [[] for _ in range(n)]
    for w in found:
        cells[w.record - offset - 1].append(f"{w.column}: {w.message}")
    return pa.array(["; ".join(c) for c in cells], pa.string())


def _label_type(classes: list) -> pa.DataType:
    """The Arrow type of the class labels: numbers stay numbers, anything mixed becomes text."""
    if not classes:
        return pa.string()
    try:
        kind = pa.array(classes).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.string()
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return kind
    return pa.string()
