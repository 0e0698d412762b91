"""One organization holding an object of every kind the pages show, made once per test session through the
same API and services people use (tests/conftest.py, `world` fixture).

Kinds: datasets (a messy one with unicode names, ';' delimiter, decimal commas, dd.mm.yyyy dates, ambiguous
dates, yes/no, gaps, an all-missing and a constant column, integer codes, large magnitudes and free text, so its
columns carry readings, one of them ambiguous; the same export a month later with unseen and unreadable values;
one per problem type; one nothing uses), a version of every algorithm of the registry for every problem type it
supports, an AutoML ensemble, deployed and rolled-back models with predictions and evaluations (one with
warnings), training jobs that succeeded, failed, were cancelled, are queued or running, batch predictions in each
state (a succeeded one with warnings), API keys (active and revoked) and members (active and
deactivated). A second organization, `initech-rival`, has members and nothing else: what its owner asks for
with initech's ids must not be found. `PROVIDERS` maps every URL parameter name to the samples of its kind.
"""
from __future__ import annotations

import io
from datetime import timedelta
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django_tenants.utils import schema_context

from tests.urlwalk import Route, Sample

SLUG = "initech"
FAST = {"n_estimators": 15, "max_iter": 20}


@dataclass
class World:
    org: object  # tests.conftest.Org
    rival: object = None  # another organization, with members and nothing else
    datasets: list[Sample] = field(default_factory=list)
    jobs: list[Sample] = field(default_factory=list)
    batches: list[Sample] = field(default_factory=list)
    versions: list[Sample] = field(default_factory=list)
    models: list[Sample] = field(default_factory=list)
    model_names: list[Sample] = field(default_factory=list)
    api_keys: list[Sample] = field(default_factory=list)
    members: list[Sample] = field(default_factory=list)
    #: secrets of two API keys: "in" may predict with the first version and model name samples, "out" may not
    key_secrets: dict[str, str] = field(default_factory=dict)
    superuser: tuple[str, str] = ("walk-admin", "walk-admin-pass-1")  # its own: other tests make a "platform-admin"


# --- tables ------------------------------------------------------------------------------------------------

def messy_frame(n: int = 160, seed: int = 7, *, start: str = "2023-01-15") -> pd.DataFrame:
    """What a spreadsheet export looks like (written by `messy_csv`): unicode names, dates written dd.mm.yyyy,
    dates that read both day first and month first (every day is 12 or less), yes/no, gaps, an empty and a
    constant column, integer-coded categories, large magnitudes, free text."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Zürich", "Genève", "São Paulo", "Köln", None], n)
    active = rng.choice(["yes", "no"], n)
    amount = rng.normal(1200, 300, n).round(2)
    amount[::9] = np.nan
    frame = pd.DataFrame({
        "Kunden-Nr.": np.arange(10_000, 10_000 + n),
        "Stadt": city,
        "Anmeldung": pd.date_range(start, periods=n, freq="3D").strftime("%d.%m.%Y"),
        "Vertragsbeginn": [f"{day:02d}/{month:02d}/2023" for day, month in zip(rng.integers(1, 13, n),
                                                                               rng.integers(1, 13, n))],
        "aktiv?": active,
        "Umsatz (€)": amount,
        "Tarif-Code": rng.integers(1, 5, n),
        "Einnahmen": (1e9 + rng.normal(0, 1e6, n)).round(0),
        "Bemerkung": [f"Kunde meldete sich am Telefon wegen Rechnung Nr. {rng.integers(10**6)}, Fall {i}" for i in range(n)],
        "leer": [None] * n,
        "konstant": ["x"] * n,
    })
    frame["Kündigung"] = np.where((frame["aktiv?"] == "no") | (frame["Stadt"] == "Köln") | (amount < 1000), "ja", "nein")
    return frame


def messy_csv(frame: pd.DataFrame | None = None) -> bytes:
    """A messy frame as a German spreadsheet writes it: ';' between fields, decimal commas."""
    buffer = io.StringIO()
    (messy_frame() if frame is None else frame).to_csv(buffer, index=False, sep=";", decimal=",")
    return buffer.getvalue().encode()


def messy_next_month(n: int = 60) -> bytes:
    """The same export a month later, with values the model trained on `messy_csv` did not see: a new city,
    sign-ups far after training's, amounts far outside its range and one no reading can read ("k.A.")."""
    frame = messy_frame(n, seed=8, start="2026-06-01")
    frame.loc[:4, "Stadt"] = "Wien"
    amounts = frame["Umsatz (€)"].copy()
    amounts[5:10] = 250_000.5
    frame["Umsatz (€)"] = [None if pd.isna(v) else f"{v:.2f}".replace(".", ",") for v in amounts]  # text: as written
    frame.loc[10, "Umsatz (€)"] = "k.A."
    return messy_csv(frame)


def multiclass_table(n: int = 150, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "b": rng.normal(size=n).round(3),
                          "shade": rng.choice(["light", "dark"], n)})
    frame["kind"] = np.select([frame["a"] > 0.4, frame["b"] > 0.2], ["alpha", "beta"], "gamma")
    return frame


def blended_table(n: int = 150, seed: int = 5) -> pd.DataFrame:
    """A numeric target with a linear part (x1, x2), a non-linear one (a sine of x3, a step in x4), a category and
    noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=n).round(3) for i in range(1, 5)})
    frame["segment"] = rng.choice(["a", "b", "c"], n)
    frame["y"] = (3 * frame["x1"] + 2 * frame["x2"] + 4 * np.sin(2 * frame["x3"]) + 3 * (frame["x4"] > 0.5)
                  + 2 * (frame["segment"] == "a") + rng.normal(scale=1.5, size=n)).round(3)
    return frame


# --- building ----------------------------------------------------------------------------------------------

def build_world(make_org) -> World:
    """Everything the walk needs, committed in organization `initech` (and a platform admin on the public host)."""
    from django.contrib.auth import get_user_model

    from tests.conftest import regression_table, train_version
    from tests.training.conftest import csv_bytes, table, upload
    from training.ml.algorithms import ALGORITHMS
    from training.ml.problem import ProblemType

    from tenants.models import Organization

    org = make_org(SLUG)
    # jobs are left queued and running below; the walks send thousands of API requests within a minute, as
    # each member and API key, so the plan's rate limits (tests/platform/test_rate_limits.py) are raised here
    world = World(org=org, rival=make_org(f"{SLUG}-rival"))
    Organization.objects.filter(slug__in=[SLUG, f"{SLUG}-rival"]).update(max_concurrent_jobs=10, api_rate_per_minute=10**6,
                                                                         api_burst=10**6)
    editor, viewer = org.client("editor"), org.client("viewer")

    def dataset(content: bytes, name: str, label: str, filename: str = "data.csv") -> dict:
        response = upload(org, content, filename=filename, name=name)
        assert response.status_code == 201, response.content
        body = response.json()
        world.datasets.append(Sample(label, body["id"]))
        return body

    messy = dataset(messy_csv(), "Kündigungen 2024 (Export)", "dataset: messy export", "kündigungen;export.csv")
    readings = {c["name"]: c.get("reading") or {} for c in messy["profile"]["columns"]}
    assert readings["Umsatz (€)"].get("number_format") == "decimal_comma", readings["Umsatz (€)"]
    assert readings["Anmeldung"].get("date_format") == "dd.mm.yyyy", readings["Anmeldung"]
    assert readings["Vertragsbeginn"].get("alternatives"), readings["Vertragsbeginn"]  # ambiguous
    assert readings["aktiv?"].get("kind") == "boolean", readings["aktiv?"]
    next_month = dataset(messy_next_month(), "Kündigungen 2026-06", "dataset: messy export a month later")
    by_problem = {
        ProblemType.BINARY: (dataset(csv_bytes(table(150)), "binary", "dataset: binary target"), "label"),
        ProblemType.MULTICLASS: (dataset(csv_bytes(multiclass_table()), "multiclass", "dataset: three classes"), "kind"),
        ProblemType.REGRESSION: (dataset(csv_bytes(regression_table(150)), "regression", "dataset: numeric target"), "price"),
    }
    dataset(csv_bytes(table(60, seed=9)), "unused", "dataset: used by nothing")
    blended = dataset(csv_bytes(blended_table()), "blended", "dataset: numeric target with linear and non-linear parts")

    # a version of every algorithm for every problem type it supports
    for key, algorithm in ALGORITHMS.items():
        for problem in ProblemType:
            if problem not in algorithm.problem_types:
                continue
            data, target = by_problem[problem]
            params = {k: v for k, v in FAST.items() if k in algorithm.search_space}
            version = train_version(org, data["id"], target=target, model_name=f"{problem.value}-model", algorithm=key,
                                    problem_type=problem.value, params=params, cv_folds=2)
            world.versions.append(Sample(f"version: {key} / {problem.value}", version["id"]))
            world.jobs.append(Sample(f"job: {key} / {problem.value}, succeeded", version["job_id"]))
    messy_version = train_version(org, messy["id"], target="Kündigung", model_name="kündigung modell",
                                  algorithm="random_forest", params={"n_estimators": 15}, cv_folds=2)
    world.versions.insert(0, Sample("version: messy export, date column", messy_version["id"]))
    world.jobs.append(Sample("job: messy export, succeeded", messy_version["job_id"]))
    _automl(world, [(by_problem[ProblemType.BINARY][0]["id"], "label", 42), (blended["id"], "y", 0),
                    (blended["id"], "y", 1), (blended["id"], "y", 5), (blended["id"], "y", 4)])

    # deployments: v1 then v2 of the binary model (a roll back is possible), the messy model, a staging alias
    binary_versions = [s.value for s in world.versions if s.label.endswith("/ binary")]
    for version_id in binary_versions[:2]:
        assert editor.post(f"/api/v1/ml/models/{version_id}/deploy", {}, format="json").status_code == 200
    assert editor.post(f"/api/v1/ml/models/{messy_version['id']}/deploy", {}, format="json").status_code == 200
    staging = next(s.value for s in world.versions if s.label.endswith("/ regression"))
    assert editor.post(f"/api/v1/ml/models/{staging}/deploy", {"alias": "staging"}, format="json").status_code == 200
    deployed = binary_versions[1]
    world.versions.insert(0, Sample("version: deployed in production", deployed))
    rows = [{"x1": 0.1, "x2": 4.2, "color": "red"}, {"x1": -1.0, "x2": 9.0, "color": "purple"}]
    for _ in range(3):
        assert viewer.post(f"/api/v1/ml/models/{deployed}/predict", {"records": rows}, format="json").status_code == 200
    assert viewer.post("/api/v1/ml/deployments/binary-model/predict", {"records": [{"x1": 1}]}, format="json").status_code == 400
    from models_registry.monitoring import stats_buffer

    stats_buffer.flush()
    evaluated = editor.post(f"/api/v1/ml/models/{deployed}/evaluate", {"dataset_id": by_problem[ProblemType.BINARY][0]["id"]},
                            format="json")
    assert evaluated.status_code == 201, evaluated.content
    # the messy model on the export a month later: evaluated, and predicted in a batch, both with warnings
    evaluated = editor.post(f"/api/v1/ml/models/{messy_version['id']}/evaluate", {"dataset_id": next_month["id"]},
                            format="json")
    assert evaluated.status_code == 201 and evaluated.json()["evaluations"][0]["warnings"], evaluated.content

    with schema_context(org.schema):
        from models_registry.models import RegisteredModel

        registered = {m.name: m.pk for m in RegisteredModel.objects.all()}
    world.models = [Sample(f"registered model: {name}", pk) for name, pk in sorted(registered.items(),
                                                                                  key=lambda kv: kv[0] != "binary-model")]
    world.model_names = [Sample("model name: deployed", "binary-model"),
                         Sample("model name: unicode and space, deployed", "kündigung modell"),
                         Sample("model name: never deployed", "multiclass-model")]

    _jobs_in_every_state(world, by_problem[ProblemType.BINARY][0]["id"], deployed)
    _batch_with_warnings(world, messy_version["id"], next_month["id"])
    _keys_and_members(world, registered)
    _platform_admin(world)
    connection.set_schema_to_public()
    return world


def _automl(world: World, attempts: list[tuple[int, str, int]]) -> None:
    """An AutoML run whose registered model is an ensemble. Whether the ensemble beats the best single candidate
    depends on the data, on the split and on how many trials the budget allowed (fewer on a busy machine), so a
    run that kept a single candidate is followed by another, with a larger budget, on the next (dataset, target,
    random seed) of `attempts`: the binary table first, then a table whose target has a linear and a non-linear
    part (a linear model and a tree ensemble each get one of them right, so their blend is usually better)."""
    from tests.conftest import train_version

    org = world.org
    for budget, (dataset_id, target, seed) in zip((8, 8, 10, 12, 16), attempts):
        version = train_version(org, dataset_id, target=target, model_name=f"automl-{target}", algorithm="auto",
                                time_budget_s=budget, cv_folds=3, random_state=seed)
        if version["algorithm"] == "ensemble":
            world.jobs.insert(0, Sample("job: AutoML, ensemble chosen", version["job_id"]))
            world.versions.append(Sample("version: AutoML ensemble", version["id"]))
            return
        world.jobs.append(Sample(f"job: AutoML, best single ({version['algorithm']})", version["job_id"]))
    job = org.client("viewer").get(f"/api/v1/ml/training/jobs/{version['job_id']}").json()
    raise AssertionError(f"AutoML chose no ensemble in {len(attempts)} runs: {job['result']['ensemble']}")


def _jobs_in_every_state(world: World, dataset_id: int, version_id: int) -> None:
    from mlplatform.job_runtime import job_claim
    from models_registry.batch import run_batch
    from models_registry.models import BatchPredictionJob
    from tests.training.conftest import csv_bytes, table, upload
    from training.models import Dataset, TrainingJob
    from training.runner import run_training_job

    org = world.org
    editor = org.client("editor")

    def start(data_id: int, name: str) -> int:
        response = editor.post("/api/v1/ml/training/start", {"dataset_id": data_id, "target": "label", "model_name": name,
                                                             "algorithm": "logistic_regression", "cv_folds": 2},
                               format="json")
        assert response.status_code == 202, response.content
        return response.json()["id"]

    def batch(data_id: int) -> int:
        response = editor.post("/api/v1/ml/batch-predict", {"model_version_id": version_id, "dataset_id": data_id},
                               format="json")
        assert response.status_code == 202, response.content
        return response.json()["id"]

    succeeded = batch(dataset_id)
    cancelled_batch = batch(dataset_id)
    assert editor.post(f"/api/v1/ml/batch-predict/{cancelled_batch}/cancel").status_code == 200
    queued_batch = batch(dataset_id)
    cancelled = start(dataset_id, "cancelled-model")
    assert editor.post(f"/api/v1/ml/training/jobs/{cancelled}/cancel").status_code == 200
    queued, running = start(dataset_id, "queued-model"), start(dataset_id, "running-model")
    # the input of these two goes away before a worker starts them (a race the runners must report)
    doomed = upload(org, csv_bytes(table(60, seed=11)), name="doomed").json()["id"]
    failed, failed_batch = start(doomed, "failed-model"), batch(doomed)
    with schema_context(org.schema):
        assert run_batch(succeeded) == "succeeded"
        Dataset.objects.filter(pk=doomed).delete()
        assert run_training_job(failed) == "failed" and run_batch(failed_batch) == "failed"
        assert job_claim(TrainingJob, running)
        assert BatchPredictionJob.objects.get(pk=queued_batch).status == "queued"
    world.jobs += [Sample("job: cancelled", cancelled), Sample("job: failed, its dataset deleted", failed),
                   Sample("job: queued", queued), Sample("job: running", running)]
    world.batches = [Sample("batch: succeeded", succeeded), Sample("batch: failed", failed_batch),
                     Sample("batch: cancelled", cancelled_batch), Sample("batch: queued", queued_batch)]


def _batch_with_warnings(world: World, version_id: int, dataset_id: int) -> None:
    from models_registry.batch import run_batch
    from models_registry.models import BatchPredictionJob

    response = world.org.client("editor").post("/api/v1/ml/batch-predict", {"model_version_id": version_id,
                                                                           "dataset_id": dataset_id}, format="json")
    assert response.status_code == 202, response.content
    batch_id = response.json()["id"]
    with schema_context(world.org.schema):
        assert run_batch(batch_id) == "succeeded"
        assert BatchPredictionJob.objects.get(pk=batch_id).warnings
    world.batches.insert(1, Sample("batch: succeeded, values that changed meaning", batch_id))


def _keys_and_members(world: World, registered: dict[str, int]) -> None:
    from tenants.accounts.services import member_create, member_update

    owner = world.org.client("owner")
    for name, model in (("in", "binary-model"), ("out", "regression-model"), ("revoked", "binary-model")):
        response = owner.post("/api/v1/api-keys", {"name": f"key {name}", "model_ids": [registered[model]]}, format="json")
        assert response.status_code == 201, response.content
        world.key_secrets[name] = response.json()["secret"]
        world.api_keys.append(Sample(f"API key: {name if name == 'revoked' else 'active'}", response.json()["key"]["id"]))
    assert owner.post(f"/api/v1/api-keys/{world.api_keys[-1].value}/revoke").status_code == 200
    del world.key_secrets["revoked"]
    with schema_context(world.org.schema):
        former = member_create(actor="tests", username="former", password="former-pass-123", role="editor")
        member_update(actor="tests", user=former, is_active=False)
    world.members = [Sample(f"member: {role}", world.org.user_ids[role]) for role in ("owner", "editor", "viewer")]
    world.members.append(Sample("member: deactivated", former.pk))


def _platform_admin(world: World) -> None:
    """A platform superuser on the public host, and one row of each public model its admin lists that would
    otherwise be empty."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django_q.models import Task
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from tenants.models import WorkerHeartbeat

    connection.set_schema_to_public()
    username, password = world.superuser
    user = get_user_model().objects.create_superuser(username=username, password=password, email="")
    Token.objects.get_or_create(user=user)
    Group.objects.get_or_create(name="walkers")
    now = timezone.now()
    WorkerHeartbeat.objects.get_or_create(worker="walk-test:1", defaults={"last_seen": now - timedelta(days=1)})  # stale
    for success in (True, False):
        Task.objects.create(id=f"walk-{success}", name=f"walk-{success}", func="math.floor", args=(1.5,), kwargs={},
                            started=now, stopped=now, success=success, result=1 if success else "ValueError")


# --- providers: URL parameter name -> samples --------------------------------------------------------------

def _admin_model(route: Route, chosen: dict):
    """The model an admin route is about: from its content type parameter, or from its path."""
    if "content_type_id" in chosen:
        return ContentType.objects.get_for_id(int(chosen["content_type_id"])).model_class()
    for model in _site(route)._registry:
        if f"/{model._meta.app_label}/{model._meta.model_name}/" in "/" + route.route:
            return model
    raise LookupError(f"{route.name}: no admin model in its path")


def _site(route: Route):
    from django.contrib import admin

    from mlplatform.admin_sites import organization_admin

    return admin.site if route.host == "public" else organization_admin


def _admin_objects(world: World, route: Route, chosen: dict) -> list[Sample]:
    model = _admin_model(route, chosen)
    first = model._default_manager.order_by("pk").first()
    return [Sample(f"{model._meta.verbose_name}: #{first.pk}", first.pk)] if first else []


def _content_types(world: World, route: Route, chosen: dict) -> list[Sample]:
    models = [m for m in _site(route)._registry if m._default_manager.exists()]
    return [Sample(f"content type: {m._meta.label_lower}", ContentType.objects.get_for_model(m).pk) for m in models[:1]]


def _app_labels(world: World, route: Route, chosen: dict) -> list[Sample]:
    labels = sorted({m._meta.app_label for m in _site(route)._registry})
    return [Sample(f"admin app: {label}", label) for label in labels]


def _in_schema(provider):
    """Providers of admin rows read the host's schema: the organization's, or public for the platform admin."""
    def read(world: World, route: Route, chosen: dict) -> list[Sample]:
        schema = "public" if route.host == "public" else world.org.schema
        with schema_context(schema):
            return provider(world, route, chosen)
    return read


PROVIDERS = {
    "dataset_id": lambda w, r, c: w.datasets,
    "job_id": lambda w, r, c: w.jobs,
    "batch_id": lambda w, r, c: w.batches,
    "version_id": lambda w, r, c: w.versions,
    "model_id": lambda w, r, c: w.models,
    "model_name": lambda w, r, c: w.model_names,
    "key_id": lambda w, r, c: w.api_keys,
    "user_id": lambda w, r, c: w.members,
    # the admin sites' own patterns
    "object_id": _in_schema(_admin_objects),
    "id": _in_schema(_admin_objects),  # a user's password form
    "content_type_id": _in_schema(_content_types),
    "app_label": _in_schema(_app_labels),
    "url": lambda w, r, c: [Sample("admin path: unknown", "no/such/page/")],
}
