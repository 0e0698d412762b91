"""API rate limits per member and per API key: 429 with Retry-After, exact under parallel requests (in the
process and in Redis), one caller's burst leaves the others alone, and the organization's plan sets them."""
import uuid

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from mlplatform import hotcache
from mlplatform.api.throttling import ProcessRateStore, RedisRateStore
from tenants.middleware import PUBLIC
from tenants.models import Organization
from tests.conftest import at_once
from tests.registry.test_registry_api import api_key_client

RECORD = {"x1": 0.5, "x2": 7.5, "color": "red"}
DEFAULT_RATE = Organization._meta.get_field("api_rate_per_minute").default
DEFAULT_BURST = Organization._meta.get_field("api_burst").default


def _allowed(store, times, key="caller"):
    return sum(store.take(key, per_second=DEFAULT_RATE / 60, burst=DEFAULT_BURST, now=t) == 0 for t in times)


def test_the_defaults_stop_a_burst_of_2000_requests_within_seconds_and_let_normal_use_through():
    # a runaway loop: 2,000 requests in 3 seconds are stopped after the burst and the sustained rate
    runaway = _allowed(ProcessRateStore(), [i * 3 / 2000 for i in range(2000)])
    assert runaway <= DEFAULT_BURST + 3 * DEFAULT_RATE / 60 + 1 < 2000
    # normal use: hundreds a minute, evenly or all at once, never meets the limit
    assert _allowed(ProcessRateStore(), [i * 60 / 900 for i in range(900)]) == 900
    assert _allowed(ProcessRateStore(), [0.0] * 500) == 500
    # and the budget refills at the sustained rate
    store = ProcessRateStore()
    assert _allowed(store, [0.0] * 1000) == DEFAULT_BURST
    assert _allowed(store, [30.0] * 1000) == DEFAULT_RATE / 2


def _set_plan(org, rate, burst):
    Organization.objects.filter(slug=org.slug).update(api_rate_per_minute=rate, api_burst=burst)
    hotcache.bump(PUBLIC)  # the prediction path caches the organization
    hotcache.write_marker(PUBLIC)


@pytest.mark.django_db
def test_over_the_limit_is_a_429_with_retry_after_and_other_callers_are_not_slowed(acme, globex, trained):
    _set_plan(acme, rate=6, burst=3)
    viewer, path = acme.client("viewer"), f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict"
    answers = [viewer.post(path, {"records": [RECORD]}, format="json") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 10
    assert "6 requests per minute" in refused.json()["detail"] and "your token" in refused.json()["detail"]
    assert viewer.get("/api/v1/me").status_code == 429  # one budget per caller, every endpoint
    # another member of the organization, an API key, and another organization each have their own
    assert acme.client("editor").post(path, {"records": [RECORD]}, format="json").status_code == 200
    key_client, _ = api_key_client(acme, "churn")
    assert [key_client.post(path, {"records": [RECORD]}, format="json").status_code for _ in range(4)] == [200] * 3 + [429]
    assert globex.client("viewer").get("/api/v1/me").status_code == 200


def _redis_url():
    try:
        import redis

        url = "redis://localhost:6379/0"
        redis.Redis.from_url(url, socket_connect_timeout=0.3).ping()
        return url
    except Exception:
        return None


@pytest.mark.parametrize("store", ["process", "redis"])
def test_parallel_requests_cannot_overspend(acme, committed, settings, store):
    # given a budget of 10 and 40 requests from one token at the same moment
    if store == "redis":
        settings.REDIS_URL = _redis_url()
        if settings.REDIS_URL is None:
            pytest.skip("Redis does not answer on localhost:6379")
        settings.RATE_LIMIT_NAMESPACE = f"test-{uuid.uuid4().hex}"  # a fresh budget
    else:
        settings.REDIS_URL = ""
    _set_plan(acme, rate=1, burst=10)
    try:
        answers = at_once(lambda _: acme.client("editor").get("/api/v1/me").status_code, range(40))
    finally:
        _set_plan(acme, rate=DEFAULT_RATE, burst=DEFAULT_BURST)
    # then exactly the budget was served
    assert sorted(answers) == [200] * 10 + [429] * 30


def test_the_redis_store_is_atomic_across_threads():
    url = _redis_url()
    if url is None:
        pytest.skip("Redis does not answer on localhost:6379")
    store, key = RedisRateStore(url), uuid.uuid4().hex
    results = at_once(lambda _: store.take(key, per_second=0.01, burst=7), range(30))
    assert sum(r == 0 for r in results) == 7 and all(r > 0 for r in results if r != 0)


@pytest.mark.django_db
def test_the_plan_is_set_in_the_platform_admin(orgs):
    from django.contrib.auth import get_user_model

    with schema_context("public"):
        admin = get_user_model().objects.create_superuser("platform-admin", password="platform-admin-1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    org = Organization.objects.get(slug="acme")
    page = client.get(f"/admin/tenants/organization/{org.pk}/change/")
    assert page.status_code == 200 and b"api_rate_per_minute" in page.content and b"api_burst" in page.content


@pytest.mark.django_db
def test_the_limit_adds_no_query_to_the_warm_prediction_path(acme, trained, django_assert_num_queries):
    _set_plan(acme, rate=1, burst=2)
    viewer, path = acme.client("viewer"), f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict"
    assert viewer.post(path, {"records": [RECORD]}, format="json").status_code == 200  # warms the caches
    with django_assert_num_queries(0):
        assert viewer.post(path, {"records": [RECORD]}, format="json").status_code == 200
    with django_assert_num_queries(0):
        assert viewer.post(path, {"records": [RECORD]}, format="json").status_code == 429
