"""Crashes and restarts with real `qcluster` processes: a worker killed with SIGKILL in the middle of a job,
a job past its organization's memory limit, two clusters sharing one queue (ORM broker, and Redis when it
answers), every job delivered twice.

Each test starts the clusters it needs (it kills or reconfigures them) and commits its own data.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from django.db import connection
from django_q.tasks import async_task
from django_tenants.utils import schema_context

from mlplatform import filestore
from mlplatform.job_runtime import job_files_prefix
from models_registry.models import BatchPredictionJob, ModelVersion
from tenants.models import Organization
from tests.conftest import regression_table
from training.models import Dataset, TrainingJob

from .conftest import csv_bytes, table, upload
from .test_worker import TERMINAL, start_qcluster, stop_qcluster, wait_for

pytestmark = pytest.mark.worker


# --- helpers ------------------------------------------------------------------------------------------------
@contextmanager
def clusters(tmp_path: Path, n: int = 1, **env: str):
    procs = [start_qcluster(tmp_path / f"qcluster-{i}.log", **env) for i in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            stop_qcluster(proc)


def outputs(procs) -> str:
    return "\n".join(f"--- cluster {i}:\n{p.output()}" for i, p in enumerate(procs))


@contextmanager
def plan(org, **limits):
    """Change an organization's plan for the block (committed: the workers must see it)."""
    connection.set_schema_to_public()
    row = Organization.objects.filter(schema_name=org.schema)
    before = row.values(*limits).get()
    row.update(**limits)
    try:
        yield
    finally:
        connection.set_schema_to_public()
        row.update(**before)


def job(org, model, job_id):
    with schema_context(org.schema):
        return model.objects.get(pk=job_id)


def wait_status(org, model, job_id, statuses, timeout, procs):
    try:
        return wait_for(lambda: (j := job(org, model, job_id)).status in statuses and j, timeout,
                        f"{model.__name__} {job_id} to be {'/'.join(statuses)}", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc} (it is {job(org, model, job_id).status}); workers:\n{outputs(procs)}") from None


def start_training(org, dataset_id, **settings) -> int:
    body = {"dataset_id": dataset_id, "target": "label", "model_name": "crash-model", "algorithm": "logistic_regression",
            "cv_folds": 3, **settings}
    response = org.client("editor").post("/api/v1/ml/training/start", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def start_batch(org, version_id, dataset_id) -> int:
    response = org.client("editor").post("/api/v1/ml/batch-predict", {"model_version_id": version_id,
                                                                      "dataset_id": dataset_id}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def files_of(org) -> set[str]:
    with schema_context(org.schema):
        root = Path(filestore.path(""))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def files_in_use(org) -> set[str]:
    with schema_context(org.schema):
        names = set(Dataset.objects.values_list("file", flat=True))
        for pair in ModelVersion.objects.values_list("artifact", "onnx_artifact"):
            names |= set(pair)
        for pair in BatchPredictionJob.objects.values_list("input_file", "output_file"):
            names |= set(pair)
    return names - {""}


def partial_output_of(org, batch_id) -> str | None:
    prefix = job_files_prefix(BatchPredictionJob, batch_id)
    with schema_context(org.schema):
        folder = Path(filestore.path(filestore.TEMP))
    return next((p.name for p in folder.glob("*") if p.name.lstrip(".").startswith(prefix)), None) if folder.is_dir() else None


@pytest.fixture(scope="module")
def big_table(orgs, trained, django_db_blocker):
    """300,000 rows of churn's columns: a batch over it writes its output for a few seconds."""
    acme = orgs["acme"]
    with django_db_blocker.unblock():
        response = upload(acme, csv_bytes(table(300_000, seed=3).drop(columns="label")), name="crash-big")
        assert response.status_code == 201, response.content
        connection.set_schema_to_public()
    return response.json()


@pytest.fixture
def small_dataset(acme, committed):
    response = upload(acme, csv_bytes(table(200, seed=4)), name="crash-small")
    assert response.status_code == 201, response.content
    return response.json()


# --- a worker killed mid-job --------------------------------------------------------------------------------
def test_a_cluster_killed_mid_job_leaves_no_running_job_and_no_file_and_its_successor_continues_the_queue(
        acme, trained, big_table, small_dataset, committed, tmp_path):
    before = files_of(acme)
    with plan(acme, max_concurrent_jobs=10), clusters(tmp_path, JOB_REQUEUE_AFTER_SECONDS="2") as first:
        # given a batch writing its output, and a training job queued behind it
        batch_id = start_batch(acme, trained["churn_v1"]["id"], big_table["id"])
        queued_id = start_training(acme, small_dataset["id"])
        wait_for(lambda: partial_output_of(acme, batch_id), 120, "the batch to start writing", interval=0.02)

        # when the whole cluster (supervisor, workers, the job's process) is killed with SIGKILL
        os.killpg(first[0].pid, signal.SIGKILL)
        first[0].wait(timeout=10)
        killed_at = time.monotonic()
        assert job(acme, BatchPredictionJob, batch_id).status == "running"  # nobody could say otherwise

        # then a restarted cluster fails the lost job at once ("worker lost"), removes its partial output ...
        with clusters(tmp_path, JOB_REQUEUE_AFTER_SECONDS="2") as second:
            lost = wait_status(acme, BatchPredictionJob, batch_id, ("failed",), 60, second)
            assert time.monotonic() - killed_at < 60
            assert lost.error.startswith("Worker lost") and lost.output_file == ""
            assert partial_output_of(acme, batch_id) is None

            # ... and runs the job that was waiting behind it
            done = wait_status(acme, TrainingJob, queued_id, TERMINAL, 120, second)
            assert done.status == "succeeded", done.error

    # and no file is left that no row points at: no half-written output, model or work file
    assert (files_of(acme) - before) <= files_in_use(acme), files_of(acme) - before - files_in_use(acme)


def test_a_killed_worker_process_takes_its_job_process_along_and_the_cluster_replaces_it(
        acme, trained, big_table, small_dataset, committed, tmp_path):
    with plan(acme, max_concurrent_jobs=10), clusters(tmp_path) as procs:
        batch_id = start_batch(acme, trained["churn_v1"]["id"], big_table["id"])
        wait_for(lambda: partial_output_of(acme, batch_id), 120, "the batch to start writing", interval=0.02)
        host, _, pid = job(acme, BatchPredictionJob, batch_id).worker.rpartition(":")
        assert host == socket.gethostname()
        worker = psutil.Process(int(pid))
        job_processes = worker.children()
        assert job_processes, "the job runs in a child process of the worker"

        # when only the worker process is killed
        worker.kill()

        # then its job process dies with it (it must not go on writing), the job fails as worker lost ...
        gone, alive = psutil.wait_procs(job_processes, timeout=10)
        assert not alive, f"job process outlived its worker: {alive}"
        lost = wait_status(acme, BatchPredictionJob, batch_id, ("failed",), 60, procs)
        assert lost.error.startswith("Worker lost") and partial_output_of(acme, batch_id) is None

        # ... and the cluster's new worker process takes the next job
        next_id = start_training(acme, small_dataset["id"])
        done = wait_status(acme, TrainingJob, next_id, TERMINAL, 120, procs)
        assert done.status == "succeeded", done.error
        assert done.worker != lost.worker


def test_a_job_declared_lost_while_its_process_still_runs_is_stopped(acme, small_dataset, committed, tmp_path):
    with plan(acme, max_concurrent_jobs=10), clusters(tmp_path) as procs:
        # given a long search running in a job process
        long_id = start_training(acme, small_dataset["id"], algorithm="random_forest", search="bayesian", n_trials=500,
                                 cv_folds=5)
        wait_status(acme, TrainingJob, long_id, ("running",), 60, procs)
        worker = psutil.Process(int(job(acme, TrainingJob, long_id).worker.rpartition(":")[2]))
        job_processes = wait_for(worker.children, 30, "the job process")

        # when the housekeeping (elsewhere) declares it lost
        with schema_context(acme.schema):
            TrainingJob.objects.filter(pk=long_id).update(status="failed", error="Worker lost: (declared by the test)")

        # then its process is stopped within seconds, nothing is registered, and the worker goes on
        gone, alive = psutil.wait_procs(job_processes, timeout=15)
        assert not alive, "the job process kept running after its job was ended"
        next_id = start_training(acme, small_dataset["id"])
        assert wait_status(acme, TrainingJob, next_id, TERMINAL, 120, procs).status == "succeeded"
    lost = job(acme, TrainingJob, long_id)
    assert lost.status == "failed" and lost.error == "Worker lost: (declared by the test)"
    with schema_context(acme.schema):
        assert not ModelVersion.objects.filter(job_id=long_id).exists()


# --- memory limit -------------------------------------------------------------------------------------------------
@pytest.fixture
def wide_regression(acme, committed):
    response = upload(acme, csv_bytes(regression_table(20_000, seed=7)), name="crash-regression")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize("settings", [
    pytest.param({"algorithm": "extra_trees", "params": {"n_estimators": 500, "max_features": 1.0}}, id="training"),
    pytest.param({"algorithm": "auto", "time_budget_s": 60}, id="automl"),
])
def test_a_job_past_its_memory_limit_fails_naming_the_limit_and_the_worker_takes_the_next(
        acme, wide_regression, small_dataset, committed, tmp_path, settings):
    limit_mb = 150
    with plan(acme, max_concurrent_jobs=10, max_job_memory_mb=limit_mb), clusters(tmp_path) as procs:
        # given a job whose trees need far more than 150 MB, and a small job behind it
        heavy_id = start_training(acme, wide_regression["id"], target="price", model_name="too-big", cv_folds=2, **settings)
        light_id = start_training(acme, small_dataset["id"])

        # when the worker runs them
        heavy = wait_status(acme, TrainingJob, heavy_id, TERMINAL, 180, procs)
        light = wait_status(acme, TrainingJob, light_id, TERMINAL, 120, procs)

        # then the heavy job failed naming the limit, having registered nothing ...
        assert heavy.status == "failed", heavy.error
        assert f"memory limit of {limit_mb} MB reached" in heavy.error
        assert heavy.peak_memory_mb is not None and heavy.peak_memory_mb >= limit_mb * 0.9
        with schema_context(acme.schema):
            assert not ModelVersion.objects.filter(job_id=heavy_id).exists()
        # ... and the same worker process survived to run the next job
        assert light.status == "succeeded", light.error
        assert light.worker == heavy.worker
        assert psutil.pid_exists(int(heavy.worker.rpartition(":")[2]))
    response = acme.client("viewer").get(f"/api/v1/ml/training/jobs/{heavy_id}")
    assert response.status_code == 200 and "memory limit" in response.json()["error"]


def parquet_bytes(frame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_a_batch_past_its_memory_limit_fails_naming_the_limit_and_the_worker_takes_the_next(
        acme, trained, committed, tmp_path):
    import numpy as np
    import pandas as pd

    # given a model over 120 numeric columns and a 60,000-row table of them (each chunk the batch reads is
    # then ~60 MB of numbers, before the copies prediction makes)
    rng = np.random.default_rng(5)
    columns = [f"f{i}" for i in range(120)]
    train = pd.DataFrame(rng.normal(size=(600, 120)), columns=columns).assign(y=lambda f: f["f0"] * 2 + f["f1"])
    wide = pd.DataFrame(rng.normal(size=(60_000, 120)), columns=columns)
    train_id = upload(acme, parquet_bytes(train), filename="wide-train.parquet", name="wide-train").json()["id"]
    wide_id = upload(acme, parquet_bytes(wide), filename="wide.parquet", name="wide").json()["id"]
    limit_mb = 100
    with plan(acme, max_concurrent_jobs=10, max_job_memory_mb=limit_mb), clusters(tmp_path) as procs:
        model_job = start_training(acme, train_id, target="y", model_name="wide-model", algorithm="ridge")
        version_id = wait_status(acme, TrainingJob, model_job, ("succeeded",), 120, procs).model_version_id

        # when the worker predicts the wide table, then a small one
        heavy_id = start_batch(acme, version_id, wide_id)
        light_id = start_batch(acme, trained["churn_v1"]["id"], trained["datasets"]["churn"]["id"])
        heavy = wait_status(acme, BatchPredictionJob, heavy_id, TERMINAL, 120, procs)
        light = wait_status(acme, BatchPredictionJob, light_id, TERMINAL, 120, procs)

    # then the big batch failed naming the limit, left no output, and the worker went on
    assert heavy.status == "failed" and f"memory limit of {limit_mb} MB reached" in heavy.error, heavy.error
    assert heavy.output_file == "" and partial_output_of(acme, heavy_id) is None
    assert light.status == "succeeded", light.error
    assert light.worker == heavy.worker


# --- two clusters, one queue, every job delivered twice -----------------------------------------------------------------
def _run_shared_queue(acme, dataset_id, tmp_path, monkeypatch, *, n_jobs: int, broker=None, env=None):
    """Queue `n_jobs` training jobs, each delivered twice, to two clusters; return the finished jobs."""
    sent = []
    monkeypatch.setattr("mlplatform.jobs.async_task", lambda *args, **kwargs: sent.append(args))
    with plan(acme, max_concurrent_jobs=n_jobs + 10):
        job_ids = [start_training(acme, dataset_id, model_name=f"shared-{i}") for i in range(n_jobs)]
        assert len(sent) == n_jobs
        with clusters(tmp_path, 2, **(env or {})) as procs:
            for proc in procs:  # both up (supervisor, pusher, monitor, worker) before any task is sent
                wait_for(lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= 4, 60, "a cluster to start")
            for _ in range(2):  # every job's task, twice: a redelivery, or a requeue racing the original
                for args in sent:
                    async_task(*args, **({"broker": broker} if broker else {}))
            finished = [wait_status(acme, TrainingJob, job_id, TERMINAL, 180, procs) for job_id in job_ids]
    return finished


def _assert_each_ran_once(acme, finished):
    for done in finished:
        assert done.status == "succeeded", done.error
        assert sum(1 for _, line in done.log if line == "loading dataset") == 1, done.log
        with schema_context(acme.schema):
            assert ModelVersion.objects.filter(job_id=done.pk).count() == 1
            from tenants.accounts.models import AuditEvent

            assert AuditEvent.objects.filter(object_type="trainingjob", object_id=str(done.pk),
                                             action="training_succeeded").count() == 1
    assert len({done.worker for done in finished}) == 2, "both clusters took jobs"


def test_two_clusters_share_the_queue_and_no_job_runs_twice(acme, small_dataset, committed, tmp_path, monkeypatch):
    finished = _run_shared_queue(acme, small_dataset["id"], tmp_path, monkeypatch, n_jobs=6)
    _assert_each_ran_once(acme, finished)


REDIS_DB = int(os.environ.get("REDIS_TEST_DB", "13"))


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.skipif(not _redis_answers(), reason="no Redis answering on 127.0.0.1:6379")
def test_two_clusters_on_the_redis_broker_share_the_queue_and_no_job_runs_twice(acme, small_dataset, committed, tmp_path,
                                                                                 monkeypatch):
    import redis
    from django_q.brokers.redis_broker import Redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"

    class TestRedis(Redis):  # this run's list (the cluster name carries TEST_RUN_ID) in the test database
        @staticmethod
        def get_connection(list_key=None):
            return redis.from_url(url)

    broker = TestRedis()
    broker.delete_queue()
    try:
        finished = _run_shared_queue(acme, small_dataset["id"], tmp_path, monkeypatch, n_jobs=6, broker=broker,
                                     env={"REDIS_URL": url})
    finally:
        broker.delete_queue()
    _assert_each_ran_once(acme, finished)
