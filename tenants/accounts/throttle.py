"""Sign-in throttling that cannot be turned against the member.

Attempts are counted per (username, client address) and per client address, never per username alone:
failures from one address never lock the right password out from another. Each key allows a number of
attempts (LOGIN_FAILURE_LIMIT per username and address, LOGIN_ADDRESS_FAILURE_LIMIT per address); reaching
it locks the key for LOGIN_LOCKOUT_SECONDS, doubled for each consecutive lockout up to
LOGIN_LOCKOUT_MAX_SECONDS (back-off). A quiet LOGIN_FAILURE_WINDOW_SECONDS forgets the attempts, a quiet
day the lockouts; a successful sign-in forgets its (username, address) key.

An attempt is *reserved* before the password is checked, by one atomic SQL statement per key
(INSERT ... ON CONFLICT DO UPDATE ... RETURNING), so N parallel wrong guesses check exactly the limit's
worth of passwords and the others are refused. The counters live in the organization's own schema, in
the database: they need no cache, and the cache backend's `incr` is not atomic on the database backend.
Each lockout and its end are written to the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from mlplatform.errors import ApplicationError

from .models import SignInThrottle

_TABLE = SignInThrottle._meta.db_table
QUIET_DAY_S = 24 * 3600

# clock_timestamp(), not now(): now() is the start of the transaction, and a test (or a caller) may hold one.
# `old` locks the row and is read before the upsert (materialized, joined into the inserted row), so the
# one statement that clears an expired lock is the one that reports it.
_RESERVE = f"""
WITH old AS MATERIALIZED (SELECT locked_until FROM {_TABLE} WHERE key = %(key)s FOR UPDATE)
INSERT INTO {_TABLE} AS t (key, attempts, lockouts, locked_until, updated)
SELECT %(key)s, 1, 0, NULL, clock_timestamp() FROM (VALUES (1)) AS one LEFT JOIN old ON true
ON CONFLICT (key) DO UPDATE SET
    attempts = CASE
        WHEN t.locked_until > clock_timestamp() THEN t.attempts
        WHEN t.locked_until IS NOT NULL OR t.updated < clock_timestamp() - make_interval(secs => %(window)s) THEN 1
        ELSE t.attempts + 1 END,
    lockouts = CASE
        WHEN t.locked_until IS NULL AND t.updated < clock_timestamp() - make_interval(secs => %(quiet)s) THEN 0
        ELSE t.lockouts END,
    locked_until = CASE WHEN t.locked_until > clock_timestamp() THEN t.locked_until END,
    updated = CASE WHEN t.locked_until > clock_timestamp() THEN t.updated ELSE clock_timestamp() END
RETURNING t.attempts, t.locked_until, (SELECT locked_until FROM old WHERE locked_until <= clock_timestamp())
"""  # nosec B608: the table name is the model's; every value is a query parameter
_LOCK = f"""
UPDATE {_TABLE} SET
    locked_until = clock_timestamp() + make_interval(secs => LEAST(%(base)s * power(2, lockouts), %(cap)s)),
    lockouts = lockouts + 1
WHERE key = %(key)s AND locked_until IS NULL
RETURNING locked_until
"""  # nosec B608: as above
_RELEASE = f"UPDATE {_TABLE} SET attempts = GREATEST(attempts - 1, 0) WHERE key = %(key)s"  # nosec B608


@dataclass(frozen=True)
class Scope:
    name: str  # as written in the audit log
    prefix: str
    limit_setting: str

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)


ADDRESS = Scope("address", "address", "LOGIN_ADDRESS_FAILURE_LIMIT")
USER_ADDRESS = Scope("username and address", "user-address", "LOGIN_FAILURE_LIMIT")


@dataclass
class Reservation:
    """The attempts reserved for one sign-in: `failed()` or `succeeded()` once the password is checked."""

    username: str
    address: str
    keys: dict[Scope, tuple[str, int]]  # scope -> (key, attempt number)

    def failed(self) -> None:
        """The attempt that reaches a key's limit locks it (and audits the lockout)."""
        for scope, (key, attempt) in self.keys.items():
            if attempt == scope.limit:
                until = _run(_LOCK, key=key, base=settings.LOGIN_LOCKOUT_SECONDS, cap=settings.LOGIN_LOCKOUT_MAX_SECONDS)
                if until:
                    _audit("sign_in_locked", self.username, self.address, scope, until=until[0],
                           detail={"failures": attempt})

    def succeeded(self) -> None:
        """Forget the (username, address) key; give the address its attempt back."""
        SignInThrottle.objects.filter(key=self.keys[USER_ADDRESS][0]).delete()
        _run(_RELEASE, key=self.keys[ADDRESS][0])


def reserve(*, username: str, address: str | None) -> Reservation:
    """Reserve one attempt for `username` (normalised) from `address`. Raises ApplicationError 429 with
    Retry-After when the address, or this username from this address, is locked or out of attempts."""
    address = address or "unknown"
    reservation = Reservation(username=username, address=address, keys={})
    for scope, key in ((ADDRESS, f"address:{address}"), (USER_ADDRESS, f"user-address:{username.casefold()}|{address}")):
        key = key[: SignInThrottle._meta.get_field("key").max_length]
        attempts, locked_until, ended = _run(_RESERVE, key=key, window=settings.LOGIN_FAILURE_WINDOW_SECONDS,
                                             quiet=QUIET_DAY_S)
        if ended is not None:
            _audit("sign_in_lock_ended", username, address, scope, until=ended)
        if locked_until is not None or attempts > scope.limit:
            for earlier_key, _ in reservation.keys.values():
                _run(_RELEASE, key=earlier_key)  # this attempt checks no password: it is not counted
            raise _refused(scope, username, locked_until)
        reservation.keys[scope] = (key, attempts)
    return reservation


def prune() -> int:
    """Delete the counters of keys quiet for a day and not locked (run every minute by housekeeping)."""
    from django.db.models import Q

    cutoff = timezone.now() - timedelta(seconds=QUIET_DAY_S)
    deleted, _ = SignInThrottle.objects.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=cutoff),
                                               updated__lt=cutoff).delete()
    return deleted


def _refused(scope: Scope, username: str, locked_until: datetime | None) -> ApplicationError:
    # Past the limit but not locked yet: a parallel attempt is locking the key at this moment.
    seconds = max(1, round((locked_until - timezone.now()).total_seconds())) if locked_until else settings.LOGIN_LOCKOUT_SECONDS
    whom = f"'{username}' from your address" if scope is USER_ADDRESS else "your address"
    return ApplicationError(f"Too many failed sign-in attempts for {whom}. Try again in {_duration(seconds)}.",
                            status=429, headers={"Retry-After": str(seconds)}, extra={"retry_after_s": seconds})


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def _run(sql: str, **params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else None


def _audit(action: str, username: str, address: str, scope: Scope, *, until: datetime, detail: dict | None = None):
    from .services import audit_record

    audit_record(actor=username or "?", action=action, object_type="user", object_repr=username,
                 detail={"scope": scope.name, "address": address, "until": until.isoformat(), **(detail or {})},
                 ip_address=address if address != "unknown" else None)
