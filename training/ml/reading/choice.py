"""A user's choice of a column's kind or format, checked against the column's values."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, IDENTIFIER, NUMERIC, TEXT
from training.ml.errors import MLInputError

from .column import USER, ColumnReading, as_text, is_text_column, unreadable_mask
from .formats import DATE_FORMAT_ALIASES, DATE_FORMATS, DATE_PREFERENCE, NUMBER_FORMATS, NUMBER_PREFERENCE, shown

#: The kinds a user may give a column, and the names accepted for them ("date" is the datetime kind).
KIND_NAMES = {
    "numeric": NUMERIC, "categorical": CATEGORICAL, "boolean": BOOLEAN, "date": DATETIME, "datetime": DATETIME,
    "text": TEXT, "identifier": IDENTIFIER,
}
#: (name, label) of each kind a user may choose, for forms and help texts ("datetime" is an alias of "date").
KIND_CHOICES = [(name, f"{name} (ignored)" if kind in (TEXT, IDENTIFIER) else name)
                for name, kind in KIND_NAMES.items() if name != "datetime"]
#: A user's choice of kind applies when at least this share of the column's values read under it
#: (the rest become missing, and the profile says how many); inference itself needs every value.
MIN_READABLE_SHARE = 0.9
MAX_EXAMPLES = 3


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
    if is_text_column(values) and present:
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
