"""A real django-q2 cluster picks up a job queued from an organization and runs it in that organization's schema."""
import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from models_registry.models import ModelVersion

from .conftest import csv_bytes, table, upload

pytestmark = pytest.mark.worker


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else "")
    host = s["HOST"] or s.get("OPTIONS", {}).get("host") or ""
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={quote(host)}" + (f"&port={s['PORT']}" if s.get("PORT") else "")
    return f"postgresql://{auth}@{host}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def qcluster(committed):
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test"}
    proc = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_runs_a_queued_job_in_its_organization(acme, globex, qcluster):
    dataset = upload(acme, csv_bytes(table(300)), name="worker-data").json()
    response = acme.client("editor").post("/api/v1/ml/training/start", {
        "dataset_id": dataset["id"], "target": "label", "model_name": "worker-model", "algorithm": "logistic_regression",
        "cv_folds": 3}, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]

    def finished():
        job = acme.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    try:
        job = wait_for(finished, 120, "the worker to finish the job")
    except AssertionError:
        qcluster.terminate()
        raise AssertionError("the worker did not finish the job; its output:\n" + qcluster.communicate(timeout=30)[0].decode()[-3000:])
    assert job["status"] == "succeeded", job["error"]
    assert job["worker"] if "worker" in job else True
    with schema_context(acme.schema):
        assert ModelVersion.objects.filter(job_id=job_id, registered_model__name="worker-model").exists()
    with schema_context(globex.schema):
        assert not ModelVersion.objects.filter(registered_model__name="worker-model").exists()
    health = Client(HTTP_HOST=acme.host).get("/healthz")
    assert health.status_code == 200 and health.json()["worker"]["alive"] is True
