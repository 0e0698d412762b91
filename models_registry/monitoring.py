"""Prediction monitoring without slowing requests down: requests add to an in-memory buffer, a background
thread writes per-minute aggregates (PredictionStats) every few seconds."""
from __future__ import annotations

import atexit
import logging
import threading
from collections import Counter, defaultdict

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import schema_context

logger = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 2.0
MAX_LATENCIES_PER_MINUTE = 500


class _Bucket:
    __slots__ = ("requests", "errors", "records", "latencies", "predictions")

    def __init__(self):
        self.requests = self.errors = self.records = 0
        self.latencies: list[float] = []
        self.predictions: Counter = Counter()


class StatsBuffer:
    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: dict[tuple, _Bucket] = defaultdict(_Bucket)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def record(self, *, version_id: int, latency_ms: float, ok: bool, records: int = 0, predictions=()) -> None:
        minute = timezone.now().replace(second=0, microsecond=0)
        with self._lock:
            # the database name is part of the key: a buffer never writes into another database than it read from
            bucket = self._buckets[(connection.settings_dict["NAME"], connection.schema_name, version_id, minute)]
            bucket.requests += 1
            bucket.errors += 0 if ok else 1
            bucket.records += records
            if len(bucket.latencies) < MAX_LATENCIES_PER_MINUTE:
                bucket.latencies.append(round(latency_ms, 3))
            bucket.predictions.update(_prediction_keys(predictions))
            if not self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="prediction-stats", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()
        connection.close()

    def stop(self) -> None:
        """Write what is buffered and stop the writer thread (process exit, end of a test session)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            buckets, self._buckets = self._buckets, defaultdict(_Bucket)
        for (database, schema, version_id, minute), bucket in buckets.items():
            if database != connection.settings_dict["NAME"]:
                continue
            try:
                with schema_context(schema):
                    _write(version_id, minute, bucket)
            except Exception:
                logger.exception("could not write prediction stats for version %s in %s", version_id, schema)


def _prediction_keys(predictions) -> list[str]:
    keys = []
    for value in predictions:
        if isinstance(value, float):
            keys.append(f"{value:.3g}")  # regression: a coarse bucket per value
        else:
            keys.append(str(value))
    return keys


def _write(version_id: int, minute, bucket: _Bucket) -> None:
    from .models import ModelVersion, PredictionStats

    if not ModelVersion.objects.filter(pk=version_id).exists():
        return
    with transaction.atomic():
        row, _ = PredictionStats.objects.select_for_update().get_or_create(version_id=version_id, minute=minute)
        row.requests = F("requests") + bucket.requests
        row.errors = F("errors") + bucket.errors
        row.records = F("records") + bucket.records
        row.latencies_ms = (row.latencies_ms + bucket.latencies)[:MAX_LATENCIES_PER_MINUTE]
        merged = Counter(row.predictions)
        merged.update(bucket.predictions)
        row.predictions = dict(merged.most_common(50))
        row.save()


stats_buffer = StatsBuffer()
atexit.register(stats_buffer.stop)
