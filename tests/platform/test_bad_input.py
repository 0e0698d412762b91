"""Bad input, as a stranger would send it: every body is parsed with size, depth and text limits and answered
with a JSON 4xx that names the problem, on every endpoint that reads a body, signed in or not."""
import json

import pytest
from django.test import Client

from mlplatform.api.parsers import first_lone_surrogate, nesting_exceeds
from tests.accounts.test_pages import signed_in
from training.ml.text import text_problem

pytestmark = pytest.mark.django_db

RECORD = {"x1": 0.5, "x2": 7.5, "color": "red"}
DEEP = "[" * 3000 + "]" * 3000  # 6 KB


@pytest.fixture
def json_endpoints(acme, trained):
    """(role, path[, method]) of every endpoint that reads a JSON body (POST unless said); role None: reachable
    without signing in."""
    churn = trained["churn_v1"]["id"]
    acme.client("editor").post(f"/api/v1/ml/models/{churn}/deploy", {}, format="json")
    return [
        (None, "/api/v1/auth/token"),
        ("owner", f"/api/v1/members/{acme.user_ids['viewer']}", "PATCH"),
        ("editor", f"/api/v1/ml/datasets/{trained['datasets']['churn']['id']}", "PATCH"),
        ("owner", "/api/v1/members"),
        ("owner", "/api/v1/api-keys"),
        ("editor", "/api/v1/ml/training/start"),
        ("editor", "/api/v1/ml/suggestions"),
        ("editor", "/api/v1/ml/models/compare"),
        ("editor", f"/api/v1/ml/models/{churn}/evaluate"),
        ("editor", f"/api/v1/ml/models/{churn}/deploy"),
        ("editor", "/api/v1/ml/batch-predict"),
        ("viewer", f"/api/v1/ml/models/{churn}/predict"),
        ("viewer", "/api/v1/ml/deployments/churn/predict"),
    ]


def _post(org, role, path, body: str, content_type="application/json", method="POST"):
    return org.client(role).generic(method, path, body.encode("utf-8", "surrogatepass"), content_type=content_type)


def test_3000_nested_arrays_are_a_400_on_every_json_endpoint(acme, json_endpoints):
    for role, path, *method in json_endpoints:
        response = _post(acme, role, path, DEEP, method=(method or ["POST"])[0])
        assert response.status_code == 400, (path, response.content[:300])
        assert "deeper than 32 levels" in response.json()["detail"], path


def test_a_body_over_the_size_limit_is_a_json_413_on_every_json_endpoint(acme, json_endpoints, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body = json.dumps({"records": [RECORD] * 100})
    for role, path, *method in json_endpoints:
        response = _post(acme, role, path, body, method=(method or ["POST"])[0])
        assert response.status_code == 413, (path, response.content[:300])
        assert response["Content-Type"] == "application/json"
        assert "larger than" in response.json()["detail"]


def test_multipart_bodies_have_limits_too_and_other_kinds_are_refused(acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    upload = acme.client("editor").post("/api/v1/ml/datasets", {"name": "n" * 3000, "file": b"a,b\n1,2\n"},
                                        format="multipart")
    assert upload.status_code == 413 and upload["Content-Type"] == "application/json"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10**6
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    many = acme.client("editor").post("/api/v1/ml/batch-predict", {f"f{i}": "1" for i in range(50)}, format="multipart")
    assert many.status_code == 400 and "more than 10 form fields" in many.json()["detail"]
    # an endpoint reads JSON (uploads: multipart); a form-encoded body is a 415 that says so
    form = acme.client().post("/api/v1/auth/token", "username=editor&password=editor-pass-123",
                              content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and "application/x-www-form-urlencoded" in form.json()["detail"]
    json_upload = acme.client("editor").post("/api/v1/ml/datasets", {"name": "x"}, format="json")
    assert json_upload.status_code == 415


def test_a_page_form_over_the_size_limit_is_a_413_page_not_djangos_bare_400(acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    response = Client(HTTP_HOST=acme.host).post("/login/", {"username": "x" * 3000, "password": "y"})
    assert response.status_code == 413
    assert b"larger than" in response.content and b"<html" in response.content


@pytest.mark.parametrize("model", ["churn_v1", "churn_v2", "price_v1"])
def test_a_lone_surrogate_in_a_prediction_is_a_400_on_every_engine(acme, trained, model):
    version = trained[model]
    column = next(c["name"] for c in version["feature_schema"] if c["kind"] == "categorical")
    record = {c["name"]: 1 for c in version["feature_schema"]}
    path = f"/api/v1/ml/models/{version['id']}/predict"
    for value in ("\ud800", "red\udfff"):
        response = _post(acme, "viewer", path, json.dumps({"records": [{**record, column: value}]}))
        assert response.status_code == 400, (version["serving_engine"], response.content)
        assert response.json()["errors"] == {f"records[0].{column}": [response.json()["detail"]]}
        assert "lone surrogate" in response.json()["detail"]
    # a key is text too; and a surrogate pair (an emoji written as two escapes) is fine
    key = _post(acme, "viewer", path, json.dumps({"records": [{**record, "\udc00": 1}]}))
    assert key.status_code == 400 and "a key" in key.json()["detail"]
    pair = _post(acme, "viewer", path, json.dumps({"records": [{**record, column: "\ud83d\ude00"}]}))
    assert pair.status_code == 200, pair.content


def test_the_engines_in_the_lone_surrogate_test_include_onnx(trained):
    assert "onnx" in {trained[m]["serving_engine"] for m in ("churn_v1", "churn_v2", "price_v1")}


def test_control_characters_in_prediction_values_are_refused_but_tabs_and_newlines_kept(acme, trained):
    path = f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict"
    nul = acme.client("viewer").post(path, {"records": [{**RECORD, "color": "r\x00ed"}]}, format="json")
    assert nul.status_code == 400 and "control character (U+0000)" in nul.json()["detail"]
    assert "records[0].color" in nul.json()["errors"]
    multi_line = acme.client("viewer").post(path, {"records": [{**RECORD, "color": "red\nand\tblue"}]}, format="json")
    assert multi_line.status_code == 200


@pytest.mark.parametrize("role, path, body, field", [
    (None, "/api/v1/auth/token", {"username": "edi\x00tor", "password": "x"}, "username"),
    (None, "/api/v1/auth/token", {"username": "editor", "password": "pa\ud800ss"}, "password"),
    ("owner", "/api/v1/members", {"username": "new\nline", "password": "long-enough-1", "role": "viewer"}, "username"),
    ("owner", "/api/v1/api-keys", {"name": "bell\x07", "model_ids": [1]}, "name"),
    ("editor", "/api/v1/ml/training/start", {"dataset_id": 1, "target": "label", "model_name": "a\x1bb"}, "model_name"),
    ("editor", "/api/v1/ml/training/start", {"dataset_id": 1, "target": "label", "model_name": "m",
                                             "features": ["x1", "x\u2028y"]}, "features"),
    ("editor", "/api/v1/ml/suggestions", {"dataset_id": 1, "target": "\x7f"}, "target"),
    ("editor", "/api/v1/ml/training/start", {"dataset_id": 1, "target": "label", "model_name": "m",
                                             "column_kinds": {"x1": "nume\x00ric"}}, "column_kinds"),
    ("editor", "/api/v1/ml/training/start", {"dataset_id": 1, "target": "label", "model_name": "m",
                                             "column_kinds": {"x1": {"kind": "date", "format": "dd\x1b"}}},
     "column_kinds"),
    ("editor", "PATCH /api/v1/ml/datasets/{churn}", {"column_kinds": {"x1": "nume\nric"}}, "column_kinds"),
    ("editor", "PATCH /api/v1/ml/datasets/{churn}", {"column_readings": {"x1": {"format": "\ud800"}}}, "column_readings"),
])
def test_text_fields_refuse_control_characters_and_lone_surrogates(acme, trained, role, path, body, field):
    method, _, path = path.format(churn=trained["datasets"]["churn"]["id"]).rpartition(" ")
    response = _post(acme, role, path, json.dumps(body), method=method or "POST")
    assert response.status_code == 400, response.content
    # named by the field (a lone surrogate, found while parsing, by its path: "column_readings.x1.format")
    assert any(name.split(".")[0] == field for name in response.json()["errors"]), response.json()


def test_unknown_fields_are_refused_naming_them_and_listing_the_accepted_ones(acme, trained):
    # the reported case: a misspelt search method used to train with no tuning at all, answered with 202
    body = {"dataset_id": trained["datasets"]["churn"]["id"], "target": "label", "model_name": "m",
            "algorithm": "random_forest", "search_method": "bayesian"}
    response = acme.client("editor").post("/api/v1/ml/training/start", body, format="json")
    assert response.status_code == 400
    message = response.json()["errors"]["search_method"][0]
    assert "Did you mean 'search'?" in message and "n_trials" in message and "dataset_id" in message
    # every kind of body: JSON, form, multipart, predictions
    token = acme.client().post("/api/v1/auth/token", {"username": "editor", "password": "editor-pass-123", "otp": "1"},
                               format="json")
    assert token.status_code == 400 and "otp" in token.json()["errors"]
    upload = acme.client("editor").post("/api/v1/ml/datasets", {"file": b"a,b\n1,2\n", "nmae": "x"}, format="multipart")
    assert upload.status_code == 400 and "Did you mean 'name'?" in upload.json()["errors"]["nmae"][0]
    predict = acme.client("viewer").post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict",
                                         {"records": [RECORD], "record": [RECORD]}, format="json")
    assert predict.status_code == 400 and "Did you mean 'records'?" in predict.json()["detail"]


def test_unknown_keys_inside_column_readings_are_refused_too(acme, trained):
    # a misspelt key inside an object is a setting as silently lost as a misspelt field
    dataset = trained["datasets"]["churn"]["id"]
    editor = acme.client("editor")
    before = editor.get(f"/api/v1/ml/datasets/{dataset}").json()["profile"]
    patched = editor.patch(f"/api/v1/ml/datasets/{dataset}", {"column_readings": {"x1": {"fromat": "decimal_comma"}}},
                           format="json")
    assert patched.status_code == 400, patched.content
    assert patched.json()["detail"].startswith("column_readings.x1.fromat: Unknown field. Did you mean 'format'?")
    assert patched.json()["errors"]["column_readings"][0].startswith("x1.fromat: Unknown field.")
    top = editor.patch(f"/api/v1/ml/datasets/{dataset}", {"column_kind": {"x1": "numeric"}}, format="json")
    assert top.status_code == 400 and "Did you mean 'column_kinds'?" in top.json()["errors"]["column_kind"][0]
    started = editor.post("/api/v1/ml/training/start", {
        "dataset_id": dataset, "target": "label", "model_name": "m", "algorithm": "logistic_regression",
        "column_kinds": {"color": {"kind": "categorical", "format": "plain", "source": "user"}}}, format="json")
    assert started.status_code == 400, started.content
    assert "column_kinds.color.source: Unknown field. Accepted fields are: kind, format." == started.json()["detail"]
    not_a_reading = editor.post("/api/v1/ml/training/start", {
        "dataset_id": dataset, "target": "label", "model_name": "m", "column_kinds": {"color": 3}}, format="json")
    assert not_a_reading.status_code == 400 and "Must be a kind (text) or an object" in not_a_reading.json()["detail"]
    # nothing was changed
    assert editor.get(f"/api/v1/ml/datasets/{dataset}").json()["profile"] == before


def test_every_input_serializer_is_strict():
    """The class: each serializer an API view reads a body with derives from the strict base."""
    from django.urls import get_resolver

    from mlplatform.api.serializers import InputSerializer
    from rest_framework import serializers

    seen = []
    for pattern in get_resolver("mlplatform.urls_api").url_patterns:
        stack = [pattern]
        while stack:
            item = stack.pop()
            stack.extend(getattr(item, "url_patterns", []))
            view = getattr(getattr(item, "callback", None), "cls", None)
            for name in dir(view) if view else []:
                value = getattr(view, name, None)
                if isinstance(value, type) and issubclass(value, serializers.Serializer) and name.endswith("Input"):
                    seen.append(value)
                    assert issubclass(value, InputSerializer), f"{view.__name__}.{name} is not strict"
    # and so is every serializer nested in one (an object inside a field, a value of a dict field)
    nested, fields = [], [field for serializer in seen for field in serializer().fields.values()]
    while fields:
        field = fields.pop()
        inner = [f for f in (getattr(field, "child", None), field) if isinstance(f, serializers.Serializer)]
        for serializer in inner:
            nested.append(type(serializer))
            assert isinstance(serializer, InputSerializer), f"{type(serializer).__name__} is not strict"
            fields.extend(serializer.fields.values())
    names = {serializer.__name__ for serializer in seen + nested}
    assert {"DatasetReadingsInput", "TrainingStartInput", "ColumnReadingInput"} <= names, names
    assert len(seen) >= 11


def test_page_forms_use_the_same_text_validator(acme):
    from tenants.accounts.forms import MemberCreateForm

    form = MemberCreateForm({"username": "a\x07b", "password": "long-enough-1", "role": "viewer"})
    assert not form.is_valid() and "control character" in form.errors["username"][0]
    owner = signed_in(acme, "owner")
    response = owner.post("/members/", {"username": "tab\there", "password": "long-enough-1", "role": "viewer"})
    assert response.status_code == 400 and b"line break" in response.content


@pytest.mark.parametrize("text, depth", [
    ("[]", 1), ("[[]]", 2), ('{"a": [{"b": "[[[[[["}]}', 3), ('["\\"[[[["]', 1), ("[" * 40 + "]" * 40, 40),
    ('{"records": [' + ",".join(['{"x": [1, 2]}'] * 100) + "]}", 4),
])
def test_nesting_is_counted_without_decoding(text, depth):
    assert nesting_exceeds(text, depth - 1) and not nesting_exceeds(text, depth)


def test_unbalanced_brackets_are_left_to_the_decoder():
    assert not nesting_exceeds("[" * 100, 32)


def test_the_first_lone_surrogate_is_found_by_path():
    assert first_lone_surrogate({"a": [1, {"b": "x\ud800"}]}) == ("a[1].b", 1)
    assert first_lone_surrogate({"a": "\U0001F600"}) is None
    assert text_problem("fine text, ünïcödé 😀") is None
    assert "U+2029" in text_problem("a\u2029b")
    assert text_problem("a\nb", multiline=True) is None


@pytest.mark.parametrize("body, field, words", [
    ({"role": "viewer", "is_active": 0}, "is_active", "Must be true or false, not an integer."),
    ({"role": 1}, "role", "Must be text, not an integer."),
])
def test_json_bodies_have_the_types_the_schema_documents(acme, body, field, words):
    response = acme.client("owner").patch(f"/api/v1/members/{acme.user_ids['viewer']}", body, format="json")
    assert response.status_code == 400 and response.json()["errors"][field] == [words]


@pytest.mark.parametrize("body, field", [
    ({"dataset_id": "1", "target": "label", "model_name": "m"}, "dataset_id"),
    ({"dataset_id": 1, "target": 5, "model_name": "m"}, "target"),
    ({"dataset_id": 1, "target": "label", "model_name": "m", "cv_folds": 3.0}, "cv_folds"),
    ({"dataset_id": 1, "target": "label", "model_name": "m", "test_size": True}, "test_size"),
    ({"dataset_id": 1, "target": "label", "model_name": "m", "features": ["x1", 2]}, "features"),
])
def test_training_settings_of_the_wrong_json_type_are_refused(acme, body, field):
    response = acme.client("editor").post("/api/v1/ml/training/start", body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.content


def test_urls_the_api_does_not_know_are_json_404s(acme):
    for path in ("/api/v1/ml/models/abc", "/api/v1/ml/training/jobs/null%2Cnull", "/api/v1/nothing-here"):
        response = acme.client("viewer").get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
        assert "No such path" in response.json()["detail"]


def test_control_characters_in_a_url_are_a_400_before_any_query(acme):
    # a NUL in a query parameter reached PostgreSQL (a 500); the path and every parameter are checked first
    response = acme.client("viewer").get("/api/v1/ml/models?name=%F3%B3%87%B7%00")
    assert response.status_code == 400 and "control character (U+0000)" in response.json()["errors"]["name"][0]
    assert acme.client("viewer").get("/api/v1/ml/deployments/a%01b/monitoring").status_code == 400
    page = signed_in(acme, "owner").get("/audit/?actor=%00")
    assert page.status_code == 400 and b"Query parameter" in page.content


def test_a_batch_for_a_model_name_not_deployed_is_a_400_naming_the_field(acme):
    response = acme.client("editor").post("/api/v1/ml/batch-predict", {"model_name": "nope", "dataset_id": 1},
                                          format="json")
    assert response.status_code == 400 and "model_name" in response.json()["errors"]


def test_digits_that_are_not_ascii_are_refused_not_a_500(acme, trained):
    # '²'.isdigit() is true and int('²') fails: every id and number read from a URL goes through id_or_none
    viewer = acme.client("viewer")
    assert viewer.get("/api/v1/ml/training/jobs?dataset_id=%C2%B2").status_code == 400
    assert viewer.get("/api/v1/ml/deployments/churn/monitoring?minutes=%C2%B2").status_code in (400, 404)
    pages = signed_in(acme, "editor")
    assert pages.get("/models/compare/?v=%C2%B2").status_code == 200
    assert pages.get("/training/new/?dataset=%C2%B2").status_code == 200
    # the form drawn again for another dataset, target or problem type (its suggestions come with it)
    assert pages.post("/training/new/", {"dataset": "²", "target": "label", "problem_type": "²"}).status_code == 200
