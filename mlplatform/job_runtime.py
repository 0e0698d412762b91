"""The life of any BackgroundJob: create (with its audit row and its task, all or nothing), claim, run in a
child process under the memory limit with live progress, finish, and find jobs that were lost.

The monitor thread writes progress, stage, log lines and the heartbeat every second, reads the cancel flag
and samples memory; the working thread only calls `progress()`, which raises when the job must stop.

Lost jobs, found every minute by the housekeeping task and whenever a worker process starts:
- a `running` job whose worker process is gone (same host: its pid no longer runs) or whose heartbeat
  stopped (any host) fails with "Worker lost";
- a `queued` job that no worker started within `JOB_REQUEUE_AFTER_SECONDS` (its task was lost with a
  killed worker, or never reached the broker) is queued again; the claim makes a duplicate delivery harmless.
Every file a job that did not succeed wrote is removed (`job_files_remove`).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import psutil
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from mlplatform import filestore, job_process
from mlplatform.errors import ApplicationError
from mlplatform.jobs import enqueue_for_current_organization, touch_worker_heartbeat
from mlplatform.models import ACTIVE_STATES, BackgroundJob, JobStatus
from tenants.accounts.services import audit_record
from tenants.selectors import current_organization
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
        self.peak_rss = job_process.job_memory_bytes()
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
            self.peak_rss = max(self.peak_rss, job_process.job_memory_bytes())
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


def check_job_quota(organization, *, lock: bool = False) -> None:
    """409 when the organization already has as many jobs (training and batch alike) queued or running as
    its plan allows at once. With `lock` (inside a transaction) the organization's row is locked first, so
    parallel requests are counted one after the other and cannot both take the last place."""
    from django.apps import apps

    if lock:
        organization = type(organization).objects.select_for_update().get(pk=organization.pk)
    active = sum(model.objects.filter(status__in=ACTIVE_STATES).count() for model in apps.get_models()
                 if issubclass(model, BackgroundJob))
    if active >= organization.max_concurrent_jobs:
        raise ApplicationError(f"This organization already has {active} job(s) queued or running (training and batch "
                               f"predictions); its plan allows {organization.max_concurrent_jobs} at once. Wait for "
                               "one to finish or cancel one.", status=409)


def job_create(model, *, actor: str, task: Callable, label: str, audit_action: str, audit_detail: dict, **fields):
    """Create a job, its audit row and its task all or nothing: the row and the audit row commit together,
    the task is queued once they have, and a job whose task cannot be queued is failed at once (503 to the
    caller) instead of waiting forever and holding a place in the plan's limit."""
    failure: dict = {}

    def enqueue_failed(exc: Exception, job_id: int) -> None:
        failure["message"] = _enqueue_failed(model, job_id, exc, audit_action=audit_action)

    with transaction.atomic():
        check_job_quota(current_organization(), lock=True)
        job = model.objects.create(created_by=actor, **fields)
        audit_record(actor=actor, action=f"{audit_action}_started", obj=job, detail=audit_detail)
        enqueue_for_current_organization(task, job.pk, label=label, on_error=lambda exc: enqueue_failed(exc, job.pk))
    if failure:
        raise ApplicationError(failure["message"], status=503, extra={"job_id": job.pk, "code": "queue_unavailable"})
    return job


def _enqueue_failed(model, job_id: int, exc: Exception, *, audit_action: str) -> str:
    message = (f"Job {job_id} could not be queued ({exc.__class__.__name__}: {exc}); it is marked failed and nothing "
               "ran. Try again in a moment; if it keeps happening the job queue is down.")
    logger.error("could not queue %s %s: %s", model._meta.model_name, job_id, exc)
    try:
        _finish_if(model, job_id, JobStatus.FAILED, only_from=Q(status=JobStatus.QUEUED), audit_action=audit_action,
                   stage="not queued", error=message)
    except Exception:  # the database is down too: the requeue sweep will find the job queued
        logger.exception("could not mark %s %s failed", model._meta.model_name, job_id)
    return message


def job_claim(model, job_id: int) -> bool:
    """Conditional update queued → running: exactly one worker wins."""
    now = timezone.now()
    return bool(model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, stage="starting",
        worker=f"{socket.gethostname()}:{os.getpid()}"))


def job_run(model, job_id: int, body: Callable[[], object], *, audit_action: str) -> str:
    """Worker side, once claimed: run `body` (which finishes the row) in a child process under the
    organization's memory limit (`mlplatform.job_process`). When the child could not finish the row (killed
    past the limit, crashed), the row is failed here with the reason. Every file of a job that did not
    succeed is removed. Returns the final status."""
    limit_mb = current_organization().max_job_memory_mb

    def still_running() -> bool:
        return model.objects.filter(pk=job_id, status=JobStatus.RUNNING).exists()

    error, peak_mb = job_process.run_job(body, memory_limit_mb=limit_mb, still_wanted=still_running)
    if peak_mb is not None:  # the watcher samples 20 times a second, the job's monitor once: keep the higher
        model.objects.filter(Q(peak_memory_mb__lt=peak_mb) | Q(peak_memory_mb__isnull=True), pk=job_id).update(
            peak_memory_mb=peak_mb)
    status = model.objects.filter(pk=job_id).values_list("status", flat=True).first()
    if status == JobStatus.RUNNING:
        _finish_if(model, job_id, JobStatus.FAILED, audit_action=audit_action, stage="failed",
                   error=error or "The job's process ended without recording a result; see the worker's log.")
        status = JobStatus.FAILED
    if status != JobStatus.SUCCEEDED:
        job_files_remove(model, job_id)
    return status


class JobEndedElsewhere(Exception):
    """The job's row left `running` while the job ran (declared lost by the housekeeping, for one): its result
    must not be recorded. Raised inside the transaction that registers the result, so nothing of it stays."""


def job_finish(model, job_id: int, status: str, monitor: JobMonitor | None, *, audit_action: str, **fields) -> bool:
    """End a running job. False when it no longer was running (nothing is written); a caller recording a
    result raises `JobEndedElsewhere` then, inside the result's transaction (see `job_finish_with_result`)."""
    if monitor is not None:
        fields.setdefault("peak_memory_mb", monitor.peak_memory_mb)
    return _finish_if(model, job_id, status, audit_action=audit_action,
                      pending_log=monitor.pending_log if monitor else [], **fields)


def job_finish_with_result(model, job_id: int, status: str, monitor: JobMonitor | None, *, audit_action: str,
                           **fields) -> None:
    """`job_finish` for an end that records a result (a model version, an output file): raises
    `JobEndedElsewhere` when the job is no longer running, so the caller's transaction rolls the result back."""
    if not job_finish(model, job_id, status, monitor, audit_action=audit_action, **fields):
        raise JobEndedElsewhere(f"{model._meta.verbose_name} {job_id} was ended elsewhere while it ran (its worker was "
                                "declared lost); its result was discarded")


def _finish_if(model, job_id: int, status: str, *, audit_action: str, only_from: Q = Q(status=JobStatus.RUNNING),
               pending_log: list | None = None, **fields) -> bool:
    """Move the job to `status` if it still matches `only_from`, with its log and an audit row."""
    with transaction.atomic():
        rows = model.objects.select_for_update().filter(pk=job_id)
        job = rows.filter(only_from).first()
        if job is None:
            return False
        log = job.log + list(pending_log or [])
        if fields.get("error"):
            log.append([timezone.now().isoformat(), f"error: {fields['error']}"])
        rows.update(status=status, finished_at=timezone.now(), log=log, **fields)
        audit_record(actor="system", action=f"{audit_action}_{status}", object_type=model._meta.model_name,
                     object_id=str(job_id), object_repr=str(job),
                     detail={"error": fields["error"][:200]} if fields.get("error") else {})
    return True


def job_files_remove(model, job_id: int) -> list[str]:
    """Remove every file the job wrote that no row points at (a failed job's model and ONNX files, a batch's
    partial output, work files). Returns the names removed."""
    job = model.objects.filter(pk=job_id).first()
    keep = job.files_in_use() if job is not None else set()
    return filestore.remove_job_files(job_files_prefix(model, job_id), keep=keep)


def job_files_prefix(model, job_id: int) -> str:
    return filestore.job_prefix(model._meta.model_name, job_id)


def _worker_gone(worker: str, started_at) -> bool:
    """True when `worker` ("host:pid") ran on this host and that process no longer exists (or its pid now
    belongs to a process started after the job). Workers on other hosts are judged by their heartbeat."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        process = psutil.Process(int(pid))
        return started_at is not None and process.create_time() > started_at.timestamp() + 1
    except psutil.NoSuchProcess:
        return True


def reap_lost_jobs(model, *, audit_action: str) -> int:
    """Running jobs whose worker died (its process is gone, or its heartbeat stopped): failed, 'worker lost',
    and their files removed."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_STALE_SECONDS)
    reaped = 0
    for job_id, worker, heartbeat, started in model.objects.filter(status=JobStatus.RUNNING).values_list(
            "pk", "worker", "heartbeat_at", "started_at"):
        if _worker_gone(worker, started):
            error = (f"Worker lost: the worker process running the job ({worker}) is gone: it was killed or "
                     "crashed. Start the job again.")
            only = Q(status=JobStatus.RUNNING, worker=worker)
        elif heartbeat is None or heartbeat < cutoff:
            error = ("Worker lost: the job stopped sending heartbeats (the worker process died, was killed or lost "
                     "its database connection). Start the job again.")
            only = Q(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff) | Q(status=JobStatus.RUNNING, heartbeat_at__isnull=True)
        else:
            continue
        if _finish_if(model, job_id, JobStatus.FAILED, only_from=only, audit_action=audit_action,
                      stage="worker lost", error=error):
            job_files_remove(model, job_id)
            reaped += 1
    return reaped


def requeue_stranded_jobs(model, task: Callable, *, audit_action: str) -> int:
    """Queued jobs that no worker has started within JOB_REQUEUE_AFTER_SECONDS of being queued: queued again
    (a second delivery of a job that does have a task is a no-op, the claim sees to that). A job whose task
    cannot be queued is failed, as at creation."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    stranded = Q(status=JobStatus.QUEUED) & (Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created__lt=cutoff))
    requeued = 0
    for job_id in model.objects.filter(stranded).values_list("pk", flat=True):
        with transaction.atomic():
            job = model.objects.select_for_update(skip_locked=True).filter(stranded, pk=job_id).first()
            if job is None:
                continue
            job.enqueued_at = now
            job.log = job.log + [[now.isoformat(), f"no worker had started the job {settings.JOB_REQUEUE_AFTER_SECONDS} s "
                                                   "after it was queued: queued again"]]
            job.save(update_fields=["enqueued_at", "log"])
            enqueue_for_current_organization(task, job_id, label=f"{model._meta.model_name} {job_id} (again)",
                                             on_error=lambda exc, job_id=job_id: _enqueue_failed(
                                                 model, job_id, exc, audit_action=audit_action))
        requeued += 1
    if requeued:
        logger.warning("queued %d stranded %s(s) again in %s", requeued, model._meta.model_name, connection.schema_name)
    return requeued


def job_housekeeping(model, task: Callable, *, audit_action: str) -> None:
    """What the minute housekeeping does for one kind of job in one organization."""
    reap_lost_jobs(model, audit_action=audit_action)
    requeue_stranded_jobs(model, task, audit_action=audit_action)


def job_cancel(model, job, *, actor: str, audit_action: str):
    """Queued: cancelled at once. Running: the worker stops at its next check (seconds). Finished: 409."""
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
