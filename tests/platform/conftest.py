from __future__ import annotations

import pytest
from django.conf import settings

from tests.access_policy import ORGANIZATION_CALLERS, PUBLIC_CALLERS, Principal
from tests.conftest import PASSWORDS
from tests.urlwalk import Caller, signed_in_cookies


@pytest.fixture
def callers(world, db) -> dict[str, dict[Principal, Caller]]:
    """Every principal of the policy, ready to call the organization's host (`initech`) or the public one.
    Sessions are opened through the sign-in forms, inside the test's transaction. "rival at home" is the other
    organization's owner on that organization's own host."""
    org, other = world.org, world.rival

    def member(role: str) -> Caller:
        return Caller(org.host, signed_in_cookies(org.host, "/login/", role, PASSWORDS[role]), f"Token {org.tokens[role]}")

    made = {"editor deactivated after signing in": _deactivated_after_signing_in(org)}
    made |= {
        "anonymous": Caller(org.host),
        "viewer": member("viewer"), "editor": member("editor"), "owner": member("owner"),
        "API key in scope": Caller(org.host, authorization=f"Api-Key {world.key_secrets['in']}"),
        "API key out of scope": Caller(org.host, authorization=f"Api-Key {world.key_secrets['out']}"),
        "owner of another organization": Caller(
            org.host, signed_in_cookies(other.host, "/login/", "owner", PASSWORDS["owner"]), f"Token {other.tokens['owner']}"),
    }
    public_host = settings.BASE_DOMAIN
    public = {"anonymous": Caller(public_host),
              "platform superuser": Caller(public_host, signed_in_cookies(public_host, "/admin/login/", *world.superuser))}
    rival = Caller(other.host, made["owner of another organization"].cookies, f"Token {other.tokens['owner']}")
    return {"organization": {p: made[p.name] for p in ORGANIZATION_CALLERS},
            "public": {p: public[p.name] for p in PUBLIC_CALLERS},
            "rival at home": rival}


def _deactivated_after_signing_in(org) -> Caller:
    """A member who signed in and got a token, then was deactivated (all inside the test's transaction)."""
    from django_tenants.utils import schema_context

    from tenants.accounts.services import member_create, member_update, token_for

    with schema_context(org.schema):
        leaver = member_create(actor="tests", username="leaver", password="leaver-pass-123", role="editor")
        token = token_for(leaver).key
    cookies = signed_in_cookies(org.host, "/login/", "leaver", "leaver-pass-123")
    with schema_context(org.schema):
        member_update(actor="tests", user=leaver, is_active=False)
    return Caller(org.host, cookies, f"Token {token}")
