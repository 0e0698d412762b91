"""Registered models and their numbered versions (each organization's schema).

Lineage points at training's tables by string reference only: this app never imports `training`.
"""
from __future__ import annotations

from django.db import models


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
    metrics = models.JSONField(default=dict)
    cv = models.JSONField(default=dict, help_text="Metric optimized, mean and standard deviation across folds.")
    params = models.JSONField(default=dict)
    feature_schema = models.JSONField(default=list)
    importance = models.JSONField(default=list)
    library_versions = models.JSONField(default=dict)
    dataset = models.ForeignKey("training.Dataset", null=True, on_delete=models.PROTECT, related_name="model_versions")
    job = models.ForeignKey("training.TrainingJob", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["registered_model__name", "-version"]
        constraints = [models.UniqueConstraint(fields=["registered_model", "version"], name="unique_version_per_model")]

    def __str__(self) -> str:
        return f"{self.registered_model.name} v{self.version}"
