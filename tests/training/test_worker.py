"""A real django-q2 cluster picks up jobs queued from an organization and runs them in that organization's schema.

One cluster serves the whole module (starting one takes seconds); each test still commits its own data.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context
from sklearn.datasets import load_breast_cancer

from models_registry.models import ModelVersion
from tenants.models import Organization

from .conftest import csv_bytes, table, upload

pytestmark = pytest.mark.worker

TERMINAL = ("succeeded", "failed", "cancelled")


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else "")
    host = s["HOST"] or s.get("OPTIONS", {}).get("host") or ""
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={quote(host)}" + (f"&port={s['PORT']}" if s.get("PORT") else "")
    return f"postgresql://{auth}@{host}:{s.get('PORT') or 5432}/{s['NAME']}"


def start_qcluster(log: Path, **env: str) -> subprocess.Popen:
    """`manage.py qcluster` on the test database, in a process group of its own (so a test can kill the
    whole cluster, workers and job processes included), its output in `log` (`proc.output()` shows the end)."""
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test",
           **env}
    with open(log, "ab") as out:  # a file, not a pipe: nobody reads a pipe while the tests run, and a full one blocks the worker
        proc = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc.output = lambda: log.read_text(errors="replace")[-3000:]
    return proc


def stop_qcluster(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def qcluster(orgs, tmp_path_factory):
    """One `manage.py qcluster` for the module. It needs no database access from here: the session fixtures
    have created the test database and the organizations, and each test commits its own data (`committed`)."""
    proc = start_qcluster(tmp_path_factory.mktemp("qcluster") / "output.log")
    yield proc
    stop_qcluster(proc)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def job_status(org, job_id: int) -> dict:
    response = org.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()


def wait_until_finished(org, job_ids: list[int], qcluster, timeout: float) -> dict[int, dict]:
    """Poll the API like a user would until every job has ended; on timeout show the worker's output."""
    finished: dict[int, dict] = {}

    def all_done():
        for job_id in job_ids:
            if job_id not in finished:
                job = job_status(org, job_id)
                if job["status"] in TERMINAL:
                    finished[job_id] = job
        return len(finished) == len(job_ids)

    try:
        wait_for(all_done, timeout, f"the worker to finish jobs {sorted(set(job_ids) - set(finished))}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker's output:\n{qcluster.output()}") from None
    return finished


def start_job(org, **body) -> int:
    response = org.client("editor").post("/api/v1/ml/training/start", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.fixture
def more_concurrent_jobs(acme, committed):
    """acme's plan allows 2 jobs queued or running at once; the end-to-end test queues 4. Restored afterwards."""
    org = Organization.objects.get(schema_name=acme.schema)
    before = org.max_concurrent_jobs
    Organization.objects.filter(pk=org.pk).update(max_concurrent_jobs=before + 8)
    yield acme
    connection.set_schema_to_public()
    Organization.objects.filter(pk=org.pk).update(max_concurrent_jobs=before)


@pytest.fixture
def breast_cancer(acme, committed):
    """scikit-learn's breast cancer table (569 rows, 30 numeric columns), uploaded to acme as a CSV."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.assign(diagnosis=pd.Categorical.from_codes(data.target, data.target_names).astype(str))
    frame = frame.drop(columns="target")
    response = upload(acme, csv_bytes(frame), filename="breast_cancer.csv", name="breast-cancer")
    assert response.status_code == 201, response.content
    dataset = response.json()
    assert dataset["rows"] == 569 and dataset["columns"] == 31
    return dataset


def test_worker_runs_a_queued_job_in_its_organization(acme, globex, committed, qcluster):
    dataset = upload(acme, csv_bytes(table(300)), name="worker-data").json()
    job_id = start_job(acme, dataset_id=dataset["id"], target="label", model_name="worker-model",
                       algorithm="logistic_regression", cv_folds=3)

    job = wait_until_finished(acme, [job_id], qcluster, 120)[job_id]

    assert job["status"] == "succeeded", job["error"]
    with schema_context(acme.schema):
        assert ModelVersion.objects.filter(job_id=job_id, registered_model__name="worker-model").exists()
    with schema_context(globex.schema):
        assert not ModelVersion.objects.filter(registered_model__name="worker-model").exists()
    health = Client(HTTP_HOST=acme.host).get("/healthz")
    assert health.status_code == 200 and health.json()["worker"]["alive"] is True


# search method -> (algorithm, trials the job should report)
SEARCHES = {
    "none": ("hist_gradient_boosting", 1),
    "grid": ("logistic_regression", 4),
    "random": ("random_forest", 4),
    "bayesian": ("xgboost", 4),
}


def test_every_search_method_trains_a_good_model_on_breast_cancer(more_concurrent_jobs, breast_cancer, qcluster):
    acme = more_concurrent_jobs
    # given one job per search method, all queued at once
    job_ids = {
        search: start_job(acme, dataset_id=breast_cancer["id"], target="diagnosis", model_name=f"cancer-{search}",
                          algorithm=algorithm, search=search, n_trials=4, cv_folds=3)
        for search, (algorithm, _) in SEARCHES.items()
    }

    # when the worker has run them all
    finished = wait_until_finished(acme, list(job_ids.values()), qcluster, 240)

    # then each one succeeded with plausible scores, the trials asked for, and a registered model version
    for search, job_id in job_ids.items():
        job = finished[job_id]
        assert job["status"] == "succeeded", f"{search}: {job['error']}"
        result = job["result"]
        assert result["search"] == search and result["algorithm"] == SEARCHES[search][0]
        assert result["problem_type"] == "binary" and result["metric"] == "roc_auc"
        assert result["test_metrics"]["scores"]["roc_auc"] > 0.9, (search, result["test_metrics"]["scores"])
        assert 0.9 < result["cv_mean"] <= 1.0 and result["cv_std"] is not None, (search, result["cv_mean"])
        assert len(result["trials"]) == SEARCHES[search][1], (search, result["trials"])
        assert all(len(t["fold_scores"]) == 3 for t in result["trials"] if t["state"] == "complete")
        assert result["n_rows_train"] + result["n_rows_test"] == 569
        assert job["progress"] == 1.0 and job["started_at"] and job["finished_at"]
        with schema_context(acme.schema):
            version = ModelVersion.objects.get(pk=job["model_version_id"])
            assert version.registered_model.name == f"cancer-{search}" and version.job_id == job_id


def test_cancel_stops_a_running_search_in_the_worker(acme, committed, breast_cancer, qcluster):
    # given a long Bayesian search running in the worker
    job_id = start_job(acme, dataset_id=breast_cancer["id"], target="diagnosis", model_name="cancer-cancelled",
                       algorithm="random_forest", search="bayesian", n_trials=500, cv_folds=5)
    try:
        wait_for(lambda: job_status(acme, job_id)["progress"] > 0, 60, "the worker to start the job", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker's output:\n{qcluster.output()}") from None
    assert job_status(acme, job_id)["status"] == "running"

    # when an editor cancels it
    asked = time.monotonic()
    response = acme.client("editor").post(f"/api/v1/ml/training/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True

    # then the worker stops it within seconds and registers nothing
    job = wait_for(lambda: (j := job_status(acme, job_id))["status"] in TERMINAL and j, 10, "the job to stop", interval=0.2)
    assert job["status"] == "cancelled" and time.monotonic() - asked < 10
    assert job["model_version_id"] is None and job["progress"] < 1.0
    with schema_context(acme.schema):
        assert not ModelVersion.objects.filter(job_id=job_id).exists()
        assert not ModelVersion.objects.filter(registered_model__name="cancer-cancelled").exists()
