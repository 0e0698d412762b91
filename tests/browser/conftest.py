"""A real web server (in a thread, on the test database) and headless Debian Chromium driven by Playwright."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

# Playwright's sync API keeps an event loop in the main thread; the ORM calls our fixtures make there are synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def live_server_port(orgs):
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        message = "Chromium not found: install Debian's chromium package to run the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required under CI=true)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server_port, committed):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.base = lambda org: f"http://{org.host}:{live_server_port}"
    yield page
    context.close()


def sign_in(page, org, role):
    """Through the sign-in form, as a member of the session organizations (`<role>-pass-123`)."""
    page.goto(page.base(org) + "/login/")
    page.fill("#id_username", role)
    page.fill("#id_password", f"{role}-pass-123")
    with page.expect_navigation():
        page.click("button[type=submit]")


def run_in_background(org, work, job_id: int) -> tuple[threading.Thread, dict]:
    """What the worker would do (`work(job_id)`, e.g. training.runner.run_training_job), in a thread of this
    process inside the organization's schema; the `page` fixture keeps commits real, so the browser's polling
    sees its progress. `outcome["status"]` is the job's final status, `outcome["error"]` what it raised."""
    from django.db import connection
    from django_tenants.utils import schema_context

    outcome: dict = {}

    def run():
        try:
            with schema_context(org.schema):
                outcome["status"] = work(job_id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=f"test-worker-{job_id}", daemon=True)
    thread.start()
    return thread, outcome
