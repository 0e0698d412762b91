"""The worker side of a training job: claim, train with live progress, register, finish. All or nothing.

A monitor thread writes progress, stage, log lines and the heartbeat every second, reads the cancel flag and
samples memory; the training thread only calls `progress()`, which raises when the job must stop.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from datetime import timedelta

import joblib
import psutil
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from mlplatform.jobs import touch_worker_heartbeat
from models_registry.services import VersionSpec, model_version_register
from tenants.accounts.services import audit_record
from training.ml.artifacts import dump_pipeline
from training.ml.errors import JobCancelled, JobTimedOut, MLInputError
from training.ml.threads import limit_threads
from training.ml.trainer import TrainConfig, library_versions, train

from .models import JobStatus, TrainingJob
from .services import dataset_frame

logger = logging.getLogger(__name__)
MONITOR_INTERVAL_S = 1.0


class JobMonitor:
    """Shared state between the training thread and the thread that talks to the database."""

    def __init__(self, job: TrainingJob, schema: str):
        self.job_id, self.schema = job.pk, schema
        self.deadline = time.monotonic() + job.config["time_limit_s"] if job.config.get("time_limit_s") else None
        self.time_limit_s = job.config.get("time_limit_s")
        self.stage, self.fraction = "starting", 0.0
        self.pending_log: list[list[str]] = []
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self.peak_rss = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, name=f"job-{job.pk}-monitor", daemon=True)

    # training thread ---------------------------------------------------------
    def progress(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            self.log(stage)
        with self._lock:
            self.stage, self.fraction = stage[:200], max(self.fraction, min(1.0, float(fraction)))
        self.check()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobTimedOut()

    def log(self, message: str) -> None:
        with self._lock:
            self.pending_log.append([timezone.now().isoformat(), message])

    # monitor thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        try:
            while not self._stop.wait(MONITOR_INTERVAL_S):
                self.flush()
        finally:
            connection.close()

    def flush(self) -> None:
        try:
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)
            with self._lock:
                stage, fraction, lines, self.pending_log = self.stage, self.fraction, self.pending_log, []
            with schema_context(self.schema):
                job = TrainingJob.objects.only("log", "cancel_requested", "status").get(pk=self.job_id)
                if job.cancel_requested:
                    self.cancelled.set()
                if job.status == JobStatus.RUNNING:
                    TrainingJob.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                        stage=stage, progress=round(fraction, 4), heartbeat_at=timezone.now(), log=job.log + lines,
                        peak_memory_mb=round(self.peak_rss / 2**20, 1))
            touch_worker_heartbeat()
        except Exception:  # the database may blink; the next tick tries again
            logger.exception("job %s monitor could not write progress", self.job_id)


def _claim(job_id: int) -> bool:
    now = timezone.now()
    return bool(TrainingJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, stage="starting", worker=f"{socket.gethostname()}:{os.getpid()}"))


def _finish(job_id: int, status: str, monitor: JobMonitor | None, **fields) -> None:
    job = TrainingJob.objects.get(pk=job_id)
    log = job.log + (monitor.pending_log if monitor else [])
    if fields.get("error"):
        log.append([timezone.now().isoformat(), f"error: {fields['error']}"])
    TrainingJob.objects.filter(pk=job_id).update(
        status=status, finished_at=timezone.now(), log=log,
        peak_memory_mb=round(monitor.peak_rss / 2**20, 1) if monitor else None, **fields)
    audit_record(actor="system", action=f"training_{status}", object_type="trainingjob", object_id=str(job_id),
                 object_repr=str(job), detail={"error": fields.get("error", "")[:200]} if fields.get("error") else {})


def run_training_job(job_id: int) -> str:
    """Run one job inside the current organization's schema. Returns its final status."""
    if not _claim(job_id):
        return "not claimed (cancelled or taken by another worker)"
    job = TrainingJob.objects.select_related("dataset").get(pk=job_id)
    monitor = JobMonitor(job, connection.schema_name)
    monitor.start()
    versions = library_versions()
    TrainingJob.objects.filter(pk=job_id).update(library_versions=versions)
    artifact_path = None
    try:
        if job.dataset is None:
            raise MLInputError("the dataset of this job was deleted before it started", field="dataset")
        config = TrainConfig.from_dict(job.config)
        monitor.progress("loading dataset", 0.01)
        columns = None if config.features is None else sorted(set(config.features) | {config.target})
        frame = dataset_frame(job.dataset, columns=columns)
        if config.time_limit_s:
            # the search stops starting trials at 80% of the limit, leaving time to refit and evaluate
            config.time_limit_s = round(config.time_limit_s * 0.8, 1)
        monitor.log(f"dataset '{job.dataset.name}': {len(frame):,} rows, {frame.shape[1]} columns used")
        # worker processes are daemons: joblib may not start processes there, threads it may
        with limit_threads(config.n_threads), joblib.parallel_config(backend="threading", n_jobs=config.n_threads):
            result = train(frame, config, progress=monitor.progress)
        for note in result.notes:
            monitor.log(note)
        monitor.progress("registering model version", 0.99)
        artifact = dump_pipeline(result.pipeline)
        monitor.check()  # last chance to cancel: nothing is registered yet
        summary = result.summary()
        with transaction.atomic():
            version = model_version_register(actor=job.created_by, spec=VersionSpec(
                model_name=job.model_name, artifact=artifact, algorithm=result.algorithm,
                problem_type=result.problem_type.value, target=result.target, classes=summary["classes"] or [],
                metrics=summary["test_metrics"], params=summary["best_params"],
                cv={"metric": result.metric, "mean": summary["cv_mean"], "std": summary["cv_std"],
                    "folds": config.cv_folds, "greater_is_better": result.greater_is_better},
                feature_schema=summary["feature_schema"], importance=summary["importance"], library_versions=versions,
                dataset_id=job.dataset_id, job_id=job.pk))
            artifact_path = version.artifact
            monitor.stop()
            _finish(job_id, JobStatus.SUCCEEDED, monitor, progress=1.0, stage="done", model_version=version,
                    result={k: v for k, v in summary.items() if k not in ("feature_schema",)})
        return JobStatus.SUCCEEDED
    except JobCancelled:
        monitor.stop()
        _finish(job_id, JobStatus.CANCELLED, monitor, stage="cancelled")
        return JobStatus.CANCELLED
    except JobTimedOut:
        monitor.stop()
        _finish(job_id, JobStatus.FAILED, monitor, stage="time limit exceeded",
                error=f"The job exceeded its time limit of {monitor.time_limit_s:g} s.")
        return JobStatus.FAILED
    except MLInputError as exc:
        monitor.stop()
        _finish(job_id, JobStatus.FAILED, monitor, stage="failed", error=exc.message)
        return JobStatus.FAILED
    except Exception as exc:
        logger.exception("training job %s failed", job_id)
        monitor.stop()
        if artifact_path:
            from django.core.files.storage import default_storage

            default_storage.delete(artifact_path)
        monitor.log(traceback.format_exc(limit=5))
        _finish(job_id, JobStatus.FAILED, monitor, stage="failed", error=f"Unexpected error: {exc.__class__.__name__}: {exc}")
        return JobStatus.FAILED
    finally:
        monitor.stop()
        close_old_connections()


def reap_lost_jobs() -> int:
    """Running jobs whose heartbeat stopped: their worker died. They end failed, 'worker lost'."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_STALE_SECONDS)
    lost = list(TrainingJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True))
    for job_id in lost:
        if TrainingJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
                status=JobStatus.FAILED, finished_at=timezone.now(), stage="worker lost",
                error="Worker lost: the job stopped sending heartbeats (the worker process died or was killed)."):
            audit_record(actor="system", action="training_failed", object_type="trainingjob", object_id=str(job_id),
                         object_repr=f"Job {job_id}", detail={"error": "worker lost"})
    return len(lost)
