"""Inferring a column's reading from every one of its values (``FormatEvidence``), block by block."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC, sniff_kind

from .column import USER, ColumnReading, as_text, is_text_column
from .formats import (
    BOOLEAN_SPELLINGS, CODE_LIKE, DATE_FORMATS, DATE_PREFERENCE, ISO_PATTERN, NUMBER_FORMATS, NUMBER_PREFERENCE,
    SEPARATOR_PATTERNS, ISO8601, NumberFormat,
)


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
        for separator, pattern in SEPARATOR_PATTERNS.items():
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
    if reading is None and is_text_column(values):
        reading = evidence_of(values).reading(european=european)
    read = reading.read(values) if reading is not None else ColumnReading(CATEGORICAL).read(values)
    read.index = values.index
    return refine_kind(reading, read, str(values.name or ""))


def infer_readings(frame: pd.DataFrame) -> dict[str, ColumnReading]:
    """``infer_reading`` for every column, with the European hint shared across the frame."""
    evidences = {c: evidence_of(frame[c]) for c in frame.columns if typed_reading(frame[c]) is None
                 and is_text_column(frame[c])}
    european = is_european(None, evidences.values())
    readings = {}
    for column in frame.columns:
        values = frame[column]
        reading = typed_reading(values)
        if column in evidences:
            reading = evidences[column].reading(european=european)
        read = reading.read(values) if reading is not None else ColumnReading(CATEGORICAL).read(values)
        read.index = values.index
        readings[column] = refine_kind(reading, read, str(column))
    return readings
