"""Batch prediction end to end with a real worker: queue, progress, a private CSV download."""
import csv
import io

import pytest

from tests.training.conftest import csv_bytes, table
from tests.training.test_worker import qcluster, wait_for  # noqa: F401  (fixture)

pytestmark = pytest.mark.worker


def wait_done(org, job_id):
    def done():
        job = org.client("viewer").get(f"/api/v1/ml/batch-predict/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, 120, f"batch {job_id} to finish")


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_batch_on_a_dataset_and_on_an_uploaded_csv(acme, globex, trained, committed, qcluster):  # noqa: F811
    editor = acme.client("editor")
    version_id = trained["churn_v1"]["id"]
    started = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version_id,
                                                       "dataset_id": trained["datasets"]["churn"]["id"]}, format="json")
    assert started.status_code == 202, started.content
    job = wait_done(acme, started.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["rows"] == 400 and job["progress"] == 1.0
    rows = read_csv(acme.client("viewer").get(job["download_url"]))
    assert len(rows) == 400 and rows[0]["row"] == "1"
    assert set(rows[0]) == {"row", "prediction", "proba_no", "proba_yes", "warnings"}
    assert job["warnings"] == [] and all(r["warnings"] == "" for r in rows)
    assert abs(float(rows[0]["proba_no"]) + float(rows[0]["proba_yes"]) - 1) < 1e-6

    # an uploaded CSV, by deployed name
    editor.post(f"/api/v1/ml/models/{version_id}/deploy", {"alias": "production"}, format="json")
    frame = table(25, seed=5).drop(columns="label")
    frame.loc[3, "color"] = "Purple"
    upload = editor.post("/api/v1/ml/batch-predict", {"model_name": "churn", "file": io.BytesIO(csv_bytes(frame))},
                         format="multipart")
    assert upload.status_code == 202, upload.content
    job = wait_done(acme, upload.json()["id"])
    assert job["status"] == "succeeded" and job["rows"] == 25
    # the unseen colour is summarised on the job and named on its row (1-based, as in the file)
    assert [(w["column"], w["code"], w["count"]) for w in job["warnings"]] == [("color", "unseen_category", 1)]
    assert job["warnings"][0]["examples"][0]["row"] == 4
    rows = read_csv(acme.client("viewer").get(job["download_url"]))
    assert rows[3]["warnings"].startswith("color: 'Purple' was not seen in training")

    # private: another organization sees nothing, an API key cannot download
    assert globex.client("owner").get(job["download_url"]).status_code == 404
    anonymous = acme.client()
    assert anonymous.get(job["download_url"]).status_code == 401


def test_batch_input_missing_a_feature_is_400_naming_it(acme, trained, committed):
    frame = table(10).drop(columns=["label", "color"])
    response = acme.client("editor").post("/api/v1/ml/batch-predict", {
        "model_version_id": trained["churn_v1"]["id"], "file": io.BytesIO(csv_bytes(frame))}, format="multipart")
    assert response.status_code == 400 and "color" in response.json()["detail"]


def test_batch_needs_one_model_and_one_input(acme, trained, committed):
    editor = acme.client("editor")
    assert editor.post("/api/v1/ml/batch-predict", {"dataset_id": 1}, format="json").status_code == 400
    both = editor.post("/api/v1/ml/batch-predict", {"model_version_id": trained["churn_v1"]["id"]}, format="json")
    assert both.status_code == 400 and "dataset_id" in both.json()["errors"]
