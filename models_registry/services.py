"""Writes of the registry: registering a trained version (file first, then rows, all or nothing)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from tenants.accounts.services import audit_record

from .models import ModelVersion, RegisteredModel
from .signing import hmac_hex, sha256_hex


@dataclass
class VersionSpec:
    """What a trained model brings to the registry."""

    model_name: str
    artifact: bytes
    algorithm: str
    problem_type: str
    target: str
    classes: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    cv: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    feature_schema: list = field(default_factory=list)
    importance: list = field(default_factory=list)
    library_versions: dict = field(default_factory=dict)
    dataset_id: int | None = None
    job_id: int | None = None


def model_version_register(*, actor: str, spec: VersionSpec) -> ModelVersion:
    """Store the signed file and the version row. The caller's transaction decides: on rollback the file goes too."""
    path = default_storage.save(f"models/{uuid.uuid4().hex}.skops", ContentFile(spec.artifact))
    try:
        with transaction.atomic():
            registered, _ = RegisteredModel.objects.select_for_update().get_or_create(
                name=spec.model_name, defaults={"created_by": actor})
            number = (registered.versions.aggregate(n=Max("version"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                registered_model=registered, version=number, algorithm=spec.algorithm, problem_type=spec.problem_type,
                target=spec.target, classes=spec.classes, artifact=path, artifact_sha256=sha256_hex(spec.artifact),
                artifact_hmac=hmac_hex(spec.artifact), artifact_size=len(spec.artifact), metrics=spec.metrics, cv=spec.cv,
                params=spec.params, feature_schema=spec.feature_schema, importance=spec.importance,
                library_versions=spec.library_versions, dataset_id=spec.dataset_id, job_id=spec.job_id, created_by=actor,
            )
            audit_record(actor=actor, action="model_version_registered", obj=version,
                         detail={"algorithm": spec.algorithm, "job": spec.job_id})
    except Exception:
        default_storage.delete(path)
        raise
    return version
