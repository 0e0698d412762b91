"""Writes for datasets and training jobs. Views and APIs call these; the worker runs `training.runner`."""
from __future__ import annotations

import logging
import os

import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mlplatform.errors import ApplicationError
from mlplatform.job_runtime import job_cancel
from mlplatform.jobs import enqueue_for_current_organization
from tenants.accounts.services import audit_record
from tenants.selectors import current_organization
from training.ml.algorithms import algorithms_for
from training.ml.ingest import ingest_to_parquet
from training.ml.problem import resolve_problem_type
from training.ml.profile import profile_parquet
from training.ml.trainer import TrainConfig

from . import storage
from .models import ACTIVE_STATES, Dataset, JobStatus, TrainingJob

logger = logging.getLogger(__name__)


# --- Datasets -----------------------------------------------------------------
def upload_limit_bytes() -> int:
    return current_organization().max_upload_mb * storage.MB


def check_upload_size(declared_bytes: int | None) -> None:
    """Refuse early, before reading the body, when the declared size is already over the limit."""
    limit = upload_limit_bytes()
    if declared_bytes and declared_bytes > limit + 64 * 1024:  # multipart framing adds a little
        raise ApplicationError(f"The file is larger than this organization's upload limit of {limit // storage.MB} MB.",
                               field="file", status=413)


def _check_quota(incoming_bytes: int) -> None:
    org = current_organization()
    quota = org.storage_quota_mb * storage.MB
    used = storage.storage_used_bytes()
    if used + incoming_bytes > quota:
        raise ApplicationError(
            f"Storing this file would exceed the organization's storage quota of {org.storage_quota_mb} MB "
            f"({used // storage.MB} MB used). Delete datasets or model versions, or ask for a larger quota.",
            field="file", status=413)


def dataset_create(*, actor: str, file, name: str = "") -> Dataset:
    """Validate, convert to Parquet and profile an upload. On any error nothing is stored."""
    filename = os.path.basename(getattr(file, "name", "") or "upload")
    _check_quota(getattr(file, "size", 0) or 0)
    stored_name, path = storage.new_dataset_path()
    try:
        if hasattr(file, "seek"):
            file.seek(0)
        result = ingest_to_parquet(file, path, filename=filename, max_bytes=upload_limit_bytes(),
                                   max_columns=settings.DATASET_MAX_COLUMNS)
        profile = profile_parquet(path)
        stored = os.path.getsize(path)
        _check_quota(stored)
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=(name or os.path.splitext(filename)[0])[:200], original_filename=filename[:255], file=stored_name,
                file_format=result.file_format, delimiter=result.delimiter or "", encoding=result.encoding or "",
                size_bytes=result.size_bytes, stored_bytes=stored, rows=result.rows, columns=len(result.columns),
                profile=profile, notes=result.notes, created_by=actor,
            )
            audit_record(actor=actor, action="dataset_uploaded", obj=dataset,
                         detail={"rows": result.rows, "columns": len(result.columns), "file": filename})
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise
    return dataset


def dataset_delete(*, actor: str, dataset: Dataset) -> None:
    """Delete a dataset and its file, unless a model version or an unfinished job still uses it (409 says which)."""
    from models_registry.models import ModelVersion

    versions = [str(v) for v in ModelVersion.objects.filter(dataset=dataset).select_related("registered_model")]
    if versions:
        raise ApplicationError(
            f"Dataset '{dataset.name}' is used by model version(s) {', '.join(versions)}; delete those versions first.",
            status=409, extra={"model_versions": versions})
    active = list(dataset.jobs.filter(status__in=ACTIVE_STATES).values_list("pk", flat=True))
    if active:
        raise ApplicationError(f"Dataset '{dataset.name}' is used by unfinished job(s) {', '.join(map(str, active))}; "
                               "cancel them or wait for them to finish.", status=409, extra={"jobs": active})
    path = storage.absolute_path(dataset.file)
    with transaction.atomic():
        audit_record(actor=actor, action="dataset_deleted", obj=dataset, detail={"rows": dataset.rows})
        dataset.delete()
        transaction.on_commit(lambda: os.path.exists(path) and os.remove(path))


def dataset_frame(dataset: Dataset, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(storage.absolute_path(dataset.file), columns=columns)


# --- Training jobs ---------------------------------------------------------------
JOB_FIELDS = {"target", "features", "algorithm", "problem_type", "search", "n_trials", "time_limit_s", "metric",
              "cv_folds", "test_size", "random_state", "params"}


# For a single job, `algorithm: auto` takes the first of these that fits the problem: strong defaults on tabular data.
AUTO_PREFERENCE = ["hist_gradient_boosting", "random_forest", "xgboost"]


def _auto_algorithm(config: dict, frame: pd.DataFrame) -> tuple[str, str]:
    problem = resolve_problem_type(config.get("problem_type") or "auto", frame[config["target"]])
    fitting = {a.key: a for a in algorithms_for(problem)}
    choice = next((fitting[k] for k in AUTO_PREFERENCE if k in fitting), next(iter(fitting.values())))
    return choice.key, (f"algorithm 'auto': chose {choice.label}, a strong default for {problem.value} problems "
                        "on tabular data")


def training_job_create(*, actor: str, dataset: Dataset, model_name: str, settings_in: dict) -> TrainingJob:
    """Check everything that can be checked before queuing (400 naming the field), then queue after commit."""
    from .tasks import run_training_job

    model_name = (model_name or "").strip()
    if not model_name:
        raise ApplicationError("Give the model a name to register it under.", field="model_name")
    config = {k: v for k, v in settings_in.items() if k in JOB_FIELDS and v is not None}
    target = config.get("target")
    if not target:
        raise ApplicationError("Choose the target column to predict.", field="target")
    if target not in dataset.column_names:
        raise ApplicationError(f"Column '{target}' is not in dataset '{dataset.name}'; columns are: "
                               f"{', '.join(dataset.column_names)}.", field="target")
    org = current_organization()
    active = TrainingJob.objects.filter(status__in=ACTIVE_STATES).count()
    if active >= org.max_concurrent_jobs:
        raise ApplicationError(f"This organization already has {active} job(s) queued or running; its plan allows "
                               f"{org.max_concurrent_jobs} at once. Wait for one to finish or cancel one.", status=409)
    needed = [c for c in (config.get("features") or dataset.column_names) if c in dataset.column_names]
    frame = dataset_frame(dataset, columns=sorted(set(needed) | {target}))
    notes = []
    config["n_threads"] = settings.THREADS_PER_JOB
    if config.get("algorithm", "auto") == "auto":
        # check the data with an algorithm that fits every problem type first, so errors name the real cause
        TrainConfig.from_dict({**config, "algorithm": "random_forest", "params": {}}).validate(frame)
        config["algorithm"], note = _auto_algorithm(config, frame)
        notes.append(note)
    train_config = TrainConfig.from_dict(config)
    train_config.validate(frame)
    job = TrainingJob.objects.create(
        dataset=dataset, dataset_name=dataset.name, model_name=model_name[:200], config=train_config.as_dict(),
        created_by=actor, log=[[timezone.now().isoformat(), n] for n in notes],
    )
    audit_record(actor=actor, action="training_started", obj=job,
                 detail={"dataset": dataset.name, "algorithm": train_config.algorithm, "search": train_config.search})
    enqueue_for_current_organization(run_training_job, job.pk, label=f"train {model_name}")
    return job


def training_job_cancel(*, actor: str, job: TrainingJob) -> TrainingJob:
    return job_cancel(TrainingJob, job, actor=actor, audit_action="training")
