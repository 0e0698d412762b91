"""The prediction hot path: a warm prediction runs no SQL, and what the caches hold never outlives a change:
a deploy, a deactivated member, a revoked key take effect on the next request, in this process and (through
the organization's generation marker) in every other serving process."""
import pytest
from django_tenants.utils import schema_context

from mlplatform import hotcache
from models_registry import selectors
from tests.registry.test_registry_api import api_key_client

pytestmark = pytest.mark.django_db

RECORD = {"x1": 0.5, "x2": 7.5, "color": "red"}


def _predict(client, path):
    return client.post(path, {"records": [RECORD]}, format="json")


def test_a_warm_prediction_runs_no_sql(acme, trained, django_assert_num_queries):
    editor = acme.client("editor")
    assert editor.post(f"/api/v1/ml/models/{trained['churn_v1']['id']}/deploy", {}, format="json").status_code == 200
    viewer = acme.client("viewer")
    for path in ("/api/v1/ml/deployments/churn/predict", f"/api/v1/ml/models/{trained['churn_v2']['id']}/predict"):
        assert _predict(viewer, path).status_code == 200  # warms organization, caller, version and model
        with django_assert_num_queries(0):
            assert _predict(viewer, path).status_code == 200
    # and serving never read the large fields it leaves out (a read would have been a query, then cached)
    with schema_context(acme.schema):
        version = selectors.serving_deployed_version("churn")
        assert version.get_deferred_fields() == set(selectors.NOT_SERVED)


def test_a_warm_prediction_with_an_api_key_runs_no_sql(acme, trained, django_assert_num_queries):
    client, secret = api_key_client(acme, "churn")
    path = f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict"
    assert _predict(client, path).status_code == 200
    with django_assert_num_queries(0):
        assert _predict(client, path).status_code == 200
    # the cached scope still refuses other models, and a wrong secret with a known prefix is still a 401
    price = _predict(client, f"/api/v1/ml/models/{trained['price_v1']['id']}/predict")
    assert price.status_code == 403
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret[:-4]}abcd")
    assert _predict(client, path).status_code == 401


def test_a_deactivated_members_token_is_refused_by_predictions_at_once(acme, trained):
    viewer = acme.client("viewer")
    path = f"/api/v1/ml/models/{trained['churn_v1']['id']}/predict"
    assert _predict(viewer, path).status_code == 200  # the token is now cached
    owner = acme.client("owner")
    assert owner.patch(f"/api/v1/members/{acme.user_ids['viewer']}", {"is_active": False}, format="json").status_code == 200
    assert _predict(viewer, path).status_code == 401


def test_a_deploy_is_seen_at_once_after_the_deployment_was_cached(acme, trained):
    editor = acme.client("editor")
    v1, v2 = trained["churn_v1"]["id"], trained["churn_v2"]["id"]
    editor.post(f"/api/v1/ml/models/{v1}/deploy", {}, format="json")
    versions = []
    for deploy in (None, v2, v1):
        if deploy:
            assert editor.post(f"/api/v1/ml/models/{deploy}/deploy", {}, format="json").status_code == 200
        versions.append(_predict(editor, "/api/v1/ml/deployments/churn/predict").json()["model_version"]["id"])
    assert versions == [v1, v2, v1]


def test_a_deploy_reaches_other_processes_through_the_marker_when_it_commits(
        acme, trained, django_capture_on_commit_callbacks, monkeypatch):
    editor = acme.client("editor")
    v1, v2 = trained["churn_v1"]["id"], trained["churn_v2"]["id"]
    editor.post(f"/api/v1/ml/models/{v1}/deploy", {}, format="json")
    assert _predict(editor, "/api/v1/ml/deployments/churn/predict").json()["model_version"]["id"] == v1
    before = hotcache.generation(acme.schema)
    local = dict(hotcache._local_bumps)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert editor.post(f"/api/v1/ml/models/{v2}/deploy", {}, format="json").status_code == 200
    assert callbacks  # the marker is written when the deploy commits, not before
    # A process that did not deploy has only the marker to go by: take this process's own count back.
    monkeypatch.setattr(hotcache, "_local_bumps", local)
    assert hotcache.generation(acme.schema) != before
    assert _predict(editor, "/api/v1/ml/deployments/churn/predict").json()["model_version"]["id"] == v2


def test_another_process_invalidates_through_the_organizations_marker(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    cache, loads = hotcache.HotCache("test"), []

    def load():
        loads.append(1)
        return len(loads)

    assert cache.get("org_a", "k", load) == 1
    assert cache.get("org_a", "k", load) == 1  # cached
    hotcache.write_marker("org_b")  # another organization's change: no effect here
    assert cache.get("org_a", "k", load) == 1
    hotcache.write_marker("org_a")  # what another process's service writes once its change commits
    assert cache.get("org_a", "k", load) == 2
    settings.HOT_CACHE_TTL_S = 0  # and an entry never outlives its time to live
    hotcache.write_marker("org_a")
    assert cache.get("org_a", "k", load) == 3
    assert cache.get("org_a", "k", load) == 4  # expired at once: loaded again


def test_failed_lookups_are_not_cached(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    cache, answers = hotcache.HotCache("test"), [None, "found"]
    assert cache.get("org_a", "k", lambda: answers.pop(0)) is None
    assert cache.get("org_a", "k", lambda: answers.pop(0)) == "found"
