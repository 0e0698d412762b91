"""Token authentication. Tokens live in the organization's own schema, so a token works only where it was issued.

The prediction endpoints use the cached variants: who a token or key is (and the member's role, or the key's
scope) is kept per process in a hot cache that the member and key services invalidate (mlplatform/hotcache.py).
"""
import copy
import functools
import hmac
import time

from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header

from mlplatform.hotcache import HotCache


callers_by_token = HotCache("members by token")


class BearerTokenAuthentication(TokenAuthentication):
    """Accepts `Authorization: Token <key>` and `Authorization: Bearer <key>`.

    With `cached=True` (the prediction endpoints: `CachedBearerTokenAuthentication`), the same answers, but
    a known token costs no SQL (user and membership cached). One class for both, so the OpenAPI schema has
    one `tokenAuth` scheme."""

    keywords = (b"token", b"bearer")

    def __init__(self, *, cached: bool = False):
        super().__init__()
        self.cached = cached

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Token <key>' or 'Bearer <key>'.")
        try:
            key = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token: it must be plain ASCII.") from exc
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key):
        if not self.cached:
            return super().authenticate_credentials(key)
        from tenants.accounts.selectors import membership_for

        def load():
            user, token = super(BearerTokenAuthentication, self).authenticate_credentials(key)  # 401s are not cached
            membership_for(user)  # fetched now, kept on the user object
            return user, token

        cached_user, cached_token = callers_by_token.get(connection.schema_name, key, load)
        # Each request its own copies (Django copies a model's relation cache too): the cached ones never change.
        user, token = copy.copy(cached_user), copy.copy(cached_token)
        token.user = user
        return user, token


CachedBearerTokenAuthentication = functools.partial(BearerTokenAuthentication, cached=True)


class ApiKeyPrincipal:
    """Who calls with an API key: not a member, allowed only what the key's scope says."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    pk = None

    def __init__(self, key, model_ids: frozenset[int]):
        self.key = key
        self.model_ids = model_ids  # the registered models the key may predict with
        self.username = f"api-key:{key.name}"

    def get_username(self) -> str:
        return self.username


api_keys_by_prefix = HotCache("API keys by prefix")
_last_used_written: dict[tuple[str, int], float] = {}
LAST_USED_EVERY_S = 60


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key mlp_<prefix>.<secret>`; used by the prediction endpoints only. Active keys and
    their scope are cached per process (revoking invalidates); the secret is checked against the hash every time."""

    def authenticate(self, request):
        from django.utils import timezone

        from models_registry.services import api_key_hash

        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"api-key":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Api-Key mlp_<prefix>.<secret>'.")
        raw = parts[1].decode(errors="replace")
        prefix, _, secret = raw.removeprefix("mlp_").partition(".")
        found = api_keys_by_prefix.get(connection.schema_name, prefix, lambda: _active_key(prefix)) if secret else None
        if found is None or not hmac.compare_digest(found[0].secret_hash, api_key_hash(secret)):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        key, model_ids = found
        stamp, now = (connection.schema_name, key.pk), time.monotonic()
        if now - _last_used_written.get(stamp, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S:
            _last_used_written[stamp] = now  # each process records a key's use once a minute at most
            type(key).objects.filter(pk=key.pk).update(last_used=timezone.now())
        return ApiKeyPrincipal(key, model_ids), key

    def authenticate_header(self, request):
        return "Api-Key"


def _active_key(prefix: str):
    from tenants.accounts.models import ApiKey

    key = ApiKey.objects.filter(prefix=prefix, revoked__isnull=True).first()
    return None if key is None else (key, frozenset(key.registered_models.values_list("pk", flat=True)))
