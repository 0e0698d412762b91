"""The text validator every input goes through: API serializers (mlplatform.api.serializers.InputSerializer
adds it to each text field), page forms (mlplatform.forms.PlatformForm) and uploaded file names. The rule
itself is `training.ml.text.text_problem`, which prediction records use too."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from training.ml.text import text_problem


@deconstructible
class TextValidator:
    """Refuses lone surrogates and control characters; line breaks and tabs too unless `multiline`.
    Raises Django's ValidationError (code "invalid_text"), which forms and DRF fields report on the field."""

    code = "invalid_text"

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, value) -> None:
        text = getattr(value, "name", value)  # an uploaded file: its name is client text too
        if not isinstance(text, str):
            return
        problem = text_problem(text, multiline=self.multiline)
        if problem is not None:
            what = "The file name" if text is not value else "This text"
            raise ValidationError(f"{what} {problem}.", code=self.code)

    def __eq__(self, other) -> bool:
        return isinstance(other, TextValidator) and other.multiline == self.multiline


validate_text = TextValidator()


def id_or_none(value) -> int | None:
    """A non-negative integer from client text (a posted id, a query parameter, a header), or None when it
    is missing or not one. ASCII digits only: '²'.isdigit() is true, but int('²') fails; at most 18 digits,
    so it fits a bigint."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None
