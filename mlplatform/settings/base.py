"""Settings shared by every environment. Everything that differs between machines comes from the environment."""
from __future__ import annotations

import ipaddress
import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEV_SECRET_KEY = "dev-insecure-key-change-me"  # production.py refuses to start with it


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
BASE_DOMAIN = os.environ.get("BASE_DOMAIN", "localhost")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", f"{BASE_DOMAIN},.{BASE_DOMAIN}").split(",") if h.strip()]
# The port the web server is reached on, used only to print organization URLs.
PUBLIC_PORT = env_int("PUBLIC_PORT", 8000)

# --- Apps -----------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "mlplatform",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "rest_framework.authtoken",
    "tenants.accounts",
    "training",
    "models_registry",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Organization"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "mlplatform.urls_public"
ROOT_URLCONF = "mlplatform.urls"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "mlplatform.unavailable.UnavailableMiddleware",  # first: a database outage anywhere becomes a 503
    "tenants.middleware.OrganizationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "mlplatform.middleware.SecurityHeadersMiddleware",
    "mlplatform.middleware.UrlTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mlplatform.context_processors.workspace",
            ],
        },
    },
]
WSGI_APPLICATION = "mlplatform.wsgi.application"

# --- Database ---------------------------------------------------------------
def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from mlplatform.embedded_db import database_url

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        return database_url()


# Persistent connections: opening one costs milliseconds, more than a whole prediction.
DATABASES = {"default": dj_database_url.parse(_database_url(), conn_max_age=env_int("DB_CONN_MAX_AGE", 300),
                                              conn_health_checks=True)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: shared by web and worker processes, keys prefixed by schema -------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "platform_cache"}}
CACHES["default"]["KEY_PREFIX"] = os.environ.get("CACHE_KEY_PREFIX", "")
RATE_LIMIT_NAMESPACE = "mlplatform"  # prefix of the API rate counters in Redis (mlplatform/api/throttling.py)
CACHES["default"]["KEY_FUNCTION"] = "django_tenants.cache.make_key"
CACHES["default"]["REVERSE_KEY_FUNCTION"] = "django_tenants.cache.reverse_key"

# --- Auth, sessions ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"  # the root of either host: the dashboard, or the public landing page after the platform admin
LOGOUT_REDIRECT_URL = "/"  # a path both hosts have (the public one has no sign-in page of its own)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Cookies are host-only (no SESSION_COOKIE_DOMAIN), so a session never crosses organizations.
# Sign-in throttling (tenants/accounts/throttle.py): failures are counted per (username, client address)
# and per client address, never per username alone, so nobody can lock a member out from elsewhere.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)  # per username and address
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30)  # per address, any usernames
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)  # quiet time that forgets failures
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 60)  # first lockout; each next one doubles...
LOGIN_LOCKOUT_MAX_SECONDS = env_int("LOGIN_LOCKOUT_MAX_SECONDS", 3600)  # ...up to this
# Reverse proxies whose X-Forwarded-For is believed (mlplatform/client_address.py): addresses or networks.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network") from _exc

# Scripts only from our own /static/ (no inline script or handler, no eval); styles may be inline (style
# attributes in templates, Plotly's and htmx's injected rules). Checked by tests/platform/test_headers.py.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
    "form-action 'self'",
])

# --- Files ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
try:  # plotly.js ships inside the plotly package: serve that copy, no CDN
    import plotly as _plotly

    STATICFILES_DIRS.append(("plotly", Path(_plotly.__file__).parent / "package_data"))
except ImportError:  # pragma: no cover
    pass
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / ".data" / "media"))
MEDIA_URL = "/files/"  # never routed: files are served only by views that check permissions
STORAGES = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
# Every request body that is not a file (JSON, form fields) is at most this large: a larger one is a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_BODY_MB", 20) * 1024 * 1024
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)  # nested arrays and objects in a JSON body
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mlplatform.api.authentication.BearerTokenAuthentication",  # first, so a missing login is a 401
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mlplatform.api.permissions.IsMember"],
    # JSON with size, depth and text limits (mlplatform/api/parsers.py); the upload endpoints add multipart
    "DEFAULT_PARSER_CLASSES": ["mlplatform.api.parsers.JSONBodyParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mlplatform.api.errors.exception_handler",
    # per member and API key, set by the organization's plan (mlplatform/api/throttling.py)
    "DEFAULT_THROTTLE_CLASSES": ["mlplatform.api.throttling.CallerRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML platform API",
    "DESCRIPTION": "Datasets, training jobs, model registry and predictions for one organization. "
    "Call it on your organization's host (for example acme.localhost:8000).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "mlplatform.api.schema.add_error_responses"],
}

# --- Compute and jobs ---------------------------------------------------------
# Cores the platform may use. Worker processes x threads per fit never exceed it.
PLATFORM_CORES = max(1, env_int("PLATFORM_CORES", os.cpu_count() or 1))
WORKER_PROCESSES = max(1, env_int("WORKER_PROCESSES", max(1, PLATFORM_CORES // 2)))
THREADS_PER_JOB = max(1, PLATFORM_CORES // WORKER_PROCESSES)
JOB_TIMEOUT_SECONDS = env_int("JOB_TIMEOUT_SECONDS", 6 * 3600)
JOB_HEARTBEAT_STALE_SECONDS = env_int("JOB_HEARTBEAT_STALE_SECONDS", 120)
# A queued job that no worker started this long after it was queued is queued again (its task was lost).
JOB_REQUEUE_AFTER_SECONDS = env_int("JOB_REQUEUE_AFTER_SECONDS", 300)
# Memory one job may use (MB), for organizations created from now on; each organization's plan can change it.
JOB_MEMORY_LIMIT_MB = env_int("JOB_MEMORY_LIMIT_MB", 4096)

Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "mlplatform"),  # also the Redis broker's key prefix
    "workers": WORKER_PROCESSES,
    "timeout": JOB_TIMEOUT_SECONDS,
    "retry": JOB_TIMEOUT_SECONDS + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "label": "Jobs",
    "poll": 0.5,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"


def check_q_cluster(conf: dict) -> None:
    """django-q2 re-delivers a task still unacknowledged after `retry` seconds: it must exceed `timeout`."""
    if conf["timeout"] >= conf["retry"]:
        raise ImproperlyConfigured(
            f"Q_CLUSTER timeout ({conf['timeout']} s) must be smaller than retry ({conf['retry']} s), "
            "or a running job would be started a second time."
        )


check_q_cluster(Q_CLUSTER)

# --- Logging ------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "pgserver": {"level": "WARNING"}},
}

# --- Datasets and model files -------------------------------------------------------
DATASET_MAX_COLUMNS = env_int("DATASET_MAX_COLUMNS", 1000)
# Key for the HMAC of model files: from the environment, never SECRET_KEY. Development falls back to a
# key generated once under .data/ (production.py requires the variable).
MODEL_SIGNING_KEY = os.environ.get("MODEL_SIGNING_KEY", "")
MODEL_SIGNING_KEY_FILE = BASE_DIR / ".data" / "model-signing.key"
# Encryption at rest of model files, ONNX files, datasets and batch files (mlplatform/filestore.py): a key of
# 32 random bytes in base64 (`manage.py rotate_storage_key --generate-key`). Old keys, comma-separated, keep
# files written under them readable until `manage.py rotate_storage_key` has re-encrypted them.
STORAGE_ENCRYPTION_KEY = os.environ.get("STORAGE_ENCRYPTION_KEY", "").strip()
STORAGE_ENCRYPTION_OLD_KEYS = [k.strip() for k in os.environ.get("STORAGE_ENCRYPTION_OLD_KEYS", "").split(",") if k.strip()]


def check_storage_keys(current: str, old: list[str]) -> None:
    """Refuse to start with a malformed key rather than fail at the first file."""
    from mlplatform.encryption import parse_key

    try:
        if current:
            parse_key(current, name="STORAGE_ENCRYPTION_KEY")
        for text in old:
            parse_key(text, name="STORAGE_ENCRYPTION_OLD_KEYS")
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


check_storage_keys(STORAGE_ENCRYPTION_KEY, STORAGE_ENCRYPTION_OLD_KEYS)
# Work files under an organization's tmp/ older than this were left by a process that died: removed.
STORAGE_TEMP_MAX_AGE_SECONDS = env_int("STORAGE_TEMP_MAX_AGE_SECONDS", 24 * 3600)

# Native libraries read these when they load: cap their threads to what one job may use.
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS_PER_JOB))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS_PER_JOB))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS_PER_JOB))
PREDICT_MAX_RECORDS = env_int("PREDICT_MAX_RECORDS", 10_000)
# Prediction hot path: organization, caller and alias lookups cached per process (mlplatform/hotcache.py).
# Services invalidate at once; this bounds changes made around them (admin site, SQL).
HOT_CACHE_TTL_S = env_int("HOT_CACHE_TTL_S", 30)
