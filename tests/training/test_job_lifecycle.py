"""A job's life off the happy path, in-process on committed data: creation all or nothing, a broker that
refuses the task, parallel requests for the plan's last place, tasks lost with a worker, workers that died,
the files of a job that failed, a job delivered twice."""
import os
import socket
import subprocess
import threading
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from django_tenants.utils import schema_context

from mlplatform import filestore
from mlplatform.job_runtime import job_files_prefix, reap_lost_jobs
from models_registry.models import BatchPredictionJob, ModelVersion
from tenants.models import Organization
from training.models import TrainingJob
from training.runner import run_training_job
from training.tasks import training_job_housekeeping

from .conftest import csv_bytes, table, upload

ACTIVE = ("queued", "running")


@pytest.fixture
def dataset(acme, committed):
    response = upload(acme, csv_bytes(table(240)), name="lifecycle-data")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def no_leftovers(acme, committed):
    """Whatever a test leaves queued or running is cancelled, so it holds no place in acme's plan."""
    yield
    with schema_context(acme.schema):
        for model in (TrainingJob, BatchPredictionJob):
            model.objects.filter(status__in=ACTIVE).update(status="cancelled", finished_at=timezone.now())
    connection.set_schema_to_public()


class Broker:
    """Stands in for django-q2's async_task: records what was queued, or refuses."""

    def __init__(self, monkeypatch, refuse: str = ""):
        self.sent, self.refuse = [], refuse
        monkeypatch.setattr("mlplatform.jobs.async_task", self)

    def __call__(self, func, *args, **kwargs):
        if self.refuse:
            raise ConnectionError(self.refuse)
        self.sent.append(args)

    def job_ids(self) -> list[int]:
        return [args[-1] for args in self.sent]


def start(org, dataset_id, **settings):
    body = {"dataset_id": dataset_id, "target": "label", "model_name": "lifecycle", "algorithm": "logistic_regression",
            "cv_folds": 3, **settings}
    return org.client("editor").post("/api/v1/ml/training/start", body, format="json")


def plan_limit(org) -> int:
    connection.set_schema_to_public()
    return Organization.objects.get(schema_name=org.schema).max_concurrent_jobs


def test_a_job_whose_task_cannot_be_queued_fails_at_once_and_holds_no_place(acme, dataset, monkeypatch, no_leftovers):
    # given a broker that refuses every task
    Broker(monkeypatch, refuse="broker unreachable")

    # when an editor starts a job
    response = start(acme, dataset["id"])

    # then the answer is a 503 naming the problem, and the job is failed, not queued forever
    assert response.status_code == 503, response.content
    body = response.json()
    assert "could not be queued" in body["detail"] and "broker unreachable" in body["detail"]
    assert body["code"] == "queue_unavailable"
    job = acme.client("viewer").get(f"/api/v1/ml/training/jobs/{body['job_id']}").json()
    assert job["status"] == "failed" and job["stage"] == "not queued" and "broker unreachable" in job["error"]

    # and it does not count against the plan: as many jobs as the plan allows can still start
    broker = Broker(monkeypatch)
    for _ in range(plan_limit(acme)):
        assert start(acme, dataset["id"]).status_code == 202
    assert len(broker.sent) == plan_limit(acme)


def test_a_batch_whose_task_cannot_be_queued_fails_at_once(acme, trained, monkeypatch, no_leftovers):
    Broker(monkeypatch, refuse="broker unreachable")
    response = acme.client("editor").post("/api/v1/ml/batch-predict", {
        "model_version_id": trained["churn_v1"]["id"], "dataset_id": trained["datasets"]["churn"]["id"]}, format="json")
    assert response.status_code == 503 and "could not be queued" in response.json()["detail"]
    job = acme.client("viewer").get(f"/api/v1/ml/batch-predict/{response.json()['job_id']}").json()
    assert job["status"] == "failed" and "broker unreachable" in job["error"]


def test_a_failed_audit_write_leaves_no_job_and_queues_nothing(acme, dataset, monkeypatch, no_leftovers):
    from training.models import Dataset
    from training.services import training_job_create

    broker = Broker(monkeypatch)

    def audit_down(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr("mlplatform.job_runtime.audit_record", audit_down)
    with schema_context(acme.schema):
        before = TrainingJob.objects.count()
        with pytest.raises(RuntimeError, match="audit table unavailable"):
            training_job_create(actor="editor", dataset=Dataset.objects.get(pk=dataset["id"]), model_name="lifecycle",
                                settings_in={"target": "label", "algorithm": "logistic_regression"})
        assert TrainingJob.objects.count() == before
    assert broker.sent == []


def test_parallel_requests_cannot_both_take_the_plans_last_place(acme, dataset, monkeypatch, no_leftovers):
    # given an organization with exactly one place left, and a quota check slow enough for requests to overlap
    import mlplatform.job_runtime

    broker = Broker(monkeypatch)
    real_check = mlplatform.job_runtime.check_job_quota

    def slow_check(*args, **kwargs):
        real_check(*args, **kwargs)
        time.sleep(0.3)  # the window between counting and inserting, widened

    monkeypatch.setattr(mlplatform.job_runtime, "check_job_quota", slow_check)
    with schema_context(acme.schema):
        active = TrainingJob.objects.filter(status__in=ACTIVE).count() + BatchPredictionJob.objects.filter(status__in=ACTIVE).count()
    org = Organization.objects.get(schema_name=acme.schema)
    before = org.max_concurrent_jobs
    Organization.objects.filter(pk=org.pk).update(max_concurrent_jobs=active + 1)
    try:
        # when four editors start a job at the same moment
        barrier, answers = threading.Barrier(4), []

        def request():
            try:
                barrier.wait()
                answers.append(start(acme, dataset["id"]).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=request) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        connection.set_schema_to_public()
        Organization.objects.filter(pk=org.pk).update(max_concurrent_jobs=before)

    # then exactly one is queued and the others are told the plan is full
    assert sorted(answers) == [202, 409, 409, 409], answers
    assert len(broker.sent) == 1


def test_a_queued_job_whose_task_was_lost_is_queued_again_once(acme, dataset, monkeypatch, no_leftovers):
    # given a job queued long ago that no worker ever started (its task went down with a killed worker)
    broker = Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]
    with schema_context(acme.schema):
        TrainingJob.objects.filter(pk=job_id).update(created=timezone.now() - timedelta(minutes=30))

        # when the housekeeping runs, twice in a row
        training_job_housekeeping()
        training_job_housekeeping()

        # then the job's task was queued again, once, and the job says so
        assert broker.job_ids() == [job_id, job_id]
        assert broker.sent[-1][:2] == (acme.schema, "training.tasks.run_training_job")
        job = TrainingJob.objects.get(pk=job_id)
        assert job.status == "queued" and job.enqueued_at is not None
        assert "queued again" in job.log[-1][1]

        # and when it is stranded again and the broker now refuses, it fails instead of waiting forever
        TrainingJob.objects.filter(pk=job_id).update(enqueued_at=timezone.now() - timedelta(minutes=30))
        broker.refuse = "broker unreachable"
        training_job_housekeeping()
        job.refresh_from_db()
        assert job.status == "failed" and "could not be queued" in job.error


def test_a_recent_queued_job_is_left_alone(acme, dataset, monkeypatch, no_leftovers):
    broker = Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]
    with schema_context(acme.schema):
        training_job_housekeeping()
        assert TrainingJob.objects.get(pk=job_id).enqueued_at is None
    assert broker.job_ids() == [job_id]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("worker, heartbeat_age_s, lost", [
    pytest.param("{host}:{dead}", 0, True, id="process gone on this host"),
    pytest.param("{host}:{me}", 0, False, id="process alive on this host"),
    pytest.param("{host}:{me}", 3600, True, id="alive but silent for an hour"),
    pytest.param("elsewhere:1", 0, False, id="other host, fresh heartbeat"),
    pytest.param("elsewhere:1", 3600, True, id="other host, stale heartbeat"),
])
def test_a_running_job_whose_worker_is_gone_fails_as_worker_lost(acme, dataset, no_leftovers, worker, heartbeat_age_s, lost):
    worker = worker.format(host=socket.gethostname(), dead=_dead_pid(), me=os.getpid())
    now = timezone.now()
    with schema_context(acme.schema):
        job = TrainingJob.objects.create(dataset_id=dataset["id"], dataset_name="d", model_name="lost", status="running",
                                         created_by="editor", started_at=now - timedelta(seconds=5), worker=worker,
                                         heartbeat_at=now - timedelta(seconds=heartbeat_age_s))
        reap_lost_jobs(TrainingJob, audit_action="training")
        job.refresh_from_db()
    assert (job.status == "failed") is lost
    if lost:
        assert job.error.startswith("Worker lost") and job.stage == "worker lost"


def test_a_pid_reused_by_a_newer_process_does_not_keep_a_job_alive(acme, dataset, no_leftovers):
    with schema_context(acme.schema):
        job = TrainingJob.objects.create(dataset_id=dataset["id"], dataset_name="d", model_name="lost", status="running",
                                         created_by="editor", started_at=timezone.now() - timedelta(days=30),
                                         heartbeat_at=timezone.now(), worker=f"{socket.gethostname()}:{os.getpid()}")
        reap_lost_jobs(TrainingJob, audit_action="training")
        job.refresh_from_db()
    assert job.status == "failed" and "is gone" in job.error


def _job_files(prefix: str) -> list[str]:
    found = []
    for folder in filestore.JOB_FOLDERS:
        directory = filestore.path(folder)
        if os.path.isdir(directory):
            found += [f"{folder}/{n}" for n in os.listdir(directory) if n.lstrip(".").startswith(prefix)]
    return sorted(found)


def test_a_job_that_fails_after_writing_its_files_leaves_none(acme, dataset, monkeypatch, no_leftovers):
    """The model file and the ONNX file are written before the version row commits; a failure after that
    (here: recording the job's end) rolls the row back, and every file the job wrote goes with it."""
    import training.runner

    Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]

    def finish_fails(model, job_id, status, monitor, **fields):
        assert _job_files(job_files_prefix(TrainingJob, job_id))  # the files were written by now
        raise RuntimeError("database went away")

    monkeypatch.setattr(training.runner, "job_finish_with_result", finish_fails)
    with schema_context(acme.schema):
        assert run_training_job(job_id) == "failed"
        job = TrainingJob.objects.get(pk=job_id)
        assert "database went away" in job.error and job.model_version_id is None
        assert not ModelVersion.objects.filter(job_id=job_id).exists()
        assert _job_files(job_files_prefix(TrainingJob, job_id)) == []


def test_a_job_declared_lost_while_it_ran_records_nothing(acme, dataset, monkeypatch, no_leftovers):
    """A worker stuck long enough to miss its heartbeats is declared lost by the housekeeping; if the job then
    comes back to register its version, the registration is rolled back and its files removed."""
    import training.runner

    Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]
    real_register = training.runner.model_version_register

    def register_while_declared_lost(**kwargs):
        version = real_register(**kwargs)

        def housekeeping_elsewhere():
            try:
                with schema_context(acme.schema):
                    TrainingJob.objects.filter(pk=job_id).update(status="failed", error="Worker lost: (test)")
            finally:
                connection.close()

        thread = threading.Thread(target=housekeeping_elsewhere)
        thread.start()
        thread.join()
        return version

    monkeypatch.setattr(training.runner, "model_version_register", register_while_declared_lost)
    with schema_context(acme.schema):
        assert run_training_job(job_id) == "failed"
        job = TrainingJob.objects.get(pk=job_id)
        assert job.error == "Worker lost: (test)" and job.model_version_id is None
        assert not ModelVersion.objects.filter(job_id=job_id).exists()
        assert _job_files(job_files_prefix(TrainingJob, job_id)) == []


def test_files_of_a_finished_job_that_rows_point_at_are_kept(acme, dataset, monkeypatch, no_leftovers):
    from mlplatform.job_runtime import job_files_remove

    Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]
    with schema_context(acme.schema):
        assert run_training_job(job_id) == "succeeded"
        version = ModelVersion.objects.get(job_id=job_id)
        prefix = job_files_prefix(TrainingJob, job_id)
        stray = filestore.new_name(filestore.MODELS, ".skops", prefix=prefix)
        filestore.save_bytes(stray, b"left by an earlier attempt")
        partial = filestore.staging_path(".csv.part", prefix=prefix)
        open(partial, "wb").close()

        removed = job_files_remove(TrainingJob, job_id)

        assert sorted(removed) == sorted([stray, f"{filestore.TEMP}/{os.path.basename(partial)}"])
        assert filestore.exists(version.artifact) and filestore.exists(version.onnx_artifact)


def test_the_same_job_delivered_twice_runs_once_and_registers_one_version(acme, dataset, monkeypatch, no_leftovers):
    from models_registry.services import VersionSpec, model_version_register

    Broker(monkeypatch)
    job_id = start(acme, dataset["id"]).json()["id"]
    with schema_context(acme.schema):
        assert run_training_job(job_id) == "succeeded"
        assert run_training_job(job_id).startswith("not claimed")
        assert ModelVersion.objects.filter(job_id=job_id).count() == 1

        # and even past the claim, the database refuses a second version for the job, keeping no file of it
        models_before = set(os.listdir(filestore.path(filestore.MODELS)))
        with pytest.raises(IntegrityError):
            model_version_register(actor="system", spec=VersionSpec(
                model_name="lifecycle", artifact=b"x", algorithm="ridge", problem_type="regression", target="y",
                job_id=job_id, onnx=b"y", file_prefix=job_files_prefix(TrainingJob, job_id)))
        assert set(os.listdir(filestore.path(filestore.MODELS))) == models_before


def test_work_files_left_by_a_dead_process_are_swept_when_old(acme, committed):
    with schema_context(acme.schema):
        old, fresh = filestore.staging_path(".upload"), filestore.staging_path(".upload")
        for name in (old, fresh):
            open(name, "wb").close()
        os.utime(old, (time.time() - 3 * 86400,) * 2)
        removed = filestore.sweep_temp(older_than_s=86400)
        assert os.path.basename(old) in {os.path.basename(n) for n in removed}
        assert not os.path.exists(old) and os.path.exists(fresh)
        os.remove(fresh)
