"""AutoML jobs and suggestions through the API (the job runs in-process on committed data)."""
import threading
import time

import pytest
from django_tenants.utils import schema_context

from models_registry.models import ModelVersion
from training.models import TrainingJob
from training.runner import run_training_job

from .conftest import csv_bytes, table, upload


@pytest.fixture
def automl_data(acme, committed):
    response = upload(acme, csv_bytes(table(500, seed=3)), name="automl-data")
    assert response.status_code == 201
    return response.json()


def start_automl(org, dataset_id, **settings):
    response = org.client("editor").post("/api/v1/ml/training/start", {
        "dataset_id": dataset_id, "target": "label", "model_name": "automl-model", "algorithm": "auto", **settings},
        format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def run(org, job_id):
    with schema_context(org.schema):
        return run_training_job(job_id)


def test_automl_honours_its_budget_and_registers_the_best_with_a_leaderboard(acme, automl_data):
    job_id = start_automl(acme, automl_data["id"], time_budget_s=12)
    started = time.monotonic()
    assert run(acme, job_id) == "succeeded"
    elapsed = time.monotonic() - started
    assert elapsed <= 12 + 15, f"took {elapsed:.1f} s for a 12 s budget"
    job = acme.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()
    board = job["result"]["leaderboard"]
    assert len({row["algorithm"] for row in board}) > 1
    assert all("cv_mean" in row and "fit_time_s" in row for row in board)
    version = acme.client("viewer").get(f"/api/v1/ml/models/{job['model_version_id']}").json()
    assert version["metrics"]["scores"]["roc_auc"] > 0.8


def cancel_while_running(org, job_id, *, at_progress: float, join_timeout: float):
    """Run the job in a thread, cancel it through the API once it reports `at_progress`; (cancel answer, final status)."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("status", run(org, job_id)))
    worker.start()
    deadline = time.monotonic() + 60
    while org.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()["progress"] < at_progress:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    cancel = org.client("editor").post(f"/api/v1/ml/training/jobs/{job_id}/cancel")
    worker.join(timeout=join_timeout)
    return cancel, outcome.get("status")


def test_cancelled_automl_keeps_the_best_so_far_when_asked(acme, automl_data):
    job_id = start_automl(acme, automl_data["id"], time_budget_s=120, keep_best_on_cancel=True)
    cancel, status = cancel_while_running(acme, job_id, at_progress=0.1, join_timeout=90)
    assert cancel.status_code == 200
    assert status == "cancelled"
    with schema_context(acme.schema):
        job = TrainingJob.objects.get(pk=job_id)
        assert job.model_version_id is not None and "best model so far" in job.stage


def test_cancelled_automl_registers_nothing_by_default(acme, automl_data):
    job_id = start_automl(acme, automl_data["id"], time_budget_s=120)
    _, status = cancel_while_running(acme, job_id, at_progress=0.05, join_timeout=60)
    assert status == "cancelled"
    with schema_context(acme.schema):
        assert not ModelVersion.objects.filter(job_id=job_id).exists()


def test_viewer_cannot_start_automl_and_other_organization_cannot_see_it(acme, globex, automl_data):
    assert acme.client("viewer").post("/api/v1/ml/training/start", {
        "dataset_id": automl_data["id"], "target": "label", "model_name": "x", "algorithm": "auto"}, format="json").status_code == 403
    job_id = start_automl(acme, automl_data["id"], time_budget_s=10)
    acme.client("editor").post(f"/api/v1/ml/training/jobs/{job_id}/cancel")
    assert globex.client("owner").get(f"/api/v1/ml/training/jobs/{job_id}").status_code == 404


@pytest.mark.django_db
def test_suggestions_flag_a_leaking_column(acme):
    frame = table(400, seed=4)
    frame["leak"] = (frame["label"] == "yes").astype(int)
    dataset = upload(acme, csv_bytes(frame), name="leaky").json()
    response = acme.client("viewer").post("/api/v1/ml/suggestions", {"dataset_id": dataset["id"], "target": "label"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["problem_type"] == "binary" and body["metric"]
    assert len(body["algorithms"]) >= 3 and all(a["reason"] for a in body["algorithms"])
    assert any(w["kind"] == "leakage" and w["column"] == "leak" for w in body["warnings"]), body["warnings"]


@pytest.mark.django_db
def test_suggestions_bad_input(acme, globex, uploaded):
    bad = acme.client("viewer").post("/api/v1/ml/suggestions", {"dataset_id": uploaded["id"], "target": "nope"}, format="json")
    assert bad.status_code == 400 and "target" in bad.json()["errors"]
    other = globex.client("owner").post("/api/v1/ml/suggestions", {"dataset_id": uploaded["id"], "target": "label"}, format="json")
    assert other.status_code == 400 and "dataset_id" in other.json()["errors"]
