"""The base of every input serializer of the API.

- Unknown fields are refused: a misspelt setting (`"serch": "bayesian"`) is a 400 naming it, listing the
  accepted fields and suggesting the closest one, never a silently ignored setting.
- Every text field (CharField and its subclasses, also inside lists and dicts, and the names of uploaded
  files) goes through the one text validator (mlplatform.validators): no lone surrogates, no control
  characters, no line breaks in single-line text.

Output serializers stay plain `serializers.Serializer`: they never read client input.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping

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
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
