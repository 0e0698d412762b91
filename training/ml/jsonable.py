"""Turn numpy / pandas values into plain JSON values (no NaN, no numpy types)."""
from __future__ import annotations

import datetime as dt
import math
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """Recursively convert ``value`` so that ``json.dumps(..., allow_nan=False)`` accepts it.

    NaN and infinities become ``None``; numpy scalars and arrays become Python
    scalars and lists; timestamps become ISO strings.
    """
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def plain_float(value: Any) -> float | None:
    """A finite Python float, or ``None`` for NaN / infinity / missing."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
