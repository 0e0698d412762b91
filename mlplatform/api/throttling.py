"""API rate limits per caller: each member (token or session) and each API key has its own budget in its
organization, set by the organization's plan (`Organization.api_rate_per_minute` and `api_burst`, edited in
the platform admin). Over it, the answer is a 429 with Retry-After, before any work is done, so a burst from
one key costs the others almost nothing.

The algorithm is GCRA, the generic cell rate algorithm (ITU-T I.371; the "leaky bucket as a meter"): one
number per caller, the theoretical arrival time (TAT). A request at time t moves it to max(TAT, t) + 1/rate
and is allowed when that is at most burst/rate ahead of t. So `burst` requests pass at once from idle, then
one every 1/rate seconds; a fixed window would let twice the limit through around each window boundary.

Where the counters live (checked and updated in one atomic step, so parallel requests cannot overspend):
- with REDIS_URL, in Redis, by a Lua script using Redis's own clock: shared by every process and host,
  exact. One round trip per request;
- without it, in the serving process (a dict under a lock): no I/O at all, and exact per process. With W
  processes, a caller whose requests are spread over all of them gets up to W times its budget. The
  database is never used: that would add a query to the prediction hot path, which runs none when warm,
  and the database cache backend's `incr` is not atomic anyway.
"""
from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

from django.conf import settings
from django.db import connection
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)
EPSILON_S = 1e-9


class ProcessRateStore:
    """GCRA state per key in this process. `take` is atomic under the lock."""

    MAX_KEYS = 100_000

    def __init__(self):
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, per_second: float, burst: int, now: float | None = None) -> float:
        """0 when the request may go ahead (and is counted), else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        interval = 1.0 / per_second
        with self._lock:
            arrival = max(self._tat.get(key, now), now) + interval
            wait = arrival - now - burst * interval
            if wait > EPSILON_S:  # the sum of many intervals is not exact in floating point
                return wait
            self._tat[key] = arrival
            if len(self._tat) > self.MAX_KEYS:  # forget the callers whose budget is full again
                self._tat = {k: v for k, v in self._tat.items() if v > now}
        return 0.0

    def clear(self) -> None:
        with self._lock:
            self._tat.clear()


_GCRA_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local arrival = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now) + interval
local wait = arrival - now - burst * interval
if wait > 1e-9 then return tostring(wait) end
redis.call('SET', KEYS[1], string.format('%.6f', arrival), 'PX', math.ceil((arrival - now) * 1000) + 1000)
return '0'
"""


class RedisRateStore:
    """GCRA state per key in Redis, updated by one script (atomic; Redis's clock for every host)."""

    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_GCRA_LUA)

    def take(self, key: str, *, per_second: float, burst: int, now: float | None = None) -> float:
        return float(self._script(keys=[f"{settings.RATE_LIMIT_NAMESPACE}:rate:{key}"], args=[1.0 / per_second, burst]))


process_store = ProcessRateStore()


@lru_cache(maxsize=4)
def _redis_store(url: str) -> RedisRateStore:
    return RedisRateStore(url)


def rate_store():
    return _redis_store(settings.REDIS_URL) if settings.REDIS_URL else process_store


def caller_key(request) -> tuple[str, str] | None:
    """(key, what to call it in a message) for the authenticated caller, or None for anonymous requests
    (sign-in has its own throttle, tenants/accounts/throttle.py; everything else needs a caller)."""
    from mlplatform.api.authentication import ApiKeyPrincipal

    user = request.user
    if isinstance(user, ApiKeyPrincipal):
        return f"key:{user.key.pk}", "this API key"
    if user is not None and user.is_authenticated:
        return f"member:{user.pk}", "your token" if request.auth is not None else "your session"
    return None


class CallerRateThrottle(BaseThrottle):
    """The rate limit of every API view (DEFAULT_THROTTLE_CLASSES): per caller, per organization."""

    def allow_request(self, request, view) -> bool:
        caller = caller_key(request)
        organization = getattr(request, "tenant", None)
        if caller is None or organization is None:
            return True
        per_minute, burst = max(1, organization.api_rate_per_minute), max(1, organization.api_burst)
        try:
            wait = rate_store().take(f"{connection.schema_name}:{caller[0]}", per_second=per_minute / 60, burst=burst)
        except Exception:  # the shared store is down: serve rather than refuse everyone
            _log_store_down()
            return True
        if wait > 0:
            raise Throttled(wait=wait, detail=(
                f"Rate limit reached for {caller[1]}: {per_minute} requests per minute, in bursts of at most "
                f"{burst}, in this organization (its plan sets the limit)."))
        return True


_last_store_warning = [0.0]


def _log_store_down() -> None:
    now = time.monotonic()
    if now - _last_store_warning[0] > 60:
        _last_store_warning[0] = now
        logger.exception("rate limit store unavailable: requests are not rate limited meanwhile")
