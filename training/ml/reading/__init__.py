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

The package: ``formats`` (number and date formats, boolean spellings, "missing"), ``column``
(``ColumnReading`` and its two forms of reading), ``inference`` (``FormatEvidence``: the
reading of a column from all its values) and ``choice`` (a user's kind or format, checked).
Import from the package itself: what it exports is the public interface.
"""
from .choice import KIND_CHOICES, KIND_NAMES, MIN_READABLE_SHARE, format_name, kind_name, reading_for_kind
from .column import (
    INFERRED, LEGACY, USER, ColumnReading, as_text, category_text, read_frame, read_target, readings_from_schema,
    unreadable_mask,
)
from .formats import (
    BOOLEAN_SPELLINGS, DATE_FORMATS, ISO8601, NUMBER_FORMATS, DateFormat, NumberFormat, UnreadableValue,
    clean_text, clean_value, shown,
)
from .inference import (
    FormatEvidence, evidence_of, infer_reading, infer_readings, is_european, reading_of_arrow_type, refine_kind,
    typed_reading,
)

__all__ = [
    "BOOLEAN_SPELLINGS", "DATE_FORMATS", "INFERRED", "ISO8601", "KIND_CHOICES", "KIND_NAMES", "LEGACY", "MIN_READABLE_SHARE",
    "NUMBER_FORMATS", "USER", "ColumnReading", "DateFormat", "FormatEvidence", "NumberFormat", "UnreadableValue",
    "as_text", "category_text", "clean_text", "clean_value", "evidence_of", "format_name", "infer_reading",
    "infer_readings", "is_european", "kind_name", "read_frame", "read_target", "reading_for_kind",
    "reading_of_arrow_type", "readings_from_schema", "refine_kind", "shown", "typed_reading", "unreadable_mask",
]
