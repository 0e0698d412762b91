"""How a column's values are read: one rule per column, decided from the whole column, stored, reused.

A ``ColumnReading`` says what a column is (its kind) and exactly how its text is read:

- numbers: the decimal separator and the thousands separator (``NUMBER_FORMATS``:
  ``1234.5``, ``1234,5``, ``1,234.5``, ``1.234,5``, ``1 234,5``, ``1 234.5``, ``1'234.5``);
- dates: one format for the whole column (``DATE_FORMATS``: ISO 8601, ``dd.mm.yyyy``,
  ``dd/mm/yyyy``, ``mm/dd/yyyy``, ...), each with an optional time ``HH:MM[:SS]``;
- booleans: ``yes/no``, ``true/false``, ``1/0``, ``y/n``, ``t/f`` in any case.

It is inferred once, at upload, from every value of the column (``FormatEvidence``
streams over the file's blocks), shown on the dataset profile, stored with the profile
and with each model version's feature schema, and applied by every route that reads
values through the two forms of one function:

- ``ColumnReading.read(series)`` (and ``read_frame``) for whole columns: training, batch
  prediction, evaluation, the profile;
- ``ColumnReading.value_reader()`` for one JSON value at a time: real-time prediction.

Both forms use the same regular expressions and the same conversions, so they cannot
read a value differently. Rules every reading follows:

- ISO 8601 dates (``2024-07-01``, ``2024-07-01T13:45:00+02:00``) are always read as ISO
  8601, whatever the column's format; a date with an offset becomes naive UTC.
- A value that is already typed (a number in a numeric column, a timestamp in a date
  column) is taken as it is; only text is read with the format.
- Missing stays missing. In a frame, text that does not fit the rule becomes missing
  (callers count it: ``unreadable``); a single value that does not fit raises
  ``UnreadableValue`` with a message naming the expected format.

A format is chosen only when *every* value of the column fits it. When several formats
fit every value but read some of them differently (``01/02/2024``; ``1,234``), the
column is **ambiguous**: one is chosen by convention (see ``FormatEvidence.reading``),
the others are kept in ``alternatives`` and the user may pick one of them.

Versions trained before readings existed have no stored rule: ``ColumnReading.legacy``
gives the reading they were trained with (plain numbers; ISO dates, else the per-value
guess of ``columns.parse_datetimes``), so they keep answering as before.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.ml.columns import (
    BOOLEAN, CATEGORICAL, DATETIME, IDENTIFIER, NA_TOKENS, NUMERIC, TEXT, parse_datetimes, sniff_kind,
)
from training.ml.errors import MLInputError

INFERRED, USER, LEGACY = "inferred", "user", "legacy"

#: The kinds a user may give a column, and the names accepted for them ("date" is the datetime kind).
KIND_NAMES = {
    "numeric": NUMERIC, "categorical": CATEGORICAL, "boolean": BOOLEAN, "date": DATETIME, "datetime": DATETIME,
    "text": TEXT, "identifier": IDENTIFIER,
}
#: A user's choice of kind applies when at least this share of the column's values read under it
#: (the rest become missing, and the profile says how many); inference itself needs every value.
MIN_READABLE_SHARE = 0.9
MAX_EXAMPLES = 3
_MAX_SHOWN = 40


class UnreadableValue(ValueError):
    """One value that the column's reading cannot read; the message completes "records[i].column ..."."""


def shown(value: Any) -> str:
    """A value as a message quotes it (lists and objects by their type, long text cut)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


# --- missing values, as ingestion and every route spell them --------------------------------------

_NA_STRINGS = frozenset(NA_TOKENS)
_NA_SET = pa.array(NA_TOKENS, pa.string())
_NULL_STRING = pa.scalar(None, pa.string())


def clean_text(values: pa.Array) -> pa.Array:
    """Trim whitespace and turn the usual "missing" spellings ("NA", "n/a", "null", ...) into nulls."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.is_in(trimmed, value_set=_NA_SET), _NULL_STRING, trimmed)


def clean_value(text: str) -> str | None:
    """``clean_text`` for one string: trimmed text, or None for a spelling of "missing"."""
    text = text.strip()
    return None if text in _NA_STRINGS else text


# --- number formats -------------------------------------------------------------------------------

_THOUSANDS_CLASSES = {",": ",", ".": r"\.", " ": "[ \u00a0\u202f]", "'": "['\u2019]"}
#: What a spreadsheet writes for a plain number (also what Python's float() and pandas agree on).
PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
#: Codes such as "007" or "0x1F" look like numbers but are not quantities (as in ingestion).
CODE_LIKE = r"^[+-]?0[0-9xX]"


@dataclass(frozen=True)
class NumberFormat:
    """Numbers written with ``decimal`` before the fraction and ``thousands`` (or nothing) between groups."""

    key: str
    label: str  # 1234.5 written in this format
    decimal: str
    thousands: str = ""

    @property
    def pattern(self) -> str:
        """The full-match regular expression of a number in this format (Python ``re`` and RE2 alike)."""
        if self.key == "plain":
            return PLAIN_NUMBER
        decimal = re.escape(self.decimal)
        if not self.thousands:
            return rf"^[+-]?(\d+({decimal}\d+)?|{decimal}\d+)$"
        return rf"^[+-]?(\d+|\d{{1,3}}({_THOUSANDS_CLASSES[self.thousands]}\d{{3}})+)({decimal}\d+)?$"

    def describe(self) -> str:
        decimal = "decimal point" if self.decimal == "." else "decimal comma"
        thousands = {",": "',' between thousands", ".": "'.' between thousands", " ": "a space between thousands",
                     "'": "an apostrophe between thousands"}.get(self.thousands)
        return f"numbers written like {self.label} ({decimal}{', ' + thousands if thousands else ''})"

    def parse(self, text: str) -> float | None:
        """One cleaned string as a float, or None when it is not written in this format."""
        if not _NUMBER_REGEX[self.key].fullmatch(text):
            return None
        if self.thousands:
            text = _THOUSANDS_REGEX[self.thousands].sub("", text)
        return float(text.replace(",", ".") if self.decimal == "," else text)

    def parse_array(self, values: pa.Array) -> pa.Array:
        """``parse`` for a string array: float64, null where a value is not written in this format."""
        fits = pc.match_substring_regex(values, self.pattern)
        text = values
        if self.thousands:
            text = pc.replace_substring_regex(text, _THOUSANDS_CLASSES[self.thousands], "")
        if self.decimal == ",":
            text = pc.replace_substring(text, ",", ".")
        return pc.if_else(fits, text, _NULL_STRING).cast(pa.float64())


NUMBER_FORMATS: dict[str, NumberFormat] = {f.key: f for f in (
    NumberFormat("plain", "1234.5", "."),
    NumberFormat("comma_thousands", "1,234.5", ".", ","),
    NumberFormat("decimal_comma", "1234,5", ","),
    NumberFormat("dot_thousands", "1.234,5", ",", "."),
    NumberFormat("space_thousands_comma", "1 234,5", ",", " "),
    NumberFormat("space_thousands", "1 234.5", ".", " "),
    NumberFormat("apostrophe_thousands", "1'234.5", ".", "'"),
)}
_NUMBER_REGEX = {key: re.compile(f.pattern) for key, f in NUMBER_FORMATS.items()}
_THOUSANDS_REGEX = {sep: re.compile(cls) for sep, cls in _THOUSANDS_CLASSES.items()}
#: Which formats are tried first: files written with ';' or with decimal commas elsewhere read the European way.
NUMBER_PREFERENCE = {False: list(NUMBER_FORMATS),
                     True: ["decimal_comma", "dot_thousands", "space_thousands_comma", "plain", "comma_thousands",
                            "space_thousands", "apostrophe_thousands"]}


# --- date formats ---------------------------------------------------------------------------------

ISO8601 = "iso8601"
ISO_PATTERN = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
               r"(Z|[+-]\d{2}(:?\d{2})?)?$")
_ISO_REGEX = re.compile(ISO_PATTERN)
_DATE_PARTS = {"d": r"(?P<d>\d{1,2})", "m": r"(?P<m>\d{1,2})", "y": r"(?P<y>\d{4})"}
_TIME_PART = r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
_GROUPS = {"year": "y", "month": "m", "day": "d", "hour": "H", "minute": "M", "second": "S"}


@dataclass(frozen=True)
class DateFormat:
    """Dates written in one order of day, month and year with one separator, optionally with a time."""

    key: str  # how the user sees it, e.g. "dd.mm.yyyy"
    order: str  # "dmy", "mdy" or "ymd"; "" for ISO 8601
    separator: str = ""

    @property
    def pattern(self) -> str:
        if self.key == ISO8601:
            return ISO_PATTERN
        return "^" + re.escape(self.separator).join(_DATE_PARTS[c] for c in self.order) + _TIME_PART + "$"

    def describe(self) -> str:
        if self.key == ISO8601:
            return "dates in ISO 8601 (2024-12-31, 2024-12-31T13:45:00)"
        return f"dates written {self.key} (with an optional time HH:MM or HH:MM:SS; ISO 8601 dates are read as ISO too)"

    def parse(self, text: str) -> datetime | None:
        """One cleaned string as a naive (UTC) datetime, or None when it is not a date in this format.

        ISO 8601 text is read as ISO 8601 whatever the format.
        """
        if _ISO_REGEX.fullmatch(text):
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo is not None else parsed
        if self.key == ISO8601:
            return None
        match = _DATE_REGEX[self.key].fullmatch(text)
        if match is None:
            return None
        parts = match.groupdict()
        try:
            return datetime(*(int(parts[_GROUPS[name]] or 0) for name in _GROUPS))
        except ValueError:  # 31.02.2024, 25:00
            return None

    def parse_array(self, values: pa.Array) -> pd.Series:
        """``parse`` for a string array: a datetime64[us] Series, NaT where a value is not a date here."""
        iso = pc.fill_null(pc.match_substring_regex(values, ISO_PATTERN), False).to_numpy(zero_copy_only=False)
        result = pd.Series(np.full(len(values), np.datetime64("NaT", "us")), dtype="datetime64[us]")
        if iso.any():
            text = pd.Series(values.filter(pa.array(iso)).to_pylist(), dtype=object)
            parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
            result[iso] = parsed.dt.tz_localize(None).astype("datetime64[us]").to_numpy()
        if self.key == ISO8601:
            return result
        parts = pc.extract_regex(values, pattern=self.pattern)
        matched = pc.fill_null(parts.is_valid(), False).to_numpy(zero_copy_only=False) & ~iso
        if matched.any():
            chosen = parts.filter(pa.array(matched))
            columns = {}
            for name, group in _GROUPS.items():
                digits = pc.struct_field(chosen, group)
                digits = pc.if_else(pc.equal(digits, ""), "0", digits)
                columns[name] = digits.cast(pa.int64()).to_numpy(zero_copy_only=False)
            assembled = pd.to_datetime(pd.DataFrame(columns), errors="coerce")
            result[matched] = assembled.astype("datetime64[us]").to_numpy()
        return result


DATE_FORMATS: dict[str, DateFormat] = {f.key: f for f in (
    DateFormat(ISO8601, ""),
    DateFormat("mm/dd/yyyy", "mdy", "/"),
    DateFormat("dd/mm/yyyy", "dmy", "/"),
    DateFormat("dd.mm.yyyy", "dmy", "."),
    DateFormat("dd-mm-yyyy", "dmy", "-"),
    DateFormat("mm-dd-yyyy", "mdy", "-"),
    DateFormat("yyyy/mm/dd", "ymd", "/"),
    DateFormat("yyyy.mm.dd", "ymd", "."),
)}
_DATE_REGEX = {key: re.compile(f.pattern) for key, f in DATE_FORMATS.items()}
#: Which order is tried first when day and month cannot be told apart: month first (the US and
#: pandas' convention), unless the file is European (';' delimiter or decimal commas), then day first.
DATE_PREFERENCE = {False: list(DATE_FORMATS),
                   True: [ISO8601, "dd/mm/yyyy", "dd.mm.yyyy", "dd-mm-yyyy", "mm/dd/yyyy", "mm-dd-yyyy",
                          "yyyy/mm/dd", "yyyy.mm.dd"]}
#: Friendlier names a user may send for a date format.
DATE_FORMAT_ALIASES = {"iso": ISO8601, "iso 8601": ISO8601, "iso-8601": ISO8601, "%d.%m.%Y": "dd.mm.yyyy",
                       "%d/%m/%Y": "dd/mm/yyyy", "%m/%d/%Y": "mm/dd/yyyy", "%d-%m-%Y": "dd-mm-yyyy",
                       "%m-%d-%Y": "mm-dd-yyyy", "%Y/%m/%d": "yyyy/mm/dd", "%Y.%m.%d": "yyyy.mm.dd",
                       "%Y-%m-%d": ISO8601}

# --- booleans -------------------------------------------------------------------------------------

#: Spellings of true and false (compared after trimming, in any case).
BOOLEAN_SPELLINGS = {"true": True, "t": True, "yes": True, "y": True, "1": True,
                     "false": False, "f": False, "no": False, "n": False, "0": False}


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


def _is_text(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)
                or pd.api.types.is_bool_dtype(values))


def _floats(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("Float64")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _read_numeric(reading: ColumnReading, values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.Series(np.full(len(values), np.nan))
    if not _is_text(values):
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
    if not _is_text(values):  # numbers are not dates: seconds or milliseconds since 1970 would be a guess
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
    if reading is not None and reading.kind == NUMERIC and _is_text(values):
        return reading.read(values)
    return values


def unreadable_mask(raw: pd.Series, read: pd.Series) -> np.ndarray:
    """Which values were present in ``raw`` but could not be read (missing in ``read``)."""
    present = raw.notna().to_numpy().copy()
    if _is_text(raw) and len(raw):
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


# --- inference from the whole column ---------------------------------------------------------------

_HEAD = 64


@dataclass
class _Family:
    """Candidate formats of one family (numbers or dates): alive ones, and pairs that read a value differently."""

    alive: list[str]
    disagree: set[frozenset[str]] = field(default_factory=set)
    #: the last candidate to die, the values it had read, and the first value it could not read
    last_death: tuple[str, int, str] | None = None

    def kill(self, keys: Iterable[str], seen: int, example: str, values: pa.Array | None = None) -> None:
        """Drop ``keys``: ``example`` does not fit them; ``seen`` values came before the block ``values``."""
        keys = [k for k in keys if k in self.alive]
        if keys and values is not None:
            seen += max(0, pc.index(values, example).as_py())
        if keys and len(keys) == len(self.alive):
            self.last_death = (keys[0], seen, example)
        self.alive = [k for k in self.alive if k not in keys]

    def classes(self) -> list[list[str]]:
        """Alive candidates grouped so that candidates of a group read every value alike."""
        groups: list[list[str]] = []
        for key in self.alive:
            for group in groups:
                if all(frozenset((key, other)) not in self.disagree for other in group):
                    group.append(key)
                    break
            else:
                groups.append([key])
        return groups

    def choose(self, preference: list[str]) -> tuple[str, tuple[str, ...]] | None:
        if not self.alive:
            return None
        groups = sorted(self.classes(), key=lambda g: min(preference.index(k) for k in g))
        best = [min(g, key=preference.index) for g in groups]
        return best[0], tuple(best[1:])


#: Separator characters a number format gives a meaning to (space includes the no-break spaces).
_SEPARATORS = {".": r"\.", ",": ",", " ": "[ \u00a0\u202f]", "'": "['\u2019]"}


def _meaning(number_format: NumberFormat, separator: str) -> str | None:
    if separator == number_format.decimal:
        return "decimal"
    return "thousands" if separator == number_format.thousands else None


class FormatEvidence:
    """What every value of one column seen so far allows, accumulated block by block.

    ``observe`` takes each block of the column as a cleaned Arrow string array (see
    ``clean_text``); ``reading`` then gives the column's reading, or None when no number
    format, date format or boolean spelling fits every value (plain text: categories,
    identifiers or free text, told apart later from the values' spread).

    ``observe_typed`` takes a block that Arrow already cast to a number, boolean or
    timestamp (ingestion knows): it only updates what a cast cannot tell (whether the
    dots could be thousands separators, which other formats the values still fit).

    Cost of ``observe``: a candidate dies at its first misfit and the first 64 values are
    looked at first, so a column of names or codes is ruled out at once; a column that stays
    a candidate costs one regular-expression pass per block and candidate.
    """

    def __init__(self) -> None:
        self.values = 0
        self.numbers = _Family(list(NUMBER_FORMATS))
        self.dates = _Family(list(DATE_FORMATS))
        self.spellings: set[str] | None = set()
        self.separators: set[str] = set()  # separator characters seen in values that fit a number format

    @property
    def live(self) -> bool:
        return bool(self.numbers.alive or self.dates.alive or self.spellings is not None)

    def observe(self, values: pa.Array) -> None:
        present = self._present(values)
        if present is None:
            return
        if len(present) > _HEAD:  # most columns rule every candidate out in their first values: look there first
            self._observe(present.slice(0, _HEAD))
            if not self.live:
                return
        self._observe(present)
        self.values += len(present)

    def observe_typed(self, values: pa.Array, kind: str) -> None:
        """A block whose every value Arrow cast to ``kind`` (NUMERIC, BOOLEAN or DATETIME)."""
        present = self._present(values)
        if present is None:
            return
        seen = self.values
        first = present[0].as_py()
        if kind != NUMERIC:  # true/false or ISO dates: no number format reads them
            self.numbers.kill(list(self.numbers.alive), seen, first)
        if kind != DATETIME:  # plain numbers and true/false are no dates
            self.dates.kill(list(self.dates.alive), seen, first)
        if kind == BOOLEAN and self.spellings is not None:
            self._spell(present)
        else:
            self.spellings = None
        if kind == NUMERIC and self.numbers.alive:
            self._cast_numbers(present, seen)
        self.values += len(present)

    def _cast_numbers(self, values: pa.Array, seen: int) -> None:
        """Numbers Arrow cast (plain, no codes like "007"): which other formats still fit, from literal scans.

        A cast number fits a format with a decimal point unless written with an exponent or a bare
        point ("1e5", ".5", "5."); a format with a decimal comma only if it has no point at all; and
        dots between thousands only if every point is followed by groups of three digits.
        """
        point = pc.any(pc.match_substring(values, ".")).as_py()
        odd = any(pc.any(check).as_py() for check in (
            pc.match_substring(values, "e", ignore_case=True), pc.starts_with(values, "."),
            pc.ends_with(values, "."), pc.match_substring(values, "-."), pc.match_substring(values, "+.")))
        for key in list(self.numbers.alive):
            number_format = NUMBER_FORMATS[key]
            if key == "plain":
                continue
            if odd or (point and number_format.decimal == ","):
                if key == "dot_thousands" and not odd:
                    fits = pc.match_substring_regex(values, number_format.pattern)
                    if pc.all(fits).as_py():
                        continue
                    self.numbers.kill([key], seen, values.filter(pc.invert(fits))[0].as_py(), values)
                    continue
                self.numbers.kill([key], seen, values[0].as_py())
        if point:
            self.separators.add(".")
        self._note_number_disagreements()

    def _present(self, values: pa.Array) -> pa.Array | None:
        if not self.live:
            return None
        present = values.drop_null() if values.null_count else values
        return present if len(present) else None

    def _observe(self, values: pa.Array) -> None:
        if self.spellings is not None:
            self._spell(values)
        if self.numbers.alive:
            self._numbers(values, self.values)
        if self.dates.alive:
            self._dates(values, self.values)

    def _spell(self, values: pa.Array) -> None:
        distinct = pc.unique(values)
        if len(distinct) > 4 * len(BOOLEAN_SPELLINGS):  # spelled in more ways than any true/false column is
            self.spellings = None
            return
        lowered = set(pc.utf8_lower(distinct).to_pylist())
        self.spellings = self.spellings | lowered if lowered <= BOOLEAN_SPELLINGS.keys() else None

    def _numbers(self, values: pa.Array, seen: int) -> None:
        codes = pc.match_substring_regex(values, CODE_LIKE)
        if pc.any(codes).as_py():
            self.numbers.kill(list(self.numbers.alive), seen, values.filter(codes)[0].as_py(), values)
            return
        for key in list(self.numbers.alive):
            fits = pc.match_substring_regex(values, NUMBER_FORMATS[key].pattern)
            if not pc.all(fits).as_py():
                self.numbers.kill([key], seen, values.filter(pc.invert(fits))[0].as_py(), values)
        if not self.numbers.alive:
            return
        for separator, pattern in _SEPARATORS.items():
            if separator not in self.separators and pc.any(pc.match_substring_regex(values, pattern)).as_py():
                self.separators.add(separator)
        self._note_number_disagreements()

    def _note_number_disagreements(self) -> None:
        """Formats that fit every value read one differently only through a separator they give different
        meanings (a dot as decimal point or between thousands): the separators that occur tell which pairs differ."""
        alive = self.numbers.alive
        for i, a in enumerate(alive):
            for b in alive[i + 1:]:
                if any(_meaning(NUMBER_FORMATS[a], sep) != _meaning(NUMBER_FORMATS[b], sep) for sep in self.separators):
                    self.numbers.disagree.add(frozenset((a, b)))

    def _dates(self, values: pa.Array, seen: int) -> None:
        parsed = {}
        for key in list(self.dates.alive):
            date_format = DATE_FORMATS[key]
            shaped = pc.or_(pc.match_substring_regex(values, ISO_PATTERN),
                            pc.match_substring_regex(values, date_format.pattern))
            if not pc.all(shaped).as_py():
                self.dates.kill([key], seen, values.filter(pc.invert(shaped))[0].as_py(), values)
                continue
            dates = date_format.parse_array(values)
            missing = dates.isna().to_numpy()
            if missing.any():  # the shape fits, the date does not exist (31.02.2024)
                self.dates.kill([key], seen + int(np.argmax(missing)), values[int(np.argmax(missing))].as_py())
            else:
                parsed[key] = pa.array(dates.to_numpy())
        keys = [k for k in parsed if k in self.dates.alive]
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                pair = frozenset((a, b))
                if pair not in self.dates.disagree and pc.any(pc.not_equal(parsed[a], parsed[b])).as_py():
                    self.dates.disagree.add(pair)

    # --- the verdict ------------------------------------------------------------------------------
    @property
    def decimal_comma(self) -> bool:
        """Whether the column can only be read with a decimal comma (a hint that the whole file is European)."""
        alive = self.numbers.alive
        return bool(self.values and alive and all(NUMBER_FORMATS[k].decimal == "," for k in alive))

    def number_reading(self, *, european: bool = False) -> ColumnReading | None:
        """The column read as numbers, when a number format fits every value (None otherwise)."""
        choice = self.numbers.choose(NUMBER_PREFERENCE[european]) if self.values else None
        return ColumnReading(kind=NUMERIC, number_format=choice[0], alternatives=choice[1]) if choice else None

    def reading(self, *, european: bool = False) -> ColumnReading | None:
        """The column's reading from every value seen, or None for plain text.

        Booleans first (two meanings, every value a spelling), then numbers, then dates;
        among several fitting formats that read the values differently, ``european``
        (a ';' delimiter, or decimal commas in another column) prefers the decimal comma
        and day-first dates, otherwise the decimal point and month-first dates.
        """
        if not self.values:
            return None
        if self.spellings is not None and {BOOLEAN_SPELLINGS[s] for s in self.spellings} == {True, False}:
            return ColumnReading(kind=BOOLEAN)
        numbers = self.number_reading(european=european)
        if numbers is not None:
            return numbers
        choice = self.dates.choose(DATE_PREFERENCE[european])
        return ColumnReading(kind=DATETIME, date_format=choice[0], alternatives=choice[1]) if choice else None

    def near_miss(self, name: str) -> str | None:
        """A note when the column looked like numbers or dates for most of its values but one did not fit."""
        for word, family, labels in (("numbers", self.numbers, lambda k: NUMBER_FORMATS[k].label),
                                     ("dates", self.dates, lambda k: k)):
            if family.alive or family.last_death is None:
                continue
            key, seen, example = family.last_death
            if self.values and seen >= 0.5 * self.values and seen >= 10:
                return (f"column '{name}' holds {word} written like {labels(key)} for its first {seen:,} values, then "
                        f"{example!r}, so it is read as text; set its kind to "
                        f"{'numeric' if word == 'numbers' else 'date'} to read the others and count the rest as missing")
        return None


def evidence_of(values: pd.Series | pa.Array | pa.ChunkedArray) -> FormatEvidence:
    """``FormatEvidence`` over a whole column held in memory."""
    evidence = FormatEvidence()
    evidence.observe(as_text(values))
    return evidence


def is_european(delimiter: str | None, evidences: Iterable[FormatEvidence]) -> bool:
    """A file is read the European way when it is ';'-delimited or a column settles on a decimal comma."""
    return delimiter == ";" or any(e.decimal_comma for e in evidences)


def typed_reading(values: pd.Series) -> ColumnReading | None:
    """The reading of a column whose storage type already says what it is (None for text)."""
    if pd.api.types.is_bool_dtype(values):
        return ColumnReading(kind=BOOLEAN)
    if pd.api.types.is_datetime64_any_dtype(values):
        return ColumnReading(kind=DATETIME, date_format=ISO8601)
    if pd.api.types.is_numeric_dtype(values):
        return ColumnReading(kind=NUMERIC, number_format="plain")
    if isinstance(values.dtype, pd.CategoricalDtype):
        return ColumnReading(kind=CATEGORICAL)
    return None


def reading_of_arrow_type(t: pa.DataType) -> ColumnReading | None:
    """The reading a stored column's Arrow type gives (None for text, read as categories until refined)."""
    if pa.types.is_boolean(t):
        return ColumnReading(kind=BOOLEAN)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return ColumnReading(kind=DATETIME, date_format=ISO8601)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return ColumnReading(kind=NUMERIC, number_format="plain")
    return None


def refine_kind(reading: ColumnReading | None, read: pd.Series, name: str) -> ColumnReading:
    """The reading with its kind settled from the read values: integers 0/1 are booleans, distinct counting
    integers and mostly distinct short text are identifiers, long distinct text is free text."""
    if reading is not None and reading.source == USER:
        return reading
    base = reading or ColumnReading(kind=CATEGORICAL)
    kind = sniff_kind(read, name, base.kind)
    return base if kind == base.kind else replace(base, kind=kind, alternatives=())


def infer_reading(values: pd.Series, *, european: bool = False) -> ColumnReading:
    """The reading of a column held in memory, from every value (see ``FormatEvidence``)."""
    reading = typed_reading(values)
    if reading is None and _is_text(values):
        reading = evidence_of(values).reading(european=european)
    read = reading.read(values) if reading is not None else _read_categorical(ColumnReading(CATEGORICAL), values)
    read.index = values.index
    return refine_kind(reading, read, str(values.name or ""))


def infer_readings(frame: pd.DataFrame) -> dict[str, ColumnReading]:
    """``infer_reading`` for every column, with the European hint shared across the frame."""
    evidences = {c: evidence_of(frame[c]) for c in frame.columns if typed_reading(frame[c]) is None
                 and _is_text(frame[c])}
    european = is_european(None, evidences.values())
    readings = {}
    for column in frame.columns:
        values = frame[column]
        reading = typed_reading(values)
        if column in evidences:
            reading = evidences[column].reading(european=european)
        read = reading.read(values) if reading is not None else _read_categorical(ColumnReading(CATEGORICAL), values)
        read.index = values.index
        readings[column] = refine_kind(reading, read, str(column))
    return readings


# --- the user's choice -----------------------------------------------------------------------------

def kind_name(kind: str, *, field: str) -> str:
    """The kind for a name a user sent ("date" is the datetime kind); 400 listing the names otherwise."""
    resolved = KIND_NAMES.get(str(kind).strip().lower()) if isinstance(kind, str) else None
    if resolved is None:
        raise MLInputError(f"{field}: unknown kind {shown(kind)}; kinds are: "
                           f"numeric, categorical, boolean, date, text, identifier", field=field)
    return resolved


def format_name(kind: str, name: Any, *, field: str) -> str:
    """The format key for a name a user sent (a date format such as "dd/mm/yyyy", or a number format key)."""
    if kind == DATETIME:
        key = DATE_FORMAT_ALIASES.get(str(name).strip(), str(name).strip().lower())
        if key in DATE_FORMATS:
            return key
        raise MLInputError(f"{field}: unknown date format {shown(name)}; formats are: {', '.join(DATE_FORMATS)}",
                           field=field)
    if kind == NUMERIC:
        for key, number_format in NUMBER_FORMATS.items():
            if str(name).strip() in (key, number_format.label):
                return key
        raise MLInputError(f"{field}: unknown number format {shown(name)}; formats are: "
                           f"{', '.join(f'{k} ({f.label})' for k, f in NUMBER_FORMATS.items())}", field=field)
    raise MLInputError(f"{field}: a {kind} column has no format to choose", field=field)


def reading_for_kind(values: pd.Series, kind: str, *, name: str, format_key: str | None = None,
                     field: str = "column_kinds") -> ColumnReading:
    """The reading of a whole column as the user says it is, checked against its values.

    ``kind`` is a kind name (see ``KIND_NAMES``); ``format_key`` a number or date format
    (default: the one that reads the most values, the usual convention on a tie). Raises
    ``MLInputError`` (``field``, naming the column) when fewer than ``MIN_READABLE_SHARE``
    of the present values read under it.
    """
    kind = kind_name(kind, field=field)
    candidates: list[ColumnReading]
    if kind == NUMERIC:
        keys = [format_name(kind, format_key, field=field)] if format_key else NUMBER_PREFERENCE[False]
        candidates = [ColumnReading(kind=kind, number_format=k, source=USER) for k in keys]
    elif kind == DATETIME:
        keys = [format_name(kind, format_key, field=field)] if format_key else DATE_PREFERENCE[False]
        candidates = [ColumnReading(kind=kind, date_format=k, source=USER) for k in keys]
    else:
        if format_key:
            format_name(kind, format_key, field=field)
        candidates = [ColumnReading(kind=kind, source=USER)]
    present = int(values.notna().sum())
    if _is_text(values) and present:
        present = int(as_text(values).is_valid().sum().as_py())
    best, best_bad = None, None
    for candidate in candidates:
        read = candidate.read(values)
        bad = unreadable_mask(values, read)
        if best_bad is None or bad.sum() < best_bad.sum():
            best, best_bad = candidate, bad
        if not bad.any():
            break
    n_bad = int(best_bad.sum())
    if present and n_bad > (1 - MIN_READABLE_SHARE) * present:
        examples = ", ".join(repr(v) for v in pd.unique(values[best_bad].astype(str))[:MAX_EXAMPLES])
        what = best.describe()
        raise MLInputError(f"column '{name}' cannot be read as {_KIND_WORDS[kind]}: {n_bad:,} of its {present:,} "
                           f"values are not {what} (for example {examples})", field=field)
    if n_bad:
        examples = tuple(str(v) for v in pd.unique(values[best_bad].astype(str))[:MAX_EXAMPLES])
        best = replace(best, unreadable=n_bad, examples=examples)
    return best


_KIND_WORDS = {NUMERIC: "numbers", DATETIME: "dates", BOOLEAN: "true/false values", CATEGORICAL: "categories",
               TEXT: "text", IDENTIFIER: "an identifier"}


def readings_from_schema(feature_schema: Iterable[Mapping[str, Any]]) -> dict[str, ColumnReading]:
    """Column -> reading for a version's feature schema (legacy readings for schemas without one)."""
    return {str(c["name"]): ColumnReading.from_dict(c.get("reading"), kind=c.get("kind")) for c in feature_schema}
