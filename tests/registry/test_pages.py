"""Registry pages through Django's test client: they render with real data and enforce roles."""
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def signed_in(org, role) -> Client:
    client = Client(HTTP_HOST=org.host)
    assert client.post("/login/", {"username": role, "password": f"{role}-pass-123"}).status_code == 302
    return client


def test_models_page_lists_models_with_headline_metric(acme, trained):
    html = signed_in(acme, "viewer").get("/models/").content.decode()
    assert "churn" in html and "price" in html and "roc_auc" in html


def test_version_page_shows_metrics_schema_lineage_and_try_it(acme, trained):
    html = signed_in(acme, "viewer").get(f"/models/versions/{trained['churn_v1']['id']}/").content.decode()
    for text in ("Test metrics", "Feature schema", "Lineage", "SHA-256", "Try it", "Deployment history",
                 trained["churn_v1"]["artifact_sha256"], "Serving engine"):
        assert text in html, text
    assert "Deploy to production" not in html  # viewers cannot deploy


def test_editor_deploys_and_rolls_back_from_the_pages(acme, trained):
    client = signed_in(acme, "editor")
    v1, v2 = trained["churn_v1"]["id"], trained["churn_v2"]["id"]
    from django_tenants.utils import schema_context

    from models_registry.models import Alias, AliasMove, RegisteredModel

    with schema_context(acme.schema):  # never deployed (rolled back with the test)
        Alias.objects.filter(registered_model__name="churn").delete()
        AliasMove.objects.filter(registered_model__name="churn").delete()
    client.post(f"/models/versions/{v1}/deploy/")
    assert "Roll back" not in client.get("/models/").content.decode()  # nothing earlier to go back to
    page = client.post(f"/models/versions/{v2}/deploy/", follow=True).content.decode()
    assert "churn v2 is now production." in page
    assert "Roll back to v1" in client.get("/models/").content.decode()
    with schema_context(acme.schema):
        model_id = RegisteredModel.objects.get(name="churn").pk
    page = client.post(f"/models/{model_id}/rollback/", follow=True).content.decode()
    assert "Rolled back: churn v1 is production again." in page


def test_viewer_cannot_deploy_from_the_pages(acme, trained):
    assert signed_in(acme, "viewer").post(f"/models/versions/{trained['churn_v1']['id']}/deploy/").status_code == 403


def test_compare_page_highlights_the_best(acme, trained):
    html = signed_in(acme, "viewer").get(f"/models/compare/?v={trained['churn_v1']['id']}&v={trained['churn_v2']['id']}").content.decode()
    assert 'data-testid="comparison"' in html and 'class="num best"' in html


def test_compare_page_explains_mixed_problem_types(acme, trained):
    html = signed_in(acme, "viewer").get(f"/models/compare/?v={trained['churn_v1']['id']}&v={trained['price_v1']['id']}").content.decode()
    assert "cannot be compared" in html


def test_monitoring_page_renders(acme, trained):
    from django_tenants.utils import schema_context

    from models_registry.models import RegisteredModel

    with schema_context(acme.schema):
        model_id = RegisteredModel.objects.get(name="price").pk
    assert signed_in(acme, "viewer").get(f"/models/{model_id}/monitoring/").status_code == 200


def test_api_keys_page_shows_the_secret_once_and_is_for_owners(acme, trained):
    from django_tenants.utils import schema_context

    from models_registry.models import RegisteredModel

    with schema_context(acme.schema):
        model_id = RegisteredModel.objects.get(name="churn").pk
    owner = signed_in(acme, "owner")
    html = owner.post("/api-keys/", {"name": "web", "model_ids": [model_id]}).content.decode()
    assert 'data-testid="secret"' in html and "mlp_" in html
    assert 'data-testid="secret"' not in owner.get("/api-keys/").content.decode()
    assert signed_in(acme, "editor").get("/api-keys/").status_code == 403


def test_other_organization_gets_404_on_registry_pages(globex, trained):
    client = signed_in(globex, "owner")  # globex has trained nothing: acme's version ids do not exist there
    assert client.get(f"/models/versions/{trained['churn_v1']['id']}/").status_code == 404
    assert client.get("/models/batch/999/").status_code == 404


def test_batch_predict_is_offered_to_those_who_may_start_one(world):
    version = world.versions[0].value
    assert "Batch predict" not in signed_in(world.org, "viewer").get(f"/models/versions/{version}/").content.decode()
    assert "Batch predict" in signed_in(world.org, "editor").get(f"/models/versions/{version}/").content.decode()


def test_ensemble_version_lists_its_members_linked_to_their_rank(world):
    version = next(s.value for s in world.versions if s.label == "version: AutoML ensemble")
    page = signed_in(world.org, "viewer").get(f"/models/versions/{version}/").content.decode()
    members = page.split('data-testid="ensemble-members"')[1].split("</table>")[0]
    assert re.findall(r'href="/training/\d+/#rank-\d+"', members)
    assert "{'" not in page


def test_compare_highlights_the_best_by_each_metrics_direction(world):
    import re as regex

    ids = [s.value for s in world.versions if s.label.endswith("/ regression")]
    page = signed_in(world.org, "viewer").get("/models/compare/?" + "&".join(f"v={i}" for i in ids)).content.decode()
    table = page.split('data-testid="comparison"')[1].split("</table>")[0]
    for metric, lowest in (("rmse", True), ("mse", True), ("median_absolute_error", True), ("r2", False)):
        row = regex.search(rf"<tr><td>{metric}</td>(.*?)</tr>", table, regex.S).group(1)
        cells = regex.findall(r'<td class="num( best)?">([^<]*)</td>', row)
        values = [float(v) for _, v in cells]
        best = [float(v) for mark, v in cells if mark]
        assert best == [min(values) if lowest else max(values)], (metric, cells)
    assert regex.search(r'<td class="num best">[^<]*±', table)  # the CV row too


def test_the_messy_version_says_how_it_reads_each_column_and_what_its_evaluation_met(world):
    # Given the model trained on the messy export (decimal commas, dd.mm.yyyy dates), evaluated on the
    # export a month later (a new city, amounts far outside training's, a value no reading reads)
    version = next(s.value for s in world.versions if s.label == "version: messy export, date column")
    page = signed_in(world.org, "viewer").get(f"/models/versions/{version}/").content.decode()
    # Then its feature schema says how each column is read
    readings = re.findall(r'data-testid="reading">([^<]*)<', page)
    assert any("decimal comma" in r for r in readings) and any("dd.mm.yyyy" in r for r in readings)
    assert any("ambiguous" in r for r in readings)
    # and the evaluation lists the values that changed meaning, by column and kind
    warnings = page.split('data-testid="evaluation-warnings"')[1].split("</div>")[0]
    for column, code in (("Stadt", "unseen_category"), ("Umsatz (€)", "out_of_range"), ("Umsatz (€)", "unreadable_value")):
        assert re.search(rf"<code>{re.escape(column)}</code> {code}", warnings), (column, code, warnings)
    # and so does the batch over the same table
    batch = next(s.value for s in world.batches if "changed meaning" in s.label)
    page = signed_in(world.org, "viewer").get(f"/models/batch/{batch}/").content.decode()
    assert 'data-testid="batch-warnings"' in page and "<code>Stadt</code> unseen_category" in page
