"""Writes for datasets and training jobs. Views and APIs call these; the worker runs `training.runner`."""
from __future__ import annotations

import logging
import os

import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mlplatform import filestore
from mlplatform.errors import ApplicationError
from mlplatform.job_runtime import check_job_quota, job_cancel, job_create
from tenants.accounts.services import audit_record
from tenants.selectors import current_organization
from training.ml.automl import AutoMLConfig
from training.ml.ingest import ingest_to_parquet
from training.ml.profile import profile_parquet, profile_readings
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
    stored_name = ""
    try:
        with filestore.staged(".parquet") as staging:
            if hasattr(file, "seek"):
                file.seek(0)
            result = ingest_to_parquet(file, staging, filename=filename, max_bytes=upload_limit_bytes(),
                                       max_columns=settings.DATASET_MAX_COLUMNS)
            profile = profile_parquet(staging, readings=result.readings)
            _check_quota(os.path.getsize(staging))
            stored_name = storage.new_dataset_name()
            stored = filestore.store(staging, stored_name)
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
        filestore.delete(stored_name)
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
    name = dataset.file
    with transaction.atomic():
        audit_record(actor=actor, action="dataset_deleted", obj=dataset, detail={"rows": dataset.rows})
        dataset.delete()
        transaction.on_commit(lambda: filestore.delete(name))


def dataset_frame(dataset: Dataset, columns: list[str] | None = None) -> pd.DataFrame:
    """The stored table as it was uploaded (text stays text: ``dataset_readings`` says how to read it)."""
    return filestore.read_frame(dataset.file, columns=columns)


def dataset_readings(dataset: Dataset) -> dict:
    """Column -> ``ColumnReading`` stored in the dataset's profile (datasets profiled before readings have none)."""
    return profile_readings(dataset.profile)


def dataset_set_readings(*, actor: str, dataset: Dataset, column_kinds: dict | None = None,
                         column_readings: dict | None = None) -> Dataset:
    """Set how some columns are read: their kind (``column_kinds``: column -> numeric, categorical, boolean, date,
    text or identifier) and, for numbers and dates, their format (``column_readings``: column -> {"format": ...},
    e.g. "dd/mm/yyyy" or "dot_thousands"; the kind is then the column's own). Each choice is checked against
    every value of the column (400 naming it when it cannot apply); the profile is recomputed and the change
    audited. Jobs started afterwards read the columns this way; existing model versions keep their own rules.
    """
    from training.ml.reading import ColumnReading, reading_for_kind

    column_kinds, column_readings = column_kinds or {}, column_readings or {}
    if not column_kinds and not column_readings:
        raise ApplicationError("Give column_kinds or column_readings to change.", field="column_kinds")
    current = {c["name"]: c for c in dataset.profile.get("columns", [])}
    chosen: dict[str, ColumnReading] = {}
    for field, choices in (("column_kinds", column_kinds), ("column_readings", column_readings)):
        unknown = [c for c in choices if c not in current]
        if unknown:
            raise ApplicationError(f"{field}: column(s) {', '.join(repr(c) for c in unknown)} are not in dataset "
                                   f"'{dataset.name}'; columns are: {', '.join(current)}.", field=field)
    changed = list(dict.fromkeys([*column_kinds, *column_readings]))
    frame = dataset_frame(dataset, columns=changed)
    for column in changed:
        reading = column_readings.get(column) or {}
        if not isinstance(reading, dict):
            raise ApplicationError(f"column_readings.{column} must be an object such as "
                                   '{"format": "dd/mm/yyyy"}.', field="column_readings")
        kind = column_kinds.get(column) or reading.get("kind") or current[column].get("kind")
        values = frame[column]
        chosen[column] = reading_for_kind(values, kind, name=column, format_key=reading.get("format"),
                                          field="column_kinds" if column in column_kinds else "column_readings")
    readings = {name: entry.get("reading") for name, entry in current.items() if entry.get("reading")}
    readings.update({name: reading.as_dict() for name, reading in chosen.items()})
    with filestore.open_parquet(dataset.file) as source:
        profile = profile_parquet(source, readings=readings)
    with transaction.atomic():
        dataset.profile = profile
        dataset.save(update_fields=["profile"])
        audit_record(actor=actor, action="dataset_readings_changed", obj=dataset,
                     detail={name: reading.describe() for name, reading in chosen.items()})
    return dataset


# --- Training jobs ---------------------------------------------------------------
TRAIN_FIELDS = {"target", "features", "algorithm", "problem_type", "search", "n_trials", "time_limit_s", "metric",
                "cv_folds", "test_size", "random_state", "params", "refit_on_all_rows", "column_kinds", "column_readings"}
AUTOML_FIELDS = {"target", "features", "problem_type", "metric", "time_budget_s", "cv_folds", "test_size",
                 "random_state", "ensemble", "keep_best_on_cancel", "refit_on_all_rows", "column_kinds",
                 "column_readings"}
DEFAULT_AUTOML_BUDGET_S = 60


def _job_config(settings_in: dict, frame: pd.DataFrame) -> tuple[str, object, list[str]]:
    """(kind, validated config, notes). `algorithm: auto` is an AutoML run across the registry within a budget."""
    notes = []
    if settings_in.get("algorithm", "auto") == "auto":
        values = {k: v for k, v in settings_in.items() if k in AUTOML_FIELDS and v is not None}
        values.setdefault("time_budget_s", DEFAULT_AUTOML_BUDGET_S)
        ignored = sorted(k for k in ("search", "n_trials", "params", "time_limit_s")
                         if settings_in.get(k) not in (None, "none", {}, 20))
        if ignored:
            notes.append(f"AutoML chooses algorithms and parameters itself; ignored: {', '.join(ignored)}")
        config = AutoMLConfig.from_dict({**values, "n_threads": settings.THREADS_PER_JOB})
        kind = "automl"
        notes.append(f"AutoML across the registry's algorithms within {config.time_budget_s:g} s")
    else:
        values = {k: v for k, v in settings_in.items() if k in TRAIN_FIELDS and v is not None}
        config = TrainConfig.from_dict({**values, "n_threads": settings.THREADS_PER_JOB})
        kind = "train"
    config.validate(frame)
    return kind, config, notes


def training_job_create(*, actor: str, dataset: Dataset, model_name: str, settings_in: dict) -> TrainingJob:
    """Check everything that can be checked before queuing (400 naming the field), then queue after commit."""
    from .tasks import run_training_job

    model_name = (model_name or "").strip()
    if not model_name:
        raise ApplicationError("Give the model a name to register it under.", field="model_name")
    target = settings_in.get("target")
    if not target:
        raise ApplicationError("Choose the target column to predict.", field="target")
    if target not in dataset.column_names:
        raise ApplicationError(f"Column '{target}' is not in dataset '{dataset.name}'; columns are: "
                               f"{', '.join(dataset.column_names)}.", field="target")
    check_job_quota(current_organization())
    needed = [c for c in (settings_in.get("features") or dataset.column_names) if c in dataset.column_names]
    columns = sorted(set(needed) | {target} | set(settings_in.get("column_kinds") or {}))
    frame = dataset_frame(dataset, columns=[c for c in columns if c in dataset.column_names])
    # The job reads the columns as the dataset says (recorded in its config); column_kinds overrides some.
    stored = {name: reading.as_dict() for name, reading in dataset_readings(dataset).items() if name in columns}
    settings_in = {**settings_in, "column_readings": stored or None}
    kind, config, notes = _job_config(settings_in, frame)
    return job_create(
        TrainingJob, actor=actor, task=run_training_job, label=f"train {model_name}", audit_action="training",
        audit_detail={"dataset": dataset.name, "kind": kind, "algorithm": getattr(config, "algorithm", "auto")},
        kind=kind, dataset=dataset, dataset_name=dataset.name, model_name=model_name[:200], config=config.as_dict(),
        log=[[timezone.now().isoformat(), n] for n in notes])


def training_job_cancel(*, actor: str, job: TrainingJob) -> TrainingJob:
    return job_cancel(TrainingJob, job, actor=actor, audit_action="training")


# --- Suggestions ---------------------------------------------------------------------
SUGGESTION_SAMPLE_ROWS = 50_000


def dataset_sample(dataset: Dataset, rows: int, *, seed: int = 0) -> pd.DataFrame:
    """A random sample of at most `rows` rows, read column-wise (a 1,000,000-row file reads in about a second)."""
    frame = dataset_frame(dataset)
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def suggestions_for(*, dataset: Dataset, target: str) -> dict:
    from training.ml.suggest import suggest

    if target not in dataset.column_names:
        raise ApplicationError(f"Column '{target}' is not in dataset '{dataset.name}'; columns are: "
                               f"{', '.join(dataset.column_names)}.", field="target")
    from training.ml.reading import read_frame

    sample = read_frame(dataset_sample(dataset, SUGGESTION_SAMPLE_ROWS), dataset_readings(dataset))
    return suggest(sample, target, profile=dataset.profile, total_rows=dataset.rows)
