"""The base of every page form: each text field (and each uploaded file's name) goes through the same text
validator as the API's serializers (mlplatform.validators)."""
from __future__ import annotations

from django import forms

from mlplatform.validators import TextValidator, validate_text


class PlatformForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # per-instance copies of the class's fields
            if isinstance(field, (forms.CharField, forms.FileField)) and not any(
                    isinstance(v, TextValidator) for v in field.validators):
                field.validators.append(validate_text)
