"""How numbers, parameters and leaderboards are shown to people (pages only; the API keeps full precision).

Template filters of the same names are in `mlplatform/templatetags/present.py`.
"""
from __future__ import annotations

import json
import math
from typing import Any

#: Significant digits of a measured number shown on a page.
DIGITS = 4


def readable(value: Any, digits: int = DIGITS) -> str:
    """A number as a person reads it: `digits` significant digits (0.123456 -> 0.1235, 1234.5678 -> 1,235),
    thousands separated, no exponent between 1e-4 and 1e15; "—" for None or NaN. Anything else as text."""
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "—" if math.isnan(value) else ("∞" if value > 0 else "−∞")
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -4 or magnitude >= 15:
        return f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    if isinstance(value, int) or decimals == 0:
        return f"{round(value):,}"
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return text


def parameter(value: Any) -> str:
    """A hyperparameter value: numbers rounded, None as "none" (the library's default meaning), lists and
    objects as compact JSON."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return readable(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return str(value)


def parameter_rows(params: dict | None) -> list[tuple[str, str]]:
    """[(name, shown value)] sorted by name; an ensemble's members are shown by `ensemble_members` instead."""
    return [(str(k), parameter(v)) for k, v in sorted((params or {}).items()) if k != "members"]


def ensemble_members(params: dict | None, leaderboard: list[dict] | None) -> list[dict]:
    """The members of an AutoML ensemble with their rank on the leaderboard: members name the candidate they
    are (`trial` on the leaderboard's ensemble row, `candidate` in a version's parameters), which is its number
    in the search, not its rank. Each: rank (None if unranked), number, algorithm, weight, share of the vote
    (0-1), CV mean and the candidate's parameters."""
    members = (params or {}).get("members") or []
    rows = {row.get("number"): row for row in leaderboard or [] if row.get("number") is not None}
    total = sum(float(m.get("weight") or 0) for m in members) or 1.0
    shown = []
    for member in members:
        number = member.get("trial", member.get("candidate"))
        row = rows.get(number, {})
        shown.append({"rank": row.get("rank"), "number": number, "algorithm": member.get("algorithm"),
                      "weight": member.get("weight"), "share": float(member.get("weight") or 0) / total,
                      "cv_mean": row.get("cv_mean"),
                      "params": parameter_rows(member.get("params") or row.get("params"))})
    return sorted(shown, key=lambda m: (m["rank"] is None, m["rank"] or 0))


def leaderboard_rows(result: dict) -> list[dict]:
    """An AutoML leaderboard ready to show: each row with its parameters as (name, value) pairs and, for the
    ensemble row, its members with their ranks."""
    board = result.get("leaderboard") or []
    return [{**row, "param_rows": parameter_rows(row.get("params")),
             "members": ensemble_members(row.get("params"), board) if row.get("algorithm") == "ensemble" else []}
            for row in board]
