from django.db import connection
from django.urls import NoReverseMatch, reverse
from django_tenants.utils import get_public_schema_name

from tenants.accounts.selectors import membership_for

NAVIGATION = [
    ("dashboard", "Dashboard", "viewer"),
    ("datasets", "Datasets", "viewer"),
    ("training", "Training", "viewer"),
    ("models", "Models", "viewer"),
    ("members", "Members", "owner"),
    ("api_keys", "API keys", "owner"),
    ("audit", "Audit log", "owner"),
]


def workspace(request):
    """The organization, the signed-in member's role and the navigation they may see."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or connection.schema_name == get_public_schema_name():
        return {"organization": None}
    membership = membership_for(getattr(request, "user", None))
    nav = [(name, label, url) for name, label, role in NAVIGATION
           if membership and membership.has_role(role) and (url := _url(name))]
    match = getattr(request, "resolver_match", None)
    return {
        "organization": tenant,
        "membership": membership,
        "navigation": nav,
        "current_section": match.url_name.split("-")[0] if match and match.url_name else "",
    }


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:  # a section whose app is not installed
        return None
