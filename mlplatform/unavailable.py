"""Answers for a request the platform cannot serve right now, instead of a 500 and a traceback.

- The database is down or unreachable (PostgreSQL stopped, restarting, network cut): 503 with a JSON body
  naming the problem for the API (``{"detail": ..., "code": "database_unavailable"}``) and a plain page for
  browsers, with ``Retry-After``. Nothing is cached about the failure: the next request tries the database
  again (Django reconnects; ``CONN_HEALTH_CHECKS`` drops a dead persistent connection), so service resumes
  by itself when the database is back. One warning line is logged per request, not a traceback.
- An application error that a page view did not handle (a stored file whose encryption key is not
  configured: 503; a stored file that failed its integrity check: 409): the same status with its message,
  as JSON for the API and as a plain page otherwise. (DRF views already answer these through the API's
  exception handler.)

The database can fail anywhere in a request: in the organization lookup of the first middleware, in a
view, while saving the session. Django turns an exception raised inside the middleware chain into a 500
response before an outer middleware sees it, so the middleware here catches what views raise
(``process_exception``), and a ``got_request_exception`` receiver marks requests whose failure anywhere
else was the database; the middleware, first in ``MIDDLEWARE``, then replaces their 500 with the 503.
"""
from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from mlplatform.errors import ApplicationError

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
DATABASE_MESSAGE = "The database is unavailable at the moment; nothing was changed. Try again in a few seconds."
_MARK = "_mlplatform_database_unavailable"


def is_database_unavailable(exc: BaseException | None) -> bool:
    """A connection-level database failure (refused, dropped, server shutting down), seen through Django's
    wrappers; also when it surfaced as the cause of another error."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (OperationalError, InterfaceError)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return (request.path_info.startswith(("/api/", "/v2/", "/healthz"))
            or ("application/json" in accept and "text/html" not in accept))


def error_response(request, *, status: int, message: str, code: str, retry_after: int | None = None) -> HttpResponse:
    if wants_json(request):
        response = JsonResponse({"detail": message, "code": code}, status=status)
    else:  # rendered without the request: no context processor may touch the database
        response = HttpResponse(render_to_string("errors/unavailable.html", {"status": status, "message": message}),
                                status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


def database_unavailable_response(request) -> HttpResponse:
    logger.warning("database unavailable: answered 503 to %s %s", request.method, request.path_info)
    return error_response(request, status=503, message=DATABASE_MESSAGE, code="database_unavailable",
                          retry_after=RETRY_AFTER_S)


class UnavailableMiddleware:
    """First in MIDDLEWARE: turns a database outage anywhere in the request into a 503 (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            response = self.get_response(request)
        except Exception as exc:  # the 500 handler itself failed on the database
            if is_database_unavailable(exc):
                return database_unavailable_response(request)
            raise
        if getattr(request, _MARK, False):
            return database_unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            return database_unavailable_response(request)
        if isinstance(exception, ApplicationError):
            return error_response(request, status=exception.status, message=exception.message,
                                  code=exception.extra.get("code", "error"))
        return None


def _mark_database_failures(sender, request=None, **kwargs) -> None:
    if request is not None and is_database_unavailable(sys.exc_info()[1]):
        setattr(request, _MARK, True)


class HideDatabaseOutageTracebacks(logging.Filter):
    """For the `django.request` logger: a request failed by a database outage is logged once, in one line,
    by this module; the traceback Django would add to each of them says nothing more."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and is_database_unavailable(record.exc_info[1]))


def install() -> None:
    """Connect the signal receiver and the log filter (called once, from the app's ready())."""
    got_request_exception.connect(_mark_database_failures, dispatch_uid="mlplatform-database-unavailable")
    request_logger = logging.getLogger("django.request")
    if not any(isinstance(f, HideDatabaseOutageTracebacks) for f in request_logger.filters):
        request_logger.addFilter(HideDatabaseOutageTracebacks())
