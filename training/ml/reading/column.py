"""``ColumnReading``: what a column is and how its values are read, whole (``read``) or one at a time
(``value_reader``), with the same formats."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, IDENTIFIER, NUMERIC, TEXT, parse_datetimes

from .formats import (
    BOOLEAN_SPELLINGS, DATE_FORMATS, ISO8601, NUMBER_FORMATS, DateFormat, NumberFormat, UnreadableValue,
    clean_text, clean_value, shown,
)

INFERRED, USER, LEGACY = "inferred", "user", "legacy"


# --- the reading of one column --------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnReading:
    """What a column is and how its values are read; JSON-safe through ``as_dict``/``from_dict``.

    ``number_format`` (numeric) and ``date_format`` (datetime) are keys of ``NUMBER_FORMATS``
    and ``DATE_FORMATS``; ``date_format`` None is the legacy per-value guess of versions
    trained before readings were stored. ``alternatives`` are the other formats that every
    value fits too but that read some values differently (the column is then ambiguous).
    ``unreadable`` counts the values of the column this reading cannot read (0 unless the
    user chose the kind), ``examples`` shows a few of them.
    """

    kind: str
    number_format: str | None = None
    date_format: str | None = None
    alternatives: tuple[str, ...] = ()
    source: str = INFERRED
    unreadable: int = 0
    examples: tuple[str, ...] = ()

    # --- what it is ---------------------------------------------------------------------------------
    @property
    def ambiguous(self) -> bool:
        return bool(self.alternatives)

    @property
    def format_key(self) -> str | None:
        return self.number_format if self.kind == NUMERIC else self.date_format if self.kind == DATETIME else None

    @property
    def number(self) -> NumberFormat:
        return NUMBER_FORMATS[self.number_format or "plain"]

    @property
    def date(self) -> DateFormat | None:
        return DATE_FORMATS[self.date_format] if self.date_format else None

    def describe(self) -> str:
        """One sentence for the profile: what the column is read as, and whether another reading also fits."""
        text = _DESCRIPTIONS[self.kind](self)
        if self.ambiguous:
            others = ", ".join(_format_label(self.kind, key) for key in self.alternatives)
            text += (f"; ambiguous: every value also fits {others}, which reads some values differently "
                     f"(choose the reading if this one is wrong)")
        if self.unreadable:
            text += (f"; {self.unreadable:,} value{'s' if self.unreadable != 1 else ''} cannot be read this way and "
                     f"count as missing ({', '.join(repr(e) for e in self.examples)})")
        return text

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alternatives"] = list(self.alternatives)
        data["examples"] = list(self.examples)
        data["description"] = self.describe()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, kind: str | None = None) -> ColumnReading:
        """A stored reading; with ``data`` None (a schema from before readings), the legacy reading of ``kind``."""
        if not data:
            return cls.legacy(kind or CATEGORICAL)
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["alternatives"] = tuple(values.get("alternatives") or ())
        values["examples"] = tuple(values.get("examples") or ())
        if values.get("kind") not in _DESCRIPTIONS:
            values["kind"] = kind if kind in _DESCRIPTIONS else CATEGORICAL
        return cls(**values)

    @classmethod
    def legacy(cls, kind: str) -> ColumnReading:
        """How versions trained before readings read ``kind``: plain numbers; ISO dates, else a per-value guess."""
        return cls(kind=kind if kind in _DESCRIPTIONS else CATEGORICAL, source=LEGACY)

    def choose(self, format_key: str) -> ColumnReading:
        """The same reading with one of its alternatives chosen (by the user)."""
        alternatives = tuple(k for k in (self.format_key, *self.alternatives) if k and k != format_key)
        field_name = "number_format" if self.kind == NUMERIC else "date_format"
        return replace(self, **{field_name: format_key}, alternatives=alternatives, source=USER)

    # --- reading ------------------------------------------------------------------------------------
    def read(self, values: pd.Series) -> pd.Series:
        """The column read: numeric -> float64, datetime -> datetime64[us] (naive UTC), boolean ->
        nullable ``boolean``, categorical -> Python strings (object), text and identifier unchanged.
        Same index and name; missing and unreadable values are missing."""
        read = _COLUMN_READERS[self.kind](self, values)
        read.index, read.name = values.index, values.name
        return read

    def value_reader(self) -> Callable[[Any], Any]:
        """A function reading one JSON value the way ``read`` reads it, raising ``UnreadableValue``."""
        return _VALUE_READERS[self.kind](self)

    def read_value(self, value: Any) -> Any:
        """One JSON value read (see ``value_reader``; build that once for many values)."""
        return self.value_reader()(value)

    def write(self, value: Any) -> Any:
        """A value as a client sends it for this column, in the column's own format (what ``read_value``
        reads back): a number as text in the number format ("1.234,5"), or as a JSON number when the format
        is plain; a date (``datetime``) as text in the date format ("31.12.2024", with the time unless it is
        midnight; ISO 8601 for legacy readings); anything else as it is."""
        if self.kind == NUMERIC and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value if self.number.key == "plain" else self.number.write(float(value))
        if self.kind == DATETIME and isinstance(value, datetime):
            date_format = self.date or DATE_FORMATS[ISO8601]
            return date_format.write(value, with_time=value.time() != datetime.min.time())
        return value


def _format_label(kind: str, key: str) -> str:
    return NUMBER_FORMATS[key].label if kind == NUMERIC else key


_DESCRIPTIONS: dict[str, Callable[[ColumnReading], str]] = {
    NUMERIC: lambda r: r.number.describe(),
    DATETIME: lambda r: r.date.describe() if r.date else "dates (ISO 8601, else each value's own reading)",
    BOOLEAN: lambda r: "true/false values (yes/no, true/false, 1/0, y/n, t/f in any case)",
    CATEGORICAL: lambda r: "categories (compared as text, exactly)",
    TEXT: lambda r: "free text, not used by models",
    IDENTIFIER: lambda r: "an identifier, not used by models",
}


# --- whole columns ---------------------------------------------------------------------------------

def as_text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column's text as a cleaned Arrow string array (numbers written plainly, missing as null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pd.Series):
        if values.dtype == object:
            values = values.map(_object_text, na_action="ignore")
        values = pa.array(values.astype(object).where(values.notna(), None), type=pa.string(), from_pandas=True)
    elif not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return clean_text(values.cast(pa.string()))


def _object_text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value)) if math.isfinite(value) else None
    return str(value)


def is_text_column(values: pd.Series) -> bool:
    """Whether a column holds text (anything but numbers, booleans and timestamps)."""
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
                or pd.api.types.is_bool_dtype(values))


def _floats(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("Float64")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _read_numeric(reading: ColumnReading, values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(np.full(len(values), np.nan))
    if not is_text_column(values):
        return pd.Series(_floats(values))
    if values.dtype == object and values.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(
            v, (bool, np.bool_)), na_action="ignore").fillna(False).astype(bool).any():
        # numbers mixed with text (a frame built by hand): numbers as they are, text with the format
        numbers = pd.to_numeric(values.where(values.map(lambda v: not isinstance(v, str))), errors="coerce")
        texts = reading.number.parse_array(as_text(values.where(values.map(lambda v: isinstance(v, str)))))
        return pd.Series(np.where(numbers.notna(), numbers.to_numpy(dtype=float, na_value=np.nan),
                                  texts.to_numpy(zero_copy_only=False)))
    return pd.Series(reading.number.parse_array(as_text(values)).to_numpy(zero_copy_only=False))


def _read_datetime(reading: ColumnReading, values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]").reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[us]").reset_index(drop=True)
    if not is_text_column(values):  # numbers are not dates: seconds or milliseconds since 1970 would be a guess
        return pd.Series(np.full(len(values), np.datetime64("NaT", "us")), dtype="datetime64[us]")
    if values.dtype == object and values.map(lambda v: isinstance(v, datetime), na_action="ignore").fillna(
            False).astype(bool).all() and values.notna().any():
        return pd.to_datetime(values, utc=True).dt.tz_localize(None).astype("datetime64[us]").reset_index(drop=True)
    if reading.date is None:  # legacy: as versions trained before readings read dates
        text = as_text(values).to_pandas()
        return parse_datetimes(text.astype(object).where(text.notna(), None)).astype("datetime64[us]")
    return reading.date.parse_array(as_text(values))


def _read_boolean(reading: ColumnReading, values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean").reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values):
        numbers = _floats(values)
        result = pd.array(numbers == 1.0, dtype="boolean")
        result[~np.isin(numbers, (0.0, 1.0))] = pd.NA
        return pd.Series(result)
    lowered = pc.utf8_lower(as_text(values)).to_pandas()
    return pd.Series(lowered.map(BOOLEAN_SPELLINGS).astype("boolean").array)


def _read_categorical(reading: ColumnReading, values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = _floats(values)
        distinct = pd.unique(numbers[~np.isnan(numbers)])
        texts = {v: category_text(v) for v in distinct.tolist()}
        return pd.Series([texts[v] if v == v else np.nan for v in numbers.tolist()], dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_bool_dtype(values):
        return pd.Series([np.nan if pd.isna(v) else str(v) for v in values.tolist()], dtype=object)
    text = as_text(values).to_pandas()
    return text.astype(object).where(text.notna(), np.nan).reset_index(drop=True)


def category_text(value: float | int) -> str:
    """A number in a categorical column as text: whole numbers without ".0" (7 and 7.0 are "7")."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


_COLUMN_READERS: dict[str, Callable[[ColumnReading, pd.Series], pd.Series]] = {
    NUMERIC: _read_numeric,
    DATETIME: _read_datetime,
    BOOLEAN: _read_boolean,
    CATEGORICAL: _read_categorical,
    TEXT: lambda reading, values: values.reset_index(drop=True),
    IDENTIFIER: lambda reading, values: values.reset_index(drop=True),
}


def read_frame(frame: pd.DataFrame, readings: Mapping[str, ColumnReading]) -> pd.DataFrame:
    """``frame`` with each column that has a reading read by it (other columns as they are)."""
    read = {column: readings[column].read(frame[column]) if column in readings else frame[column]
            for column in frame.columns}
    return pd.DataFrame(read, index=frame.index, columns=frame.columns)


def read_target(values: pd.Series, reading: ColumnReading | None) -> pd.Series:
    """A target column: text read as numbers with the column's format ("86084,15"); anything else as stored,
    so class labels come back as written (1 and -1 stay integers, "yes" stays "yes")."""
    if reading is not None and reading.kind == NUMERIC and is_text_column(values):
        return reading.read(values)
    return values


def unreadable_mask(raw: pd.Series, read: pd.Series) -> np.ndarray:
    """Which values were present in ``raw`` but could not be read (missing in ``read``)."""
    present = raw.notna().to_numpy().copy()
    if is_text_column(raw) and len(raw):
        present &= as_text(raw).is_valid().to_numpy(zero_copy_only=False)
    return present & read.isna().to_numpy()


# --- one value (real-time) -------------------------------------------------------------------------

_NAN = float("nan")
_NAT = np.datetime64("NaT", "us")


def _number_reader(reading: ColumnReading) -> Callable[[Any], float]:
    number_format = reading.number
    plain = number_format.key == "plain"
    expected = "a number" if plain else f"a number written like {number_format.label} (or a JSON number)"

    def read(value: Any) -> float:
        kind = type(value)
        if kind is float:
            if value - value == 0.0:  # false for inf and NaN
                return value
            raise UnreadableValue(f"must be a finite number or null, got {shown(value)}")
        if kind is int:
            try:
                return float(value)
            except OverflowError:
                raise UnreadableValue(f"is too large a number: {shown(value)}") from None
        if value is None:
            return _NAN
        if kind is str:
            text = clean_value(value)
            if text is None:
                return _NAN
            number = number_format.parse(text)
            if number is not None and math.isfinite(number):
                return number
            raise UnreadableValue(f"must be {expected}, got {shown(value)}")
        if isinstance(value, (bool, np.bool_)):
            raise UnreadableValue(f"must be a number, got {shown(value)}; send 1 or 0 for yes or no")
        if isinstance(value, (int, float, np.integer, np.floating)):
            return read(float(value))
        raise UnreadableValue(f"must be {expected}, got {shown(value)}")

    return read


def _text_reader(reading: ColumnReading) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            text = clean_value(value)
            return _NAN if text is None else text
        if value is None:
            return _NAN
        if kind is int:
            return str(value)
        if kind is float:
            if value - value != 0.0:
                raise UnreadableValue(f"must be text or a finite number, got {shown(value)}")
            return category_text(value)
        if isinstance(value, (bool, np.bool_)):
            raise UnreadableValue(f"must be text, got {shown(value)}")
        if isinstance(value, (np.integer, np.floating)):
            return read(value.item())
        raise UnreadableValue(f"must be text, got {shown(value)}")

    return read


def _boolean_reader(reading: ColumnReading) -> Callable[[Any], bool | None]:
    def read(value: Any) -> bool | None:
        kind = type(value)
        if kind is bool:
            return value
        if value is None:
            return None
        if kind is str:
            text = clean_value(value)
            if text is None:
                return None
            answer = BOOLEAN_SPELLINGS.get(text.lower())
            if answer is not None:
                return answer
        elif isinstance(value, (int, float, np.integer, np.floating, np.bool_)) and value in (0, 1):
            return bool(value)
        raise UnreadableValue(f"must be true or false, got {shown(value)}")

    return read


def _date_reader(reading: ColumnReading) -> Callable[[Any], np.datetime64]:
    date_format = reading.date
    written = (f"written {date_format.key} or in ISO 8601" if date_format and date_format.key != ISO8601
               else "in ISO 8601")
    example = f"such as \"2024-05-01\" or \"2024-05-01T13:45:00Z\""

    def read(value: Any) -> np.datetime64:
        if value is None:
            return _NAT
        if type(value) is not str:
            raise UnreadableValue(f"must be a date as text, {written} ({example}), got {shown(value)}")
        text = clean_value(value)
        if text is None:
            return _NAT
        if date_format is None:
            parsed = _legacy_date(text)
        else:
            parsed = date_format.parse(text)
        if parsed is None:
            raise UnreadableValue(f"must be a date {written} ({example}), got {shown(value)}")
        return np.datetime64(parsed, "us")

    return read


def _legacy_date(text: str) -> datetime | None:
    """How versions trained before readings read a date: ISO 8601, else pandas' guess (never a bare number)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            float(text)
            return None
        except ValueError:
            pass
        guess = parse_datetimes(pd.Series([text], dtype=object)).iloc[0]
        return None if pd.isna(guess) else guess.to_pydatetime()
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo is not None else parsed


_VALUE_READERS: dict[str, Callable[[ColumnReading], Callable[[Any], Any]]] = {
    NUMERIC: _number_reader,
    BOOLEAN: _boolean_reader,
    DATETIME: _date_reader,
    CATEGORICAL: _text_reader,
    TEXT: _text_reader,
    IDENTIFIER: _text_reader,
}


def readings_from_schema(feature_schema: Iterable[Mapping[str, Any]]) -> dict[str, ColumnReading]:
    """Column -> reading for a version's feature schema (legacy readings for schemas without one)."""
    return {str(c["name"]): ColumnReading.from_dict(c.get("reading"), kind=c.get("kind")) for c in feature_schema}
