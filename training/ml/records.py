"""Turn the JSON body of a real-time prediction request into the DataFrame a model expects.

The body is ``{"records": [{column: value, ...}, ...]}``. Each value is checked against
the kind its column had at training time (``TrainResult.feature_schema``):

- numeric -> float64: JSON numbers, and strings holding a number ("3.5", " 1e3 ").
  Not true/false (a client bug more often than a 0/1 column: send 1 or 0), not
  infinity or NaN.
- categorical -> object (Python str): strings, and numbers written as text (7 and
  7.0 -> "7", 2.5 -> "2.5"). Categories not seen in training are fine: the pipeline
  groups them as infrequent. Not true/false.
- boolean -> nullable ``boolean``: true/false, 0/1, and the strings true/false,
  yes/no, t/f, y/n, 1/0 in any case.
- datetime -> datetime64 (naive UTC, as at training): ISO 8601 strings ("2024-05-01",
  "2024-05-01T13:45:00+02:00"), or other spellings a date parser reads ("March 5,
  2020"). Numbers are refused: seconds or milliseconds since 1970 would be a guess.
- any other kind -> object: strings and numbers, as text.

Every kind also accepts ``null``: each kind's imputer in the pipeline fills it in, the
same way it fills the gaps of the training data. Strings are trimmed, and an empty
string or one of the usual "missing" spellings ("NA", "n/a", "null", ...) counts as
null, because that is what ingestion did to the training file. Lists and objects are
refused everywhere, and so is text with a lone surrogate or a control character other than tab and
line breaks (``training.ml.text``): no string that reaches a model, ONNX Runtime or the database is one
that cannot be encoded.

A record must name every feature column (send ``null`` for an unknown value: a missing
key is more often a typo). Columns the model does not use are ignored and reported once
in the returned warnings.

``RecordValidator`` does the per-column work once per model; keep one next to the
loaded model on the request path. ``records_to_frame`` is the one-off form.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.internals import create_dataframe_from_blocks

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, FALSE_STRINGS, NUMERIC, TRUE_STRINGS, parse_datetimes
from training.ml.errors import MLInputError
from training.ml.ingest import NA_TOKENS
from training.ml.text import text_problem

FIELD = "records"
#: Unknown columns listed by name in the warning; the rest are counted.
MAX_LISTED_COLUMNS = 20
MAX_SHOWN_VALUE = 40

_NA_STRINGS = frozenset(NA_TOKENS)
_TRUE = frozenset(TRUE_STRINGS | {"1"})
_FALSE = frozenset(FALSE_STRINGS | {"0"})
_NAN = float("nan")
_NAT = np.datetime64("NaT", "us")


class _Bad(Exception):
    """A value that does not fit its column; the message completes "records[i].column ..."."""


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE] + "..."


def _clean_string(value: str) -> str | None:
    """Trimmed text, or None for the spellings of "missing" that ingestion turns into nulls. Text no
    encoder can write (a lone surrogate) or with control characters is refused (training/ml/text.py)."""
    problem = text_problem(value, multiline=True)
    if problem is not None:
        raise _Bad(problem)
    text = value.strip()
    return None if text in _NA_STRINGS else text


# --- one converter per kind: JSON value -> value for the frame, or _Bad ----------------------

def _to_number(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # false for inf and NaN
            return value
        raise _Bad(f"must be a finite number or null, got {_shown(value)}")
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _Bad(f"is too large a number: {_shown(value)}") from None
    if value is None:
        return _NAN
    if kind is str:
        text = _clean_string(value)
        if text is None:
            return _NAN
        try:
            number = float(text) if "_" not in text else _NAN
        except ValueError:
            number = _NAN
        if math.isfinite(number):
            return number
        raise _Bad(f"must be a number, got {_shown(value)}")
    if kind is bool or isinstance(value, (bool, np.bool_)):
        raise _Bad(f"must be a number, got {_shown(value)}; send 1 or 0 for yes or no")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _to_number(float(value))
    raise _Bad(f"must be a number, got {_shown(value)}")


def _to_text(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        text = _clean_string(value)
        return _NAN if text is None else text
    if value is None:
        return _NAN
    if kind is int:
        return str(value)
    if kind is float:
        if value - value != 0.0:
            raise _Bad(f"must be text or a finite number, got {_shown(value)}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (bool, np.bool_)):
        raise _Bad(f"must be text, got {_shown(value)}")
    if isinstance(value, (np.integer, np.floating)):
        return _to_text(value.item())
    raise _Bad(f"must be text, got {_shown(value)}")


def _to_boolean(value: Any) -> bool | None:
    kind = type(value)
    if kind is bool:
        return value
    if value is None:
        return None
    if kind is str:
        text = _clean_string(value)
        if text is None:
            return None
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    elif isinstance(value, (int, float, np.integer, np.floating, np.bool_)) and value in (0, 1):
        return bool(value)
    raise _Bad(f"must be true or false, got {_shown(value)}")


def _to_datetime(value: Any) -> np.datetime64:
    if value is None:
        return _NAT
    if type(value) is not str:
        raise _Bad(f"must be a date as text, such as \"2024-05-01\" or \"2024-05-01T13:45:00Z\", got "
                   f"{_shown(value)}")
    text = _clean_string(value)
    if text is None:
        return _NAT
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Not ISO 8601: the slower parser the training data went through. A bare number
        # ("12", "2024") is not taken for a date, as at training.
        fallback = _NAT if _is_number(text) else parse_datetimes(pd.Series([text], dtype=object)).iloc[0]
        if pd.isna(fallback):
            raise _Bad(f"must be a date, such as \"2024-05-01\" or \"2024-05-01T13:45:00Z\", got "
                       f"{_shown(value)}") from None
        return np.datetime64(fallback.to_datetime64(), "us")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return np.datetime64(parsed, "us")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    NUMERIC: _to_number,
    BOOLEAN: _to_boolean,
    DATETIME: _to_datetime,
    CATEGORICAL: _to_text,
}


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

    The schema is read once here, so ``to_frame`` only loops over values.
    """

    def __init__(self, feature_schema: list[dict]):
        self.columns: list[str] = [str(column["name"]) for column in feature_schema]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("feature schema lists a column twice")
        kinds = [column.get("kind") if column.get("kind") in _CONVERTERS else CATEGORICAL
                 for column in feature_schema]
        self._converters = [(name, _CONVERTERS[kind]) for name, kind in zip(self.columns, kinds)]
        self._names = frozenset(self.columns)
        self._index = pd.Index(self.columns)
        # kind -> positions of its columns in the frame, in schema order
        self._groups: list[tuple[str, np.ndarray]] = [
            (kind, np.array([i for i, k in enumerate(kinds) if k == kind], dtype=np.intp))
            for kind in dict.fromkeys(kinds)
        ]

    def to_frame(self, records: Any, *, max_records: int) -> tuple[pd.DataFrame, list[str]]:
        """Validate ``records`` (the body's list) and return the model's input frame plus warnings.

        Raises ``MLInputError`` naming the record and column (``field="records[3].age"``).
        """
        self._check_list(records, max_records)
        n = len(records)
        values: list[list] = [[None] * n for _ in self.columns]
        extra: dict[str, None] = {}
        n_columns = len(self.columns)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise MLInputError(f"records[{i}] must be an object of column: value pairs, got "
                                   f"{_record_shown(record)}", field=f"{FIELD}[{i}]")
            j = 0
            try:
                for j, (name, convert) in enumerate(self._converters):
                    values[j][i] = convert(record[name])
            except KeyError:
                raise self._missing(i, record) from None
            except _Bad as bad:
                name = self.columns[j]
                raise MLInputError(f"records[{i}].{name} {bad}", field=f"{FIELD}[{i}].{name}") from None
            if len(record) > n_columns:
                extra.update(dict.fromkeys(k for k in record if k not in self._names))
        return self._frame(values, n), _extra_warning(list(extra))

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
        return _shown(value)
    if value is None:
        return "null"
    return f"{type(value).__name__} {_shown(value)}".replace("str ", "text ", 1)


def _extra_warning(extra: list[str]) -> list[str]:
    if not extra:
        return []
    listed = ", ".join(f"'{name}'" for name in extra[:MAX_LISTED_COLUMNS])
    more = f" and {len(extra) - MAX_LISTED_COLUMNS} more" if len(extra) > MAX_LISTED_COLUMNS else ""
    noun = "column" if len(extra) == 1 else "columns"
    return [f"ignored {noun} {listed}{more}: the model does not use {'it' if len(extra) == 1 else 'them'}"]


def records_to_frame(records: Any, feature_schema: list[dict], *,
                     max_records: int) -> tuple[pd.DataFrame, list[str]]:
    """One-off ``RecordValidator(feature_schema).to_frame(records, max_records=...)``."""
    return RecordValidator(feature_schema).to_frame(records, max_records=max_records)
