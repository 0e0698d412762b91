"""Token authentication. Tokens live in the organization's own schema, so a token works only where it was issued."""
import hmac

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, TokenAuthentication, get_authorization_header


class BearerTokenAuthentication(TokenAuthentication):
    """Accepts `Authorization: Token <key>` and `Authorization: Bearer <key>`."""

    keywords = (b"token", b"bearer")

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


class ApiKeyPrincipal:
    """Who calls with an API key: not a member, allowed only what the key's scope says."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    pk = None

    def __init__(self, key):
        self.key = key
        self.username = f"api-key:{key.name}"

    def get_username(self) -> str:
        return self.username


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Api-Key mlp_<prefix>.<secret>`; used by the prediction endpoints only."""

    def authenticate(self, request):
        from django.utils import timezone

        from models_registry.services import api_key_hash
        from tenants.accounts.models import ApiKey

        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"api-key":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Api-Key mlp_<prefix>.<secret>'.")
        raw = parts[1].decode(errors="replace")
        prefix, _, secret = raw.removeprefix("mlp_").partition(".")
        key = ApiKey.objects.filter(prefix=prefix, revoked__isnull=True).first() if secret else None
        if key is None or not hmac.compare_digest(key.secret_hash, api_key_hash(secret)):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if key.last_used is None or (now - key.last_used).total_seconds() > 60:
            type(key).objects.filter(pk=key.pk).update(last_used=now)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return "Api-Key"
