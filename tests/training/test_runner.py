"""The worker side of a job, run in-process on committed data: success, cancel while running, time limit, lost worker."""
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_tenants.utils import schema_context

from models_registry.models import ModelVersion
from models_registry.signing import verify
from training.ml.artifacts import load_pipeline
from training.models import TrainingJob
from mlplatform.job_runtime import reap_lost_jobs
from training.runner import run_training_job

from .conftest import csv_bytes, table, upload


@pytest.fixture
def committed_dataset(acme, committed):
    response = upload(acme, csv_bytes(table(600)), name="runner-data")
    assert response.status_code == 201, response.content
    return response.json()


def start(org, dataset_id, **settings):
    body = {"dataset_id": dataset_id, "target": "label", "model_name": "runner-model", **settings}
    response = org.client("editor").post("/api/v1/ml/training/start", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def run(org, job_id):
    with schema_context(org.schema):
        return run_training_job(job_id)


def test_job_trains_registers_a_signed_version_and_records_its_run(acme, committed_dataset):
    job_id = start(acme, committed_dataset["id"], algorithm="random_forest", search="random", n_trials=3, cv_folds=3)
    assert run(acme, job_id) == "succeeded"
    job = acme.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert job["peak_memory_mb"] > 0 and "scikit-learn" in job["library_versions"]
    assert len(job["result"]["trials"]) == 3
    assert job["result"]["test_metrics"]["scores"]["roc_auc"] > 0.8
    assert any("Best trial" in line for _, line in job["log"])
    with schema_context(acme.schema):
        version = ModelVersion.objects.get(pk=job["model_version_id"])
        data = default_storage.open(version.artifact).read()
        assert verify(data, sha256=version.artifact_sha256, mac=version.artifact_hmac)
        pipeline = load_pipeline(data)
        predictions = pipeline.predict(table(5, seed=9).drop(columns="label"))
        assert set(predictions) <= {"yes", "no"}
        assert version.dataset_id == committed_dataset["id"] and version.job_id == job_id


def test_cancel_while_running_stops_within_seconds_and_registers_nothing(acme, committed_dataset):
    job_id = start(acme, committed_dataset["id"], algorithm="random_forest", search="bayesian", n_trials=500, cv_folds=5)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("status", run(acme, job_id)))
    worker.start()
    deadline = time.monotonic() + 60
    while acme.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()["progress"] < 0.06:
        assert time.monotonic() < deadline, "the job never made progress"
        time.sleep(0.2)
    asked = time.monotonic()
    response = acme.client("editor").post(f"/api/v1/ml/training/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    worker.join(timeout=60)
    assert outcome["status"] == "cancelled"
    assert time.monotonic() - asked < 10
    with schema_context(acme.schema):
        job = TrainingJob.objects.get(pk=job_id)
        assert job.status == "cancelled" and job.model_version_id is None
        assert not ModelVersion.objects.filter(job_id=job_id).exists()


def test_job_over_its_time_limit_fails_with_that_reason(acme, committed_dataset):
    job_id = start(acme, committed_dataset["id"], algorithm="random_forest", params={"n_estimators": 400},
                   search="grid", n_trials=50, time_limit_s=1)
    assert run(acme, job_id) == "failed"
    with schema_context(acme.schema):
        job = TrainingJob.objects.get(pk=job_id)
        assert "time limit of 1 s" in job.error
        assert not ModelVersion.objects.filter(job_id=job_id).exists()


def test_job_whose_worker_died_is_marked_failed(acme, committed_dataset):
    with schema_context(acme.schema):
        job = TrainingJob.objects.create(dataset_id=committed_dataset["id"], dataset_name="runner-data", model_name="lost",
                                         status="running", created_by="editor", started_at=timezone.now(),
                                         heartbeat_at=timezone.now() - timedelta(minutes=10))
        assert reap_lost_jobs(TrainingJob, audit_action="training") >= 1
        job.refresh_from_db()
        assert job.status == "failed" and job.error.startswith("Worker lost")
