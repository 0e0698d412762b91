"""Hosts, health, API docs, settings checks."""
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

pytestmark = pytest.mark.django_db


def test_unknown_host_is_a_404_page_not_a_500(orgs):
    response = Client(HTTP_HOST="nope.localhost").get("/")
    assert response.status_code == 404
    assert b"no organization is served at" in response.content


def test_public_host_shows_the_landing_page(orgs):
    response = Client(HTTP_HOST="localhost").get("/")
    assert response.status_code == 200
    assert b"Where to sign in" in response.content


def test_openapi_schema_and_docs_are_served_without_a_cdn(acme):
    schema = acme.client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/auth/token" in paths and "/api/v1/me" in paths
    docs = acme.client().get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs"):
        assert cdn not in html


def test_healthz_reports_database_and_a_missing_worker(acme):
    from tenants.models import WorkerHeartbeat

    WorkerHeartbeat.objects.all().delete()
    response = Client(HTTP_HOST="localhost").get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["worker"]["alive"] is False


def test_healthz_is_ok_with_a_fresh_worker_heartbeat(acme):
    from mlplatform.jobs import touch_worker_heartbeat

    touch_worker_heartbeat(min_interval_s=0)
    response = Client(HTTP_HOST=acme.host).get("/healthz")
    assert response.status_code == 200
    assert response.json()["worker"]["alive"] is True


def test_q_cluster_timeout_must_be_below_retry():
    from mlplatform.settings.base import check_q_cluster

    with pytest.raises(ImproperlyConfigured, match="must be smaller than retry"):
        check_q_cluster({"timeout": 600, "retry": 600})
    check_q_cluster({"timeout": 600, "retry": 700})


def test_production_settings_refuse_the_development_key(monkeypatch):
    import importlib
    import sys

    monkeypatch.delenv("SECRET_KEY", raising=False)
    sys.modules.pop("mlplatform.settings.production", None)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        importlib.import_module("mlplatform.settings.production")


def test_cached_values_do_not_cross_organizations(acme, globex):
    from django.core.cache import cache
    from django_tenants.utils import schema_context

    with schema_context(acme.schema):
        cache.set("shared-name", "acme's value")
    with schema_context(globex.schema):
        assert cache.get("shared-name") is None
        cache.set("shared-name", "globex's value")
    with schema_context(acme.schema):
        assert cache.get("shared-name") == "acme's value"


def test_stored_files_do_not_cross_organizations(acme, globex):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django_tenants.utils import schema_context

    with schema_context(acme.schema):
        name = default_storage.save("probe/secret.txt", ContentFile(b"acme only"))
        acme_path = default_storage.path(name)
    with schema_context(globex.schema):
        assert not default_storage.exists(name)
        assert default_storage.path(name) != acme_path
    with schema_context(acme.schema):
        default_storage.delete(name)


def test_the_platform_admin_sets_an_organizations_memory_per_job(acme):
    from django.contrib.auth import get_user_model

    from tenants.models import Domain, Organization

    admin_user = get_user_model().objects.create_superuser("platform-admin", "", "platform-pass-123")
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin_user)
    org = Organization.objects.get(schema_name=acme.schema)
    url = f"/admin/tenants/organization/{org.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b'name="max_job_memory_mb"' in page.content
    assert f'value="{org.max_job_memory_mb}"'.encode() in page.content

    domains = list(Domain.objects.filter(tenant=org))
    form = {"name": org.name, "slug": org.slug, "max_concurrent_jobs": org.max_concurrent_jobs,
            "storage_quota_mb": org.storage_quota_mb, "max_upload_mb": org.max_upload_mb,
            "api_rate_per_minute": org.api_rate_per_minute, "api_burst": org.api_burst,
            "domains-TOTAL_FORMS": len(domains), "domains-INITIAL_FORMS": len(domains),
            "domains-MIN_NUM_FORMS": 0, "domains-MAX_NUM_FORMS": 1000}
    for i, domain in enumerate(domains):
        form |= {f"domains-{i}-id": domain.pk, f"domains-{i}-tenant": org.pk, f"domains-{i}-domain": domain.domain,
                 f"domains-{i}-is_primary": "on" if domain.is_primary else ""}

    too_small = client.post(url, {**form, "max_job_memory_mb": 10})
    assert too_small.status_code == 200 and b"greater than or equal to 64" in too_small.content
    saved = client.post(url, {**form, "max_job_memory_mb": 1536})
    assert saved.status_code == 302, saved.content.decode()[:3000]
    org.refresh_from_db()
    assert org.max_job_memory_mb == 1536


def test_a_new_organization_gets_the_memory_limit_from_the_settings(settings):
    from tenants.models import Organization

    settings.JOB_MEMORY_LIMIT_MB = 777
    assert Organization(name="x", slug="x", schema_name="x").max_job_memory_mb == 777


def test_migrating_alone_makes_the_cache_table_and_sign_in_never_needs_it(acme, committed):
    """Schemas migrated without setup_platform (the usual django-tenants step) give a working platform."""
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    table = settings.CACHES["default"]["LOCATION"]
    if "DatabaseCache" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("the cache is not the database here")
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{table}"')
        cursor.execute("DELETE FROM django_migrations WHERE app = 'mlplatform' AND name = '0002_cache_table'")
    try:
        # given no cache table, sign-in still works: its counters are in the organization's own tables
        response = acme.client().post("/api/v1/auth/token", {"username": "viewer", "password": "viewer-pass-123"},
                                      format="json")
        assert response.status_code == 200, response.content
        # when the schemas are migrated, the table is there again
        connection.set_schema_to_public()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        connection.set_schema_to_public()
        assert table in connection.introspection.table_names()
        cache.set("probe", 1)
        assert cache.get("probe") == 1
    finally:
        connection.set_schema_to_public()
        call_command("createcachetable", verbosity=0)


def test_the_schema_says_what_members_answers_hold(acme):
    """A member without an email is answered with "": the schema must not promise an email address."""
    schema = acme.client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    email = schema["components"]["schemas"]["MemberOutput"]["properties"]["email"]
    assert email["type"] == "string" and "format" not in email
    me = acme.client("viewer").get("/api/v1/me").json()
    assert me["user"]["email"] == ""
    # and every operation documents its errors, in one shape
    token = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert {"400", "413", "415", "429"} <= set(token) and "401" not in token
    predict = schema["paths"]["/api/v1/ml/models/{version_id}/predict"]["post"]["responses"]
    assert {"400", "401", "403", "404", "413", "429"} <= set(predict)
    assert predict["429"]["headers"]["Retry-After"]["required"] is True
