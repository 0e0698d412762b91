"""Datasets and training jobs (each organization's schema)."""
from __future__ import annotations

import uuid

from django.db import models

from mlplatform.models import ACTIVE_STATES, TERMINAL_STATES, BackgroundJob, JobStatus  # noqa: F401


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


class TrainingJob(BackgroundJob):
    """One training run, NetBox-style: status with terminal states, timestamps, progress, log and error."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, default="train")
    dataset = models.ForeignKey(Dataset, null=True, on_delete=models.SET_NULL, related_name="jobs")
    dataset_name = models.CharField(max_length=200, help_text="Kept when the dataset is deleted.")
    model_name = models.CharField(max_length=200)
    config = models.JSONField(default=dict)
    result = models.JSONField(default=dict, blank=True, help_text="Trials, metrics and notes of a finished job.")
    model_version = models.ForeignKey("models_registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    library_versions = models.JSONField(default=dict, blank=True)

    class Meta(BackgroundJob.Meta):
        pass

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.model_name})"

    def files_in_use(self) -> set[str]:
        from models_registry.models import ModelVersion

        files = ModelVersion.objects.filter(job_id=self.pk).values_list("artifact", "onnx_artifact")
        return {name for pair in files for name in pair if name}
