"""Latency of real-time predictions over HTTP, ours against MLflow's model server, on the same pipelines.

    .venv/bin/python bench/serving.py                        # 2,000 requests per run, 1 and 8 clients
    .venv/bin/python bench/serving.py --requests 500 --concurrency 1,4,8
    .venv/bin/python bench/serving.py --reuse-models --skip-mlflow

Everything is set up here and stopped again before the script exits:

1. the platform: the embedded PostgreSQL (a handle is held for the whole run; with DATABASE_URL set,
   that server is used instead), ``manage.py setup_platform``, a synthetic 5,000-row table (16 numeric
   and 4 categorical features with 3% missing numbers, a yes/no target; the generator of bench/batch.py)
   uploaded as a dataset of the ``demo`` organization, two training jobs created through
   ``training_job_create`` and run in this process with ``run_training_job`` (a 100-tree random forest,
   100 rounds of XGBoost), each deployed as ``production`` with ``alias_set``; the organization's API rate
   limits (its plan) are lifted for the run and restored at the end, so the numbers are the server's;
2. the server as production runs it: gunicorn ``mlplatform.wsgi`` with the production settings, DEBUG off,
   a throwaway SECRET_KEY, MODEL_SIGNING_KEY = the key the models were signed with, DATABASE_URL = the
   embedded server, on a free loopback port; requests carry ``Host: demo.localhost`` and an API token
   from ``POST /api/v1/auth/token``. Workers: 2 gthread workers x 4 threads by default. On 2 cores that
   beat 2, 3 or 4 sync workers at 1 client (p50 about a third lower) and at 8 clients (about twice the
   requests per second): a sync worker closes the connection after every answer (a new TCP connection and
   accept per request) and sits idle during the request's database round trips, which threads overlap;
3. MLflow's server (``mlflow models serve``, uvicorn) in its own virtualenv, bench/.mlflow-venv, built
   from bench/requirements-mlflow.txt (same scikit-learn, XGBoost, pandas, numpy and skops as the
   platform). The platform's artifact is read and its digest and HMAC verified here, loaded with the
   platform's loader (``training.ml.artifacts.load_pipeline``) to prove it is what we serve, and the very
   same bytes are handed to that virtualenv, which loads them with the same loader and saves them with
   ``mlflow.sklearn.save_model`` (``predict_proba`` as the pyfunc method, an inferred signature,
   ``training/ml`` shipped as ``code_paths`` for the pipeline's FunctionTransformer steps). So both
   servers run the identical fitted pipeline; nothing is refitted. Only ``n_jobs`` is set to 1 in
   MLflow's copy, as our native engine does: a thread pool per one-row call would only slow it down.

Measured, from a separate client process (one keep-alive ``http.client`` connection per client thread,
bounded request counts): p50/p95/p99 latency and requests per second of single-record predictions,
for each model, each server and each number of concurrent clients; both servers get the same records
and the same number of worker processes. In this process (warm cache): ``models_registry.serving.predict``
alone and its parts, the bare model, and the whole Django stack without HTTP (Django's test client),
to separate HTTP, framework and model cost. Answers of the two servers are compared for a few records.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
MLFLOW_VENV = BENCH / ".mlflow-venv"
MLFLOW_REQUIREMENTS = BENCH / "requirements-mlflow.txt"
ORG, HOST = "demo", "demo.localhost"
USERNAME, PASSWORD = "editor", "demo-editor-pass"
BENCH_USER = "bench-editor"  # used only when the demo editor's documented password does not work here
TARGET = "churn"
#: key -> (registered model name, algorithm, label in the table)
MODELS = {
    "rf": ("bench-random-forest", "random_forest", "random forest, 100 trees"),
    "xgb": ("bench-xgboost", "xgboost", "XGBoost, 100 rounds"),
}
PREDICT_PATH = "/api/v1/ml/deployments/{name}/predict"
RECORD_POOL = 256  # distinct records the clients cycle through
PARITY_RECORDS = 20


# --- processes: everything started here is stopped here ----------------------------------------------

class Processes:
    """Children started in their own process group, so that stopping one stops its workers too."""

    def __init__(self):
        self._running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], *, env: dict, log: Path) -> subprocess.Popen:
        handle = open(log, "ab")
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        handle.close()
        self._running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # the group is the child's own (start_new_session)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        else:  # the leader is gone; make sure no worker of its group lingers
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._running = [(n, p) for n, p in self._running if p is not process]

    def stop_all(self) -> None:
        for _, process in reversed(list(self._running)):
            self.stop(process)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(port: int, path: str, host: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Until the server answers anything at all (healthz says 503 when no job worker runs: fine here)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; its log ({log}) ends with:\n"
                               + tail(log))
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path, headers={"Host": host})
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port} after {timeout_s:.0f}s; log ({log}):\n" + tail(log))


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over a short window, before we start anything heavy (other users' load)."""
    def sample():
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    total1, idle1 = sample()
    time.sleep(seconds)
    total2, idle2 = sample()
    return 1 - (idle2 - idle1) / max(1, total2 - total1)


def cpu_seconds(leader: int | None = None, postmaster: int | None = None) -> float:
    """CPU time (user + system) used so far by a process group (``leader``: its first process) or by a
    PostgreSQL server (``postmaster`` and its backends). Exited children count through their parent's
    cutime/cstime. Unlike latency, this does not grow when other processes compete for the cores."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state) of proc(5)
        pid, ppid, group = int(entry.name), int(fields[1]), int(fields[2])
        head = pid in (leader, postmaster)
        if head or (leader is not None and group == leader) or (postmaster is not None and ppid == postmaster):
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if head else 0)
    return total / tick


def postmaster_pid(database_url: str) -> int | None:
    """The embedded server's postmaster (its CPU is part of a request's cost), or None for another server."""
    from mlplatform.embedded_db import DATA_DIR

    pid_file = DATA_DIR / "postmaster.pid"
    if str(DATA_DIR) not in database_url or not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


# --- the load-generating client (runs as its own process: `serving.py --client`, spec on stdin) ------

def client_main() -> None:
    spec = json.load(sys.stdin)
    bodies = [body.encode() for body in spec["bodies"]]
    headers = {"Content-Type": "application/json", **spec["headers"]}
    total, concurrency, path, port = spec["requests"], spec["concurrency"], spec["path"], spec["port"]
    deadline = time.perf_counter() + spec["max_seconds"]
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1)

    def run(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = latencies[slot]
        start.wait()
        while True:
            i = next(counter)
            if i >= total or time.perf_counter() > deadline:
                break
            body = bodies[i % len(bodies)]
            began = time.perf_counter()
            try:
                # A server that closes the connection after each answer (gunicorn's sync worker does) makes
                # http.client connect again on the next request: that cost is in the measured time too.
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                continue
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                errors.append(f"HTTP {response.status}: {answer[:300]!r}")
        connection.close()

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began, cpu = time.perf_counter(), os.times()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cpu_after = os.times()
    print(json.dumps({"latencies": [x for slot in latencies for x in slot], "wall_s": wall,
                      "client_cpu_s": cpu_after.user + cpu_after.system - cpu.user - cpu.system,
                      "errors": len(errors), "first_errors": errors[:3]}))


def run_client(*, port: int, path: str, headers: dict, bodies: list[str], requests: int, concurrency: int,
               max_seconds: float) -> dict:
    spec = {"port": port, "path": path, "headers": headers, "bodies": bodies, "requests": requests,
            "concurrency": concurrency, "max_seconds": max_seconds}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--client"], input=json.dumps(spec),
                          capture_output=True, text=True, cwd=REPO, timeout=max_seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the client failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def summary(latencies_s: list[float], wall_s: float | None = None) -> dict:
    values = sorted(latencies_s)
    if not values:
        return {"n": 0}

    def pct(p: float) -> float:  # nearest rank
        return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))] * 1000

    out = {"n": len(values), "p50": pct(50), "p95": pct(95), "p99": pct(99), "mean": sum(values) / len(values) * 1000}
    if wall_s:
        out["rps"] = len(values) / wall_s
    return out


# --- HTTP helpers used by this process (token, parity) ---------------------------------------------

def http_json(port: int, method: str, path: str, body: dict | None, headers: dict) -> tuple[int, dict | str]:
    return http_request(port, method, path, json.dumps(body).encode() if body is not None else None,
                        {"Content-Type": "application/json", **headers})


def http_request(port: int, method: str, path: str, body: bytes | None, headers: dict,
                 timeout: float = 60) -> tuple[int, dict | str]:
    """One request on a new connection; the answer parsed as JSON when it is JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


# --- the platform: database, organization, dataset, models ------------------------------------------

def signing_key_text() -> str:
    """The key model files are signed with: MODEL_SIGNING_KEY if set, else the development key file
    (created the way models_registry.signing does when it is missing, so training and serving agree)."""
    if os.environ.get("MODEL_SIGNING_KEY"):
        return os.environ["MODEL_SIGNING_KEY"]
    path = REPO / ".data" / "model-signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def platform_env(database_url: str, signing_key: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.production",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "MODEL_SIGNING_KEY": signing_key,
        "DATABASE_URL": database_url,
        "SECURE_COOKIES": "false",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }


def setup_django(env: dict) -> None:
    for key in ("DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "MODEL_SIGNING_KEY", "DATABASE_URL",
                "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "LOG_LEVEL"):
        os.environ[key] = env[key]
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def ensure_dataset(rows: int, folder: Path):
    """The synthetic table as a dataset of the demo organization (reused when one of the same size exists)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from training.models import Dataset
    from training.services import dataset_create

    name = f"bench-serving-{rows}"
    dataset = Dataset.objects.filter(name=name).order_by("-pk").first()
    if dataset is not None:
        return dataset, False
    sys.path.insert(0, str(BENCH))
    from batch import write_dataset  # the generator of the batch benchmark: 16 numeric + 4 categorical

    source = folder / "bench-serving.parquet"
    write_dataset(source, rows)
    upload = SimpleUploadedFile("bench-serving.parquet", source.read_bytes(), "application/octet-stream")
    return dataset_create(actor=USERNAME, file=upload, name=name), True


def train_and_deploy(dataset, key: str, trees: int) -> tuple:
    """A training job made through the service, run in this process, and its version deployed."""
    from models_registry.models import ModelVersion
    from models_registry.services import alias_set
    from training.models import TrainingJob
    from training.runner import run_training_job
    from training.services import training_job_create

    name, algorithm, _ = MODELS[key]
    job = training_job_create(actor=USERNAME, dataset=dataset, model_name=name, settings_in={
        "target": TARGET, "algorithm": algorithm, "params": {"n_estimators": trees}})
    # The service queued the job for a worker too; whichever claims it first runs it (job_claim), and a
    # worker that comes second does nothing. Normally this process wins; otherwise wait for the worker.
    outcome = run_training_job(job.pk)
    ran_here = outcome == "succeeded" or outcome in ("failed", "cancelled")
    deadline = time.monotonic() + 1800
    job.refresh_from_db()
    while job.status not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(1)
        job.refresh_from_db()
    if job.status != "succeeded":
        raise RuntimeError(f"training job {job.pk} ({algorithm}) ended {job.status}: {job.error}")
    version = ModelVersion.objects.select_related("registered_model").get(pk=job.model_version_id)
    alias_set(actor=USERNAME, version=version)
    return version, job, ran_here


#: The benchmark measures the server, not the API rate limit: its organization's plan is raised for the run.
BENCH_RATE_LIMITS = {"api_rate_per_minute": 2_000_000_000, "api_burst": 2_000_000_000}


def raise_rate_limits() -> dict:
    """Lift the benchmark organization's API rate limits; returns the values to restore."""
    from tenants.models import Organization

    org = Organization.objects.get(slug=ORG)
    before = {field: getattr(org, field) for field in BENCH_RATE_LIMITS}
    Organization.objects.filter(pk=org.pk).update(**BENCH_RATE_LIMITS)
    return before


def restore_rate_limits(before: dict) -> None:
    from tenants.models import Organization

    Organization.objects.filter(slug=ORG).update(**before)


def credentials() -> tuple[str, str, str]:
    """The demo editor's documented credentials, checked here first (a failed sign-in through the API would
    count towards the editor's lock-out); if they do not work in this database, a member of our own."""
    from django.contrib.auth import authenticate, get_user_model

    from tenants.accounts.services import member_create

    if authenticate(None, username=USERNAME, password=PASSWORD) is not None:
        return USERNAME, PASSWORD, ""
    password = secrets.token_urlsafe(24)
    user = get_user_model().objects.filter(username=BENCH_USER).first()
    if user is None:
        member_create(actor="system", username=BENCH_USER, password=password, role="editor")
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    return BENCH_USER, password, (f"the demo editor's password '{PASSWORD}' does not verify in this database "
                                  f"(its hash: {get_user_model().objects.get(username=USERNAME).password.split('$')[0]}); "
                                  f"signed in as member '{BENCH_USER}' (editor) instead")


def deployed(key: str):
    from django.http import Http404

    from models_registry.selectors import deployed_version

    try:
        return deployed_version(MODELS[key][0])
    except Http404:
        return None


def engine_reason(version) -> str:
    check = version.onnx_check or {}
    if version.serving_engine == "onnx":
        worst = check.get("max_abs_diff") or check.get("max_proba_diff")
        return "ONNX agrees with the pipeline on the test split" + (f" (max diff {worst:.1e})" if worst else "")
    return check.get("reason") or "native pipeline"


def request_records(dataset, n: int) -> list[dict]:
    """Rows of the dataset as JSON records (missing numbers as null), the target left out."""
    import numpy as np

    from training.services import dataset_frame

    frame = dataset_frame(dataset).drop(columns=[TARGET])
    frame = frame.sample(n=min(n, len(frame)), random_state=7)
    records = []
    for row in frame.to_dict("records"):
        records.append({k: (None if isinstance(v, float) and np.isnan(v) else (v.item() if hasattr(v, "item") else v))
                        for k, v in row.items()})
    return records


def verified_artifact(version) -> bytes:
    """The version's model file, digest and HMAC checked as serving does, then loaded with the platform's
    loader (so we know these bytes are the pipeline our native engine would serve)."""
    from mlplatform.filestore import read_bytes
    from models_registry.signing import verify
    from training.ml.artifacts import load_pipeline

    data = read_bytes(version.artifact)
    if not verify(data, sha256=version.artifact_sha256, mac=version.artifact_hmac):
        raise RuntimeError(f"the model file of {version} fails its integrity check")
    load_pipeline(data)
    return data


# --- in-process timings -------------------------------------------------------------------------------

def time_calls(function, arguments: list, n: int) -> dict:
    for argument in arguments[:20]:  # warm
        function(argument)
    times = []
    for i in range(n):
        argument = arguments[i % len(arguments)]
        began = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - began)
    return summary(times)


@contextmanager
def stage_timers(totals: list[float]):
    """Times the stages of a prediction request (patched in place, restored on exit) and its SQL;
    ``totals`` (filled by the caller, one per request) gives what the named stages leave over."""
    from django.db import connection
    from rest_framework.renderers import JSONRenderer

    from mlplatform.api.authentication import BearerTokenAuthentication
    from mlplatform.api.parsers import JSONBodyParser
    from mlplatform.api.permissions import CanPredict
    from mlplatform.api.throttling import CallerRateThrottle
    from models_registry import selectors, serving
    from tenants.middleware import OrganizationMiddleware

    targets = [
        ("tenant middleware (domain lookup)", OrganizationMiddleware, "process_request"),
        ("token authentication", BearerTokenAuthentication, "authenticate"),
        ("CanPredict permission (membership)", CanPredict, "has_permission"),
        ("API rate limit (GCRA)", CallerRateThrottle, "allow_request"),
        ("deployed_version (alias lookup)", selectors, "serving_deployed_version"),
        ("JSON body parsing", JSONBodyParser, "parse"),
        ("serving.predict", serving, "predict"),
        ("JSON rendering", JSONRenderer, "render"),
    ]
    timings: dict[str, list[float]] = {label: [] for label, _, _ in targets}
    saved = []

    def timed(original, bucket):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                bucket.append(time.perf_counter() - began)
        return wrapper

    for label, owner, attribute in targets:
        saved.append((owner, attribute, owner.__dict__.get(attribute)))
        setattr(owner, attribute, timed(getattr(owner, attribute), timings[label]))
    queries: list[float] = []

    def count(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(time.perf_counter() - began)

    result: dict[str, dict] = {}
    try:
        with connection.execute_wrapper(count):
            yield result
    finally:
        for owner, attribute, original in saved:
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
    requests = max(1, len(timings["serving.predict"]))
    for label, values in timings.items():
        result[label] = summary(values)
    if all(len(values) == len(totals) for values in timings.values()):  # each stage once per request
        result["everything else (Django, DRF)"] = summary(
            [total - sum(values[i] for values in timings.values()) for i, total in enumerate(totals)])
    result["SQL queries (Django-visible)"] = {"per_request": len(queries) / requests,
                                              "ms_per_request": sum(queries) * 1000 / requests}


def in_process(version, records: list[dict], token: str, n: int) -> dict:
    """serving.predict and its parts, the bare model, and the Django stack without HTTP."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from models_registry import serving
    from models_registry.loading import load_pipeline_verified, serving_entry
    from models_registry.monitoring import stats_buffer
    from training.ml.predictors import NativePredictor, coerce_column

    bodies = [{"records": [record]} for record in records]
    entry = serving_entry(version)  # loads and verifies once: the warm cache from here on
    limit = settings.PREDICT_MAX_RECORDS
    frames = [entry.validator.to_frame(body["records"], max_records=limit)[0] for body in bodies]
    outputs = [entry.predictor.predict(frame) for frame in frames[:50]]
    out = {
        "serving.predict": time_calls(lambda body: serving.predict(version=version, body=body), bodies, n),
        "serving_entry (cache hit)": time_calls(lambda _: serving_entry(version), bodies, n),
        "validator.to_frame": time_calls(lambda body: entry.validator.to_frame(body["records"], max_records=limit),
                                         bodies, n),
        "predictor.predict(frame)": time_calls(entry.predictor.predict, frames, n),
        "_probabilities": time_calls(lambda o: serving._probabilities(entry.predictor.classes, o[1]), outputs, n),
        "stats_buffer.record": time_calls(
            lambda o: stats_buffer.record(version_id=version.pk, latency_ms=1.0, ok=True, records=1,
                                          predictions=o[0].tolist()), outputs, n),
        "predictor.predict_records": time_calls(lambda body: entry.predictor.predict_records(body["records"]),
                                                bodies, n),
    }
    predictor = entry.predictor
    if entry.engine == "onnx":
        feeds = [{name: coerce_column(kind, [record.get(column)]) for column, name, kind in predictor._inputs}
                 for record in records]
        out["bare ONNX session.run"] = time_calls(lambda f: predictor.session.run(predictor._outputs, f), feeds, n)
        # What the same version would cost on the native engine (the fallback when ONNX is refused)
        native = NativePredictor(load_pipeline_verified(version), version.problem_type, version.classes or None,
                                 [column["name"] for column in version.feature_schema])
    else:
        native = predictor
    slow = min(n, 200)  # milliseconds per call: fewer calls do
    out["native engine: predict(frame)"] = time_calls(native.predict, frames, slow)
    out["bare pipeline.predict_proba"] = time_calls(native.pipeline.predict_proba, frames, slow)
    # The full request without HTTP: middleware (tenant), DRF (token auth, permissions), the deployment
    # lookup, serving.predict, JSON in and out. Then the same again with a timer around each stage and
    # Django's cursor wrapper counting queries (django-tenants' SET search_path bypasses that wrapper:
    # it is inside the stage that opened the cursor).
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Token {token}")
    path = PREDICT_PATH.format(name=version.registered_model.name)
    payloads = [json.dumps(body) for body in bodies]

    def request(payload):
        response = client.post(path, payload, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"in-process request failed: {response.status_code} {response.content[:300]!r}")

    out["Django stack, no HTTP"] = time_calls(request, payloads, n)
    totals = []
    with stage_timers(totals) as stages:
        for i in range(min(n, 500)):
            began = time.perf_counter()
            request(payloads[i % len(payloads)])
            totals.append(time.perf_counter() - began)
    out["stages"] = stages
    # What gunicorn adds per request and the test client skips: close_old_connections at request start and
    # end, so the first query of each request runs the health check (a SELECT 1 round trip) first.
    with connection.cursor():
        pass
    out["stages"]["connection health check (SELECT 1)"] = time_calls(lambda _: connection.is_usable(), [None], n)
    return out


# --- MLflow ---------------------------------------------------------------------------------------------

def ensure_mlflow_venv() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    stamp = MLFLOW_VENV / f".installed-{hashlib.sha256(MLFLOW_REQUIREMENTS.read_bytes()).hexdigest()[:12]}"
    if python.exists() and stamp.exists():
        return python
    print(f"building {MLFLOW_VENV.relative_to(REPO)} from {MLFLOW_REQUIREMENTS.relative_to(REPO)} "
          "(first run only, a few minutes)...", flush=True)
    if not python.exists():
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "-r", str(MLFLOW_REQUIREMENTS)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install -r {MLFLOW_REQUIREMENTS.name} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    for old in MLFLOW_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return python


MLFLOW_SAVE = r"""
import json, sys
from pathlib import Path
artifact, records, out, code = sys.argv[1:5]
sys.path.insert(0, code)  # a copy of training/ml only: the pipeline's FunctionTransformer functions live there
import pandas as pd
import mlflow.sklearn
from mlflow.models import infer_signature
from training.ml.artifacts import load_pipeline
pipeline = load_pipeline(Path(artifact).read_bytes())
for _, step in pipeline.steps:  # one thread per call, as our native engine does
    for est in (step, getattr(step, "estimator_", None)):
        if est is not None and "n_jobs" in est.get_params(deep=False):
            est.set_params(n_jobs=1)
sample = pd.DataFrame.from_records(json.loads(Path(records).read_text()))
signature = infer_signature(sample, pipeline.predict_proba(sample))
mlflow.sklearn.save_model(pipeline, out, serialization_format="cloudpickle", signature=signature,
                          pyfunc_predict_fn="predict_proba", code_paths=[str(Path(code) / "training")])
print(json.dumps({"mlflow": mlflow.__version__}))
"""


def mlflow_model(python: Path, artifact: bytes, records: list[dict], folder: Path, key: str) -> Path:
    code = folder / "code"
    if not (code / "training").exists():
        shutil.copytree(REPO / "training" / "ml", code / "training" / "ml",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (code / "training" / "__init__.py").write_text("")
    (folder / f"{key}.skops").write_bytes(artifact)
    (folder / f"{key}-records.json").write_text(json.dumps(records))
    out = folder / f"mlflow-{key}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run([str(python), "-c", MLFLOW_SAVE, str(folder / f"{key}.skops"),
                           str(folder / f"{key}-records.json"), str(out), str(code)],
                          capture_output=True, text=True, env=env, cwd=folder)
    if done.returncode != 0:
        raise RuntimeError(f"saving the MLflow model failed:\n{done.stderr[-3000:]}")
    return out


# --- output ---------------------------------------------------------------------------------------------

def fmt_ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")


def print_report(ctx: dict) -> None:
    args, http, local, versions = ctx["args"], ctx["http"], ctx["local"], ctx["versions"]
    print()
    print("=" * 100)
    print(f"Single-record predictions over HTTP on 127.0.0.1 ({os.cpu_count()} cores; {args.requests:,} requests per "
          f"run after {args.warmup:,} warm-up requests per server and model)")
    print(f"ours:   gunicorn mlplatform.wsgi, {ctx['server_desc']}, production settings, Host {HOST}, token auth")
    if ctx.get("mlflow_desc"):
        print(f"MLflow: {ctx['mlflow_desc']}")
    print(f"other load on the machine before measuring: {ctx['busy_before']:.0%} of all cores busy; "
          f"load average at the end: {ctx['loadavg_end']}")
    if ctx["busy_before"] > 0.2:
        print("WARNING: other processes kept the cores busy: latencies are inflated, CPU per request is not.")
    print("=" * 100)
    header = f"{'model':<26} {'engine':<7} {'server':<8} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} " \
             f"{'req/s':>8} {'errors':>6} {'CPU ms/request: server':>23} {'DB':>5} {'client':>7}"
    print(header)
    print("-" * len(header))
    for key in ctx["keys"]:
        version = versions[key]
        for concurrency in args.concurrency:
            for server in ("ours", "mlflow"):
                result = http.get((key, server, concurrency))
                if result is None:
                    continue
                s = result["summary"]
                print(f"{MODELS[key][2]:<26} {version.serving_engine if server == 'ours' else 'native':<7} "
                      f"{'ours' if server == 'ours' else 'MLflow':<8} {concurrency:>7} {fmt_ms(s.get('p50')):>8} "
                      f"{fmt_ms(s.get('p95')):>8} {fmt_ms(s.get('p99')):>8} {s.get('rps', 0):>8,.0f} "
                      f"{result['errors']:>6} {result['server_cpu_ms']:>23.2f} "
                      f"{'-' if result['db_cpu_ms'] is None else format(result['db_cpu_ms'], '.2f'):>5} "
                      f"{result['client_cpu_ms']:>7.2f}")
        print()
    print("CPU ms/request: CPU time the server's processes (gunicorn or uvicorn, master and workers), the database "
          "server (all its\nprocesses: other users of it count too) and the client used during the run, per request. "
          "It does not grow with\nother load on the machine the way latency does.")
    print()
    print("p50 ratio MLflow / ours (goal >= 5x), and ours against the goal p50 <= 2 ms at 1 client:")
    for key in ctx["keys"]:
        ours1 = http.get((key, "ours", args.concurrency[0]))
        parts = []
        for concurrency in args.concurrency:
            a, b = http.get((key, "ours", concurrency)), http.get((key, "mlflow", concurrency))
            if a and b and a["summary"].get("p50") and b["summary"].get("p50"):
                ratio = b["summary"]["p50"] / a["summary"]["p50"]
                parts.append(f"{concurrency} client{'s' if concurrency > 1 else ''}: {ratio:.1f}x "
                             f"({'met' if ratio >= 5 else 'MISSED'})")
        goal = ""
        if ours1 and ours1["summary"].get("p50") is not None:
            p50 = ours1["summary"]["p50"]
            goal = f"; p50 {p50:.2f} ms at {args.concurrency[0]} client(s): {'met' if p50 <= 2 else 'MISSED'}"
        print(f"  {MODELS[key][2]:<26} {', '.join(parts) or 'no MLflow run'}{goal}")
    print()
    print("In-process, warm cache, one record per call (this process, production settings), in ms:")
    parts = ["serving_entry (cache hit)", "validator.to_frame", "predictor.predict(frame)", "_probabilities",
             "stats_buffer.record"]
    rows = ["serving.predict", *parts, "predictor.predict_records", "bare ONNX session.run",
            "native engine: predict(frame)", "bare pipeline.predict_proba", "Django stack, no HTTP"]
    print(f"  {'':<34}" + "".join(f"{MODELS[k][2][:24]:>26}" for k in ctx["keys"]))
    print(f"  {'':<34}" + "".join(f"{'p50      p95':>26}" for _ in ctx["keys"]))
    for row in rows:
        cells = []
        for key in ctx["keys"]:
            s = local[key].get(row)
            cells.append(f"{s['p50']:>17.3f} {s['p95']:>8.3f}" if s else f"{'-':>17} {'-':>8}")
        indent = "    " if row in parts else "  "
        print(f"{indent}{row:<{36 - len(indent)}}" + "".join(f"{c:>26}" for c in cells))
    print("  the Django stack's stages (p50 of each, timed inside one run of requests):")
    labels = [label for label in local[ctx["keys"][0]]["stages"] if not label.startswith("SQL")]
    for label in labels:
        cells = [f"{local[k]['stages'][label]['p50']:>17.3f} {local[k]['stages'][label]['p95']:>8.3f}"
                 for k in ctx["keys"]]
        print(f"    {label:<32}" + "".join(f"{c:>26}" for c in cells))
    sql = "; ".join(f"{MODELS[k][2]}: {local[k]['stages']['SQL queries (Django-visible)']['per_request']:.1f} "
                    f"queries, {local[k]['stages']['SQL queries (Django-visible)']['ms_per_request']:.2f} ms"
                    for k in ctx["keys"])
    print(f"  SQL per request through Django's cursor wrapper (SET search_path comes on top): {sql}")
    print()
    print("Where a request's time goes (p50s):")
    db_stages = ["tenant middleware (domain lookup)", "token authentication", "CanPredict permission (membership)",
                 "deployed_version (alias lookup)"]
    for key in ctx["keys"]:
        data, stages = local[key], local[key]["stages"]
        ours1 = http.get((key, "ours", 1))
        head = f"over HTTP {ours1['summary']['p50']:.2f} ms at 1 client; " if ours1 else ""
        print(f"  {MODELS[key][2]}: {head}in this process (test client) {data['Django stack, no HTTP']['p50']:.2f} ms:")
        print(f"      database-bound stages {sum(stages[s]['p50'] for s in db_stages):.2f} ms (tenant, token, membership, "
              f"deployment lookup: {stages['SQL queries (Django-visible)']['per_request']:.0f} queries + SET search_path)")
        print(f"      serving.predict {stages['serving.predict']['p50']:.2f} ms inside the stack, "
              f"{data['serving.predict']['p50']:.2f} ms alone, of which the model {data['predictor.predict(frame)']['p50']:.2f} ms")
        rest = stages.get("everything else (Django, DRF)", {}).get("p50")
        print(f"      JSON in and out {stages['JSON body parsing']['p50'] + stages['JSON rendering']['p50']:.2f} ms; "
              + (f"the rest (Django, DRF, the test client) {rest:.2f} ms" if rest is not None else ""))
    print()
    for key in ctx["keys"]:
        v = versions[key]
        print(f"{MODELS[key][2]}: {v.registered_model.name} v{v.version} (id {v.pk}), engine {v.serving_engine}: "
              f"{engine_reason(v)}; {ctx['provenance'][key]}")
        if key in ctx["parity"]:
            print(f"  answers, ours vs MLflow on {PARITY_RECORDS} records: {ctx['parity'][key]}")
    if ctx.get("login_note"):
        print(f"note: {ctx['login_note']}")
    print(f"total time {time.monotonic() - ctx['started']:.0f}s ({ctx['phase_times']})")


# --- main -----------------------------------------------------------------------------------------------

@contextmanager
def phase(times: dict, name: str):
    began = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {name}...", flush=True)
    yield
    times[name] = time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per run (default 2000)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests per server and model")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8],
                        help="comma-separated numbers of concurrent clients (default 1,8)")
    parser.add_argument("--in-process", type=int, default=2000, help="calls per in-process measurement")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the synthetic training table")
    parser.add_argument("--trees", type=int, default=100, help="n_estimators of both models")
    parser.add_argument("--models", default="rf,xgb", help="rf, xgb or both (default rf,xgb)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, for both servers (default 2)")
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"),
                        help="gunicorn worker class (default gthread: keep-alive, and threads overlap the database "
                             "round trips of a request; sync closes the connection after every answer)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread; default 4)")
    parser.add_argument("--reuse-models", action="store_true",
                        help="serve the versions already deployed under the bench names instead of training")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure our server only")
    parser.add_argument("--max-seconds", type=float, default=300, help="time limit of one measured run")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before measuring, wait up to this long for other processes to use under 25%% of the "
                             "cores (default: do not wait)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main()
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if not keys or any(k not in MODELS for k in keys):
        parser.error(f"--models takes {', '.join(MODELS)}")
    args.concurrency = sorted(set(args.concurrency))

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)

    ctx: dict = {"args": args, "keys": keys, "started": time.monotonic(), "http": {}, "local": {},
                 "versions": {}, "provenance": {}, "parity": {}}
    times: dict[str, float] = {}
    ctx["busy_before"] = cpu_busy()
    processes = Processes()
    pg_handle = None
    rate_limits_before = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    logs = workdir
    try:
        with phase(times, "database"):
            database_url = os.environ.get("DATABASE_URL")
            if not database_url:
                sys.path.insert(0, str(REPO))
                import warnings

                from mlplatform.embedded_db import DATA_DIR, database_url as embedded_url

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    database_url = embedded_url()  # this process's handle keeps the server up until the end
                import pgserver

                pg_handle = pgserver.get_server(DATA_DIR)
            env = platform_env(database_url, signing_key_text())
        with phase(times, "manage.py setup_platform"):
            done = subprocess.run([sys.executable, "manage.py", "setup_platform"], env=env, cwd=REPO,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"setup_platform failed:\n{done.stderr[-3000:]}")
        setup_django(env)
        from django_tenants.utils import schema_context

        rate_limits_before = raise_rate_limits()

        with schema_context(ORG):
            with phase(times, "dataset"):
                dataset, made = ensure_dataset(args.rows, workdir)
                print(f"  dataset {dataset.name} (id {dataset.pk}): {dataset.rows:,} rows x {dataset.columns} columns"
                      f"{'' if made else ' (reused)'}")
            for key in keys:
                with phase(times, f"model {key}"):
                    version = deployed(key) if args.reuse_models else None
                    if version is not None:
                        ctx["provenance"][key] = f"reused (deployed as production; job {version.job_id})"
                    else:
                        began = time.monotonic()
                        version, job, here = train_and_deploy(dataset, key, args.trees)
                        ctx["provenance"][key] = (f"trained by job {job.pk} {'in this process' if here else 'by a worker'} "
                                                  f"in {time.monotonic() - began:.0f}s and deployed as production")
                    ctx["versions"][key] = version
                    print(f"  {MODELS[key][2]}: {version} engine={version.serving_engine} ({engine_reason(version)})")
            records = request_records(dataset, RECORD_POOL)
            username, password, ctx["login_note"] = credentials()
            if ctx["login_note"]:
                print(f"  note: {ctx['login_note']}")

        if not args.skip_mlflow:
            with phase(times, "MLflow virtualenv"):
                mlflow_python = ensure_mlflow_venv()
            with phase(times, "MLflow models"):
                mlflow_dirs = {}
                with schema_context(ORG):
                    artifacts = {key: verified_artifact(ctx["versions"][key]) for key in keys}
                for key in keys:
                    mlflow_dirs[key] = mlflow_model(mlflow_python, artifacts[key], records[:50], workdir, key)
                version_out = subprocess.run([str(mlflow_python), "-c", "import mlflow; print(mlflow.__version__)"],
                                             capture_output=True, text=True).stdout.strip()
                ctx["mlflow_desc"] = (f"mlflow {version_out} `mlflow models serve --env-manager local -w "
                                      f"{args.workers}` (uvicorn, {args.workers} workers), one server per model, "
                                      "pyfunc predict_proba")

        with phase(times, "gunicorn"):
            port = free_port()
            server_log = logs / "gunicorn.log"
            command = [str(REPO / ".venv" / "bin" / "gunicorn"), "mlplatform.wsgi", "--bind", f"127.0.0.1:{port}",
                       "--workers", str(args.workers), "--worker-class", args.worker_class,
                       "--threads", str(args.threads), "--log-level", "warning", "--timeout", "60"]
            server_process = processes.start("gunicorn", command, env=env, log=server_log)
            wait_http(port, "/healthz", HOST, server_process, server_log, 60)
            postmaster = postmaster_pid(database_url)
            ctx["server_desc"] = (f"{args.workers} {args.worker_class} workers"
                                  + (f" x {args.threads} threads" if args.worker_class == "gthread" else ""))
            status, answer = http_json(port, "POST", "/api/v1/auth/token", {"username": username, "password": password},
                                       {"Host": HOST})
            if status != 200:
                raise RuntimeError(f"no token: {status} {answer}")
            token = answer["token"]
            headers = {"Host": HOST, "Authorization": f"Token {token}"}

        if args.wait_quiet:
            with phase(times, "waiting for a quiet machine"):
                deadline = time.monotonic() + args.wait_quiet
                while (busy := cpu_busy(3.0)) > 0.25 and time.monotonic() < deadline:
                    time.sleep(10)
                ctx["busy_before"] = busy
                print(f"  other processes use {busy:.0%} of the cores")
        ours_bodies = [json.dumps({"records": [record]}) for record in records]
        mlflow_bodies = [json.dumps({"dataframe_records": [record]}) for record in records]
        for key in keys:
            version = ctx["versions"][key]
            path = PREDICT_PATH.format(name=version.registered_model.name)
            mlflow = None
            if not args.skip_mlflow:
                with phase(times, f"MLflow server {key}"):
                    mlflow_port = free_port()
                    mlflow_log = logs / f"mlflow-{key}.log"
                    mlflow_env = {k: v for k, v in os.environ.items()
                                  if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
                    # `mlflow models serve` starts `uvicorn` through the shell: the virtualenv's bin comes first
                    mlflow_env["PATH"] = f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
                    mlflow = processes.start(f"mlflow {key}", [
                        str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(mlflow_dirs[key]),
                        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", str(args.workers)],
                        env=mlflow_env, log=mlflow_log)
                    wait_http(mlflow_port, "/ping", "127.0.0.1", mlflow, mlflow_log, 180)
            with phase(times, f"HTTP {key}"):
                targets = [("ours", port, path, headers, ours_bodies)]
                if mlflow is not None:
                    targets.append(("mlflow", mlflow_port, "/invocations", {}, mlflow_bodies))
                for server, target_port, target_path, target_headers, bodies in targets:  # warm every worker
                    warm = run_client(port=target_port, path=target_path, headers=target_headers, bodies=bodies,
                                      requests=args.warmup, concurrency=max(args.concurrency), max_seconds=120)
                    if warm["errors"]:
                        raise RuntimeError(f"{server} fails during warm-up: {warm['first_errors']}")
                if mlflow is not None:
                    ctx["parity"][key] = parity(port, path, headers, mlflow_port, records[:PARITY_RECORDS])
                for concurrency in args.concurrency:
                    for server, target_port, target_path, target_headers, bodies in targets:
                        leader = (server_process if server == "ours" else mlflow).pid
                        cpu_server, cpu_db = cpu_seconds(leader=leader), cpu_seconds(postmaster=postmaster)
                        result = run_client(port=target_port, path=target_path, headers=target_headers, bodies=bodies,
                                            requests=args.requests, concurrency=concurrency,
                                            max_seconds=args.max_seconds)
                        result["summary"] = summary(result.pop("latencies"), result["wall_s"])
                        done_requests = max(1, result["summary"]["n"] + result["errors"])
                        result["server_cpu_ms"] = (cpu_seconds(leader=leader) - cpu_server) * 1000 / done_requests
                        result["db_cpu_ms"] = ((cpu_seconds(postmaster=postmaster) - cpu_db) * 1000 / done_requests
                                               if postmaster else None)
                        result["client_cpu_ms"] = result["client_cpu_s"] * 1000 / done_requests
                        ctx["http"][(key, server, concurrency)] = result
                        s = result["summary"]
                        print(f"  {key} {server:<6} {concurrency} client(s): p50 {fmt_ms(s.get('p50'))} ms, "
                              f"p99 {fmt_ms(s.get('p99'))} ms, {s.get('rps', 0):,.0f} req/s, server CPU "
                              f"{result['server_cpu_ms']:.2f} ms/req, "
                              f"{result['errors']} errors {result['first_errors'][:1] or ''}", flush=True)
            if mlflow is not None:
                processes.stop(mlflow)
        processes.stop_all()  # the server is not needed for the in-process part; its CPU is freed

        with phase(times, "in-process"):
            with schema_context(ORG):
                for key in keys:
                    ctx["local"][key] = in_process(ctx["versions"][key], records, token, args.in_process)
        ctx["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        ctx["phase_times"] = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in times.items())
        print_report(ctx)
    finally:
        processes.stop_all()
        if rate_limits_before is not None:
            restore_rate_limits(rate_limits_before)
        if "django" in sys.modules:
            try:
                from django.db import connections

                from models_registry.monitoring import stats_buffer

                stats_buffer.stop()  # writes what this process predicted, then its thread ends
                connections.close_all()
            except Exception as exc:  # the report matters more than the last monitoring rows
                print(f"(could not flush prediction stats: {exc})")
        if pg_handle is not None:
            pg_handle.cleanup()  # releases this process's handle; stops the server if it was the last one
        shutil.rmtree(workdir, ignore_errors=True)


def parity(port: int, path: str, headers: dict, mlflow_port: int, records: list[dict]) -> str:
    """Largest difference between the probabilities of the two servers, and whether the labels agree."""
    worst, labels_agree = 0.0, True
    for record in records:
        status, ours = http_json(port, "POST", path, {"records": [record]}, headers)
        status2, theirs = http_json(mlflow_port, "POST", "/invocations", {"dataframe_records": [record]}, {})
        if status != 200 or status2 != 200:
            return f"could not compare: ours {status} {str(ours)[:200]}, MLflow {status2} {str(theirs)[:200]}"
        probabilities = ours["probabilities"][0]
        classes = list(probabilities)
        mlflow_row = theirs["predictions"][0]
        worst = max(worst, max(abs(probabilities[c] - mlflow_row[i]) for i, c in enumerate(classes)))
        labels_agree &= ours["predictions"][0] == classes[max(range(len(classes)), key=lambda i: mlflow_row[i])]
    return f"max |probability difference| {worst:.1e} (ours rounds to 6 decimals); labels {'agree' if labels_agree else 'DIFFER'}"


if __name__ == "__main__":
    main()
