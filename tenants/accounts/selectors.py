"""Reads of members and audit events in the current organization's schema."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from .models import AuditEvent, Membership


def membership_for(user) -> Membership | None:
    """The user's membership here, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if not hasattr(user, "_membership_cache"):
        user._membership_cache = Membership.objects.filter(user_id=user.pk).first()
    return user._membership_cache


def member_list() -> QuerySet:
    return get_user_model().objects.select_related("membership").filter(membership__isnull=False).order_by("username")


def member_get(user_id: int):
    return member_list().get(pk=user_id)


def audit_event_list(*, action: str | None = None, actor: str | None = None) -> QuerySet:
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor=actor)
    return qs
