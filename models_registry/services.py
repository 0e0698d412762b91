"""Writes of the registry: registering versions, aliases (deploy, roll back), evaluations, API keys."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

import pandas as pd

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from mlplatform import filestore, hotcache
from mlplatform.errors import ApplicationError
from tenants.accounts.models import ApiKey

from tenants.accounts.services import audit_record

from .models import Alias, AliasMove, Evaluation, ModelVersion, RegisteredModel
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
    target_schema: dict = field(default_factory=dict)
    importance: list = field(default_factory=list)
    library_versions: dict = field(default_factory=dict)
    dataset_id: int | None = None
    job_id: int | None = None
    onnx: bytes | None = None  # given only when it agreed with the native pipeline on the test split
    onnx_check: dict = field(default_factory=dict)
    file_prefix: str = ""  # the job's (mlplatform.filestore.job_prefix), so a failed job's files are found


def model_version_register(*, actor: str, spec: VersionSpec) -> ModelVersion:
    """Store the signed files and the version row. If this fails, its files are removed; if the caller's
    transaction rolls back afterwards, the job's clean-up removes them (they carry `spec.file_prefix`)."""
    stem = filestore.new_name(filestore.MODELS, "", prefix=spec.file_prefix)
    path, onnx_path = f"{stem}.skops", f"{stem}.onnx" if spec.onnx else ""
    try:
        filestore.save_bytes(path, spec.artifact)
        if spec.onnx:
            filestore.save_bytes(onnx_path, spec.onnx)
        with transaction.atomic():
            registered, _ = RegisteredModel.objects.select_for_update().get_or_create(
                name=spec.model_name, defaults={"created_by": actor})
            number = (registered.versions.aggregate(n=Max("version"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                registered_model=registered, version=number, algorithm=spec.algorithm, problem_type=spec.problem_type,
                target=spec.target, classes=spec.classes, artifact=path, artifact_sha256=sha256_hex(spec.artifact),
                artifact_hmac=hmac_hex(spec.artifact), artifact_size=len(spec.artifact), metrics=spec.metrics, cv=spec.cv,
                params=spec.params, feature_schema=spec.feature_schema, target_schema=spec.target_schema,
                importance=spec.importance,
                library_versions=spec.library_versions, dataset_id=spec.dataset_id, job_id=spec.job_id, created_by=actor,
                onnx_artifact=onnx_path, onnx_sha256=sha256_hex(spec.onnx) if spec.onnx else "",
                onnx_hmac=hmac_hex(spec.onnx) if spec.onnx else "", serving_engine="onnx" if spec.onnx else "native",
                onnx_check=spec.onnx_check,
            )
            audit_record(actor=actor, action="model_version_registered", obj=version,
                         detail={"algorithm": spec.algorithm, "job": spec.job_id})
    except BaseException:
        for stored in (path, onnx_path):
            filestore.delete(stored)
        raise
    return version


# --- Aliases: deploy and roll back ---------------------------------------------------
PRODUCTION = "production"
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


def alias_set(*, actor: str, version: ModelVersion, alias: str = PRODUCTION, action: str = "deploy") -> Alias:
    """Point `alias` of the version's registered model at this version; recorded in the history and audit log."""
    alias = (alias or "").strip().lower()
    if not ALIAS_PATTERN.match(alias):
        raise ApplicationError("An alias is 1-60 lowercase letters, digits, '-' or '_', starting with a letter.",
                               field="alias")
    with transaction.atomic():
        registered = RegisteredModel.objects.select_for_update().get(pk=version.registered_model_id)
        current = Alias.objects.filter(registered_model=registered, name=alias).select_related("version").first()
        if current and current.version_id == version.pk:
            raise ApplicationError(f"{version} is already {alias}.", field="alias", status=409)
        previous = current.version if current else None
        if current:
            current.version, current.updated_by = version, actor
            current.save(update_fields=["version", "updated_by", "updated"])
        else:
            current = Alias.objects.create(registered_model=registered, name=alias, version=version, updated_by=actor)
        AliasMove.objects.create(registered_model=registered, alias=alias, from_version=previous, to_version=version,
                                 action=action, actor=actor)
        audit_record(actor=actor, action=f"model_{action}", obj=version,
                     detail={"alias": alias, "from": str(previous) if previous else None, "to": str(version)})
        hotcache.bump()  # every serving process predicts with the new version from its next request
    return current


def alias_rollback(*, actor: str, registered: RegisteredModel, alias: str = PRODUCTION) -> Alias:
    """Move the alias back to the version it pointed at before its last move."""
    from .selectors import rollback_target

    current = Alias.objects.filter(registered_model=registered, name=alias).first()
    if current is None:
        raise ApplicationError(f"'{registered.name}' has no '{alias}' alias to roll back.", field="alias", status=409)
    target = rollback_target(current)
    if target is None:
        raise ApplicationError(f"'{registered.name}@{alias}' has no earlier version to roll back to.", status=409)
    return alias_set(actor=actor, version=target, alias=alias, action="rollback")


# --- Evaluations -------------------------------------------------------------------------
def evaluation_create(*, actor: str, version: ModelVersion, dataset, frame: pd.DataFrame) -> Evaluation:
    """Metrics of the version on a labelled frame; the frame must hold the target and every feature.

    The frame's columns are read with the version's stored readings (its feature and target schemas: the rules
    its training data was read with) and predicted by the engine batch predictions use
    (``loading.table_predictor``), so an evaluation's numbers are those a batch prediction of the same rows writes. Values that changed
    meaning (unseen category, far outside the training range, unreadable) are summarised in ``warnings``.
    """
    from training.ml.metrics import evaluate_predictions
    from training.ml.problem import ProblemType
    from training.ml.reading import ColumnReading, read_frame, read_target, readings_from_schema
    from training.ml.value_checks import WarningSummary, column_checks, frame_warnings

    from .loading import table_predictor

    needed = [c["name"] for c in version.feature_schema]
    missing = [c for c in [version.target, *needed] if c not in frame.columns]
    if missing:
        raise ApplicationError(f"Dataset '{dataset.name}' lacks column(s) {', '.join(missing)} that {version} needs "
                               f"(target '{version.target}' and its features).", field="dataset_id",
                               extra={"missing_columns": missing})
    target_reading = (ColumnReading.from_dict((version.target_schema or {}).get("reading"))
                      if (version.target_schema or {}).get("reading") else None)
    y = read_target(frame[version.target], target_reading)
    frame = frame[y.notna()]
    y = y[y.notna()]
    if frame.empty:
        raise ApplicationError(f"Dataset '{dataset.name}' has no rows with a value for '{version.target}'.", field="dataset_id")
    raw = frame[needed].reset_index(drop=True)
    X = read_frame(raw, readings_from_schema(version.feature_schema))
    summary = WarningSummary()
    summary.add(frame_warnings(raw, X, column_checks(version.feature_schema), offset=1))
    problem_type = ProblemType(version.problem_type)
    predictor = table_predictor(version, n_threads=1)  # the engine batch predictions use; one thread in a request
    try:
        labels, proba = predictor.predict(X)
        report = evaluate_predictions(y.to_numpy(), labels, proba, predictor.classes, problem_type)
    except ValueError as exc:
        raise ApplicationError(f"Cannot evaluate {version} on '{dataset.name}': {exc}", field="dataset_id") from exc
    evaluation = Evaluation.objects.create(version=version, dataset=dataset, dataset_name=dataset.name, rows=len(frame),
                                           metrics=report, warnings=summary.as_list(), created_by=actor)
    audit_record(actor=actor, action="model_evaluated", obj=version, detail={"dataset": dataset.name, "rows": len(frame)})
    return evaluation


# --- API keys -------------------------------------------------------------------------------
def api_key_create(*, actor: str, name: str, registered_models: list[RegisteredModel]) -> tuple[ApiKey, str]:
    """Returns the key and its secret, which is shown this once and never stored."""
    if not name.strip():
        raise ApplicationError("Give the key a name.", field="name")
    if not registered_models:
        raise ApplicationError("Choose at least one registered model the key may predict with.", field="model_ids")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name.strip()[:100], prefix=prefix, secret_hash=api_key_hash(secret), created_by=actor)
    key.registered_models.set(registered_models)
    audit_record(actor=actor, action="api_key_created", obj=key, detail={"models": [m.name for m in registered_models]})
    return key, f"mlp_{prefix}.{secret}"


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_revoke(*, actor: str, key: ApiKey) -> ApiKey:
    if key.revoked:
        raise ApplicationError(f"Key {key} is already revoked.", status=409)
    key.revoked = timezone.now()
    key.save(update_fields=["revoked"])
    audit_record(actor=actor, action="api_key_revoked", obj=key)
    hotcache.bump()  # refused from the next request on, in every serving process
    return key
