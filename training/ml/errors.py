"""The one error type of the ML package: plain Python, no Django.

The web layer maps it to a 400 (or the status it carries) with the field named,
so a message here must be one a user can act on.
"""
from __future__ import annotations


class MLInputError(ValueError):
    """Input a user can fix: a bad file, an unknown column, a value out of range."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def as_dict(self) -> dict:
        return {self.field or "detail": [self.message]}


class JobCancelled(Exception):
    """Raised from a progress callback when the user asked to stop the job."""


class JobTimedOut(Exception):
    """Raised from a progress callback when the job went past its time limit."""
