"""Background work for an organization: enqueue after commit, run inside the organization's schema.

Only the schema name and ids cross the queue; the worker fetches the rows again.
Tasks must be registered with `@tenant_task` so the worker never imports a path
it was not meant to run.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone
from django_q.tasks import async_task
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context

logger = logging.getLogger(__name__)

_TASKS: dict[str, Callable] = {}
_HOUSEKEEPING: list[Callable[[], None]] = []


def tenant_task(func: Callable) -> Callable:
    """Register a function that the worker may run inside an organization's schema."""
    _TASKS[f"{func.__module__}.{func.__name__}"] = func
    return func


def housekeeping_hook(func: Callable[[], None]) -> Callable[[], None]:
    """Register a function run every minute inside each organization's schema (e.g. finding lost jobs)."""
    _HOUSEKEEPING.append(func)
    return func


def enqueue_for_current_organization(func: Callable, *ids: int | str, label: str = "",
                                     on_error: Callable[[Exception], None] | None = None) -> None:
    """Queue `func(*ids)` for the organization of the current connection, once the transaction commits.

    When the broker refuses the task, `on_error(exc)` is called (after the commit) if given; otherwise the
    error propagates to whoever committed."""
    name = f"{func.__module__}.{func.__name__}"
    if name not in _TASKS:
        raise ValueError(f"{name} is not registered with @tenant_task")
    schema = connection.schema_name
    if schema == get_public_schema_name():
        raise ValueError("organization tasks cannot be queued from the public schema")

    def send() -> None:
        try:
            async_task("mlplatform.jobs.run_in_schema", schema, name, *ids, task_name=label or f"{schema}:{name}")
        except Exception as exc:
            if on_error is None:
                raise
            on_error(exc)

    transaction.on_commit(send)


def run_in_schema(schema_name: str, task_name: str, *ids):
    """Worker side: enter the organization's schema, then run the registered task."""
    touch_worker_heartbeat()
    func = _TASKS.get(task_name)
    if func is None:
        _import_task_modules()
        func = _TASKS.get(task_name)
    if func is None:
        raise LookupError(f"unknown task {task_name}; registered: {sorted(_TASKS)}")
    if not get_tenant_model().objects.filter(schema_name=schema_name).exists():
        raise LookupError(f"no organization with schema {schema_name}")
    with schema_context(schema_name):
        return func(*ids)


def _import_task_modules() -> None:
    from django.apps import apps
    from importlib import import_module

    for config in apps.get_app_configs():
        try:
            import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.tasks":
                raise


_last_touch = None


def touch_worker_heartbeat(*, min_interval_s: float = 5.0) -> None:
    """Record that this worker is alive (rate-limited; called by tasks and the minute housekeeping)."""
    from tenants.models import WorkerHeartbeat

    global _last_touch
    now = timezone.now()
    if _last_touch and (now - _last_touch).total_seconds() < min_interval_s:
        return
    _last_touch = now
    with schema_context(get_public_schema_name()):
        WorkerHeartbeat.objects.update_or_create(worker=socket.gethostname()[:200], defaults={"last_seen": now})


def housekeeping() -> int:
    """Scheduled every minute: heartbeat, then each organization's hooks. Returns the organizations visited."""
    touch_worker_heartbeat(min_interval_s=0)
    _import_task_modules()
    visited = 0
    for schema in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()).values_list("schema_name", flat=True):
        with schema_context(schema):
            for hook in _HOUSEKEEPING:
                try:
                    hook()
                except Exception:  # one organization's problem must not stop the others
                    logger.exception("housekeeping hook %s failed in %s", hook.__name__, schema)
        visited += 1
    return visited


def worker_status(*, stale_after_s: int = 180) -> dict:
    """The freshest worker heartbeat and whether it is recent enough to call the worker alive."""
    from tenants.models import WorkerHeartbeat

    with schema_context(get_public_schema_name()):
        beat = WorkerHeartbeat.objects.order_by("-last_seen").first()
    if beat is None:
        return {"alive": False, "last_heartbeat": None, "seconds_ago": None}
    ago = (timezone.now() - beat.last_seen).total_seconds()
    return {"alive": ago <= stale_after_s, "last_heartbeat": beat.last_seen.isoformat(), "seconds_ago": round(ago, 1), "worker": beat.worker}
