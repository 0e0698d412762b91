"""Worker-side life of any BackgroundJob: claim, live progress with a monitor thread, finish, find lost jobs.

The monitor thread writes progress, stage, log lines and the heartbeat every second, reads the cancel flag
and samples memory; the working thread only calls `progress()`, which raises when the job must stop.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

import psutil
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from mlplatform.jobs import touch_worker_heartbeat
from mlplatform.models import BackgroundJob, JobStatus
from tenants.accounts.services import audit_record
from training.ml.errors import JobCancelled, JobTimedOut

logger = logging.getLogger(__name__)
MONITOR_INTERVAL_S = 1.0


class JobMonitor:
    """Shared state between the working thread and the thread that talks to the database."""

    def __init__(self, model, job, *, time_limit_s: float | None = None):
        self.model, self.job_id, self.schema = model, job.pk, connection.schema_name
        self.time_limit_s = time_limit_s
        self.deadline = time.monotonic() + time_limit_s if time_limit_s else None
        self.stage, self.fraction = "starting", 0.0
        self.pending_log: list[list[str]] = []
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self.peak_rss = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, name=f"job-{job.pk}-monitor", daemon=True)

    # working thread -------------------------------------------------------------
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

    @property
    def peak_memory_mb(self) -> float:
        return round(self.peak_rss / 2**20, 1)

    # monitor thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
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
                job = self.model.objects.only("log", "cancel_requested", "status").get(pk=self.job_id)
                if job.cancel_requested:
                    self.cancelled.set()
                if job.status == JobStatus.RUNNING:
                    self.model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                        stage=stage, progress=round(fraction, 4), heartbeat_at=timezone.now(), log=job.log + lines,
                        peak_memory_mb=self.peak_memory_mb)
                else:
                    self.pending_log = lines + self.pending_log  # kept for the final write
            touch_worker_heartbeat()
        except Exception:  # the database may blink; the next tick tries again
            logger.exception("job %s monitor could not write progress", self.job_id)


def check_job_quota(organization) -> None:
    """409 when the organization already has as many jobs (training and batch alike) queued or running as
    its plan allows at once."""
    from django.apps import apps

    from mlplatform.errors import ApplicationError
    from mlplatform.models import ACTIVE_STATES

    active = sum(model.objects.filter(status__in=ACTIVE_STATES).count() for model in apps.get_models()
                 if issubclass(model, BackgroundJob))
    if active >= organization.max_concurrent_jobs:
        raise ApplicationError(f"This organization already has {active} job(s) queued or running (training and batch "
                               f"predictions); its plan allows {organization.max_concurrent_jobs} at once. Wait for "
                               "one to finish or cancel one.", status=409)


def job_claim(model, job_id: int) -> bool:
    """Conditional update queued → running: exactly one worker wins."""
    now = timezone.now()
    return bool(model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, stage="starting",
        worker=f"{socket.gethostname()}:{os.getpid()}"))


def job_finish(model, job_id: int, status: str, monitor: JobMonitor | None, *, audit_action: str, **fields) -> None:
    job = model.objects.get(pk=job_id)
    log = job.log + (monitor.pending_log if monitor else [])
    if fields.get("error"):
        log.append([timezone.now().isoformat(), f"error: {fields['error']}"])
    model.objects.filter(pk=job_id).update(status=status, finished_at=timezone.now(), log=log,
                                           peak_memory_mb=monitor.peak_memory_mb if monitor else None, **fields)
    audit_record(actor="system", action=f"{audit_action}_{status}", object_type=model._meta.model_name,
                 object_id=str(job_id), object_repr=str(job),
                 detail={"error": fields["error"][:200]} if fields.get("error") else {})


def reap_lost_jobs(model, *, audit_action: str) -> int:
    """Running jobs whose heartbeat stopped: their worker died. They end failed, 'worker lost'."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_STALE_SECONDS)
    reaped = 0
    for job_id in model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True):
        if model.objects.filter(pk=job_id, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).update(
                status=JobStatus.FAILED, finished_at=timezone.now(), stage="worker lost",
                error="Worker lost: the job stopped sending heartbeats (the worker process died or was killed)."):
            audit_record(actor="system", action=f"{audit_action}_failed", object_type=model._meta.model_name,
                         object_id=str(job_id), object_repr=f"Job {job_id}", detail={"error": "worker lost"})
            reaped += 1
    return reaped


def job_cancel(model, job, *, actor: str, audit_action: str):
    """Queued: cancelled at once. Running: the worker stops at its next check (seconds). Finished: 409."""
    from mlplatform.errors import ApplicationError

    if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), stage="cancelled before it started", cancel_requested=True):
        audit_record(actor=actor, action=f"{audit_action}_cancelled", obj=job, detail={"while": "queued"})
    elif model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(cancel_requested=True):
        audit_record(actor=actor, action=f"{audit_action}_cancel_requested", obj=job, detail={"while": "running"})
    else:
        job.refresh_from_db()
        raise ApplicationError(f"Job {job.pk} has already {job.status}; there is nothing to cancel.", status=409)
    job.refresh_from_db()
    return job
