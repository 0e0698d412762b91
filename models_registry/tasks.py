"""Tasks the worker runs inside an organization's schema."""
from mlplatform.jobs import housekeeping_hook, tenant_task


@tenant_task
def run_batch_job(job_id: int) -> str:
    from .batch import run_batch

    return run_batch(job_id)


@housekeeping_hook
def reap_lost_batch_jobs() -> None:
    from mlplatform.job_runtime import reap_lost_jobs

    from .models import BatchPredictionJob

    reap_lost_jobs(BatchPredictionJob, audit_action="batch_prediction")
