import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class MlplatformConfig(AppConfig):
    name = "mlplatform"
    verbose_name = "Platform"

    def ready(self):
        from mlplatform import unavailable
        from mlplatform.api import schema  # noqa: F401  (registers the OpenAPI authentication schemes)
        from django_q.signals import post_spawn, pre_execute

        post_spawn.connect(_worker_started, dispatch_uid="mlplatform-worker-started")
        pre_execute.connect(_worker_alive, dispatch_uid="mlplatform-heartbeat-execute")
        unavailable.install()


def _worker_started(sender, **kwargs):
    """A worker process started: jobs run isolated from here on, and whatever a killed predecessor left
    (running jobs whose process is gone, queued jobs whose task was lost) is recovered at once rather than
    at the next minute's housekeeping."""
    from mlplatform.job_process import mark_worker_process
    from mlplatform.jobs import housekeeping

    mark_worker_process()
    try:
        housekeeping()
    except Exception:
        logger.exception("housekeeping at worker start failed")


def _worker_alive(sender, **kwargs):
    """A worker process started or picked up a task: record its heartbeat (never let this break the worker)."""
    from mlplatform.jobs import touch_worker_heartbeat

    try:
        touch_worker_heartbeat()
    except Exception:
        logger.exception("could not record the worker heartbeat")
