import os

from .base import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests; production keeps PBKDF2
# One database and one media folder per test run, so two runs on one machine never step on each other.
# A worker started by a test passes TEST_RUN_ID on, so it shares the run's folder.
TEST_RUN_ID = os.environ.setdefault("TEST_RUN_ID", str(os.getpid()))
DATABASES["default"]["TEST"] = {"NAME": f"test_mlplatform_{TEST_RUN_ID}"}  # noqa: F405
RATE_LIMIT_NAMESPACE = f"mlplatform-test-{TEST_RUN_ID}"
MEDIA_ROOT = BASE_DIR / ".data" / "test-media" / TEST_RUN_ID  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# A worker started with REDIS_URL (the Redis broker test) keeps this run's queue and cache keys to itself.
Q_CLUSTER["name"] = os.environ.get("Q_CLUSTER_NAME", f"mlplatform-test-{TEST_RUN_ID}")  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = f"test-{TEST_RUN_ID}"  # noqa: F405
