"""Every kind of page works under the Content-Security-Policy: a real browser reports no violation (no inline
script or handler left, nothing loaded from elsewhere), charts draw, the API docs start, and the behaviour
that used to be inline handlers (submit on change, confirm before delete) still works."""
import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});
"""


def _pages(acme, trained):
    from django_tenants.utils import schema_context

    from models_registry.models import RegisteredModel

    v1, v2 = trained["churn_v1"], trained["churn_v2"]
    with schema_context(acme.schema):
        churn = {"id": RegisteredModel.objects.get(name="churn").pk}
    return ["/", "/datasets/", f"/datasets/{trained['datasets']['churn']['id']}/", "/training/", "/training/new/",
            f"/training/{v1['job_id']}/", "/models/", f"/models/versions/{v1['id']}/",
            f"/models/compare/?v={v1['id']}&v={v2['id']}", f"/models/{churn['id']}/monitoring/", "/models/batch/",
            "/api-keys/", "/members/", "/audit/", "/api/v1/docs/"]


def test_every_kind_of_page_keeps_the_policy(page, orgs, trained):
    acme = orgs["acme"]
    page.context.add_init_script(WATCH)
    page.goto(page.base(acme) + "/login/")
    sign_in(page, acme, "owner")
    seen = {}
    for path in _pages(acme, trained):
        response = page.goto(page.base(acme) + path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__violations")
    assert {path: found for path, found in seen.items() if found} == {}
    # scripts from /static/ did run: charts are drawn, the API docs started
    page.goto(page.base(acme) + f"/datasets/{trained['datasets']['churn']['id']}/")
    page.wait_for_selector(".chart svg")
    page.goto(page.base(acme) + "/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")


def test_what_were_inline_handlers_still_work(page, orgs, trained):
    acme = orgs["acme"]
    sign_in(page, acme, "editor")
    # deleting a dataset asks first; saying no keeps it
    dataset = trained["datasets"]["churn"]
    page.goto(page.base(acme) + f"/datasets/{dataset['id']}/")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("form[data-confirm] button[type=submit]")
    assert questions == [f"Delete dataset {dataset['name']}?"]
    assert page.url.endswith(f"/datasets/{dataset['id']}/")
    # choosing another dataset on the new-job form reloads its columns
    page.goto(page.base(acme) + "/training/new/")
    current = page.input_value("#id_dataset")
    other = next(d for d in trained["datasets"].values() if str(d["id"]) != current)
    with page.expect_navigation():
        page.select_option("#id_dataset", str(other["id"]))
    assert page.input_value("#id_dataset") == str(other["id"])
    assert page.locator("#id_target option").count() == other["columns"]
