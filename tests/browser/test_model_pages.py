"""A person opens a model version, tries a prediction in the browser, deploys it, and finds it on the models page."""
import json

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_try_it_form_calls_the_prediction_api_and_deploy_button_works(page, orgs, trained):
    acme = orgs["acme"]
    sign_in(page, acme, "editor")
    page.goto(page.base(acme) + f"/models/versions/{trained['price_v1']['id']}/")
    assert "price v1" in page.text_content("h1")
    page.wait_for_selector(".chart svg")  # feature importance drawn by Plotly
    page.fill("#try-record", json.dumps({"size": 100, "rooms": 3, "area": "south"}))
    page.click("#try-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('try-result').textContent.includes('predictions')")
    answer = json.loads(page.text_content("#try-result"))
    assert 300 < answer["predictions"][0] < 500
    # a bad value answers with the record and column named
    page.fill("#try-record", json.dumps({"size": "huge", "rooms": 3, "area": "south"}))
    page.click("#try-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('try-result').textContent.includes('HTTP 400')")
    assert "records[0].size" in page.text_content("#try-result")
    # deploy, then the models page shows it in production
    page.click("text=Deploy to production")
    page.wait_for_selector("[data-testid=alias]")
    assert "production" in page.text_content("[data-testid=alias]")
    page.goto(page.base(acme) + "/models/")
    assert "v1" in page.text_content("[data-testid=models] .badge-production")
