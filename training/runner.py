"""The worker side of a training job: claim, train with live progress, register, finish. All or nothing."""
from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, transaction

from mlplatform.errors import ApplicationError
from mlplatform.job_process import unexpected_error_message
from mlplatform.job_runtime import (
    JobMonitor, job_claim, job_files_prefix, job_finish, job_finish_with_result, job_housekeeping, job_run,
)
from models_registry.services import VersionSpec, model_version_register
from training.ml.artifacts import dump_pipeline
from training.ml.automl import AutoMLConfig, run_automl
from training.ml.errors import JobCancelled, JobTimedOut, MLInputError
from training.ml.interrupt import interruptible
from training.ml.threads import job_threads
from training.ml.trainer import TrainConfig, library_versions, train

from .models import JobStatus, TrainingJob
from .services import dataset_frame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    """How one kind of training job reads its settings, runs, and bounds its time."""

    config: type
    run: Callable
    deadline_s: Callable[[Any], float | None]  # the hard limit: past it the job fails
    prepare: Callable[[Any], None] = lambda config: None


def _leave_time_to_refit(config: TrainConfig) -> None:
    if config.time_limit_s:  # the search stops starting trials at 80% of the limit, leaving time to refit and evaluate
        config.time_limit_s = round(config.time_limit_s * 0.8, 1)


JOB_KINDS: dict[str, JobKind] = {
    "train": JobKind(config=TrainConfig, run=train, deadline_s=lambda c: c.time_limit_s, prepare=_leave_time_to_refit),
    # AutoML keeps its own budget (+10%); the hard limit only catches a runaway
    "automl": JobKind(config=AutoMLConfig, run=run_automl, deadline_s=lambda c: c.time_budget_s * 1.5 + 60),
}


def run_training_job(job_id: int) -> str:
    """Run one job inside the current organization's schema (in a child process under the organization's
    memory limit, when called by a worker). Returns its final status."""
    if not job_claim(TrainingJob, job_id):
        return "not claimed (cancelled or taken by another worker)"
    return job_run(TrainingJob, job_id, lambda: _train(job_id), audit_action="training")


def _train(job_id: int) -> str:
    job = TrainingJob.objects.select_related("dataset").get(pk=job_id)
    kind = JOB_KINDS[job.kind]
    config = kind.config.from_dict(job.config)
    monitor = JobMonitor(TrainingJob, job, time_limit_s=kind.deadline_s(config))
    monitor.start()
    versions = library_versions()
    TrainingJob.objects.filter(pk=job_id).update(library_versions=versions)
    try:
        if job.dataset is None:
            raise MLInputError("the dataset of this job was deleted before it started", field="dataset")
        monitor.progress("loading dataset", 0.01)
        columns = None if config.features is None else sorted(set(config.features) | {config.target})
        frame = dataset_frame(job.dataset, columns=columns)
        kind.prepare(config)
        monitor.log(f"dataset '{job.dataset.name}': {len(frame):,} rows, {frame.shape[1]} columns used")
        with job_threads(config.n_threads), interruptible(monitor.check):
            result = kind.run(frame, config, progress=monitor.progress)
        del frame
        cancelled = getattr(result, "cancelled", False)  # AutoML asked to keep its best model when cancelled
        step = monitor.log if cancelled else (lambda stage: monitor.progress(stage, 0.99))
        for note in result.notes:
            monitor.log(note)
        step("registering model version")
        artifact = dump_pipeline(result.pipeline)
        step("compiling to ONNX and checking it against the pipeline")
        with job_threads(config.n_threads):  # the parity check predicts the test part with the native pipeline
            onnx_bytes, onnx_check = onnx_for(result)
        monitor.log(f"serving engine: {'ONNX Runtime' if onnx_bytes else 'native pipeline'} "
                    f"({onnx_check.get('reason') or 'ONNX agrees with the pipeline on the test split'})")
        if not cancelled:
            monitor.check()  # last chance to cancel: nothing is registered yet
        summary = result.summary()
        with transaction.atomic():
            version = model_version_register(actor=job.created_by, spec=VersionSpec(
                model_name=job.model_name, artifact=artifact, algorithm=result.algorithm,
                problem_type=result.problem_type.value, target=result.target, classes=summary["classes"] or [],
                metrics=summary["test_metrics"], params=summary["best_params"],
                cv={"metric": result.metric, "mean": summary["cv_mean"], "std": summary["cv_std"],
                    "folds": config.cv_folds, "greater_is_better": result.greater_is_better},
                feature_schema=summary["feature_schema"], target_schema=summary["target_schema"],
                importance=summary["importance"], library_versions=versions,
                dataset_id=job.dataset_id, job_id=job.pk, onnx=onnx_bytes, onnx_check=onnx_check,
                file_prefix=job_files_prefix(TrainingJob, job.pk)))
            monitor.stop()
            status = JobStatus.CANCELLED if cancelled else JobStatus.SUCCEEDED
            job_finish_with_result(TrainingJob, job_id, status, monitor, audit_action="training", progress=1.0,
                                   model_version=version, result={k: v for k, v in summary.items() if k != "feature_schema"},
                                   stage="cancelled: the best model so far was registered" if cancelled else "done")
        return status
    except JobCancelled:
        monitor.stop()
        finish(job_id, JobStatus.CANCELLED, monitor, stage="cancelled")
        return JobStatus.CANCELLED
    except JobTimedOut:
        monitor.stop()
        finish(job_id, JobStatus.FAILED, monitor, stage="time limit exceeded",
               error=f"The job exceeded its time limit of {monitor.time_limit_s:g} s.")
        return JobStatus.FAILED
    except (MLInputError, ApplicationError) as exc:
        monitor.stop()
        finish(job_id, JobStatus.FAILED, monitor, stage="failed", error=exc.message)
        return JobStatus.FAILED
    except Exception as exc:
        logger.exception("training job %s failed", job_id)
        monitor.stop()
        monitor.log(traceback.format_exc(limit=5))
        finish(job_id, JobStatus.FAILED, monitor, stage="failed", error=unexpected_error_message(exc))
        return JobStatus.FAILED
    finally:
        monitor.stop()
        close_old_connections()


def onnx_for(result) -> tuple[bytes | None, dict]:
    """ONNX bytes when the conversion works and agrees with the pipeline on the test split, else None and why.

    Agreement is what every route must reach (``onnx_export.PARITY_TOLERANCE``): probabilities within 1e-6,
    regression values within 1e-6 of the target's spread on the test split. A graph that cannot (XGBoost's
    converter computes in single precision, which cannot hold a target near 1e9 closely enough) is not used:
    the native pipeline serves real-time predictions too, and the check says why.
    """
    from training.ml.onnx_export import OnnxUnsupported, check_parity, export_onnx

    frame = result.test_frame[result.used_columns]
    classes = result.classes
    try:
        data = export_onnx(result.pipeline, frame, problem_type=result.problem_type.value, classes=classes)
    except OnnxUnsupported as exc:
        return None, {"converted": False, "agree": False, "reason": f"no ONNX conversion: {exc}"}
    except Exception as exc:  # a converter bug must not fail the training job: native serving still works
        logger.exception("ONNX export failed")
        return None, {"converted": False, "agree": False, "reason": f"ONNX export failed: {exc.__class__.__name__}"}
    spread = (result.target_schema or {}).get("std_test")
    check = check_parity(result.pipeline, data, frame, problem_type=result.problem_type.value, classes=classes,
                         spread=spread)
    if not check["agree"]:
        check["reason"] = check.get("reason") or "ONNX and the pipeline disagree on the test split"
        return None, {"converted": True, **check}
    return data, {"converted": True, **check}


def finish(job_id: int, status: str, monitor: JobMonitor, **fields) -> None:
    job_finish(TrainingJob, job_id, status, monitor, audit_action="training", **fields)


def housekeeping() -> None:
    from .tasks import run_training_job as task

    job_housekeeping(TrainingJob, task, audit_action="training")
