"""Sign-in throttling cannot be turned against a member: counted per (username, address) and per address,
atomically, with back-off; the client address comes only from trusted proxies; lockouts are audited."""
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone
from django_tenants.utils import schema_context

from mlplatform.client_address import client_address
from tenants.accounts.models import AuditEvent, SignInThrottle
from tests.conftest import at_once

TOKEN = "/api/v1/auth/token"


def _sign_in(org, password, address, username="viewer"):
    return Client(HTTP_HOST=org.host, REMOTE_ADDR=address).post(
        TOKEN, {"username": username, "password": password}, content_type="application/json")


def test_twenty_parallel_wrong_guesses_check_exactly_the_limit_and_the_owner_still_signs_in_elsewhere(
        acme, committed, settings):
    # given an attacker at one address firing 20 wrong guesses at once
    settings.LOGIN_FAILURE_LIMIT = 5
    attacker, owner_address = "203.0.113.7", "198.51.100.20"
    try:
        answers = at_once(lambda _: _sign_in(acme, "wrong-guess", attacker).status_code, range(20))
        # then exactly the limit's worth of passwords were checked, the rest refused
        assert sorted(answers) == [400] * 5 + [429] * 15
        # the right password from the attacker's address waits...
        locked = _sign_in(acme, "viewer-pass-123", attacker)
        assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
        # ...and from the member's own address it works
        assert _sign_in(acme, "viewer-pass-123", owner_address).status_code == 200
    finally:
        with schema_context(acme.schema):
            SignInThrottle.objects.filter(key__contains="203.0.113.7").delete()
            SignInThrottle.objects.filter(key__contains="198.51.100.20").delete()


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_a_lockout_backs_off_and_is_audited_with_its_end(acme, settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_LOCKOUT_SECONDS = 2, 60
    address = "192.0.2.50"
    durations = []
    for round_ in range(3):
        answers = [_sign_in(acme, "nope", address).status_code for _ in range(2)]
        assert answers == [400, 400]
        refused = _sign_in(acme, "viewer-pass-123", address)
        assert refused.status_code == 429
        assert "from your address" in refused.json()["detail"]
        durations.append(int(refused["Retry-After"]))
        with schema_context(acme.schema):  # the lockout runs out
            SignInThrottle.objects.filter(key__startswith="user-address:viewer|").update(
                locked_until=timezone.now() - timedelta(seconds=1))
    assert [round(d / 60) for d in durations] == [1, 2, 4]  # doubling
    assert _sign_in(acme, "viewer-pass-123", address).status_code == 200
    with schema_context(acme.schema):
        events = list(AuditEvent.objects.filter(action__in=["sign_in_locked", "sign_in_lock_ended"]).order_by("id"))
    assert [e.action for e in events] == ["sign_in_locked", "sign_in_lock_ended"] * 3
    assert events[0].detail["scope"] == "username and address" and events[0].detail["address"] == address
    # the end is the time the lock ran out (this test moved it), written when the next attempt came
    assert events[1].detail["until"] < events[1].created.isoformat()
    assert str(events[0].ip_address) == address


@pytestmark_db
def test_spraying_many_usernames_from_one_address_locks_that_address_only(acme, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    sprayer = "192.0.2.99"
    answers = [_sign_in(acme, "Password1", sprayer, username=f"user{i}").status_code for i in range(6)]
    assert answers == [400] * 4 + [429] * 2
    assert "your address" in _sign_in(acme, "viewer-pass-123", sprayer).json()["detail"]
    assert _sign_in(acme, "viewer-pass-123", "192.0.2.100").status_code == 200


@pytestmark_db
def test_successful_sign_ins_do_not_use_up_the_address(acme, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    office = "192.0.2.10"  # many members behind one address
    for _ in range(10):
        assert _sign_in(acme, "viewer-pass-123", office).status_code == 200


@pytestmark_db
def test_usernames_are_compared_after_normalisation_and_without_case(acme):
    assert _sign_in(acme, "viewer-pass-123", "192.0.2.1", username="ＶＩＥＷＥＲ").status_code == 200


def _request(remote, forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def test_forwarded_headers_are_ignored_unless_the_peer_is_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address(_request("203.0.113.5", "1.2.3.4")) == "203.0.113.5"
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(_request("203.0.113.5", "1.2.3.4")) == "203.0.113.5"  # not from our proxy
    # behind two trusted hops, the first address from the right that is not a proxy; what the client
    # itself wrote to the left of it is ignored
    assert client_address(_request("10.0.0.2", "6.6.6.6, 198.51.100.9, 10.0.0.7")) == "198.51.100.9"
    assert client_address(_request("10.0.0.2", "garbage, 10.0.0.7")) == "10.0.0.7"
    assert client_address(_request("10.0.0.2")) == "10.0.0.2"
    assert client_address(_request("::ffff:203.0.113.5")) == "203.0.113.5"


@pytestmark_db
def test_housekeeping_forgets_counters_quiet_for_a_day(acme):
    from tenants.accounts.throttle import prune

    with schema_context(acme.schema):
        old, fresh = timezone.now() - timedelta(days=2), timezone.now()
        SignInThrottle.objects.create(key="address:192.0.2.1", attempts=3, updated=old)
        SignInThrottle.objects.create(key="address:192.0.2.2", attempts=3, updated=fresh)
        assert prune() == 1
        assert list(SignInThrottle.objects.values_list("key", flat=True)) == ["address:192.0.2.2"]


@pytestmark_db
def test_the_sign_in_page_is_throttled_the_same_way(acme, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    page = Client(HTTP_HOST=acme.host, REMOTE_ADDR="192.0.2.77")
    for _ in range(2):
        assert page.post("/login/", {"username": "editor", "password": "nope"}).status_code == 400
    locked = page.post("/login/", {"username": "editor", "password": "editor-pass-123"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert b"Too many failed sign-in attempts" in locked.content
    other = Client(HTTP_HOST=acme.host, REMOTE_ADDR="192.0.2.78")
    assert other.post("/login/", {"username": "editor", "password": "editor-pass-123"}).status_code == 302
