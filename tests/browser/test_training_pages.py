"""An editor uploads a CSV, reads its profile, starts a job with the defaults and watches it finish live; a viewer
can read but not upload or train.

No worker runs here: the test thread plays the worker, running the job in-process on committed data while the
browser's htmx polling picks up the progress."""
import re

import pytest

from tests.browser.conftest import run_in_background, sign_in
from tests.training.conftest import csv_bytes, table

pytestmark = pytest.mark.browser

STATUS = "[data-testid=job-status]"


def test_editor_uploads_profiles_trains_and_watches_the_job_finish(page, orgs, tmp_path):
    demo = orgs["demo"]
    sign_in(page, demo, "editor")

    # upload a CSV on the Datasets page
    csv_path = tmp_path / "churn.csv"
    csv_path.write_bytes(csv_bytes(table(300)))
    page.goto(page.base(demo) + "/datasets/")
    page.set_input_files("[data-testid=upload-form] input[type=file]", str(csv_path))
    page.fill("[data-testid=upload-form] input[name=name]", "browser-churn")
    with page.expect_navigation():
        page.click("[data-testid=upload-form] button[type=submit]")

    # the dataset page: its profile and a histogram per column, drawn by Plotly
    assert re.search(r"/datasets/\d+/$", page.url), page.url
    assert page.text_content("h1") == "browser-churn"
    assert "Uploaded browser-churn: 300 rows, 4 columns." in page.text_content("ul.messages")
    assert page.text_content("[data-testid=rows]").strip() == "300"
    profiled = page.locator("[data-testid=profile] tbody tr td:first-child").all_text_contents()
    assert [c.strip() for c in profiled] == ["x1", "x2", "color", "label"]
    assert page.locator(".chart").count() == 4
    page.wait_for_function("() => [...document.querySelectorAll('.chart')].every(chart => chart.querySelector('svg'))")

    # train a model with the form's defaults
    page.click("text=Train a model")
    page.wait_for_selector("[data-testid=job-form]")
    assert page.input_value("#id_target") == "label"
    assert page.input_value("#id_model_name") == "browser-churn-model"
    with page.expect_navigation():
        page.click("[data-testid=job-form] button[name=submit]")
    match = re.search(r"/training/(\d+)/$", page.url)
    assert match, page.url
    job_id = int(match.group(1))
    assert page.text_content(STATUS).strip() == "queued"
    assert page.locator(".chart[data-figure=importance]").count() == 0

    # a worker picks the job up; the open page follows it by polling, nobody reloads it
    from training.runner import run_training_job

    worker, outcome = run_in_background(demo, run_training_job, job_id)
    try:
        page.wait_for_function(f"() => document.querySelector('{STATUS}').textContent.trim() === 'succeeded'",
                               timeout=90_000)
    finally:
        worker.join(timeout=90)  # never leave it writing after the test's database access ends
    assert outcome.get("status") == "succeeded", outcome

    # the results: scores, the registered version, feature importance and the confusion matrix drawn by Plotly
    assert page.text_content("[data-testid=job-progress]").strip() == "100%"
    assert "browser-churn-model" in page.text_content("[data-testid=model-version]")
    assert re.match(r"0\.\d{4} ± 0\.\d{4}", page.text_content("[data-testid=cv-score]").strip())
    scores = dict(zip(page.locator("[data-testid=test-metrics] td:first-child").all_text_contents(),
                      page.locator("[data-testid=test-metrics] td.num").all_text_contents()))
    assert float(scores["roc_auc"]) > 0.8, scores
    page.wait_for_selector(".chart[data-figure=importance] svg")
    page.wait_for_selector(".chart[data-figure=confusion] svg")
    assert "x1" in page.text_content(".chart[data-figure=importance]")  # the top feature is labelled on the chart
    assert page.locator("button:has-text('Cancel job')").count() == 0


def test_viewer_sees_no_upload_form_and_no_train_button(page, orgs):
    demo = orgs["demo"]
    iris = next(d for d in demo.client("viewer").get("/api/v1/ml/datasets").json() if d["name"] == "iris")
    sign_in(page, demo, "viewer")

    page.goto(page.base(demo) + "/datasets/")
    assert page.text_content("h1") == "Datasets"
    assert "iris" in page.text_content("[data-testid=datasets]")
    assert page.locator("[data-testid=upload-form]").count() == 0

    page.click("[data-testid=datasets] >> text=iris")
    page.wait_for_selector("[data-testid=profile]")
    assert page.text_content("h1") == "iris"
    assert page.locator("text=Train a model").count() == 0
    assert page.locator("button:has-text('Delete')").count() == 0

    # and the form itself is refused
    response = page.goto(page.base(demo) + f"/training/new/?dataset={iris['id']}")
    assert response.status == 403
    assert "needs the editor role" in page.text_content("body")
