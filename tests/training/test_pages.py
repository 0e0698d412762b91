"""Training pages with real objects (the session's `world`): the new-job form starts from its suggestions, an
AutoML job shows its settings, leaderboard and ensemble readably, and job and version link to each other."""
import html
import re

import pytest

from tests.accounts.test_pages import signed_in

pytestmark = pytest.mark.django_db


def job(world, label: str) -> int:
    return next(s.value for s in world.jobs if s.label == label)


def dataset(world, label: str) -> int:
    return next(s.value for s in world.datasets if s.label == label)


def options(page: str, select: str) -> list[str]:
    block = re.search(rf'<select name="{select}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"', block)


def selected(page: str, select: str) -> str:
    block = re.search(rf'<select name="{select}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return re.search(r'<option value="([^"]*)"[^>]*selected', block).group(1)


def test_the_new_job_form_starts_from_the_suggestions_it_shows(world):
    # Given the messy export and the suggestions the API gives for its target
    org, data = world.org, dataset(world, "dataset: messy export")
    suggestion = org.client("editor").post("/api/v1/ml/suggestions", {"dataset_id": data, "target": "Kündigung"},
                                           format="json").json()
    # When an editor opens the form for it
    page = signed_in(org, "editor").get(f"/training/new/?dataset={data}").content.decode()
    # Then search, trials, folds, metric and algorithm are the suggested ones
    assert selected(page, "search") == suggestion["search"]["method"]
    assert f'name="n_trials" value="{suggestion["search"]["n_trials"]}"' in page
    assert f'name="cv_folds" value="{suggestion["search"]["cv_folds"]}"' in page
    assert selected(page, "metric") == suggestion["metric"]
    assert selected(page, "algorithm") == suggestion["algorithms"][0]["key"]
    # and the features offered are every column but the target
    features = re.findall(r'name="features" value="([^"]*)"', page)
    columns = [c["name"] for c in org.client("viewer").get(f"/api/v1/ml/datasets/{data}").json()["profile"]["columns"]]
    assert sorted(html.unescape(f) for f in features) == sorted(c for c in columns if c != "Kündigung")


def test_algorithms_and_metrics_offered_match_the_problem_type(world):
    client = signed_in(world.org, "editor")
    regression = client.get(f"/training/new/?dataset={dataset(world, 'dataset: numeric target')}").content.decode()
    assert "logistic_regression" not in options(regression, "algorithm") and "ridge" in options(regression, "algorithm")
    assert set(options(regression, "metric")) == {"", "rmse", "mae", "r2", "mape"}
    # choosing a problem type by hand draws the form for it (the page sends the choice back, without "submit")
    binary = client.post("/training/new/", {"dataset": dataset(world, "dataset: binary target"), "target": "label",
                                            "problem_type": "binary"}).content.decode()
    assert "ridge" not in options(binary, "algorithm") and "roc_auc" in options(binary, "metric")
    assert "rmse" not in options(binary, "metric")


def test_changing_the_target_draws_the_form_again_without_starting_a_job(world):
    from django_tenants.utils import schema_context

    from training.models import TrainingJob

    with schema_context(world.org.schema):
        before = TrainingJob.objects.count()
    page = signed_in(world.org, "editor").post("/training/new/", {
        "dataset": dataset(world, "dataset: messy export"), "target": "Stadt", "model_name": "mine"}).content.decode()
    assert selected(page, "target") == "Stadt" and 'value="mine"' in page
    assert "Stadt" not in [html.unescape(f) for f in re.findall(r'name="features" value="([^"]*)"', page)]
    assert "multiclass" in page  # the suggestions are those of the new target
    with schema_context(world.org.schema):
        assert TrainingJob.objects.count() == before


def test_automl_job_page_reads_like_a_report(world):
    page = signed_in(world.org, "viewer").get(f"/training/{job(world, 'job: AutoML, ensemble chosen')}/").content.decode()
    # settings in words, not a string spelled out letter by letter
    assert "AutoML across every algorithm that fits the problem" in page and "a, l, l" not in page
    # ensemble members point at their rows on the leaderboard, whose ranks are what the links say
    members = re.search(r'data-testid="ensemble-members">(.*?)</table>', page, re.S).group(1)
    links = re.findall(r'href="#rank-(\d+)">#(\d+)</a>', members)
    assert len(links) >= 2 and all(a == b for a, b in links)
    board = re.search(r'data-testid="leaderboard">(.*?)</table>', page, re.S).group(1)
    for rank, _ in links:
        row = re.search(rf'<tr id="rank-{rank}"[^>]*><td class="num">{rank}</td>', board)
        assert row, f"no leaderboard row for rank {rank}"
    # parameters are tables of rounded values, never Python reprs
    assert "{'" not in page and "'params':" not in page
    # (four significant digits never take more than 7 decimals, 0.0001234; a raw float has 15 or more)
    assert not re.search(r"\d\.\d{8,}", re.sub(r"<script.*?</script>", "", page, flags=re.S))


def test_deploying_the_best_from_the_leaderboard_lands_on_its_version(world):
    client = signed_in(world.org, "editor")
    page = client.get(f"/training/{job(world, 'job: AutoML, ensemble chosen')}/").content.decode()
    deploy = re.search(r'<form method="post" action="(/models/versions/\d+/deploy/)"[^>]*>[^<]*<input[^>]*>'
                       r'<button[^>]*>Deploy the best', page)
    response = client.post(deploy.group(1), follow=True)
    assert response.status_code == 200 and "is now production" in response.content.decode()


def test_job_and_version_link_to_each_other(world):
    client = signed_in(world.org, "viewer")
    job_id = job(world, "job: messy export, succeeded")
    page = client.get(f"/training/{job_id}/").content.decode()
    version_url = re.search(r'data-testid="model-version"><a href="(/models/versions/\d+/)"', page).group(1)
    assert f'href="/training/{job_id}/"' in client.get(version_url).content.decode()
