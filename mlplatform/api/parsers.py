"""The JSON parser of the API. Every endpoint reads JSON only (DEFAULT_PARSER_CLASSES), the upload endpoints
multipart too (DRF's MultiPartParser); any other body is a 415. Every body is read with a size limit, and JSON also
with a nesting limit and a text check, so no body a stranger can send reaches a RecursionError or puts an
unencodable string into the platform.

- Size: `DATA_UPLOAD_MAX_MEMORY_SIZE` bounds every JSON and form body and the fields of a multipart one
  (Django refuses a larger one before reading it), DATA_UPLOAD_MAX_NUMBER_FIELDS/FILES their number; the
  exception handler answers each with a JSON 413 or 400. Uploaded files are bounded by the
  organization's upload limit (training.services.check_upload_size).
- Depth: at most `API_JSON_MAX_DEPTH` nested arrays and objects (prediction bodies need 3), checked on the
  text before decoding, so a 6 KB body of 3,000 nested arrays is a 400, not a RecursionError.
- Text: a lone surrogate (the escape "\\ud800" without its pair) anywhere in the body, key or value, is a
  400 naming where it is (training.ml.text).
"""
from __future__ import annotations

import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

from mlplatform.errors import ApplicationError
from training.ml.text import lone_surrogate_at

#: A JSON string, escapes included (the unrolled form: linear time, no backtracking).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_TO_SQUARE = str.maketrans("{}", "[]")
#: A \u escape of a surrogate (paired or not); only bodies that have one are searched for lone ones.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, counted without decoding it.

    Cost: nothing when the text has at most `limit` brackets (a single prediction); otherwise one regex
    pass that removes strings, then at most `limit` passes that each remove the innermost pairs. Text
    with unbalanced brackets is left to the decoder, which says where it breaks.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_TO_SQUARE)
    for _ in range(limit):
        shorter = skeleton.replace("[]", "")
        if not shorter or shorter == skeleton:
            return False
        skeleton = shorter
    return "[]" in skeleton


def first_lone_surrogate(data) -> tuple[str, int] | None:
    """(path such as "records[0].color", position) of the first string or key holding a lone surrogate."""
    stack = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            at = lone_surrogate_at(value)
            if at is not None:
                return path or "body", at
        elif isinstance(value, dict):
            for key, item in value.items():
                at = lone_surrogate_at(key)
                inner = f"{path}.{key}" if path else key
                if at is not None:
                    return f"{path or 'body'} (a key)", at
                stack.append((inner, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


class JSONBodyParser(JSONParser):
    """DRF's JSON parser with the limits above. Numbers stay exact (ints stay ints), NaN and Infinity are
    refused as DRF's strict mode does."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding} text: {exc.reason} at byte "
                             f"{exc.start}.") from None
        limit = settings.API_JSON_MAX_DEPTH
        if nesting_exceeds(text, limit):
            raise ParseError(f"JSON parse error - the body nests arrays and objects deeper than {limit} levels.")
        try:
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _SURROGATE_ESCAPE.search(text):
            found = first_lone_surrogate(data)
            if found is not None:
                path, at = found
                raise ApplicationError(f"{path} holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape) at "
                                       f"position {at}, which is not valid Unicode text.", field=path)
        return data
