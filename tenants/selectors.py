from __future__ import annotations

from django.db.models import QuerySet

from .models import Organization


def organization_list() -> QuerySet:
    return Organization.objects.exclude(schema_name="public").prefetch_related("domains")
