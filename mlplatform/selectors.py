"""Cross-app reads for the dashboard."""
from __future__ import annotations

from django.contrib.auth import get_user_model

from models_registry.models import Alias, RegisteredModel
from tenants.accounts.models import AuditEvent
from training.models import ACTIVE_STATES, Dataset, TrainingJob


def dashboard_summary() -> dict:
    return {
        "members": get_user_model().objects.filter(is_active=True, membership__isnull=False).count(),
        "stats": [
            {"label": "Datasets", "value": Dataset.objects.count()},
            {"label": "Jobs queued or running", "value": TrainingJob.objects.filter(status__in=ACTIVE_STATES).count()},
            {"label": "Registered models", "value": RegisteredModel.objects.count()},
            {"label": "In production", "value": Alias.objects.filter(name="production").count()},
        ],
        "recent_jobs": list(TrainingJob.objects.select_related("model_version__registered_model")
                            .defer("log", "result", "config")[:5]),
        "recent_events": list(AuditEvent.objects.all()[:8]),
    }
