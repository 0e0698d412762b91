"""The application error: raised by services for input a user can fix, mapped to a 4xx by pages and the API."""
from __future__ import annotations


class ApplicationError(Exception):
    def __init__(self, message: str, *, field: str | None = None, status: int = 400, extra: dict | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}  # e.g. Retry-After on a 429

    def as_dict(self) -> dict:
        body: dict = {"detail": self.message}
        if self.field:
            body["errors"] = {self.field: [self.message]}
        body.update(self.extra)
        return body
