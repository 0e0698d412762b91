"""The base of every input serializer of the API.

- Unknown fields are refused: a misspelt setting (`"serch": "bayesian"`) is a 400 naming it, listing the
  accepted fields and suggesting the closest one, never a silently ignored setting.
- Every text field (CharField and its subclasses, also inside lists and dicts, and the names of uploaded
  files) goes through the one text validator (mlplatform.validators): no lone surrogates, no control
  characters, no line breaks in single-line text.
- A JSON body has the JSON types the schema documents: `0` is not a boolean, `"5"` not an integer, `5` not
  a string (DRF would convert them). Form data (multipart) is text by nature and keeps DRF's conversions.

Output serializers stay plain `serializers.Serializer`: they never read client input.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import serializers

from mlplatform.validators import TextValidator, validate_text


def guard_text_fields(field: serializers.Field) -> None:
    """Add the text validator to `field` and to the text fields it holds (list and dict children)."""
    if isinstance(field, (serializers.CharField, serializers.FileField)):
        if not any(isinstance(v, TextValidator) for v in field.validators):
            field.validators.append(validate_text)
    child = getattr(field, "child", None)
    if isinstance(child, serializers.Field) and not isinstance(child, InputSerializer):
        guard_text_fields(child)


def unknown_field_errors(keys, accepted: list[str]) -> dict[str, list[str]]:
    """{unknown key: [message]} for the keys not in `accepted`; empty when there are none."""
    errors = {}
    for key in keys:
        if key in accepted:
            continue
        close = difflib.get_close_matches(str(key), accepted, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        errors[str(key)] = [f"Unknown field.{hint} Accepted fields are: {', '.join(accepted)}."]
    return errors


#: (field class, JSON types it takes, how to say it); the first class a field is an instance of decides.
_JSON_TYPES: list[tuple[type, tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ChoiceField, (str,), "text"),
    (serializers.CharField, (str,), "text"),
    (serializers.ListField, (list,), "a list"),
    (serializers.DictField, (dict,), "an object"),
]


_JSON_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "text", list: "a list", dict: "an object"}


def json_type_error(field: serializers.Field, value) -> str | None:
    """What is wrong with the JSON type of `value` for `field` (and its list or dict items), or None."""
    if value is None:
        return None  # the field says whether null is allowed
    for kind, types, name in _JSON_TYPES:
        if isinstance(field, kind):
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                return f"Must be {name}, not {_JSON_NAMES.get(type(value), type(value).__name__)}."
            child = getattr(field, "child", None)
            items = value if isinstance(value, list) else value.values() if isinstance(value, dict) else []
            if isinstance(child, serializers.Field):
                for item in items:
                    problem = json_type_error(child, item)
                    if problem:
                        return f"Each item: {problem[0].lower()}{problem[1:]}"
            return None
    return None


class InputSerializer(serializers.Serializer):
    """Strict input: unknown fields are a 400, every text field is checked (see the module docstring)."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            guard_text_fields(field)
        return fields

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            accepted = [name for name, field in self.fields.items() if not field.read_only]
            errors = unknown_field_errors(data.keys(), accepted)
            if not errors and not isinstance(data, QueryDict):  # JSON; form data (multipart) is text by nature
                for name, value in data.items():
                    problem = json_type_error(self.fields[name], value)
                    if problem:
                        errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
