"""Response headers every answer gets: the Content-Security-Policy (pages load scripts from /static/ only:
no inline script, no inline event handler, no eval), and `Cache-Control: no-store` on the API, whose
answers (tokens, members, predictions) must never sit in a browser's or a proxy's cache."""
from __future__ import annotations

from django.conf import settings


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        if request.path_info.startswith("/api/"):
            response["Cache-Control"] = "no-store"
        return response
