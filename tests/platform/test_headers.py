"""Production settings and response headers: `check --deploy` is clean, HTTPS settings come from the
environment, API answers are never cached, every page keeps a Content-Security-Policy without inline script."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from tests.accounts.test_pages import signed_in

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "k8Jq2v" * 10


def _production_env(**extra) -> dict:
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}  # set by browser tests
    return {**environment, "DJANGO_SETTINGS_MODULE": "mlplatform.settings.production", "SECRET_KEY": STRONG_KEY,
            "MODEL_SIGNING_KEY": "a-model-signing-key", "DATABASE_URL": url, "ALLOWED_HOSTS": ".example.com", **extra}


@pytest.mark.django_db
def test_check_deploy_passes_with_no_warning_under_the_production_settings():
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=REPO, env=_production_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def _production_settings(monkeypatch, **env):
    for name, value in _production_env(**env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SECURE_PROXY_SSL_HEADER", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    base = sys.modules.pop("mlplatform.settings.base")  # read the environment again
    sys.modules.pop("mlplatform.settings.production", None)
    try:
        return importlib.import_module("mlplatform.settings.production")
    finally:
        sys.modules.pop("mlplatform.settings.production", None)
        sys.modules["mlplatform.settings.base"] = base


def test_production_enforces_https_and_trusts_a_proxy_header_only_when_configured(monkeypatch):
    plain = _production_settings(monkeypatch)
    assert plain.SECURE_SSL_REDIRECT and plain.SESSION_COOKIE_SECURE and plain.CSRF_COOKIE_SECURE
    assert plain.SECURE_HSTS_SECONDS >= 365 * 24 * 3600 and plain.SECURE_HSTS_INCLUDE_SUBDOMAINS
    assert not hasattr(plain, "SECURE_PROXY_SSL_HEADER")  # nobody's X-Forwarded-Proto is believed by default
    proxied = _production_settings(monkeypatch, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", SECURE_SSL_REDIRECT="false")
    assert proxied.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert proxied.SECURE_SSL_REDIRECT is False


@pytest.mark.django_db
def test_api_answers_are_never_cached_token_answers_included(acme):
    client = acme.client()
    token = client.post("/api/v1/auth/token", {"username": "viewer", "password": "viewer-pass-123"}, format="json")
    answers = [token, acme.client("viewer").get("/api/v1/me"), client.get("/api/v1/me"),
               acme.client("viewer").get("/api/v1/ml/datasets"), client.get("/api/v1/schema/")]
    for answer in answers:
        assert answer["Cache-Control"] == "no-store", answer.wsgi_request.path


@pytest.mark.django_db
def test_pages_and_answers_carry_the_content_security_policy(acme):
    for response in (Client(HTTP_HOST=acme.host).get("/login/"), signed_in(acme, "viewer").get("/"),
                     acme.client().get("/api/v1/me"), Client(HTTP_HOST="localhost").get("/")):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=""", re.I)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def inline_code(html: str) -> list[str]:
    """Inline scripts, inline event handlers and javascript: URLs in some HTML or template text."""
    return [m.group(0)[:80] for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JAVASCRIPT_URL) for m in pattern.finditer(html)]


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = {}
    for folder in [REPO / "templates", *(Path(p) for p in django_settings.STATICFILES_DIRS if isinstance(p, Path))]:
        for path in folder.rglob("*.html"):
            found = inline_code(path.read_text(encoding="utf-8"))
            if found:
                offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}


def test_the_inline_code_finder_finds_what_it_looks_for():
    assert inline_code('<script>alert(1)</script><div onclick="x()"></div><a href="javascript:x()">')  == [
        "<script>", '<div onclick=', 'href="javascript:']
    assert inline_code('<script src="/static/a.js" defer></script><script type="application/json" id="d">{}</script>') == []
