"""What every background job shares (training, batch prediction): the NetBox shape of status, timestamps,
progress, log and error. Abstract: each app's job table lives in the organization's schema."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATES = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
ACTIVE_STATES = {JobStatus.QUEUED, JobStatus.RUNNING}


class BackgroundJob(models.Model):
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=200, blank=True)
    log = models.JSONField(default=list, blank=True, help_text="Lines of [iso time, message].")
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="Last time the job's task was queued again "
                                       "(first time: created).")

    class Meta:
        abstract = True
        ordering = ["-created", "-id"]

    def files_in_use(self) -> set[str]:
        """Names of the files this job wrote that rows point at: kept when the job's other files are removed."""
        return set()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 1)
