"""Tasks the worker runs inside an organization's schema (queued with mlplatform.jobs)."""
from mlplatform.jobs import housekeeping_hook, tenant_task


@tenant_task
def run_training_job(job_id: int) -> str:
    from .runner import run_training_job as run

    return run(job_id)


@housekeeping_hook
def reap_lost_jobs() -> None:
    from .runner import reap_lost_jobs as reap

    reap()
