"""One exception handler for the whole API: every error a user can trigger becomes a clear 4xx."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import (
    ObjectDoesNotExist,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError as DjangoValidationError,
)
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mlplatform.errors import ApplicationError
from training.ml.errors import MLInputError

logger = logging.getLogger(__name__)


def _validation_body(detail) -> dict:
    """DRF's validation detail as {"detail": summary, "errors": {field: [messages]}}. Errors inside a field
    (an item of a list, a value of an object, a nested object's field) keep their place in the message:
    {"column_kinds": ["city.fromat: Unknown field. ..."]}, summarised as "column_kinds.city.fromat: ..."."""
    if isinstance(detail, dict):
        located = {str(field): list(_located(msgs)) for field, msgs in detail.items()}
        errors = {field: [f"{where.lstrip('.')}: {message}" if where else message for where, message in found]
                  for field, found in located.items()}
        first_field, found = next(iter(located.items()), ("detail", [("", "invalid input")]))
        where, message = found[0] if found else ("", "invalid input")
        summary = message if first_field in ("non_field_errors", "detail") else f"{first_field}{where}: {message}"
        return {"detail": summary, "errors": errors}
    messages = [str(m) for m in (detail if isinstance(detail, list) else [detail])]
    return {"detail": "; ".join(messages), "errors": {"non_field_errors": messages}}


def _located(detail, where: str = ""):
    """(place within the field, message) for each message of a field's detail, however deeply nested."""
    if isinstance(detail, dict):
        for key, inner in detail.items():
            place = where if key == "non_field_errors" else f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
            yield from _located(inner, place)
    elif isinstance(detail, list):
        for inner in detail:
            yield from _located(inner, where)
    else:
        yield where, str(detail)


def body_refusal(exc: Exception) -> ApplicationError | None:
    """The answer to a body Django refused to read (too large, too many fields or files), or None.
    Shared by the API's handler and the pages' 400 handler (mlplatform.views.error_400)."""
    if isinstance(exc, RequestDataTooBig):
        mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2**20
        return ApplicationError(
            f"The request body is larger than the {mb:g} MB this server reads. Send fewer records per request "
            "(a batch prediction takes a whole file) or upload data as a file.", status=413)
    if isinstance(exc, TooManyFieldsSent):
        return ApplicationError(f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields.")
    if isinstance(exc, TooManyFilesSent):
        return ApplicationError(f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files.")
    return None


def exception_handler(exc, context):
    exc = body_refusal(exc) or exc
    if isinstance(exc, (ApplicationError, MLInputError)):
        if isinstance(exc, MLInputError):
            exc = ApplicationError(exc.message, field=exc.field, status=exc.status)
        return Response(exc.as_dict(), status=exc.status, headers=exc.headers)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response(_validation_body(detail), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, exceptions.ValidationError):
        return Response(_validation_body(exc.detail), status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = _validation_body(response.data)
    return response
