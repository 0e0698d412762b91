"""Production: DEBUG off, secrets required, HTTPS enforced. `manage.py check --deploy` passes with no warning
(tests/platform/test_headers.py runs it)."""
import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DEV_SECRET_KEY, SECRET_KEY, env_bool, env_int

DEBUG = env_bool("DEBUG", False)
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY in the environment: production refuses the development key.")
if not os.environ.get("MODEL_SIGNING_KEY"):
    raise ImproperlyConfigured("Set MODEL_SIGNING_KEY in the environment: it signs model files (HMAC-SHA256).")

# --- HTTPS ----------------------------------------------------------------------
# Plain HTTP is redirected to HTTPS, except the health check (load balancers probe it over HTTP).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a proxy that terminates TLS: name the header it sets (and strips from clients), for example
# SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto. Never set by default: anyone could send that header.
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
# Browsers remember to use HTTPS for a year, on every organization's subdomain too.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
