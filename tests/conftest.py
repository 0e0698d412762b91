"""Session-wide fixtures: three organizations (demo, acme, globex) created once, each with one member per role.

Data made here is committed in the test database, so real servers and workers started by tests see it.
Per-test data uses the `db` fixture (rolled back) unless a test needs a separate process to see it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import shutil

import numpy as np
import pandas as pd

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

PASSWORDS = {"owner": "owner-pass-123", "editor": "editor-pass-123", "viewer": "viewer-pass-123"}


@dataclass
class Org:
    slug: str
    schema: str
    host: str
    tokens: dict = field(default_factory=dict)
    user_ids: dict = field(default_factory=dict)

    def client(self, role: str | None = None) -> APIClient:
        """An API client on this organization's host, authenticated with the role's token (anonymous if None)."""
        client = APIClient(HTTP_HOST=self.host)
        if role:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[role]}")
        return client


def _make_org(slug: str) -> Org:
    from tenants.accounts.services import member_create, token_for
    from tenants.models import Organization
    from tenants.services import organization_create

    if slug == "demo":
        call_command("seed_demo", verbosity=0)
        org = Organization.objects.get(slug="demo")
    else:
        org = organization_create(name=slug.title(), slug=slug, owner_username="owner", owner_password=PASSWORDS["owner"])
    result = Org(slug=slug, schema=org.schema_name, host=org.get_primary_domain().domain)
    with schema_context(org.schema_name):
        from django.contrib.auth import get_user_model

        User = get_user_model()
        for role, password in PASSWORDS.items():
            user = User.objects.filter(username=role).first()
            if user is None:
                user = member_create(actor="tests", username=role, password=password, role=role)
            else:
                user.set_password(password)
                user.save()
            result.user_ids[role] = user.pk
            result.tokens[role] = token_for(user).key
    return result


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    """Always the test database, also for sessions whose tests only use real commits (no `django_db` mark):
    pytest-django's own fixture creates it only for marked tests."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    from models_registry.monitoring import stats_buffer

    with django_db_blocker.unblock():
        stats_buffer.stop()
        with connection.cursor() as cursor:  # a worker or server thread a test started may still hold a session
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        connection.close()
        teardown_databases(config, verbosity=0)
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def orgs(django_db_setup, django_db_blocker) -> dict[str, Org]:
    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"].startswith("test_"), "tests must never touch the real database"
        made = {slug: _make_org(slug) for slug in ("demo", "acme", "globex")}
        connection.set_schema_to_public()
    return made


@pytest.fixture
def acme(orgs) -> Org:
    return orgs["acme"]


@pytest.fixture
def globex(orgs) -> Org:
    return orgs["globex"]


@pytest.fixture(autouse=True)
def _back_to_public_schema():
    """Requests switch the shared connection to their organization's schema; start each test from public."""
    yield
    if connection.connection is not None or connection.in_atomic_block:
        connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _fresh_hot_caches():
    """The prediction caches hold rows a rolled-back test wrote: each test starts without them."""
    from mlplatform import hotcache
    from mlplatform.api.throttling import process_store

    hotcache.forget_everything()
    process_store.clear()  # each test starts with every caller's full API budget
    yield


def at_once(call, arguments: list) -> list:
    """`call(argument)` for each argument, each in its own thread, all released at the same moment; the
    answers in the order they came. Each thread uses (and closes) its own database connection, so what they
    race for must be committed (the `committed` fixture)."""
    import threading

    start, answers = threading.Barrier(len(arguments)), []

    def run(argument):
        start.wait(timeout=30)
        try:
            answers.append(call(argument))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.fixture
def committed(django_db_blocker):
    """Database access without the per-test transaction: what the test writes is visible to other processes."""
    with django_db_blocker.unblock():
        yield
        connection.set_schema_to_public()


# --- Model versions trained once per session in acme (committed: the runner's monitor thread must see them) ---


def regression_table(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.uniform(20, 200, n).round(1), "rooms": rng.integers(1, 6, n),
                          "area": rng.choice(["north", "south"], n)})
    frame["price"] = (frame["size"] * 3 + frame["rooms"] * 10 + (frame["area"] == "south") * 50
                      + rng.normal(0, 5, n)).round(2)
    return frame


def train_version(org, dataset_id: int, **settings) -> dict:
    from training.runner import run_training_job

    response = org.client("editor").post("/api/v1/ml/training/start", {"dataset_id": dataset_id, **settings}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    with schema_context(org.schema):
        assert run_training_job(job_id) == "succeeded"
    job = org.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()
    return org.client("viewer").get(f"/api/v1/ml/models/{job['model_version_id']}").json()


@pytest.fixture(scope="session")
def trained(orgs, django_db_blocker) -> dict:
    from tests.training.conftest import csv_bytes, table, upload

    acme = orgs["acme"]
    with django_db_blocker.unblock():
        churn_data = upload(acme, csv_bytes(table(400)), name="churn-data").json()
        price_data = upload(acme, csv_bytes(regression_table()), name="price-data").json()
        versions = {
            "churn_v1": train_version(acme, churn_data["id"], target="label", model_name="churn", algorithm="random_forest",
                              params={"n_estimators": 30}, cv_folds=3),
            "churn_v2": train_version(acme, churn_data["id"], target="label", model_name="churn", algorithm="logistic_regression",
                              cv_folds=3),
            "price_v1": train_version(acme, price_data["id"], target="price", model_name="price", algorithm="ridge", cv_folds=3),
        }
    return {"datasets": {"churn": churn_data, "price": price_data}, **versions}


@pytest.fixture(scope="session")
def world(orgs, django_db_blocker):
    """Organization `initech` with an object of every kind the pages show (tests/world.py), made once."""
    from tests.world import build_world

    with django_db_blocker.unblock():
        return build_world(_make_org)
