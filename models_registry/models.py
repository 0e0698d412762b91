"""Registered models and their numbered versions (each organization's schema).

Lineage points at training's tables by string reference only: this app never imports `training`.
"""
from __future__ import annotations

from django.db import models

from mlplatform.models import BackgroundJob


class RegisteredModel(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=60)
    problem_type = models.CharField(max_length=20)
    target = models.CharField(max_length=200)
    classes = models.JSONField(default=list, blank=True)
    artifact = models.CharField(max_length=255, help_text="Path in the organization's storage.")
    artifact_format = models.CharField(max_length=20, default="skops")
    artifact_sha256 = models.CharField(max_length=64)
    artifact_hmac = models.CharField(max_length=64)
    artifact_size = models.BigIntegerField()
    onnx_artifact = models.CharField(max_length=255, blank=True)
    onnx_sha256 = models.CharField(max_length=64, blank=True)
    onnx_hmac = models.CharField(max_length=64, blank=True)
    serving_engine = models.CharField(max_length=10, default="native", help_text="onnx when ONNX agrees with native.")
    onnx_check = models.JSONField(default=dict, blank=True, help_text="Conversion and parity result.")
    metrics = models.JSONField(default=dict)
    cv = models.JSONField(default=dict, help_text="Metric optimized, mean and standard deviation across folds.")
    params = models.JSONField(default=dict)
    feature_schema = models.JSONField(default=list, help_text="Per used column: kind, reading, what training saw.")
    target_schema = models.JSONField(default=dict, blank=True,
                                     help_text="The target's reading; for regression its spread (std_test).")
    importance = models.JSONField(default=list)
    library_versions = models.JSONField(default=dict)
    dataset = models.ForeignKey("training.Dataset", null=True, on_delete=models.PROTECT, related_name="model_versions")
    job = models.ForeignKey("training.TrainingJob", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["registered_model__name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="unique_version_per_model"),
            # a job delivered twice (or run twice by any mistake) can never register two versions
            models.UniqueConstraint(fields=["job"], condition=models.Q(job__isnull=False), name="one_version_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"


class Alias(models.Model):
    """A movable name on a registered model (`production`, `staging`, any name) pointing at one version."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=60)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.CharField(max_length=150)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registered_model__name", "name"]
        constraints = [models.UniqueConstraint(fields=["registered_model", "name"], name="unique_alias_per_model")]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.name} → v{self.version.version}"


class AliasMove(models.Model):
    """Deployment history: every move of an alias, with who and when (roll back walks it backwards)."""

    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_moves")
    alias = models.CharField(max_length=60)
    from_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="alias_moves")
    action = models.CharField(max_length=20)  # deploy, rollback, set
    actor = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]


class Evaluation(models.Model):
    """Metrics of a version on another labelled dataset."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset = models.ForeignKey("training.Dataset", null=True, on_delete=models.SET_NULL, related_name="+")
    dataset_name = models.CharField(max_length=200)
    rows = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    warnings = models.JSONField(default=list, blank=True,
                                help_text="Values that changed meaning, per column and code, with example rows.")
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]


class PredictionStats(models.Model):
    """Per version and minute: requests, errors, a latency sample and the distribution of predictions."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="prediction_stats")
    minute = models.DateTimeField(db_index=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    records = models.PositiveIntegerField(default=0)
    latencies_ms = models.JSONField(default=list, help_text="Up to 500 request latencies of this minute.")
    predictions = models.JSONField(default=dict, help_text="Class → count, or histogram of predicted values.")

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["version", "minute"], name="one_stats_row_per_minute")]


class BatchPredictionJob(BackgroundJob):
    """Predictions for a whole table, run by the worker; the result is a CSV only members can download."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="batch_jobs")
    dataset = models.ForeignKey("training.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    input_name = models.CharField(max_length=255, help_text="Dataset name or uploaded file name.")
    input_file = models.CharField(max_length=255, blank=True, help_text="Parquet of an uploaded CSV, in storage.")
    output_file = models.CharField(max_length=255, blank=True)
    rows = models.BigIntegerField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True,
                                help_text="Values that changed meaning, per column and code, with example rows.")

    class Meta(BackgroundJob.Meta):
        pass

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.version})"

    def files_in_use(self) -> set[str]:
        return {self.output_file} if self.status == "succeeded" and self.output_file else set()
