"""Starting and cancelling training jobs through the API: up-front validation, roles, organization boundaries."""
import pytest
from django_tenants.utils import schema_context

from .conftest import assert_400_naming, csv_bytes, table, upload

pytestmark = pytest.mark.django_db


def start(org, dataset_id, role="editor", **settings):
    body = {"dataset_id": dataset_id, "target": "label", "model_name": "churn", **settings}
    return org.client(role).post("/api/v1/ml/training/start", body, format="json")


def test_start_queues_a_job_with_the_full_configuration(acme, uploaded):
    response = start(acme, uploaded["id"], algorithm="random_forest", search="random", n_trials=3)
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued"
    assert job["config"]["algorithm"] == "random_forest"
    assert job["config"]["cv_folds"] == 5 and job["config"]["test_size"] == 0.2
    assert job["config"]["n_threads"] >= 1
    listed = acme.client("viewer").get("/api/v1/ml/training/jobs?status=queued").json()
    assert job["id"] in [j["id"] for j in listed]


def test_auto_algorithm_is_an_automl_job_with_a_budget(acme, uploaded):
    job = start(acme, uploaded["id"], time_budget_s=30).json()
    assert job["kind"] == "automl"
    assert job["config"]["time_budget_s"] == 30
    assert "AutoML" in job["log"][-1][1]


@pytest.mark.parametrize("settings, field, words", [
    ({"target": "nope"}, "target", "'nope' is not in dataset"),
    ({"features": ["x1", "missing_col"]}, "features", "missing_col"),
    ({"algorithm": "linear_regression"}, "algorithm", "does not support"),
    ({"algorithm": "no_such_algo"}, "algorithm", "available algorithms"),
    ({"algorithm": "random_forest", "params": {"n_estimators": -5}}, "params", "n_estimators"),
    ({"metric": "rmse"}, "metric", "rmse"),
    ({"cv_folds": 1}, "cv_folds", ""),
    ({"search": "exhaustive"}, "search", ""),
    ({"test_size": 0.99}, "test_size", ""),
])
def test_bad_settings_are_400_naming_the_field(acme, uploaded, settings, field, words):
    response = start(acme, uploaded["id"], **settings)
    assert_400_naming(response, field, words)


def test_constant_target_and_tiny_class_are_refused(acme):
    frame = table(40)
    frame["constant"] = "same"
    frame.loc[:1, "label"] = "rare"  # 2 rows of a third class, fewer than 5 folds
    dataset = upload(acme, csv_bytes(frame)).json()
    constant = start(acme, dataset["id"], target="constant")
    assert constant.status_code == 400 and "target" in constant.json()["errors"]
    tiny = start(acme, dataset["id"], target="label")
    assert tiny.status_code == 400
    assert "rare" in tiny.json()["detail"]


def test_unknown_dataset_is_400(acme):
    response = start(acme, 999_999)
    assert response.status_code == 400 and "dataset_id" in response.json()["errors"]


def test_dataset_of_another_organization_cannot_be_trained_on(acme, globex, uploaded):
    response = start(globex, uploaded["id"])
    assert response.status_code == 400  # it does not exist there


def test_viewer_cannot_start_or_cancel(acme, uploaded):
    assert start(acme, uploaded["id"], role="viewer").status_code == 403
    job = start(acme, uploaded["id"]).json()
    assert acme.client("viewer").post(f"/api/v1/ml/training/jobs/{job['id']}/cancel").status_code == 403


def test_other_organization_cannot_see_or_cancel_a_job(acme, globex, uploaded):
    job = start(acme, uploaded["id"]).json()
    assert globex.client("owner").get(f"/api/v1/ml/training/jobs/{job['id']}").status_code == 404
    assert globex.client("owner").post(f"/api/v1/ml/training/jobs/{job['id']}/cancel").status_code == 404


def test_cancel_queued_job_is_immediate_and_second_cancel_is_409(acme, uploaded):
    job = start(acme, uploaded["id"]).json()
    cancelled = acme.client("editor").post(f"/api/v1/ml/training/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = acme.client("editor").post(f"/api/v1/ml/training/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_plan_limit_on_concurrent_jobs(acme, uploaded):
    from tenants.models import Organization

    with schema_context("public"):
        limit = Organization.objects.get(slug="acme").max_concurrent_jobs
    for _ in range(limit):
        assert start(acme, uploaded["id"]).status_code == 202
    response = start(acme, uploaded["id"])
    assert response.status_code == 409
    assert "plan allows" in response.json()["detail"]


def test_catalog_lists_the_registries(acme):
    catalog = acme.client("viewer").get("/api/v1/ml/catalog").json()
    keys = {a["key"] for a in catalog["algorithms"]}
    assert {"logistic_regression", "linear_regression", "ridge", "random_forest", "extra_trees",
            "hist_gradient_boosting", "xgboost"} <= keys
    assert {s["key"] for s in catalog["searches"]} == {"none", "grid", "random", "bayesian"}
