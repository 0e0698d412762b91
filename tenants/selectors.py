from __future__ import annotations

from django.db.models import QuerySet

from .models import Organization


def organization_list() -> QuerySet:
    return Organization.objects.exclude(schema_name="public").prefetch_related("domains")


def current_organization() -> Organization:
    """The organization of the current connection, also under schema_context (which only knows the schema name)."""
    from django.db import connection

    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Organization):
        return tenant
    return Organization.objects.get(schema_name=connection.schema_name)
