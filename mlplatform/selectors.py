"""Cross-app reads for the dashboard."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from tenants.accounts.models import AuditEvent


def dashboard_summary() -> dict:
    return {
        "members": get_user_model().objects.filter(is_active=True, membership__isnull=False).count(),
        "recent_events": list(AuditEvent.objects.all()[:8]),
    }
