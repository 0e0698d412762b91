import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class MlplatformConfig(AppConfig):
    name = "mlplatform"
    verbose_name = "Platform"

    def ready(self):
        from mlplatform.api import schema  # noqa: F401  (registers the OpenAPI authentication schemes)
        from django_q.signals import post_spawn, pre_execute

        post_spawn.connect(_worker_alive, dispatch_uid="mlplatform-heartbeat-spawn")
        pre_execute.connect(_worker_alive, dispatch_uid="mlplatform-heartbeat-execute")


def _worker_alive(sender, **kwargs):
    """A worker process started or picked up a task: record its heartbeat (never let this break the worker)."""
    from mlplatform.jobs import touch_worker_heartbeat

    try:
        touch_worker_heartbeat()
    except Exception:
        logger.exception("could not record the worker heartbeat")
