"""Creating organizations: schema, domain and first owner, all or nothing from the user's point of view."""
from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django_tenants.utils import schema_context

from mlplatform.errors import ApplicationError

from .models import RESERVED_SLUGS, SLUG_PATTERN, Domain, Organization


def organization_domain(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def organization_url(org: Organization) -> str:
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT not in (80, 443) else ""
    return f"http://{org.get_primary_domain().domain}{port}/"


def organization_create(*, name: str, slug: str, owner_username: str, owner_password: str) -> Organization:
    """Create the organization's schema (migrated), its domain and its owner."""
    from tenants.accounts.services import member_create

    slug = slug.strip().lower()
    if not re.match(SLUG_PATTERN, slug) or slug in RESERVED_SLUGS:
        raise ApplicationError(
            f"'{slug}' cannot be an organization slug: use 2-40 lowercase letters, digits or hyphens, "
            f"starting with a letter, and none of: {', '.join(sorted(RESERVED_SLUGS))}.", field="slug")
    if Organization.objects.filter(slug=slug).exists():
        raise ApplicationError(f"An organization with slug '{slug}' already exists.", field="slug", status=409)
    if not name.strip():
        raise ApplicationError("Name is required.", field="name")
    if not owner_username.strip():
        raise ApplicationError("The owner's username is required.", field="owner_username")
    try:
        validate_password(owner_password)
    except ValidationError as exc:  # checked before the schema exists, so nothing is left behind
        raise ApplicationError(" ".join(exc.messages), field="owner_password") from exc

    org = Organization(name=name.strip(), slug=slug, schema_name=slug.replace("-", "_"))
    try:
        org.full_clean()
    except ValidationError as exc:
        raise ApplicationError("; ".join(exc.messages), field="slug") from exc
    try:
        org.save()  # creates and migrates the schema
    except IntegrityError as exc:  # created meanwhile by a parallel request: the unique slug decides
        raise ApplicationError(f"An organization with slug '{slug}' already exists.", field="slug", status=409) from exc
    try:
        with transaction.atomic():
            Domain.objects.create(domain=organization_domain(slug), tenant=org, is_primary=True)
            with schema_context(org.schema_name):
                member_create(actor="system", username=owner_username, password=owner_password, role="owner")
    except Exception:
        org.auto_drop_schema = True
        org.delete(force_drop=True)
        raise
    return org


def public_domain_ensure() -> None:
    """Serve the public pages at BASE_DOMAIN even if it changed since the first migration."""
    public = Organization.objects.get(schema_name="public")
    Domain.objects.get_or_create(domain=settings.BASE_DOMAIN, defaults={"tenant": public, "is_primary": False})
