"""Tasks the worker runs inside an organization's schema."""
from mlplatform.jobs import housekeeping_hook, tenant_task


@tenant_task
def run_batch_job(job_id: int) -> str:
    from .batch import run_batch

    return run_batch(job_id)


@housekeeping_hook
def batch_job_housekeeping() -> None:
    """Lost running batches failed, stranded queued ones queued again."""
    from mlplatform.job_runtime import job_housekeeping

    from .models import BatchPredictionJob

    job_housekeeping(BatchPredictionJob, run_batch_job, audit_action="batch_prediction")
