import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DEV_SECRET_KEY, SECRET_KEY, env_bool

DEBUG = env_bool("DEBUG", False)
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY in the environment: production refuses the development key.")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
if not os.environ.get("MODEL_SIGNING_KEY"):
    raise ImproperlyConfigured("Set MODEL_SIGNING_KEY in the environment: it signs model files (HMAC-SHA256).")
