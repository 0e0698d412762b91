"""Datasets through the API: upload, profile, bad input with nothing stored, roles, organization boundaries."""
import gzip
import os

import pytest
from django.conf import settings
from django_tenants.utils import schema_context

from training.models import Dataset

from .conftest import csv_bytes, table, upload

pytestmark = pytest.mark.django_db


def stored_files(org) -> set[str]:
    folder = os.path.join(settings.MEDIA_ROOT, org.schema, "datasets")
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def test_upload_profiles_the_table(uploaded):
    assert uploaded["rows"] == 200 and uploaded["columns"] == 4
    profile = uploaded["profile"]
    assert profile["suggested_target"] == "label"
    assert profile["suggested_problem_type"] == "binary"
    kinds = {c["name"]: c["kind"] for c in profile["columns"]}
    assert kinds["x1"] == "numeric" and kinds["color"] == "categorical"


def test_semicolon_latin1_csv_is_read(acme):
    frame = table(50)
    frame["city"] = "Zürich"
    response = upload(acme, csv_bytes(frame, sep=";").decode().encode("latin-1"), "latin.csv")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["delimiter"] == ";"
    preview = acme.client("viewer").get(f"/api/v1/ml/datasets/{body['id']}/preview?n=3").json()
    assert preview["rows"][0][preview["columns"].index("city")] == "Zürich"


@pytest.mark.parametrize("content, status, words", [
    (b"", 400, "empty"),
    (b"a,b,label\n", 400, "no data rows"),
    (gzip.compress(b"a,b\n1,2\n"), 415, ""),
    (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", 400, "line 3"),
    (b"a,a,b\n1,2,3\n", 400, "duplicate"),
])
def test_bad_files_are_refused_and_nothing_is_stored(acme, content, status, words):
    with schema_context(acme.schema):
        before_files, before_rows = stored_files(acme), Dataset.objects.count()
    response = upload(acme, content, "bad.csv")
    assert response.status_code == status, response.content
    assert words in response.json()["detail"]
    assert stored_files(acme) == before_files
    with schema_context(acme.schema):
        assert Dataset.objects.count() == before_rows


def test_file_over_the_organization_limit_is_413(acme):
    from tenants.models import Organization

    Organization.objects.filter(slug="acme").update(max_upload_mb=1)
    try:
        response = upload(acme, csv_bytes(table(60_000)))
        assert response.status_code == 413
        assert "1 MB" in response.json()["detail"]
    finally:
        Organization.objects.filter(slug="acme").update(max_upload_mb=200)


def test_viewer_reads_but_cannot_upload_or_delete(acme, uploaded):
    viewer = acme.client("viewer")
    assert viewer.get(f"/api/v1/ml/datasets/{uploaded['id']}").status_code == 200
    assert upload(acme, csv_bytes(table()), role="viewer").status_code == 403
    assert viewer.delete(f"/api/v1/ml/datasets/{uploaded['id']}").status_code == 403


def test_other_organization_sees_nothing(acme, globex, uploaded):
    other = globex.client("owner")
    assert other.get(f"/api/v1/ml/datasets/{uploaded['id']}").status_code == 404
    assert other.get(f"/api/v1/ml/datasets/{uploaded['id']}/preview").status_code == 404
    assert other.delete(f"/api/v1/ml/datasets/{uploaded['id']}").status_code == 404
    assert uploaded["id"] not in [d["id"] for d in other.get("/api/v1/ml/datasets").json() if d["name"] == "customers"]


def test_delete_removes_row_file_and_is_audited(acme, uploaded):
    with schema_context(acme.schema):
        path = os.path.join(settings.MEDIA_ROOT, acme.schema, Dataset.objects.get(pk=uploaded["id"]).file)
    assert os.path.exists(path)
    response = acme.client("editor").delete(f"/api/v1/ml/datasets/{uploaded['id']}")
    assert response.status_code == 204
    assert acme.client("editor").get(f"/api/v1/ml/datasets/{uploaded['id']}").status_code == 404
    actions = [e["action"] for e in acme.client("owner").get("/api/v1/audit").json()]
    assert "dataset_deleted" in actions


def test_dataset_used_by_a_model_version_cannot_be_deleted(acme, uploaded):
    from models_registry.models import ModelVersion, RegisteredModel

    with schema_context(acme.schema):
        registered = RegisteredModel.objects.create(name="delete-guard", created_by="editor")
        ModelVersion.objects.create(registered_model=registered, version=1, algorithm="random_forest",
                                    problem_type="binary", target="label", artifact="models/x.skops",
                                    artifact_sha256="0" * 64, artifact_hmac="0" * 64, artifact_size=1,
                                    dataset_id=uploaded["id"], created_by="editor")
    response = acme.client("editor").delete(f"/api/v1/ml/datasets/{uploaded['id']}")
    assert response.status_code == 409
    assert response.json()["model_versions"] == ["delete-guard v1"]
    assert "delete-guard v1" in response.json()["detail"]
