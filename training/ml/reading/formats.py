"""The formats a column's values can be written in: numbers, dates, true/false, and "missing".

Each format is one regular expression shared by the per-value form (Python ``re``) and the
whole-column form (Arrow's RE2), so both read a value alike.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.ml.columns import NA_TOKENS
from training.ml.text import text_problem

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
    """``clean_text`` for one string (a value sent to a model): trimmed text, or None for a spelling of
    "missing". Text no encoder can write (a lone surrogate) or with a control character other than tab and
    line breaks raises ``UnreadableValue`` (the one text rule, ``training.ml.text``)."""
    problem = text_problem(text, multiline=True)
    if problem is not None:
        raise UnreadableValue(problem)
    text = text.strip()
    return None if text in _NA_STRINGS else text


# --- number formats -------------------------------------------------------------------------------

#: Each separator character a number format may give a meaning to, as a pattern (spaces: no-break ones too).
SEPARATOR_PATTERNS = {",": ",", ".": r"\.", " ": "[ \u00a0\u202f]", "'": "['\u2019]"}
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
        return rf"^[+-]?(\d+|\d{{1,3}}({SEPARATOR_PATTERNS[self.thousands]}\d{{3}})+)({decimal}\d+)?$"

    def describe(self) -> str:
        decimal = "decimal point" if self.decimal == "." else "decimal comma"
        thousands = {",": "',' between thousands", ".": "'.' between thousands", " ": "a space between thousands",
                     "'": "an apostrophe between thousands"}.get(self.thousands)
        return f"numbers written like {self.label} ({decimal}{', ' + thousands if thousands else ''})"

    def write(self, value: float, decimals: int = 4) -> str:
        """``value`` as text in this format, the way ``parse`` reads it back: at most ``decimals`` decimals,
        trailing zeros dropped (1234.5 -> "1.234,5" for ``dot_thousands``). Raises ValueError for inf or NaN."""
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written as a number")
        text = f"{abs(value):.{decimals}f}".rstrip("0").rstrip(".")
        whole, _, fraction = text.partition(".")
        if self.thousands:
            whole = f"{int(whole):,}".replace(",", self.thousands)
        sign = "-" if value < 0 and text.strip("0.") else ""
        return sign + whole + (self.decimal + fraction if fraction else "")

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
            text = pc.replace_substring_regex(text, SEPARATOR_PATTERNS[self.thousands], "")
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
_THOUSANDS_REGEX = {sep: re.compile(cls) for sep, cls in SEPARATOR_PATTERNS.items()}
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

    def write(self, value: datetime, *, with_time: bool = True) -> str:
        """``value`` (naive) as text in this format, the way ``parse`` reads it back: "31.12.2024" for
        ``dd.mm.yyyy``, with " HH:MM:SS" after it when ``with_time``; ISO 8601 for ``iso8601``."""
        if self.key == ISO8601:
            return value.isoformat(timespec="seconds") if with_time else value.date().isoformat()
        parts = {"d": f"{value.day:02d}", "m": f"{value.month:02d}", "y": f"{value.year:04d}"}
        text = self.separator.join(parts[c] for c in self.order)
        return f"{text} {value:%H:%M:%S}" if with_time else text

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
