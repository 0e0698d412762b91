"""Datasets and training jobs (each organization's schema)."""
from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Dataset(models.Model):
    name = models.CharField(max_length=200)
    original_filename = models.CharField(max_length=255)
    file = models.CharField(max_length=255, help_text="Parquet file in the organization's storage.")
    file_format = models.CharField(max_length=10, help_text="Format of the upload: csv or parquet.")
    delimiter = models.CharField(max_length=4, blank=True)
    encoding = models.CharField(max_length=20, blank=True)
    size_bytes = models.BigIntegerField(help_text="Size of the upload.")
    stored_bytes = models.BigIntegerField(default=0, help_text="Size of the stored Parquet file.")
    rows = models.BigIntegerField()
    columns = models.PositiveIntegerField()
    profile = models.JSONField(default=dict)
    notes = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.profile.get("columns", [])]


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATES = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
ACTIVE_STATES = {JobStatus.QUEUED, JobStatus.RUNNING}


class TrainingJob(models.Model):
    """One training run, NetBox-style: status with terminal states, timestamps, progress, log and error."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, default="train")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="jobs")
    dataset_name = models.CharField(max_length=200, help_text="Kept when the dataset is deleted.")
    model_name = models.CharField(max_length=200)
    config = models.JSONField(default=dict)
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
    result = models.JSONField(default=dict, blank=True, help_text="Trials, metrics and notes of a finished job.")
    model_version = models.ForeignKey("models_registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    peak_memory_mb = models.FloatField(null=True, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.model_name})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 1)
