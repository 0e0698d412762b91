"""Turn the JSON body of a real-time prediction request into the DataFrame a model expects.

The body is ``{"records": [{column: value, ...}, ...]}``. Each value is read with its
column's stored reading (``training.ml.reading.ColumnReading.value_reader``: the same
rule training read the column with), by kind:

- numeric -> float64: JSON numbers, and strings holding a number written in the column's
  format ("3.5"; "1.234,5" for a column read with decimal commas). Not true/false (a
  client bug more often than a 0/1 column: send 1 or 0), not infinity or NaN.
- categorical -> object (Python str): strings, and numbers written as text (7 and
  7.0 -> "7", 2.5 -> "2.5"). Not true/false.
- boolean -> nullable ``boolean``: true/false, 0/1, and the strings true/false,
  yes/no, t/f, y/n, 1/0 in any case.
- datetime -> datetime64 (naive UTC, as at training): ISO 8601 strings ("2024-05-01",
  "2024-05-01T13:45:00+02:00") always, and strings in the column's date format
  ("01.05.2024" for a column read as dd.mm.yyyy). Numbers are refused: seconds or
  milliseconds since 1970 would be a guess. Versions trained before readings were stored
  keep their old rule (ISO 8601, else the date parser's guess).

Every kind also accepts ``null``: each kind's imputer in the pipeline fills it in, the
same way it fills the gaps of the training data. Strings are trimmed, and an empty
string or one of the usual "missing" spellings ("NA", "n/a", "null", ...) counts as
null, because that is what ingestion did to the training file. Lists and objects are
refused everywhere, and so is text with a lone surrogate or a control character other than tab and
line breaks (``training.ml.text``): no string that reaches a model, ONNX Runtime or the database is one
that cannot be encoded.

A record must name every feature column (send ``null`` for an unknown value: a missing
key is more often a typo). The answer's warnings (``training.ml.value_checks``) name,
per record and column, every value that changed meaning: a category not seen in
training, a number or date far outside the training range; and, once, the columns the
model does not use.

``RecordValidator`` does the per-column work once per model; keep one next to the
loaded model on the request path. ``records_to_frame`` is the one-off form.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.internals import create_dataframe_from_blocks

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC
from training.ml.errors import MLInputError
from training.ml.reading import ColumnReading, UnreadableValue, shown
from training.ml.value_checks import IGNORED_COLUMN, ColumnCheck, ValueWarning

FIELD = "records"
#: Unknown columns listed by name in the warning; the rest are counted.
MAX_LISTED_COLUMNS = 20

#: Kinds a model reads; anything else in an old schema is read as text.
_MODEL_KINDS = (NUMERIC, BOOLEAN, DATETIME, CATEGORICAL)


# --- turning converted columns into blocks (what pandas stores a frame as) -----------------
# Each builder takes the converted values of a kind's columns and their positions in the
# frame, and returns (array, positions) pairs. Building the blocks directly costs a tenth
# of ``pd.DataFrame(dict)``, which matters for the one-record request.

Blocks = list[tuple[Any, np.ndarray]]


def _float_block(columns: list[list], n: int, positions: np.ndarray) -> Blocks:
    return [(np.array(columns, dtype=np.float64).reshape(len(columns), n), positions)]


def _datetime_block(columns: list[list], n: int, positions: np.ndarray) -> Blocks:
    return [(np.array(columns, dtype="datetime64[us]").reshape(len(columns), n), positions)]


def _object_block(columns: list[list], n: int, positions: np.ndarray) -> Blocks:
    block = np.empty((len(columns), n), dtype=object)
    for i, values in enumerate(columns):
        block[i, :] = values
    return [(block, positions)]


def _boolean_arrays(columns: list[list], n: int, positions: np.ndarray) -> Blocks:
    # Nullable booleans are 1-D extension arrays: one block per column.
    blocks = []
    for values, position in zip(columns, positions):
        mask = np.fromiter((v is None for v in values), dtype=bool, count=n)
        data = np.fromiter((v is True for v in values), dtype=bool, count=n)
        blocks.append((pd.arrays.BooleanArray(data, mask), np.array([position], dtype=np.intp)))
    return blocks


_BLOCKS: dict[str, Callable[[list[list], int, np.ndarray], Blocks]] = {
    NUMERIC: _float_block,
    DATETIME: _datetime_block,
    BOOLEAN: _boolean_arrays,
    CATEGORICAL: _object_block,
}


class RecordValidator:
    """Checks records against one model's feature schema and builds its input frame.

    The schema is read once here (one value reader and one check per column), so
    ``to_frame`` only loops over values.
    """

    def __init__(self, feature_schema: list[dict]):
        self.columns: list[str] = [str(column["name"]) for column in feature_schema]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("feature schema lists a column twice")
        kinds = [column.get("kind") if column.get("kind") in _MODEL_KINDS else CATEGORICAL
                 for column in feature_schema]
        self.readings = [ColumnReading.from_dict(column.get("reading"), kind=kind)
                         for column, kind in zip(feature_schema, kinds)]
        checks = [ColumnCheck(column) for column in feature_schema]
        self._readers = [(name, reading.value_reader(), check if check.active else None)
                         for name, reading, check in zip(self.columns, self.readings, checks)]
        self._names = frozenset(self.columns)
        self._index = pd.Index(self.columns)
        # kind -> positions of its columns in the frame, in schema order
        self._groups: list[tuple[str, np.ndarray]] = [
            (kind, np.array([i for i, k in enumerate(kinds) if k == kind], dtype=np.intp))
            for kind in dict.fromkeys(kinds)
        ]

    def to_frame(self, records: Any, *, max_records: int) -> tuple[pd.DataFrame, list[ValueWarning]]:
        """Validate ``records`` (the body's list) and return the model's input frame plus warnings.

        Raises ``MLInputError`` naming the record and column (``field="records[3].age"``).
        """
        self._check_list(records, max_records)
        n = len(records)
        values: list[list] = [[None] * n for _ in self.columns]
        extra: dict[str, None] = {}
        warnings: list[ValueWarning] = []
        n_columns = len(self.columns)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise MLInputError(f"records[{i}] must be an object of column: value pairs, got "
                                   f"{_record_shown(record)}", field=f"{FIELD}[{i}]")
            j = 0
            try:
                for j, (name, read, check) in enumerate(self._readers):
                    value = values[j][i] = read(record[name])
                    if check is not None:
                        found = check.check(value)
                        if found is not None:
                            warnings.append(ValueWarning(i, name, *found))
            except KeyError:
                raise self._missing(i, record) from None
            except UnreadableValue as bad:
                name = self.columns[j]
                raise MLInputError(f"records[{i}].{name} {bad}", field=f"{FIELD}[{i}].{name}") from None
            if len(record) > n_columns:
                extra.update(dict.fromkeys(k for k in record if k not in self._names))
        return self._frame(values, n), _extra_warnings(list(extra)) + warnings

    def _check_list(self, records: Any, max_records: int) -> None:
        if not isinstance(records, list):
            got = "nothing" if records is None else _record_shown(records)
            raise MLInputError(f"records must be a list of objects, one per row to predict, got {got}",
                               field=FIELD)
        if not records:
            raise MLInputError("records is empty; send at least one record to predict", field=FIELD)
        if len(records) > max_records:
            raise MLInputError(f"too many records: {len(records)}; at most {max_records} can be predicted in "
                               f"one request (use a batch prediction for more)", field=FIELD)

    def _missing(self, i: int, record: dict) -> MLInputError:
        missing = [name for name in self.columns if name not in record]
        listed = ", ".join(f"'{name}'" for name in missing[:MAX_LISTED_COLUMNS])
        more = f" and {len(missing) - MAX_LISTED_COLUMNS} more" if len(missing) > MAX_LISTED_COLUMNS else ""
        noun = "column" if len(missing) == 1 else "columns"
        return MLInputError(f"records[{i}] is missing {noun} {listed}{more}; every record needs every column "
                            f"the model uses (send null for a value you do not know)",
                            field=f"{FIELD}[{i}].{missing[0]}")

    def _frame(self, values: list[list], n: int) -> pd.DataFrame:
        blocks: Blocks = []
        for kind, positions in self._groups:
            # A copy: the frame owns its block placements, whatever a caller does to it.
            blocks += _BLOCKS[kind]([values[p] for p in positions], n, positions.copy())
        return create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n), columns=self._index)



def _record_shown(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return shown(value)
    if value is None:
        return "null"
    return f"{type(value).__name__} {shown(value)}".replace("str ", "text ", 1)


def _extra_warnings(extra: list[str]) -> list[ValueWarning]:
    """One warning per column the model does not use (the first ``MAX_LISTED_COLUMNS``, then a count)."""
    found = [ValueWarning(None, name, IGNORED_COLUMN, f"column '{name}' is ignored: the model does not use it")
             for name in extra[:MAX_LISTED_COLUMNS]]
    if len(extra) > MAX_LISTED_COLUMNS:
        found.append(ValueWarning(None, None, IGNORED_COLUMN,
                                  f"... and {len(extra) - MAX_LISTED_COLUMNS} more columns the model does not use"))
    return found


def records_to_frame(records: Any, feature_schema: list[dict], *,
                     max_records: int) -> tuple[pd.DataFrame, list[ValueWarning]]:
    """One-off ``RecordValidator(feature_schema).to_frame(records, max_records=...)``."""
    return RecordValidator(feature_schema).to_frame(records, max_records=max_records)
