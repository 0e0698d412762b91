"""Registry through the API: versions, deploy and roll back, predictions with tokens and API keys, safe files,
evaluation, comparison, monitoring. Cross-organization 404 and viewer 403 on every endpoint."""
import os
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django_tenants.utils import schema_context

from models_registry.loading import cache_clear
from tests.training.conftest import table

pytestmark = pytest.mark.django_db

RECORD = {"x1": 0.5, "x2": 7.5, "color": "red"}


def test_version_has_metrics_schema_lineage_and_digest(acme, trained):
    v = acme.client("viewer").get(f"/api/v1/ml/models/{trained['churn_v1']['id']}").json()
    assert v["name"] == "churn" and v["version"] == 1 and v["problem_type"] == "binary"
    assert v["metrics"]["scores"]["roc_auc"] > 0.8 and v["cv"]["mean"] is not None
    assert {c["name"] for c in v["feature_schema"]} == {"x1", "x2", "color"}
    assert len(v["artifact_sha256"]) == 64 and v["dataset_id"] == trained["datasets"]["churn"]["id"]
    assert v["serving_engine"] in ("onnx", "native") and v["library_versions"]["scikit-learn"]


def test_predict_with_a_token_returns_labels_and_probabilities(acme, trained):
    response = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict",
                                          {"records": [RECORD, {**RECORD, "color": "purple"}]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"]["version"] == 1
    assert set(body["predictions"]) <= {"yes", "no"} and len(body["predictions"]) == 2
    assert set(body["probabilities"][0]) == {"no", "yes"}
    assert abs(sum(body["probabilities"][0].values()) - 1) < 1e-6


def test_regression_predictions_have_no_probabilities(acme, trained):
    body = acme.client("viewer").post(f"/api/v1/ml/models/{trained['price_v1']['id']}/predict",
                                      {"records": [{"size": 100, "rooms": 3, "area": "south"}]}, format="json").json()
    assert 300 < body["predictions"][0] < 500
    assert body["probabilities"] is None


@pytest.mark.parametrize("body, words", [
    ({}, "records"),
    ({"records": []}, "records"),
    ({"records": "x"}, "records"),
    ({"records": [{"x1": 1, "x2": 2}]}, "records[0].color"),
    ({"records": [RECORD, {"x1": "abc", "x2": 2, "color": "red"}]}, "records[1].x1"),
    ({"records": [{"x1": [1], "x2": 2, "color": "red"}]}, "records[0].x1"),
])
def test_bad_prediction_bodies_are_400_naming_record_and_column(acme, trained, body, words):
    response = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict", body, format="json")
    assert response.status_code == 400, response.content
    assert words in str(response.json())


def test_malformed_json_is_400(acme, trained):
    response = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict", "{oops",
                                          content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_extra_columns_are_ignored_with_a_warning(acme, trained):
    body = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict",
                                      {"records": [{**RECORD, "shoe_size": 44}]}, format="json").json()
    assert body["warnings"] == [{"record": None, "column": "shoe_size", "code": "ignored_column",
                                 "message": "column 'shoe_size' is ignored: the model does not use it"}]


def test_unseen_categories_are_warned_about_per_record_and_column(acme, trained):
    # Given a model trained on red, green and blue
    body = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict",
                                      {"records": [RECORD, {**RECORD, "color": "Red"}]}, format="json").json()
    # Then the second record's colour is named, with the category it differs from by case only
    assert [(w["record"], w["column"], w["code"]) for w in body["warnings"]] == [(1, "color", "unseen_category")]
    assert "'red' was" in body["warnings"][0]["message"]


def test_too_many_records_is_400(acme, trained, settings):
    settings.PREDICT_MAX_RECORDS = 3
    response = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict",
                                          {"records": [RECORD] * 4}, format="json")
    assert response.status_code == 400 and "3" in response.json()["detail"]


def test_deploy_roll_back_and_stable_deployment_url(acme, trained):
    editor = acme.client("editor")
    v1, v2 = trained["churn_v1"]["id"], trained["churn_v2"]["id"]
    assert editor.post(f"/api/v1/ml/models/{v1}/deploy", {}, format="json").status_code == 200
    assert editor.post("/api/v1/ml/deployments/churn/predict", {"records": [RECORD]}, format="json").json()["model_version"]["version"] == 1
    deployed = editor.post(f"/api/v1/ml/models/{v2}/deploy", {}, format="json").json()
    assert deployed["aliases"]["production"]["version"] == 2
    assert editor.post("/api/v1/ml/deployments/churn/predict", {"records": [RECORD]}, format="json").json()["model_version"]["version"] == 2
    again = editor.post(f"/api/v1/ml/models/{v2}/deploy", {}, format="json")
    assert again.status_code == 409
    model_id = acme.client("viewer").get("/api/v1/ml/registered-models").json()
    model_id = next(m["id"] for m in model_id if m["name"] == "churn")
    rolled = editor.post(f"/api/v1/ml/registered-models/{model_id}/rollback", {}, format="json").json()
    assert rolled["aliases"]["production"]["version"] == 1
    audit = [e["action"] for e in acme.client("owner").get("/api/v1/audit?actor=editor").json()]
    assert "model_deploy" in audit and "model_rollback" in audit


def test_deployment_of_unknown_model_is_404(acme, trained):
    assert acme.client("viewer").post("/api/v1/ml/deployments/nope/predict", {"records": [RECORD]}, format="json").status_code == 404


def test_api_key_predicts_only_with_its_models_and_only_on_prediction_endpoints(acme, trained):
    owner = acme.client("owner")
    models = {m["name"]: m["id"] for m in owner.get("/api/v1/ml/registered-models").json()}
    created = owner.post("/api/v1/api-keys", {"name": "crm", "model_ids": [models["churn"]]}, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    client = acme.client()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict", {"records": [RECORD]}, format="json").status_code == 200
    assert client.post(f"/api/v1/ml/models/{trained['price_v1']['id']}/predict",
                       {"records": [{"size": 1, "rooms": 1, "area": "north"}]}, format="json").status_code == 403
    assert client.get("/api/v1/ml/models").status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    listed = owner.get("/api/v1/api-keys").json()
    assert all("secret" not in k for k in listed) and listed[0]["models"] == ["churn"]
    assert owner.post(f"/api/v1/api-keys/{created.json()['key']['id']}/revoke").status_code == 200
    assert client.post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict", {"records": [RECORD]}, format="json").status_code == 401


def api_key_client(org, model_name: str, *, on=None):
    """A client on `on`'s host (default: the same organization) calling with a new key of `org` for one model."""
    owner = org.client("owner")
    model_id = next(m["id"] for m in owner.get("/api/v1/ml/registered-models").json() if m["name"] == model_name)
    secret = owner.post("/api/v1/api-keys", {"name": "x", "model_ids": [model_id]}, format="json").json()["secret"]
    client = (on or org).client()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client, secret


def test_api_key_of_one_organization_is_rejected_by_another(acme, globex, trained):
    client, _ = api_key_client(acme, "churn", on=globex)
    assert client.post("/api/v1/ml/deployments/churn/predict", {"records": [RECORD]}, format="json").status_code == 401


def test_only_owners_manage_api_keys(acme, trained):
    for role in ("viewer", "editor"):
        assert acme.client(role).get("/api/v1/api-keys").status_code == 403
        assert acme.client(role).post("/api/v1/api-keys", {"name": "x", "model_ids": [1]}, format="json").status_code == 403


def _version_file(org, version_id):
    from models_registry.models import ModelVersion

    with schema_context(org.schema):
        version = ModelVersion.objects.get(pk=version_id)
        return version, os.path.join(settings.MEDIA_ROOT, org.schema, version.artifact)


@pytest.fixture
def restore_file(acme, trained):
    saved = {}

    def keep(version_id):
        version, path = _version_file(acme, version_id)
        saved[path] = open(path, "rb").read()
        return version, path

    yield keep
    for path, data in saved.items():
        with open(path, "wb") as handle:
            handle.write(data)
    cache_clear()


def test_tampered_artifact_is_refused_with_409_and_audited(acme, trained, restore_file):
    version, path = restore_file(trained["price_v1"]["id"])
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    cache_clear()
    from models_registry.models import ModelVersion

    with schema_context(acme.schema):  # make the native file the one that serves
        ModelVersion.objects.filter(pk=version.pk).update(serving_engine="native")
    response = acme.client("viewer").post(f"/api/v1/ml/models/{version.pk}/predict",
                                          {"records": [{"size": 1, "rooms": 1, "area": "north"}]}, format="json")
    assert response.status_code == 409 and "integrity check" in response.json()["detail"]
    assert "model_file_tampered" in [e["action"] for e in acme.client("owner").get("/api/v1/audit").json()]


def test_a_pickle_in_place_of_a_model_file_is_never_executed(acme, trained, restore_file, tmp_path):
    import pickle

    canary = tmp_path / "canary"

    class Evil:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    version, path = restore_file(trained["price_v1"]["id"])
    payload = pickle.dumps(Evil())
    with open(path, "wb") as handle:
        handle.write(payload)
    from models_registry.models import ModelVersion
    from models_registry.signing import hmac_hex, sha256_hex

    with schema_context(acme.schema):  # even with a matching digest and signature, skops refuses it
        ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256=sha256_hex(payload), artifact_hmac=hmac_hex(payload),
                                                          serving_engine="native")
    cache_clear()
    response = acme.client("viewer").post(f"/api/v1/ml/models/{version.pk}/predict",
                                          {"records": [{"size": 1, "rooms": 1, "area": "north"}]}, format="json")
    assert response.status_code >= 400
    assert not canary.exists()
    with schema_context(acme.schema):
        ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256=version.artifact_sha256,
                                                          artifact_hmac=version.artifact_hmac,
                                                          serving_engine=version.serving_engine)


def test_evaluate_on_a_labelled_dataset_and_missing_columns(acme, trained):
    editor = acme.client("editor")
    v = trained["churn_v1"]["id"]
    response = editor.post(f"/api/v1/ml/models/{v}/evaluate", {"dataset_id": trained["datasets"]["churn"]["id"]}, format="json")
    assert response.status_code == 201
    assert response.json()["evaluations"][0]["scores"]["accuracy"] > 0.7
    wrong = editor.post(f"/api/v1/ml/models/{v}/evaluate", {"dataset_id": trained["datasets"]["price"]["id"]}, format="json")
    assert wrong.status_code == 400 and "label" in wrong.json()["detail"]


def test_compare_same_problem_type_and_refuse_mixed(acme, trained):
    viewer = acme.client("viewer")
    same = viewer.post("/api/v1/ml/models/compare", {"model_ids": [trained["churn_v1"]["id"], trained["churn_v2"]["id"]]}, format="json")
    assert same.status_code == 200
    body = same.json()
    assert "roc_auc" in body["metrics"] and body["best"]["roc_auc"] in (trained["churn_v1"]["id"], trained["churn_v2"]["id"])
    mixed = viewer.post("/api/v1/ml/models/compare", {"model_ids": [trained["churn_v1"]["id"], trained["price_v1"]["id"]]}, format="json")
    assert mixed.status_code == 400 and "different problem types" in mixed.json()["detail"]


def test_monitoring_counts_requests_errors_and_latency(acme, trained):
    from models_registry.monitoring import stats_buffer

    viewer = acme.client("viewer")
    v = trained["price_v1"]["id"]
    for _ in range(3):
        viewer.post(f"/api/v1/ml/models/{v}/predict", {"records": [{"size": 50, "rooms": 2, "area": "north"}]}, format="json")
    viewer.post(f"/api/v1/ml/models/{v}/predict", {"records": [{"size": "big", "rooms": 2, "area": "north"}]}, format="json")
    stats_buffer.flush()
    data = viewer.get("/api/v1/ml/deployments/price/monitoring").json()
    assert data["requests"] >= 4 and data["errors"] >= 1
    assert data["latency_ms"]["p50"] is not None and data["distribution"]


@pytest.mark.parametrize("method, path", [
    ("get", "/api/v1/ml/models/{v}"),
    ("post", "/api/v1/ml/models/{v}/predict"),
    ("post", "/api/v1/ml/models/{v}/deploy"),
    ("post", "/api/v1/ml/models/{v}/evaluate"),
])
def test_other_organization_gets_404(acme, globex, trained, method, path):
    client = globex.client("owner")
    response = getattr(client, method)(path.format(v=trained["churn_v1"]["id"]), {"records": [RECORD], "dataset_id": 1}, format="json")
    assert response.status_code == 404


def test_other_organization_sees_no_models_or_deployments(globex, trained):
    client = globex.client("owner")
    assert [m for m in client.get("/api/v1/ml/registered-models").json() if m["name"] in ("churn", "price")] == []
    assert client.get("/api/v1/ml/deployments/churn/monitoring").status_code == 404


@pytest.mark.parametrize("path, body", [
    ("/api/v1/ml/models/{v}/deploy", {}),
    ("/api/v1/ml/models/{v}/evaluate", {"dataset_id": 1}),
    ("/api/v1/ml/batch-predict", {"model_version_id": "{v}", "dataset_id": 1}),
])
def test_viewer_cannot_change_anything(acme, trained, path, body):
    v = trained["churn_v1"]["id"]
    body = {k: (v if val == "{v}" else val) for k, val in body.items()}
    assert acme.client("viewer").post(path.format(v=v), body, format="json").status_code == 403


def test_batch_predictions_count_towards_the_plans_concurrent_jobs(acme, trained):
    from tenants.models import Organization

    with schema_context("public"):
        limit = Organization.objects.get(slug="acme").max_concurrent_jobs
    editor = acme.client("editor")
    batch = {"model_version_id": trained["churn_v1"]["id"], "dataset_id": trained["datasets"]["churn"]["id"]}
    for _ in range(limit):  # queued only: this test's transaction is never committed, so no worker sees them
        assert editor.post("/api/v1/ml/batch-predict", batch, format="json").status_code == 202
    refused = editor.post("/api/v1/ml/batch-predict", batch, format="json")
    assert refused.status_code == 409 and "plan allows" in refused.json()["detail"]
    training = editor.post("/api/v1/ml/training/start", {"dataset_id": trained["datasets"]["churn"]["id"],
                                                         "target": "label", "model_name": "x"}, format="json")
    assert training.status_code == 409 and "batch" in training.json()["detail"]


def test_a_version_from_before_readings_answers_as_it_did(acme, trained):
    # Given the same version with its feature schema as it was stored before column readings existed
    from models_registry.models import ModelVersion

    url = f"/api/v1/ml/models/{trained['price_v1']['id']}/predict"
    records = [{"size": 100, "rooms": 3, "area": "south"}, {"size": "55.5", "rooms": None, "area": "north"}]
    before = acme.client("viewer").post(url, {"records": records}, format="json").json()
    with schema_context(acme.schema):
        version = ModelVersion.objects.get(pk=trained["price_v1"]["id"])
        old = [{k: v for k, v in c.items() if k not in ("reading", "mean", "std", "quantiles")}
               for c in version.feature_schema]
        ModelVersion.objects.filter(pk=version.pk).update(feature_schema=old, target_schema={})
    cache_clear()

    # When it predicts, then it reads the values the old way and gives the same answers
    after = acme.client("viewer").post(url, {"records": records}, format="json").json()
    assert after["predictions"] == before["predictions"]
    cache_clear()
