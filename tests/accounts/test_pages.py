"""Sign-in, members and audit pages through Django's test client."""
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def signed_in(org, role) -> Client:
    client = Client(HTTP_HOST=org.host)
    response = client.post("/login/", {"username": role, "password": f"{role}-pass-123"})
    assert response.status_code == 302, response.content
    return client


def test_dashboard_requires_sign_in(acme):
    response = Client(HTTP_HOST=acme.host).get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_wrong_password_shows_a_clear_message(acme):
    response = Client(HTTP_HOST=acme.host).post("/login/", {"username": "viewer", "password": "wrong"})
    assert response.status_code == 400
    assert b"Wrong username or password for this organization." in response.content


def test_user_of_one_organization_cannot_sign_in_on_another(acme, globex):
    from django_tenants.utils import schema_context

    from tenants.accounts.services import member_create

    with schema_context(acme.schema):
        member_create(actor="tests", username="acme-person", password="acme-person-1", role="editor")
    response = Client(HTTP_HOST=globex.host).post("/login/", {"username": "acme-person", "password": "acme-person-1"})
    assert response.status_code == 400
    assert Client(HTTP_HOST=acme.host).post("/login/", {"username": "acme-person", "password": "acme-person-1"}).status_code == 302


def test_session_of_one_organization_is_not_valid_on_another(acme, globex):
    client = signed_in(acme, "owner")
    session_cookie = client.cookies["sessionid"].value
    other = Client(HTTP_HOST=globex.host)
    other.cookies["sessionid"] = session_cookie
    assert other.get("/").status_code == 302  # sent to sign in


def test_dashboard_shows_user_and_role(acme):
    response = signed_in(acme, "editor").get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="current-user">editor<' in html
    assert 'data-testid="current-role">editor<' in html
    assert "Members" not in html  # only owners see member management


def test_owner_adds_a_member_on_the_members_page(acme):
    client = signed_in(acme, "owner")
    response = client.post("/members/", {"username": "paula", "password": "paula-pass-77", "role": "editor"}, follow=True)
    assert response.status_code == 200
    assert b"paula was added as editor." in response.content
    audit = client.get("/audit/").content.decode()
    assert "member_added" in audit and "paula" in audit


def test_members_page_shows_field_errors(acme):
    response = signed_in(acme, "owner").post("/members/", {"username": "p2", "password": "short", "role": "editor"})
    assert response.status_code == 400
    assert b"too short" in response.content


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_members_and_audit_pages_are_for_owners(acme, role):
    client = signed_in(acme, role)
    assert client.get("/members/").status_code == 403
    assert client.post(f"/members/{acme.user_ids['viewer']}/", {"role": "owner"}).status_code == 403
    assert client.get("/audit/").status_code == 403


def test_sign_out_ends_the_session(acme):
    client = signed_in(acme, "viewer")
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_changes_in_the_organization_admin_are_audited_and_apply_at_once(acme):
    from django_tenants.utils import schema_context

    from tenants.accounts.models import AuditEvent, Membership

    viewer_token = acme.client("viewer")
    assert viewer_token.get("/api/v1/me").json()["role"] == "viewer"
    with schema_context(acme.schema):
        membership = Membership.objects.get(user__username="viewer")
    owner = signed_in(acme, "owner")
    response = owner.post(f"/admin/accounts/membership/{membership.pk}/change/",
                          {"user": membership.user_id, "role": "editor"})
    assert response.status_code == 302, response.content.decode()[:2000]
    with schema_context(acme.schema):
        event = AuditEvent.objects.filter(action="admin_changed").latest("created")
    assert event.actor == "owner" and event.detail["model"] == "membership"
    assert viewer_token.get("/api/v1/me").json()["role"] == "editor"
