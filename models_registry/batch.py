"""Batch predictions: create (web) and run (worker). Inputs stream in chunks; the output CSV stays private.

Inputs are read with the version's stored column readings (an uploaded file's feature columns are kept as text
at ingestion, so the version's number and date formats decide how they read, not the file's own guess).

Engine: the one that predicts whole tables fastest for the version's algorithm (``loading.table_predictor``,
measured by ``bench/engines.py`` and ``bench/batch.py``): the native pipeline with the job's threads for forests
(1,000,000 rows, 100-tree random forest, 2 cores: about 98,000 rows/s against 16,000 for its one-thread ONNX
graph; 2.4x to 3.4x in ``bench/engines.py``), XGBoost and linear models (even to 1.5x); the ONNX graph for
histogram gradient boosting (1.7x to 3x the native rows/s).
A one-record request is different again (ONNX about 100 times faster, ``bench/serving.py``). The engines agree
within ``onnx_export.PARITY_TOLERANCE`` or ONNX is not used at all.
"""
from __future__ import annotations

import logging
import os

import pyarrow.parquet as pq
from django.conf import settings
from django.db import close_old_connections

from mlplatform import filestore
from mlplatform.errors import ApplicationError
from mlplatform.job_process import unexpected_error_message
from mlplatform.job_runtime import (
    JobMonitor, check_job_quota, job_cancel, job_claim, job_create, job_files_prefix, job_finish, job_finish_with_result,
    job_run,
)
from mlplatform.models import JobStatus
from tenants.selectors import current_organization
from training.ml.errors import JobCancelled, MLInputError
from training.ml.threads import job_threads

from .loading import table_predictor
from .models import BatchPredictionJob, ModelVersion

logger = logging.getLogger(__name__)
MB = 1024 * 1024


def _check_columns(version: ModelVersion, source, input_name: str) -> None:
    present = set(pq.read_schema(source).names)
    missing = [c["name"] for c in version.feature_schema if c["name"] not in present]
    if missing:
        raise ApplicationError(f"'{input_name}' lacks column(s) {', '.join(missing)} that {version} needs.",
                               field="dataset_id", extra={"missing_columns": missing})


def batch_create(*, actor: str, version: ModelVersion, dataset=None, upload=None) -> BatchPredictionJob:
    from .tasks import run_batch_job

    if (dataset is None) == (upload is None):
        raise ApplicationError("Give either a dataset_id or a CSV file, not both.", field="dataset_id")
    check_job_quota(current_organization())
    input_file = ""
    if upload is not None:
        from training.ml.ingest import ingest_to_parquet

        input_name = os.path.basename(upload.name or "upload.csv")
        with filestore.staged(".parquet") as staging:
            ingest_to_parquet(upload, staging, filename=input_name, max_bytes=current_organization().max_upload_mb * MB,
                              as_text={c["name"] for c in version.feature_schema})
            _check_columns(version, staging, input_name)
            input_file = filestore.new_name(filestore.BATCH_INPUTS, ".parquet")
            filestore.store(staging, input_file)
    else:
        with filestore.open_parquet(dataset.file) as source:
            _check_columns(version, source, dataset.name)
        input_name = dataset.name
    try:
        return job_create(BatchPredictionJob, actor=actor, task=run_batch_job, label=f"batch {version}",
                          audit_action="batch_prediction", audit_detail={"version": str(version), "input": input_name},
                          version=version, dataset=dataset, input_name=input_name[:255], input_file=input_file)
    except BaseException:
        filestore.delete(input_file)  # no job row points at it
        raise


def batch_cancel(*, actor: str, job: BatchPredictionJob) -> BatchPredictionJob:
    return job_cancel(BatchPredictionJob, job, actor=actor, audit_action="batch_prediction")


def run_batch(job_id: int) -> str:
    """Worker side. Returns the final status."""
    if not job_claim(BatchPredictionJob, job_id):
        return "not claimed"
    return job_run(BatchPredictionJob, job_id, lambda: _predict(job_id), audit_action="batch_prediction")


def _predict(job_id: int) -> str:
    from training.ml.batch import predict_batch

    job = BatchPredictionJob.objects.select_related("version__registered_model", "dataset").get(pk=job_id)
    monitor = JobMonitor(BatchPredictionJob, job)
    monitor.start()
    prefix = job_files_prefix(BatchPredictionJob, job_id)
    try:
        if job.input_file:
            input_name = job.input_file
        elif job.dataset is not None:
            input_name = job.dataset.file
        else:
            raise MLInputError("the input dataset was deleted before the job started", field="dataset_id")
        monitor.progress("loading model", 0.01)
        version = job.version
        predictor = table_predictor(version, n_threads=settings.THREADS_PER_JOB)  # the engine measured fastest
        monitor.log(f"engine: {'ONNX Runtime' if predictor.engine == 'onnx' else 'native pipeline'}")
        output_path = filestore.staging_path(".csv", prefix=prefix)
        with job_threads(settings.THREADS_PER_JOB), filestore.open_parquet(input_name) as source:
            result = predict_batch(
                source, predictor, output_path, feature_schema=version.feature_schema,
                progress=lambda done, total: monitor.progress(f"{done:,} of {total:,} rows", done / max(total, 1)),
                check_cancel=monitor.check)
        output_name = filestore.new_name(filestore.BATCH_OUTPUTS, ".csv", prefix=prefix)
        filestore.store(output_path, output_name)
        monitor.stop()
        for entry in result["warnings"]:
            monitor.log(f"{entry['count']:,} row(s): {entry['column']}: {entry['code']} "
                        f"(e.g. row {entry['examples'][0]['row']}: {entry['examples'][0]['message']})")
        job_finish_with_result(BatchPredictionJob, job_id, JobStatus.SUCCEEDED, monitor, audit_action="batch_prediction",
                               progress=1.0, stage="done", output_file=output_name, rows=result["rows"],
                               warnings=result["warnings"])
        return JobStatus.SUCCEEDED
    except JobCancelled:
        monitor.stop()
        job_finish(BatchPredictionJob, job_id, JobStatus.CANCELLED, monitor, audit_action="batch_prediction", stage="cancelled")
        return JobStatus.CANCELLED
    except (MLInputError, ApplicationError) as exc:
        monitor.stop()
        job_finish(BatchPredictionJob, job_id, JobStatus.FAILED, monitor, audit_action="batch_prediction", stage="failed",
                   error=exc.message)
        return JobStatus.FAILED
    except Exception as exc:
        logger.exception("batch job %s failed", job_id)
        monitor.stop()
        job_finish(BatchPredictionJob, job_id, JobStatus.FAILED, monitor, audit_action="batch_prediction", stage="failed",
                   error=unexpected_error_message(exc))
        return JobStatus.FAILED
    finally:
        monitor.stop()
        close_old_connections()
