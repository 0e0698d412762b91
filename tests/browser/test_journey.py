"""The journey of a data scientist with their own messy export, in Debian's Chromium, on a desktop and on a
390 px wide phone: upload it, read its profile, train, watch the job, open the version, deploy it, try it,
predict a batch and download it, run the one-click AutoML and deploy its best, compare the two.

Every main page on the way is checked for sideways scrolling and for values cut off. Jobs run as the worker
would run them, in a thread of this process (tests/browser/conftest.py, `run_in_background`)."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.browser.conftest import run_in_background, sign_in
from tests.world import messy_csv, messy_frame

pytestmark = pytest.mark.browser

STATUS = "[data-testid=job-status]"
ROWS = 160


def fits_the_screen(page, where: str) -> None:
    """No sideways scroll, and no number or label cut off in the headline figures."""
    page.wait_for_load_state("load")
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= viewport, f"{where} scrolls sideways at {viewport} px: {width} px wide"
    cut = page.evaluate("""[...document.querySelectorAll('.stat-value, .stat-label, label, .btn')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim())""")
    assert not cut, f"{where}: cut off: {cut}"


def finish(page, org, work, job_id: int, status_selector: str, timeout_s: float = 90) -> None:
    """Run the job as the worker would and wait for the open page to show it succeeded, without reloading."""
    worker, outcome = run_in_background(org, work, job_id)
    try:
        page.wait_for_function(f"() => document.querySelector('{status_selector}').textContent.trim() === 'succeeded'",
                               timeout=timeout_s * 1000)
    finally:
        worker.join(timeout=timeout_s)  # never leave it writing after the test's database access ends
    assert outcome.get("status") == "succeeded", outcome


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_the_journey_of_a_messy_export(browser, live_server_port, committed, orgs, tmp_path, monkeypatch, width):
    from models_registry.batch import run_batch
    from training import services
    from training.runner import run_training_job

    monkeypatch.setattr(services, "DEFAULT_AUTOML_BUDGET_S", 8)  # the one-click AutoML, shortened for the test
    demo = orgs["demo"]
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = f"http://{demo.host}:{live_server_port}"
    page.base = lambda org: base
    try:
        sign_in(page, demo, "editor")
        name = f"Kündigungen ({width} px)"

        # upload the export: ';' delimiter, decimal commas, unicode names, dd.mm.yyyy and ambiguous dates, yes/no,
        # gaps, an empty and a constant column
        export = tmp_path / "kündigungen;export.csv"
        export.write_bytes(messy_csv(messy_frame(ROWS)))
        page.goto(base + "/datasets/")
        fits_the_screen(page, "datasets")
        page.set_input_files("[data-testid=upload-form] input[type=file]", str(export))
        page.fill("[data-testid=upload-form] input[name=name]", name)
        with page.expect_navigation():
            page.click("[data-testid=upload-form] button[type=submit]")

        # its profile reads each column for what it is
        assert page.text_content("h1") == name
        names = [c.strip() for c in page.locator("[data-testid=profile] tbody tr td:first-child").all_text_contents()]
        kinds = dict(zip(names, [k.strip() for k in page.locator(
            "[data-testid=profile] tbody tr td:nth-child(2) > .badge:first-child").all_text_contents()]))
        assert kinds["Anmeldung"] == "datetime" and kinds["aktiv?"] == "boolean" and kinds["Stadt"] == "categorical"
        assert kinds["Umsatz (€)"] == "numeric" and kinds["Kunden-Nr."] == "identifier"
        # and says how it reads them: decimal commas, day first, and which dates could be read either way
        row = {n: page.locator("[data-testid=profile] tbody tr").nth(i) for i, n in enumerate(names)}
        assert "decimal comma" in row["Umsatz (€)"].locator("[data-testid=reading]").text_content()
        assert "dd.mm.yyyy" in row["Anmeldung"].locator("[data-testid=reading]").text_content()
        assert row["Vertragsbeginn"].locator("[data-testid=ambiguous]").count() == 1
        assert page.text_content("[data-testid=rows]").strip() == str(ROWS)
        fits_the_screen(page, "dataset")
        dataset_url = page.url

        # train: the form starts from the suggestions; no tuning here, to keep the test short
        page.click("text=Train a model")
        page.wait_for_selector("[data-testid=job-form]")
        assert page.input_value("#id_target") == "Kündigung"
        assert "Kündigung" not in page.locator("input[name=features]").evaluate_all("els => els.map(e => e.value)")
        fits_the_screen(page, "new job")
        page.select_option("#id_algorithm", "random_forest")
        page.select_option("#id_search", "none")
        page.fill("#id_cv_folds", "3")
        with page.expect_navigation():
            page.click("[data-testid=job-form] button[name=submit]")
        job_id = int(re.search(r"/training/(\d+)/$", page.url).group(1))
        assert page.text_content(STATUS).strip() == "queued"
        finish(page, demo, run_training_job, job_id, STATUS)
        assert page.text_content("[data-testid=job-progress]").strip() == "100%"
        fits_the_screen(page, "job")

        # the version: deploy it, then try it with the example the page offers (a date column among its inputs)
        with page.expect_navigation():
            page.click("[data-testid=model-version] a")
        version_id = int(re.search(r"/models/versions/(\d+)/$", page.url).group(1))
        assert page.locator(f"a[href='/training/{job_id}/']").count() == 1  # and back to its job
        fits_the_screen(page, "version")
        with page.expect_navigation():
            page.click("text=Deploy to production")
        assert "production" in page.text_content("[data-testid=alias]")
        example = json.loads(page.input_value("#try-record"))  # written as the export writes its values
        assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", example["Anmeldung"]) and "," in example["Umsatz (€)"]
        page.click("#try-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('try-result').textContent.includes('predictions')")
        assert json.loads(page.text_content("#try-result"))["predictions"][0] in ("ja", "nein")

        # a batch prediction over the uploaded table, then its CSV
        with page.expect_navigation():
            page.click("text=Batch predict")
        assert page.input_value("#b-version") == str(version_id)
        page.select_option("#b-dataset", label=f"{name} ({ROWS} rows)")
        fits_the_screen(page, "batch predictions")
        with page.expect_navigation():
            page.click("[data-testid=batch-form] button[type=submit]")
        batch_id = int(re.search(r"/models/batch/(\d+)/$", page.url).group(1))
        finish(page, demo, run_batch, batch_id, "[data-testid=batch-status]")
        page.wait_for_selector("[data-testid=download]")
        fits_the_screen(page, "batch")
        with page.expect_download() as download:
            page.click("[data-testid=download]")
        rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
        assert len(rows) == ROWS and {r["prediction"] for r in rows} <= {"ja", "nein"}

        # the one-click AutoML on the dataset page, then "deploy the best" from its leaderboard
        page.goto(dataset_url)
        with page.expect_navigation():
            page.click("text=AutoML on Kündigung")
        automl_id = int(re.search(r"/training/(\d+)/$", page.url).group(1))
        assert "AutoML across every algorithm" in page.text_content("[data-testid=job-algorithm]")
        finish(page, demo, run_training_job, automl_id, STATUS)
        page.wait_for_selector("[data-testid=leaderboard]")
        fits_the_screen(page, "AutoML job")
        page.click("text=Log")  # opened, the log shows its newest line
        page.wait_for_function("""() => { const log = document.querySelector('pre.log');
            return log.scrollHeight > log.clientHeight && log.scrollTop + log.clientHeight >= log.scrollHeight - 4; }""")
        with page.expect_navigation():
            page.click("text=Deploy the best")
        assert f"{name}-automl v1" in page.text_content("h1")
        assert "production" in page.text_content("[data-testid=alias]")
        best_id = int(re.search(r"/models/versions/(\d+)/$", page.url).group(1))
        fits_the_screen(page, "AutoML version")

        # compare the two versions: the best of each metric highlighted, nothing overlapping
        page.goto(base + f"/models/compare/?v={version_id}&v={best_id}")
        page.wait_for_selector("[data-testid=comparison] td.best")
        page.wait_for_selector(".chart[data-figure=compare-chart] svg")
        fits_the_screen(page, "compare")
        overlaps = page.evaluate("""(() => {
            const table = document.querySelector('[data-testid=comparison]').closest('.card').getBoundingClientRect();
            const next = document.querySelector('.chart[data-figure=compare-chart]').closest('.card').getBoundingClientRect();
            return table.bottom > next.top; })()""")
        assert not overlaps
        page.goto(base + "/models/")
        fits_the_screen(page, "models")
        page.goto(base + "/")
        fits_the_screen(page, "dashboard")
    finally:
        context.close()
