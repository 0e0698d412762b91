"""Schema fuzzing in `make test`: schemathesis against a live server's OpenAPI schema, signed in as an editor
of a throwaway organization made here (the fuzzer deletes, cancels, deploys and demotes things), then as its
owner on the operations only owners may call. Every operation gets the schema's examples, boundary values
and random data, valid and invalid; no answer may be a 5xx or contradict the schema (status, content type,
headers, body), and data the schema forbids must be refused."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

from tests.browser.conftest import live_server_port  # noqa: F401 (a fixture: a real server on the test database)
from tests.conftest import _make_org, regression_table, train_version
from tests.training.conftest import csv_bytes, table, upload

pytestmark = pytest.mark.fuzz
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "40"))
REPO = Path(__file__).resolve().parents[2]
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection")
OWNER_ONLY = r"^/api/v1/(members|api-keys|audit)"


@pytest.fixture
def throwaway_org(orgs, django_db_blocker):
    """An organization of its own: two datasets, two trained versions (one deployed), a batch job, an API key,
    and a plan without limits in the way. Dropped, schema and all, afterwards."""
    from tenants.models import Organization

    slug = f"fuzz-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        org = _make_org(slug)
        Organization.objects.filter(slug=slug).update(api_rate_per_minute=10**6, api_burst=10**6,
                                                      max_concurrent_jobs=1000)
        editor, owner = org.client("editor"), org.client("owner")
        churn = upload(org, csv_bytes(table(200)), name="churn").json()
        price = upload(org, csv_bytes(regression_table(150)), name="price").json()
        version = train_version(org, churn["id"], target="label", model_name="churn", algorithm="logistic_regression",
                                cv_folds=2)
        train_version(org, price["id"], target="price", model_name="price", algorithm="ridge", cv_folds=2)
        assert editor.post(f"/api/v1/ml/models/{version['id']}/deploy", {}, format="json").status_code == 200
        registered = next(m for m in editor.get("/api/v1/ml/registered-models").json() if m["name"] == "churn")
        batch = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version["id"], "dataset_id": churn["id"]},
                            format="json").json()
        key = owner.post("/api/v1/api-keys", {"name": "fuzz", "model_ids": [registered["id"]]}, format="json").json()
        org.ids = {"dataset_id": churn["id"], "version_id": version["id"], "model_id": registered["id"],
                   "model_name": "churn", "user_id": org.user_ids["viewer"], "key_id": key["key"]["id"],
                   "job_id": version["job_id"], "batch_id": batch["id"]}
        connection.set_schema_to_public()
    yield org
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        doomed = Organization.objects.get(slug=slug)
        doomed.auto_drop_schema = True
        doomed.delete(force_drop=True)


def _config(ids: dict, path: Path) -> Path:
    """Path parameters fixed to objects that exist, so the fuzzer reaches each operation's logic (ids that do
    not exist are covered by tests/platform/test_bad_input.py)."""
    def value(v):
        return json.dumps(v)

    lines = ["[parameters]", *(f'"path.{name}" = {value(v)}' for name, v in ids.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def _fuzz(org, port: int, role: str, config: Path, report_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    # One worker: hypothesis describes strategies with ast.parse, which Python 3.11 does not make thread-safe
    # ("AST constructor recursion depth mismatch" with two workers).
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"http://127.0.0.1:{port}/api/v1/schema/",
        "--header", f"Host: {org.host}", "--header", f"Authorization: Token {org.tokens[role]}",
        "--checks", CHECKS, "--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--workers", "1", "--seed", "20261129", "--request-timeout", "60", "--no-color",
        "--suppress-health-check", "all", "--report", "junit", "--report-dir", str(report_dir), *extra,
    ]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_api_holds_up_to_schema_fuzzing(throwaway_org, live_server_port, committed, tmp_path):  # noqa: F811
    config = _config(throwaway_org.ids, tmp_path / "schemathesis.toml")
    editor = _fuzz(throwaway_org, live_server_port, "editor", config, tmp_path / "editor",
                   "--exclude-path-regex", OWNER_ONLY)
    assert editor.returncode == 0, editor.stdout[-20000:] + editor.stderr[-3000:]
    owner = _fuzz(throwaway_org, live_server_port, "owner", config, tmp_path / "owner", "--include-path-regex", OWNER_ONLY)
    assert owner.returncode == 0, owner.stdout[-20000:] + owner.stderr[-3000:]
