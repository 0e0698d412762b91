"""What text the platform accepts: the one check behind every text field (API serializers, page forms,
prediction records). Plain Python, so `training/ml` and the web layer share it.

Refused everywhere:
- lone surrogates (U+D800 to U+DFFF on their own, e.g. from a JSON escape "\\ud800"): no encoder can
  write them, so they would fail in PostgreSQL, in ONNX Runtime and in every JSON answer that echoes them;
- control characters (Unicode category Cc: C0, DEL and C1), except tab, line feed and carriage return in
  multi-line text. NUL in particular cannot be stored by PostgreSQL.
Single-line text (names, usernames, identifiers: the default) also refuses tab, line feed, carriage return
and the Unicode line and paragraph separators (U+2028, U+2029).
"""
from __future__ import annotations

import re

_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SURROGATES = "\ud800-\udfff"
_MULTILINE_REFUSED = re.compile(f"[{_CONTROLS}{_SURROGATES}]")
_SINGLE_LINE_REFUSED = re.compile(f"[{_CONTROLS}{_SURROGATES}\t\n\r\u2028\u2029]")
_SURROGATE = re.compile(f"[{_SURROGATES}]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """None when `value` is acceptable text, else what is wrong with it, for a message such as
    "name contains a control character (U+0000) at position 3". Runs in C (one regex search)."""
    found = (_MULTILINE_REFUSED if multiline else _SINGLE_LINE_REFUSED).search(value)
    if found is None:
        return None
    return f"contains {_describe(found.group())} at position {found.start()}"


def lone_surrogate_at(value: str) -> int | None:
    """Position of the first lone surrogate in `value`, or None. (A valid pair decoded from JSON is one
    code point above U+FFFF, never a surrogate.)"""
    found = _SURROGATE.search(value)
    return None if found is None else found.start()


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code}), which is not valid Unicode text"
    if char in "\t\n\r\u2028\u2029":
        return f"a tab or line break ({code}), which this field does not allow"
    return f"a control character ({code})"
