"""What kind of prediction a target column asks for, and why we think so."""
from __future__ import annotations

from enum import Enum

import numpy as np
import pandas as pd

from training.ml.errors import MLInputError


class ProblemType(str, Enum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    def __str__(self) -> str:
        return self.value

    @property
    def is_classification(self) -> bool:
        return self is not ProblemType.REGRESSION


#: An integer target is read as classes only when it has at most this many values ...
MAX_INTEGER_CLASSES = 20
#: ... and they make up at most this share of the rows (a small dataset may still have 3).
MAX_INTEGER_CLASS_SHARE = 0.05
MIN_INTEGER_CLASSES_ALLOWED = 3
#: Classification with more classes than this is refused.
MAX_CLASSES = 100


def _preview(values, limit: int = 5) -> str:
    shown = [str(v) for v in list(values)[:limit]]
    more = len(values) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _is_numeric(y: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)


def _is_integer_valued(y: pd.Series) -> bool:
    values = y.to_numpy(dtype=float, na_value=np.nan)
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def detect_problem_type(y: pd.Series) -> tuple[ProblemType, str]:
    """Guess the problem type from the target values; the reason is shown to the user.

    Rules, in order (missing values are ignored):

    1. boolean, or exactly two distinct values -> binary;
    2. not numeric (text, categories) -> multiclass;
    3. integers with few distinct values (<= 20 and <= 5 % of rows, 3 always
       allowed) -> multiclass;
    4. anything else numeric -> regression.
    """
    values = y.dropna()
    distinct = pd.unique(values)
    n_distinct = len(distinct)
    if pd.api.types.is_bool_dtype(values):
        return ProblemType.BINARY, "the target is boolean (true/false)"
    if n_distinct == 2:
        return ProblemType.BINARY, f"the target has exactly 2 distinct values ({_preview(sorted(map(str, distinct)))})"
    if not _is_numeric(values):
        return ProblemType.MULTICLASS, (
            f"the target is not numeric and has {n_distinct} distinct values ({_preview(sorted(map(str, distinct)))})"
        )
    limit = max(MIN_INTEGER_CLASSES_ALLOWED, min(MAX_INTEGER_CLASSES, int(MAX_INTEGER_CLASS_SHARE * len(values))))
    if _is_integer_valued(values) and n_distinct <= limit:
        return ProblemType.MULTICLASS, (
            f"the target holds whole numbers with only {n_distinct} distinct values "
            f"({_preview(sorted(distinct))}), so they are read as classes"
        )
    kind = "whole numbers" if _is_integer_valued(values) else "decimal numbers"
    return ProblemType.REGRESSION, f"the target holds {kind} with {n_distinct} distinct values"


def _check_regression(y: pd.Series) -> None:
    if not _is_numeric(y):
        raise MLInputError(
            f"regression needs a numeric target, but '{y.name}' holds {y.dtype} values "
            f"such as {_preview(y.dropna().unique())}; choose binary or multiclass",
            field="problem_type",
        )


def _check_binary(y: pd.Series) -> None:
    classes = pd.unique(y.dropna())
    if len(classes) != 2:
        raise MLInputError(
            f"binary classification needs exactly 2 classes, but '{y.name}' has {len(classes)}: "
            f"{_preview(sorted(map(str, classes)))}; choose "
            + ("multiclass" if len(classes) > 2 else "a different target"),
            field="problem_type",
        )


def _check_multiclass(y: pd.Series) -> None:
    classes = pd.unique(y.dropna())
    if len(classes) < 3:
        raise MLInputError(
            f"multiclass needs at least 3 classes, but '{y.name}' has {len(classes)}: "
            f"{_preview(sorted(map(str, classes)))}; choose binary",
            field="problem_type",
        )
    if len(classes) > MAX_CLASSES:
        raise MLInputError(
            f"'{y.name}' has {len(classes)} distinct values; classification supports at most "
            f"{MAX_CLASSES} classes; choose regression for a numeric target or group the classes",
            field="problem_type",
        )


_CHECKS = {
    ProblemType.BINARY: _check_binary,
    ProblemType.MULTICLASS: _check_multiclass,
    ProblemType.REGRESSION: _check_regression,
}

PROBLEM_TYPE_CHOICES = ["auto", *(p.value for p in ProblemType)]


def resolve_problem_type(requested: str, y: pd.Series) -> ProblemType:
    """Honour the user's choice ("auto" detects), refusing one the target cannot support."""
    if requested == "auto":
        problem_type, _ = detect_problem_type(y)
    else:
        try:
            problem_type = ProblemType(requested)
        except ValueError:
            raise MLInputError(
                f"problem type '{requested}' is unknown; choose one of: {', '.join(PROBLEM_TYPE_CHOICES)}",
                field="problem_type",
            ) from None
    _CHECKS[problem_type](y)
    return problem_type
