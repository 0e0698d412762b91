"""Per-process caches for the prediction hot path: the rows every prediction reads before it predicts
(organization by host, token or API key to caller, alias to version), so a warm prediction runs no SQL.

Staleness is bounded two ways:
- each organization has a *generation*, a small file under MEDIA_ROOT rewritten (after commit) by the
  services that change what is cached: deploy and roll back, a member changed or deactivated, an API key
  revoked. Every read compares it (one small file read, a few microseconds) with the generation its entry
  was cached under, so every serving process on the host (and on hosts sharing MEDIA_ROOT, as model files
  already must; a network file system's attribute caching may delay that, within the TTL) sees the change
  on its next request;
- every entry also expires after HOT_CACHE_TTL_S seconds, which bounds changes made around the services
  (the admin site, SQL).
Only successful lookups are cached: an unknown token or model is looked up again every time.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)
_caches: weakref.WeakSet[HotCache] = weakref.WeakSet()


def _generation_path(schema: str) -> Path:
    return Path(settings.MEDIA_ROOT) / ".generations" / schema


_local_bumps: dict[str, int] = {}


def generation(schema: str) -> str:
    try:
        with open(_generation_path(schema), encoding="ascii") as handle:
            shared = handle.read()
    except FileNotFoundError:
        shared = ""
    return f"{shared}/{_local_bumps.get(schema, 0)}"


def bump(schema: str | None = None) -> None:
    """Invalidate every hot-cache entry of this organization (default: the current one): in this process at
    once, in the others when the current transaction commits (so none can re-cache the old rows after)."""
    schema = schema or connection.schema_name
    _local_bumps[schema] = _local_bumps.get(schema, 0) + 1
    transaction.on_commit(lambda: write_marker(schema), robust=True)


def write_marker(schema: str) -> None:
    """A new generation marker for the organization: every process drops its entries on its next read.
    The change it follows has committed: a failure here is logged (the TTL still bounds staleness)."""
    path = _generation_path(schema)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{schema}.{secrets.token_hex(4)}")
        temporary.write_text(secrets.token_hex(8), encoding="ascii")
        os.replace(temporary, path)  # readers see the old or the new marker, never half of one
    except OSError:
        logger.exception("could not write the cache marker %s; other processes keep their entries for up to "
                         "HOT_CACHE_TTL_S (%s s)", path, settings.HOT_CACHE_TTL_S)


def forget_everything() -> None:
    """Empty every hot cache of this process (tests roll the database back under them)."""
    for cache in list(_caches):
        cache.clear()


class HotCache:
    """A bounded map of (schema, key) to value with generation and TTL checks. Values are shared by the
    threads of the process: cache only objects that requests read and never change."""

    def __init__(self, name: str, size: int = 1024):
        self.name, self.size = name, size
        self._entries: OrderedDict[tuple, tuple[str, float, object]] = OrderedDict()
        self._lock = threading.Lock()
        _caches.add(self)

    def get(self, schema: str, key: Hashable, load: Callable[[], object]):
        """The cached value, or `load()`'s (cached unless it is None or raises)."""
        marker = generation(schema)  # read before loading: a change committed meanwhile moves it again
        now = time.monotonic()
        full_key = (schema, key)
        with self._lock:
            entry = self._entries.get(full_key)
            if entry is not None and entry[0] == marker and entry[1] > now:
                self._entries.move_to_end(full_key)  # least recently used goes first
                return entry[2]
        value = load()
        if value is not None:
            with self._lock:
                self._entries[full_key] = (marker, now + settings.HOT_CACHE_TTL_S, value)
                self._entries.move_to_end(full_key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
