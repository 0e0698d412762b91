"""PostgreSQL stopped under a running server: 503 with a clear message (JSON for the API, a plain page for
browsers), never a 500, and service resumes by itself when the database is back.

The test runs its own throwaway PostgreSQL cluster (the binaries `pgserver` ships, the same version as the
test database), loaded with a copy of the test database, and a real server process on it; it never stops
a shared server.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection


def pg(tool: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / tool)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster of the test's own (pgserver: it also knows how to run one when the tests run
    as root), on a Unix socket in its data folder; `stop()` and `start()` are a real shutdown and restart."""

    def __init__(self, root: Path):
        import pgserver

        self.data = root / "pg"
        self.server = pgserver.get_server(self.data, cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        self.socket_dir, self.port = str(info.socket_dir), info.port or 5432

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        info = self.server.get_postmaster_info()
        assert (str(info.socket_dir), info.port or 5432) == (self.socket_dir, self.port), "it came back elsewhere"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={quote(self.socket_dir)}&port={self.port}"

    def remove(self) -> None:
        self.server.cleanup()


def copy_test_database(cluster: Cluster, name: str) -> None:
    s = connection.settings_dict
    host = s["HOST"] or s.get("OPTIONS", {}).get("host") or ""
    source = ["-h", host, "-p", str(s.get("PORT") or 5432), "-U", s["USER"], "-d", s["NAME"]]
    env = {**os.environ, **({"PGPASSWORD": s["PASSWORD"]} if s.get("PASSWORD") else {})}
    dump = Path(tempfile.mkdtemp(prefix="outage-dump-")) / "test.dump"
    subprocess.run([pg("pg_dump"), *source, "-Fc", "--no-owner", "-f", str(dump)], check=True, capture_output=True, env=env)
    target = ["-h", cluster.socket_dir, "-p", str(cluster.port), "-U", "postgres"]
    subprocess.run([pg("createdb"), *target, name], check=True, capture_output=True)
    subprocess.run([pg("pg_restore"), *target, "-d", name, "--no-owner", str(dump)], check=True, capture_output=True)
    shutil.rmtree(dump.parent, ignore_errors=True)


def request(port: int, host: str, path: str, *, method: str = "GET", token: str | None = None, body=None,
            accept: str = "application/json") -> tuple[int, dict, bytes]:
    headers = {"Host": host, "Accept": accept}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def outage_server(orgs, trained, django_db_blocker, tmp_path_factory):
    """A throwaway cluster with a copy of the test database, and `manage.py runserver` on it."""
    root = tmp_path_factory.mktemp("outage")
    cluster = Cluster(root)
    server = None
    try:
        with django_db_blocker.unblock():
            copy_test_database(cluster, "outage")
        port = free_port()
        log = root / "server.log"
        env = {**os.environ, "DATABASE_URL": cluster.url("outage"), "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test",
               "DB_CONN_MAX_AGE": "300"}
        with open(log, "wb") as out:
            server = subprocess.Popen([sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}",
                                       "--noreload"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                request(port, "localhost", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(f"the server did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield {"port": port, "cluster": cluster, "log": log}
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        cluster.remove()


def test_requests_answer_503_while_postgres_is_stopped_and_service_resumes_when_it_is_back(outage_server, acme, trained):
    port, cluster = outage_server["port"], outage_server["cluster"]
    version_id = trained["churn_v1"]["id"]
    record = {"x1": 0.3, "x2": 4.0, "color": "red"}

    # given a server answering normally
    status, _, body = request(port, acme.host, "/api/v1/ml/datasets", token=acme.tokens["viewer"])
    assert status == 200, body
    assert request(port, acme.host, f"/api/v1/ml/models/{version_id}/predict", method="POST", token=acme.tokens["editor"],
                   body={"records": [record]})[0] == 200

    # when PostgreSQL stops under it
    cluster.stop()
    try:
        # then the API answers 503 with a JSON message naming the problem ...
        status, headers, body = request(port, acme.host, "/api/v1/ml/datasets", token=acme.tokens["viewer"])
        assert status == 503, body[:500]
        assert headers["content-type"].startswith("application/json")
        answer = json.loads(body)
        assert answer["code"] == "database_unavailable" and "database is unavailable" in answer["detail"]
        assert headers["retry-after"].isdigit()

        # ... also when the failure comes from a view (organization cached on the prediction path, caller not)
        status, _, body = request(port, acme.host, f"/api/v1/ml/models/{version_id}/predict", method="POST",
                                  token=acme.tokens["viewer"], body={"records": [record]})
        assert status == 503 and json.loads(body)["code"] == "database_unavailable", body[:500]

        # ... pages get a plain 503 page, the public host too, and health says the database is down
        status, headers, body = request(port, acme.host, "/datasets/", accept="text/html")
        assert status == 503 and headers["content-type"].startswith("text/html"), body[:500]
        assert b"database is unavailable" in body and b"Traceback" not in body
        assert request(port, "localhost", "/", accept="text/html")[0] == 503
        status, _, body = request(port, acme.host, "/healthz")
        assert status == 503 and "database" in json.loads(body)["detail"].lower()
    finally:
        cluster.start()

    # and when it is back, service resumes by itself (persistent connections are replaced, nothing restarts)
    deadline = time.monotonic() + 30
    while (status := request(port, acme.host, "/api/v1/ml/datasets", token=acme.tokens["viewer"])[0]) != 200:
        assert status == 503 and time.monotonic() < deadline, status
        time.sleep(0.5)
    assert request(port, acme.host, "/datasets/", accept="text/html")[0] in (200, 302)
    log = outage_server["log"].read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "database unavailable: answered 503" in log
