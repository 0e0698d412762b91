"""Shared helpers for server-rendered pages: role checks and turning application errors into form messages."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.views.decorators.http import require_http_methods

from tenants.accounts.selectors import membership_for


#: A page with a form: shown with GET (or HEAD), sent with POST; any other method answers 405. Pages without a form
#: use Django's `require_safe`, actions `require_POST`.
require_form = require_http_methods(["GET", "HEAD", "POST"])


def member_required(role: str = "viewer"):
    """Sign-in required; then the member needs at least `role` (403 page otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = membership_for(request.user)
            if membership is None:
                raise PermissionDenied("You are not a member of this organization.")
            if not membership.has_role(role):
                raise PermissionDenied(f"This needs the {role} role; yours is {membership.role}.")
            return view(request, *args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator


def has_role(request, role: str) -> bool:
    membership = membership_for(request.user)
    return bool(membership and membership.has_role(role))
