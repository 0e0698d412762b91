"""How columns are read, through the API and the dataset page: the profile shows it, a user changes it, a job
records it, and anything that would fail in the worker is a 400 naming the column at submission."""
import numpy as np
import pandas as pd
import pytest

from .conftest import assert_400_naming, csv_bytes, upload

pytestmark = pytest.mark.django_db


def messy(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Ambiguous dd/mm dates, integer-coded regions, decimal-comma prices and a yes/no label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "visit": [f"{1 + i % 12:02d}/{1 + (i * 5) % 12:02d}/2024" for i in range(n)],
        "region": rng.integers(1, 4, n),
        "price": [f"{v:.2f}".replace(".", ",") for v in rng.uniform(1, 500, n)],
        "label": rng.choice(["yes", "no"], n),
    })


@pytest.fixture
def dataset(acme):
    response = upload(acme, csv_bytes(messy(), sep=";"), name="messy")
    assert response.status_code == 201, response.content
    return response.json()


def columns(body: dict) -> dict:
    return {c["name"]: c for c in body["profile"]["columns"]}


def patch(org, dataset_id, body, role="editor"):
    return org.client(role).patch(f"/api/v1/ml/datasets/{dataset_id}", body, format="json")


def test_the_profile_says_how_each_column_is_read(dataset):
    profile = columns(dataset)
    assert profile["visit"]["kind"] == "datetime" and profile["visit"]["reading"]["alternatives"] == ["mm/dd/yyyy"]
    assert profile["visit"]["reading"]["date_format"] == "dd/mm/yyyy"  # ';' file: day first
    assert profile["price"]["kind"] == "numeric" and profile["price"]["reading"]["number_format"] == "decimal_comma"
    assert profile["region"]["kind"] == "numeric"
    assert profile["label"]["kind"] == "boolean"


def test_a_user_chooses_a_reading_and_a_kind_and_the_profile_follows(acme, dataset):
    response = patch(acme, dataset["id"], {"column_kinds": {"region": "categorical"},
                                           "column_readings": {"visit": {"format": "mm/dd/yyyy"}}})
    assert response.status_code == 200, response.content
    profile = columns(response.json())
    assert profile["region"]["kind"] == "categorical" and profile["region"]["reading"]["source"] == "user"
    assert profile["visit"]["reading"]["date_format"] == "mm/dd/yyyy"
    assert profile["visit"]["min"].startswith("2024-01-01")
    actions = [e["action"] for e in acme.client("owner").get("/api/v1/audit").json()]
    assert "dataset_readings_changed" in actions

    # and a job started afterwards reads them that way, recorded in its config
    job = acme.client("editor").post("/api/v1/ml/training/start", {
        "dataset_id": dataset["id"], "target": "label", "model_name": "messy", "algorithm": "logistic_regression",
        "column_kinds": {"price": "text"}}, format="json")
    assert job.status_code == 202, job.content
    config = job.json()["config"]
    assert config["column_kinds"] == {"price": "text"}
    assert config["column_readings"]["region"]["kind"] == "categorical"
    assert config["column_readings"]["visit"]["date_format"] == "mm/dd/yyyy"


@pytest.mark.parametrize("body, field, words", [
    ({"column_kinds": {"price": "date"}}, "column_kinds", "column 'price' cannot be read as dates"),
    ({"column_kinds": {"label": "numeric"}}, "column_kinds", "column 'label' cannot be read as numbers"),
    ({"column_kinds": {"nope": "numeric"}}, "column_kinds", "'nope'"),
    ({"column_kinds": {"price": "float"}}, "column_kinds", "unknown kind 'float'"),
    ({"column_readings": {"visit": {"format": "yyyy-dd-mm"}}}, "column_readings", "unknown date format"),
    ({"column_readings": {"price": {"format": "dd/mm/yyyy"}}}, "column_readings", "unknown number format"),
    ({}, "column_kinds", "Give column_kinds or column_readings"),
])
def test_a_reading_that_cannot_apply_is_400_naming_the_column(acme, dataset, body, field, words):
    response = patch(acme, dataset["id"], body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"] and words in response.json()["detail"]


def test_roles_and_organizations(acme, globex, dataset):
    assert patch(acme, dataset["id"], {"column_kinds": {"region": "categorical"}}, role="viewer").status_code == 403
    assert patch(globex, dataset["id"], {"column_kinds": {"region": "categorical"}}, role="owner").status_code == 404


def test_the_dataset_page_shows_the_reading_and_changes_it(acme, dataset):
    from django.test import Client

    client = Client(HTTP_HOST=acme.host)
    assert client.login(username="editor", password="editor-pass-123")
    page = client.get(f"/datasets/{dataset['id']}/").content.decode()
    assert 'data-testid="ambiguous"' in page and "dates written dd/mm/yyyy" in page
    response = client.post(f"/datasets/{dataset['id']}/reading/", {"column": "visit", "kind": "date",
                                                                     "format": "mm/dd/yyyy"}, follow=True)
    assert "is now read as dates written mm/dd/yyyy" in response.content.decode()
    response = client.post(f"/datasets/{dataset['id']}/reading/", {"column": "price", "kind": "date"}, follow=True)
    assert "cannot be read as dates" in response.content.decode()
    viewer = Client(HTTP_HOST=acme.host)
    assert viewer.login(username="viewer", password="viewer-pass-123")
    assert 'data-testid="reading-form"' not in viewer.get(f"/datasets/{dataset['id']}/").content.decode()
    assert viewer.post(f"/datasets/{dataset['id']}/reading/", {"column": "visit", "kind": "text"}).status_code == 403


def test_the_reading_form_goes_through_the_page_form_rules(acme, dataset):
    # the one text rule of every page form, and choices from the reading registry only
    from django.test import Client

    client = Client(HTTP_HOST=acme.host)
    assert client.login(username="editor", password="editor-pass-123")
    url = f"/datasets/{dataset['id']}/reading/"
    control = client.post(url, {"column": "vis\x00it", "kind": "date"}, follow=True).content.decode()
    assert "column: " in control and "This text contains a control character (U+0000) at position 3" in control
    unknown = client.post(url, {"column": "visit", "kind": "float"}, follow=True).content.decode()
    assert "kind: Select a valid choice. float is not one of the available choices." in unknown
    bad_format = client.post(url, {"column": "visit", "format": "yyyy-dd-mm"}, follow=True).content.decode()
    assert "format: Select a valid choice." in bad_format
    missing = client.post(url, {"kind": "date"}, follow=True).content.decode()
    assert "column: This field is required." in missing
    assert columns(acme.client("viewer").get(f"/api/v1/ml/datasets/{dataset['id']}").json()) == columns(dataset)


def start(org, dataset_id, **settings):
    body = {"dataset_id": dataset_id, "model_name": "checks", "algorithm": "ridge", **settings}
    return org.client("editor").post("/api/v1/ml/training/start", body, format="json")


@pytest.mark.parametrize("frame, settings, field, words", [
    # an infinite target used to be accepted (202) and fail in the worker with scikit-learn's message
    (pd.DataFrame({"x": range(40), "y": [1.0] * 20 + [float("inf")] + list(range(19))}), {"target": "y"},
     "target", "target 'y' has 1 infinite value(s)"),
    (pd.DataFrame({"x": range(40), "y": [None] * 25 + list(range(15))}), {"target": "y"}, "target", "missing in 62%"),
    (pd.DataFrame({"x": [1e300 * (-1) ** i for i in range(40)], "y": range(40)}), {"target": "y"},
     "features", "column 'x' holds 40 value(s) beyond"),
    (pd.DataFrame({"x": range(40), "y": [f"{v}e300" for v in range(40)]}), {"target": "y"},
     "target", "column 'y' holds 39 value(s) beyond"),
    (pd.DataFrame({"x": range(40), "y": ["a", "b"] * 20}), {"target": "y", "problem_type": "regression"},
     "problem_type", "regression needs a numeric target"),
    (pd.DataFrame({"x": range(40), "y": range(40)}), {"target": "y", "column_kinds": {"x": "date"}},
     "column_kinds", "column 'x' cannot be read as dates"),
    (pd.DataFrame({"x": range(40), "y": range(40)}), {"target": "y", "column_kinds": {"y": "text"}},
     "column_kinds", "target 'y' is declared text"),
    (pd.DataFrame({"x": range(40), "y": range(40)}), {"target": "y", "column_kinds": {"z": "numeric"}},
     "column_kinds", "'z', which is not in the dataset"),
    (pd.DataFrame({"x": range(40), "y": range(40)}), {"target": "y", "column_kinds": ["x"]},
     "column_kinds", "Must be an object, not a list"),  # the JSON types the schema documents
])
def test_what_would_fail_in_the_worker_is_400_naming_the_column(acme, frame, settings, field, words):
    dataset = upload(acme, csv_bytes(frame), name="checks").json()
    response = start(acme, dataset["id"], **settings)
    assert_400_naming(response, field, words)


def test_a_numeric_target_with_decimal_commas_is_regression_and_integer_codes_can_be_classes(acme):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=150).round(3), "y": [f"{v:.2f}".replace(".", ",")
                                                                     for v in rng.uniform(0, 1000, 150)],
                          "code": rng.integers(1, 8, 150)})
    dataset = upload(acme, csv_bytes(frame, sep=";"), name="comma-target").json()
    assert dataset["profile"]["suggested_problem_type"] == "regression"
    suggestion = acme.client("editor").post("/api/v1/ml/suggestions", {"dataset_id": dataset["id"], "target": "y"},
                                            format="json").json()
    assert suggestion["problem_type"] == "regression"
    assert start(acme, dataset["id"], target="y").status_code == 202
    # an integer-coded column declared categorical is a classification target
    classes = start(acme, dataset["id"], target="code", algorithm="logistic_regression",
                    column_kinds={"code": "categorical"}, features=["x"], cv_folds=2)
    assert classes.status_code == 202, classes.content


def test_a_dataset_profiled_before_readings_still_trains(acme, dataset):
    # Given a dataset whose profile has no readings (uploaded before they existed)
    from django_tenants.utils import schema_context

    from training.models import Dataset

    with schema_context(acme.schema):
        stored = Dataset.objects.get(pk=dataset["id"])
        stored.profile = {**stored.profile, "columns": [{k: v for k, v in c.items() if k != "reading"}
                                                         for c in stored.profile["columns"]]}
        stored.save(update_fields=["profile"])
    # When a job starts, then the columns are read as inferred now, and nothing is recorded as stored
    response = acme.client("editor").post("/api/v1/ml/training/start", {
        "dataset_id": dataset["id"], "target": "label", "model_name": "old", "algorithm": "logistic_regression"},
        format="json")
    assert response.status_code == 202, response.content
    assert response.json()["config"]["column_readings"] is None
    # and an AutoML job records the kinds it was given as well
    automl = acme.client("editor").post("/api/v1/ml/training/start", {
        "dataset_id": dataset["id"], "target": "label", "model_name": "old-automl", "algorithm": "auto",
        "time_budget_s": 10, "column_kinds": {"region": "categorical"}}, format="json")
    assert automl.status_code == 202, automl.content
    assert automl.json()["kind"] == "automl" and automl.json()["config"]["column_kinds"] == {"region": "categorical"}
