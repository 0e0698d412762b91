"""Middleware of our own.

- SecurityHeadersMiddleware: the Content-Security-Policy on every answer (pages load scripts from /static/
  only: no inline script, no inline event handler, no eval), and `Cache-Control: no-store` on the API,
  whose answers (tokens, members, predictions) must never sit in a browser's or a proxy's cache.
- UrlTextMiddleware: the path and the query parameters of every request go through the one text rule
  (training.ml.text), so no control character (a NUL, say, which PostgreSQL cannot store or compare) ever
  reaches a query: a 400 naming the parameter, JSON on the API, a page elsewhere.
"""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

from training.ml.text import text_problem


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        if request.path_info.startswith("/api/"):
            response["Cache-Control"] = "no-store"
        return response


class UrlTextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = _url_text_problem(request)
        if problem is None:
            return self.get_response(request)
        if request.path_info.startswith("/api/"):
            name, message = problem
            return JsonResponse({"detail": message, "errors": {name: [message]}}, status=400)
        return render(request, "errors/400.html", {"reason": problem[1]}, status=400)


def _url_text_problem(request) -> tuple[str, str] | None:
    """(parameter, message) for the first part of the URL that is not acceptable text, else None."""
    problem = text_problem(request.path_info)
    if problem:
        return "path", f"The path {problem}."
    for name, values in request.GET.lists():
        for text in (name, *values):
            problem = text_problem(text)
            if problem:
                return name, f"Query parameter '{name}' {problem}."
    return None
