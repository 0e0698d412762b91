"""Tasks the worker runs inside an organization's schema (queued with mlplatform.jobs)."""
from mlplatform.jobs import housekeeping_hook, tenant_task


@tenant_task
def run_training_job(job_id: int) -> str:
    from .runner import run_training_job as run

    return run(job_id)


@housekeeping_hook
def training_job_housekeeping() -> None:
    """Lost running jobs failed, stranded queued jobs queued again."""
    from .runner import housekeeping

    housekeeping()
