"""Tokens, /me, members and the audit log through the API: roles and organization boundaries."""
import pytest
from django_tenants.utils import schema_context

pytestmark = pytest.mark.django_db


def test_token_from_password_works_on_its_organization(acme):
    # given an editor of acme
    client = acme.client()
    # when they exchange username and password for a token
    response = client.post("/api/v1/auth/token", {"username": "editor", "password": "editor-pass-123"}, format="json")
    # then the token authenticates them on acme
    assert response.status_code == 200, response.content
    assert response.json()["organization"] == "acme"
    me = acme.client()
    me.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    body = me.get("/api/v1/me").json()
    assert body["user"]["username"] == "editor"
    assert body["role"] == "editor"
    assert body["organization"]["slug"] == "acme"


def test_bearer_keyword_is_accepted(acme):
    client = acme.client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.tokens['viewer']}")
    assert client.get("/api/v1/me").json()["role"] == "viewer"


def test_token_of_one_organization_is_rejected_by_another(acme, globex):
    client = globex.client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {acme.tokens['owner']}")
    response = client.get("/api/v1/me")
    assert response.status_code == 401


def test_user_of_one_organization_cannot_get_a_token_on_another(acme, globex, orgs):
    # given a member who exists only in acme
    with schema_context(acme.schema):
        from tenants.accounts.services import member_create

        member_create(actor="tests", username="only-in-acme", password="only-in-acme-1", role="viewer")
    # when they try their password on globex
    response = globex.client().post("/api/v1/auth/token", {"username": "only-in-acme", "password": "only-in-acme-1"}, format="json")
    # then globex does not know them
    assert response.status_code == 400
    assert "Wrong username or password" in response.json()["detail"]


def test_wrong_password_is_a_clear_400_and_repeated_failures_lock(acme, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    client = acme.client()
    for _ in range(3):
        response = client.post("/api/v1/auth/token", {"username": "viewer", "password": "nope"}, format="json")
        assert response.status_code == 400
        assert response.json()["detail"] == "Wrong username or password for this organization."
    # even the right password is refused while locked
    response = client.post("/api/v1/auth/token", {"username": "viewer", "password": "viewer-pass-123"}, format="json")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.json()["detail"]


def test_lockout_in_one_organization_does_not_lock_the_same_username_elsewhere(acme, globex, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        acme.client().post("/api/v1/auth/token", {"username": "owner", "password": "bad"}, format="json")
    assert acme.client().post("/api/v1/auth/token", {"username": "owner", "password": "owner-pass-123"}, format="json").status_code == 429
    assert globex.client().post("/api/v1/auth/token", {"username": "owner", "password": "owner-pass-123"}, format="json").status_code == 200


@pytest.mark.parametrize("body, content_type, field", [
    ("{not json", "application/json", None),
    ("{}", "application/json", "username"),
    ('{"username": "x"}', "application/json", "password"),
])
def test_malformed_or_missing_json_is_a_400_that_says_what_is_wrong(acme, body, content_type, field):
    response = acme.client().post("/api/v1/auth/token", body, content_type=content_type)
    assert response.status_code == 400
    data = response.json()
    if field is None:
        assert "JSON parse error" in data["detail"]
    else:
        assert field in data["errors"]
        assert "required" in data["errors"][field][0]


def test_anonymous_is_401(acme):
    assert acme.client().get("/api/v1/me").status_code == 401


def test_owner_adds_member_changes_role_and_deactivates(acme):
    owner = acme.client("owner")
    created = owner.post("/api/v1/members", {"username": "newbie", "password": "newbie-pass-9", "role": "viewer"}, format="json")
    assert created.status_code == 201, created.content
    user_id = created.json()["id"]
    assert owner.patch(f"/api/v1/members/{user_id}", {"role": "editor"}, format="json").json()["role"] == "editor"
    token = acme.client().post("/api/v1/auth/token", {"username": "newbie", "password": "newbie-pass-9"}, format="json").json()["token"]
    assert owner.patch(f"/api/v1/members/{user_id}", {"is_active": False}, format="json").json()["is_active"] is False
    # a deactivated member's token stops working and they cannot sign in
    client = acme.client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me").status_code == 401
    assert acme.client().post("/api/v1/auth/token", {"username": "newbie", "password": "newbie-pass-9"}, format="json").status_code == 400
    # and every change is in the audit log
    actions = [e["action"] for e in owner.get("/api/v1/audit").json() if e["object_repr"] == "newbie" and e["action"].startswith("member_")]
    assert actions[:3] == ["member_changed", "member_changed", "member_added"]


def test_member_validation_names_the_field(acme):
    owner = acme.client("owner")
    weak = owner.post("/api/v1/members", {"username": "weak", "password": "123", "role": "viewer"}, format="json")
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    bad_role = owner.post("/api/v1/members", {"username": "x1", "password": "long-enough-1", "role": "admin"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]
    dup = owner.post("/api/v1/members", {"username": "editor", "password": "long-enough-1", "role": "viewer"}, format="json")
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]


def test_last_owner_cannot_be_demoted(acme):
    owner = acme.client("owner")
    response = owner.patch(f"/api/v1/members/{acme.user_ids['owner']}", {"role": "viewer"}, format="json")
    assert response.status_code == 409
    assert "at least one active owner" in response.json()["detail"]


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_owners_manage_members(acme, role):
    client = acme.client(role)
    assert client.get("/api/v1/members").status_code == 403
    assert client.post("/api/v1/members", {"username": "z", "password": "long-enough-1", "role": "viewer"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/members/{acme.user_ids['viewer']}", {"role": "owner"}, format="json").status_code == 403
    assert client.get("/api/v1/audit").status_code == 403


def test_member_of_another_organization_is_404(acme, globex):
    # a user id from globex that acme does not have
    from django.contrib.auth import get_user_model

    from tenants.accounts.services import member_create

    with schema_context(acme.schema):
        acme_ids = set(get_user_model().objects.values_list("pk", flat=True))
    with schema_context(globex.schema):
        n = 0
        while True:  # ids are per schema: find one that acme does not have
            other = member_create(actor="tests", username=f"globex-only-{n}", password="globex-only-1", role="viewer")
            n += 1
            if other.pk not in acme_ids:
                break
    response = acme.client("owner").get(f"/api/v1/members/{other.pk}")
    assert response.status_code == 404
    assert acme.client("owner").patch(f"/api/v1/members/{other.pk}", {"role": "owner"}, format="json").status_code == 404


def test_forbidden_message_names_the_role(acme):
    response = acme.client("viewer").post("/api/v1/members", {}, format="json")
    assert response.status_code == 403
    assert "viewer" in response.json()["detail"]


@pytest.mark.parametrize("name", ["ｅｄｉｔｏｒ１", "EDITOR1", " Editor1 "])
def test_a_username_equal_after_normalisation_is_taken(acme, name):
    owner = acme.client("owner")
    assert owner.post("/api/v1/members", {"username": "editor1", "password": "long-enough-1", "role": "viewer"},
                      format="json").status_code == 201
    response = owner.post("/api/v1/members", {"username": name, "password": "long-enough-1", "role": "viewer"},
                          format="json")
    assert response.status_code == 409, response.content
    assert "username" in response.json()["errors"] and "already exists" in response.json()["detail"]


@pytest.mark.parametrize("name", ["new\nline", "tab\there", "bell\x07", "two words", "a" * 151])
def test_usernames_with_control_characters_spaces_or_too_long_are_refused(acme, name):
    response = acme.client("owner").post("/api/v1/members", {"username": name, "password": "long-enough-1",
                                                             "role": "viewer"}, format="json")
    assert response.status_code == 400, response.content
    assert "username" in response.json()["errors"]


def test_a_username_is_stored_normalised(acme):
    response = acme.client("owner").post("/api/v1/members", {"username": "ｍａｒｉｅ", "password": "long-enough-1",
                                                             "role": "viewer"}, format="json")
    assert response.status_code == 201 and response.json()["username"] == "marie"


def test_two_requests_racing_for_one_name_get_201_and_409_never_500(acme, committed, monkeypatch):
    """Both pass the existence check before either inserts; the database's unique index decides."""
    import threading

    from django.contrib.auth import get_user_model

    from tests.conftest import at_once

    User = get_user_model()
    both_checked = threading.Barrier(2)
    create_user = User.objects.create_user

    def create_user_after_both_checked(*args, **kwargs):
        both_checked.wait(timeout=10)
        return create_user(*args, **kwargs)

    monkeypatch.setattr(User.objects, "create_user", create_user_after_both_checked)
    try:
        answers = at_once(lambda name: acme.client("owner").post(
            "/api/v1/members", {"username": name, "password": "long-enough-1", "role": "viewer"}, format="json"),
            ["racer", "RACER"])
        assert sorted(a.status_code for a in answers) == [201, 409], [a.content for a in answers]
        assert "already exists" in next(a for a in answers if a.status_code == 409).json()["detail"]
    finally:
        with schema_context(acme.schema):
            User.objects.filter(username__iexact="racer").delete()
