"""Digest and HMAC of model files, checked before any file is loaded."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=1)
def signing_key() -> bytes:
    if settings.MODEL_SIGNING_KEY:
        return settings.MODEL_SIGNING_KEY.encode()
    path = settings.MODEL_SIGNING_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_hex(data: bytes) -> str:
    return hmac.new(signing_key(), data, hashlib.sha256).hexdigest()


def verify(data: bytes, *, sha256: str, mac: str) -> bool:
    return hmac.compare_digest(sha256_hex(data), sha256) and hmac.compare_digest(hmac_hex(data), mac)
