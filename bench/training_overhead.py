"""Wall time of one training job on the platform against bare scikit-learn doing the same work.

    .venv/bin/python bench/training_overhead.py                        # 50,000 rows, 20 trials, 5 folds
    .venv/bin/python bench/training_overhead.py --rows 5000 --trials 3  # a quick check that it all runs

The configuration: a random forest, a 20-trial random search, 5-fold cross-validation, a 20% held-out test
part, seed 42, on a synthetic 50,000-row table of 21 columns (16 numeric with 3% missing, 4 categorical of
4 to 300 values, a yes/no target; the generator of bench/batch.py), written as a CSV.

1. The platform, as a user meets it. Everything runs in a throwaway folder and is stopped and deleted at
   the end: its own embedded PostgreSQL (pgserver, a fresh data folder), ``manage.py setup_platform``, a
   throwaway organization made with ``manage.py create_organization``, then ``manage.py runserver
   --noreload`` on a free loopback port and ``manage.py qcluster``, both with the production settings
   (DEBUG off; the web server without persistent database connections, see ``platform_start``). Over
   HTTP, with a token from ``POST /api/v1/auth/token``: the CSV is uploaded, a small warm-up job runs
   first (so the worker process has imported scikit-learn, Optuna and ONNX like a worker that has been up
   for a while), then the measured job is started and polled every 0.2 s.
   Measured: from sending ``POST /api/v1/ml/training/start`` to seeing ``succeeded``. The job's own
   timestamps and log give where that time went (queue, load, search, refit, evaluation, importance,
   saving, ONNX, bookkeeping).
2. Bare scikit-learn, in a fresh subprocess with the same thread count as a platform job (THREADS_PER_JOB,
   also as OMP/BLAS limits): read the CSV, the same stratified split, the same preprocessing (median
   imputation of numbers; per categorical column a constant "(missing)" imputation and a one-hot encoder
   with min_frequency=5, max_categories=20), ``GridSearchCV`` over exactly the 20 parameter sets the
   platform's random search drew (read from the job's trials, so both fit the same forests), the same
   shuffled stratified 5 folds, ROC AUC, refit on the training part, ROC AUC and accuracy on the test part.
   Measured: from reading the CSV to the test scores (imports excluded).

Printed: both wall times, the ratio (goal: at most 1.15), the breakdown of the platform's time and the
per-trial cross-validation times of both sides. Other processes on the machine skew wall times; the share
of CPU busy before each side is printed so a noisy run can be recognised, and the CPU seconds of both
sides (platform: web server and worker process trees) are compared too, being less sensitive to it.
``--repeat N`` measures each side N times and compares the fastest runs.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from serving import Processes, cpu_busy, free_port, http_request, tail, wait_http  # noqa: E402  (shared bench helpers)

ORG = "bench-overhead"
HOST = f"{ORG}.localhost"
USERNAME = "bench-owner"
PASSWORD = secrets.token_urlsafe(16)
TARGET = "churn"
GOAL = 1.15

#: Stages the job logs (prefix of the log line -> name in the breakdown), in the order they happen.
STAGES = [
    ("loading dataset", "load the dataset (Parquet)"),
    ("preparing", "validate, split, plan preprocessing"),
    ("trial ", "search: cross-validation of every trial"),
    ("refitting best model", "refit the best parameters"),
    ("evaluating", "evaluate on the test part"),
    ("computing feature importance", "feature importance"),
    ("registering model version", "save the artifact (skops)"),
    ("compiling to ONNX", "ONNX export + parity check, register, finish"),
]

BARE = r"""
import json, sys, time
spec = json.load(sys.stdin)
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

threads, seed = spec["threads"], spec["seed"]
started, cpu_started = time.perf_counter(), time.process_time()
frame = pd.read_csv(spec["csv"])
y = frame.pop(spec["target"])
categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
numeric = [c for c in frame.columns if c not in categorical]
read_s = time.perf_counter() - started
X_train, X_test, y_train, y_test = train_test_split(frame, y, test_size=spec["test_size"], random_state=seed, stratify=y)
one_hot = lambda: Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                                      max_categories=20, sparse_output=False))])
preprocess = ColumnTransformer([("numeric", SimpleImputer(strategy="median"), numeric)]
                               + [(f"categorical_{i}", one_hot(), [c]) for i, c in enumerate(categorical)],
                               sparse_threshold=0.0)
pipeline = Pipeline([("preprocess", preprocess), ("model", RandomForestClassifier(n_jobs=threads, random_state=seed))])
grid = [{f"model__{k}": [v] for k, v in params.items()} for params in spec["candidates"]]
search = GridSearchCV(pipeline, grid, scoring="roc_auc", refit=True,
                      cv=StratifiedKFold(n_splits=spec["folds"], shuffle=True, random_state=seed))
with threadpool_limits(threads):
    search_started = time.perf_counter()
    search.fit(X_train, y_train)
    search_s = time.perf_counter() - search_started
    evaluate_started = time.perf_counter()
    proba = search.predict_proba(X_test)[:, list(search.classes_).index("yes")]
    test_auc = roc_auc_score(y_test == "yes", proba)
    accuracy = accuracy_score(y_test, search.predict(X_test))
    evaluate_s = time.perf_counter() - evaluate_started
total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
r = search.cv_results_
print(json.dumps({"seconds": total, "cpu_s": cpu, "read_s": read_s, "search_s": search_s - search.refit_time_,
                  "refit_s": search.refit_time_, "evaluate_s": evaluate_s, "test_roc_auc": test_auc,
                  "accuracy": accuracy, "best_cv": search.best_score_, "best_index": int(search.best_index_),
                  "trial_s": [(f + s) * spec["folds"] for f, s in zip(r["mean_fit_time"], r["mean_score_time"])],
                  "cv_mean": [float(v) for v in r["mean_test_score"]]}))
"""


# --- HTTP ----------------------------------------------------------------------------------------------

class Api:
    def __init__(self, port: int, revive=None):
        self.port, self.token, self.revive = port, None, revive

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                timeout: float = 600) -> tuple[int, dict | str]:
        try:
            return self._request(method, path, body, content_type, timeout)
        except (OSError, http.client.HTTPException):
            # On a shared machine someone may kill every runserver; the job lives on in the worker, so a
            # read is retried once on a new server (the measured times come from the job's own timestamps).
            if method != "GET" or self.revive is None or not self.revive():
                raise
            return self._request(method, path, body, content_type, timeout)

    def _request(self, method: str, path: str, body: bytes | None, content_type: str,
                 timeout: float) -> tuple[int, dict | str]:
        headers = {"Host": HOST, "Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return http_request(self.port, method, path, body, headers, timeout)

    def json(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        status, answer = self.request(method, path, json.dumps(body).encode() if body is not None else None)
        if status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {status}, expected {expect}: {str(answer)[:2000]}")
        return answer

    def upload(self, path: Path, name: str) -> dict:
        boundary = "bench-" + secrets.token_hex(8)
        body = b"".join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n".encode()])
        status, answer = self.request("POST", "/api/v1/ml/datasets", body, f"multipart/form-data; boundary={boundary}")
        if status != 201:
            raise RuntimeError(f"upload: HTTP {status}: {str(answer)[:2000]}")
        return answer


# --- the platform ---------------------------------------------------------------------------------------

def platform_env(database_url: str, media: Path) -> dict:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "mlplatform.settings.production", "DEBUG": "false",
            "SECRET_KEY": "bench-" + secrets.token_hex(24), "MODEL_SIGNING_KEY": secrets.token_hex(32),
            "DATABASE_URL": database_url, "MEDIA_ROOT": str(media), "SECURE_COOKIES": "false",
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)}


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def threads_per_job(env: dict) -> int:
    """THREADS_PER_JOB as the worker computes it (the settings module, read in a child with the same env)."""
    out = subprocess.run([sys.executable, "-c", "from mlplatform.settings import base; print(base.THREADS_PER_JOB)"],
                         env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


def wait_worker(api: Api, qcluster, log: Path, timeout_s: float = 120) -> None:
    """Until /healthz reports the job worker alive (a worker process has started and written its heartbeat)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if qcluster.poll() is not None:
            raise RuntimeError(f"qcluster exited with {qcluster.returncode}:\n{tail(log)}")
        status, answer = api.request("GET", "/healthz")
        if status == 200 and isinstance(answer, dict) and answer["worker"]["alive"]:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the worker did not come up in {timeout_s:.0f}s:\n{tail(log)}")


def run_job(api: Api, settings: dict, *, poll_s: float = 0.2, timeout_s: float = 7200) -> tuple[float, dict]:
    """Start a job and poll it; the wall time runs from sending the start request to seeing it succeed."""
    started, sent = time.perf_counter(), datetime.now(timezone.utc)
    job = api.json("POST", "/api/v1/ml/training/start", settings, expect=202)
    answered = datetime.now(timezone.utc)
    deadline = time.monotonic() + timeout_s
    while True:
        job = api.json("GET", f"/api/v1/ml/training/jobs/{job['id']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job['id']} still {job['status']} after {timeout_s:.0f}s")
        time.sleep(poll_s)
    wall, seen = time.perf_counter() - started, datetime.now(timezone.utc)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} ended {job['status']}: {job['error']}\n"
                           + "\n".join(line for _, line in job["log"][-15:]))
    job["client_times"] = (sent, answered, seen)
    return wall, job


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def breakdown(job: dict) -> list[tuple[str, float]]:
    """Where the platform's wall time went: the client's clock (same machine) and the job's own timestamps
    and stage log lines. The rows add up to the wall time."""
    sent, answered, seen = job["client_times"]
    started, finished = ts(job["started_at"]), ts(job["finished_at"])
    marks: list[tuple[datetime, str]] = []
    for when, line in job["log"]:
        for prefix, name in STAGES:
            if line.startswith(prefix) and (not marks or marks[-1][1] != name):
                marks.append((ts(when), name))
                break
    rows = [("start request (checks the data, queues the job)", (answered - sent).total_seconds()),
            ("queued, until the worker claims it", (started - answered).total_seconds())]
    points = [(started, "claimed: record versions, start the monitor")] + marks + [(finished, None)]
    for (when, name), (following, _) in zip(points, points[1:]):
        rows.append((name, (following - when).total_seconds()))
    rows.append(("finished, until the client sees it (0.2 s polls)", (seen - finished).total_seconds()))
    return rows


def trial_seconds(job: dict) -> list[float]:
    """Each trial's cross-validation time on the platform, from its first fold's log line to the next trial's."""
    starts, end = [], None
    for when, line in job["log"]:
        match = re.match(r"trial (\d+)/\d+, fold 1/", line)
        if match:
            starts.append(ts(when))
        elif starts and end is None and line.startswith("refitting best model"):
            end = ts(when)
    bounds = starts + [end or ts(job["finished_at"])]
    return [(b - a).total_seconds() for a, b in zip(bounds, bounds[1:])]


def synthetic_csv(folder: Path, rows: int) -> Path:
    import pandas as pd
    from batch import write_dataset  # 16 numeric (3% missing) + 4 categorical + a yes/no target

    parquet, path = folder / "table.parquet", folder / "bench-training.csv"
    write_dataset(parquet, rows)
    pd.read_parquet(parquet).to_csv(path, index=False)
    parquet.unlink()
    return path


def platform_start(state: dict, workdir: Path, processes: Processes) -> Api:
    """Database, schemas, organization, web server and worker: all in `workdir`, all recorded in `state` for cleanup."""
    import pgserver

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        state["pg"] = pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # its own, deleted at the end
    pg.psql('CREATE DATABASE "mlplatform";')
    env = platform_env(pg.get_uri("mlplatform"), workdir / "media")
    manage(env, "setup_platform")
    manage(env, "create_organization", "--name", "Bench overhead", "--slug", ORG,
           "--owner-username", USERNAME, "--owner-password", PASSWORD)
    state["threads"] = threads_per_job(env)
    port = free_port()
    server_log, worker_log = workdir / "runserver.log", workdir / "qcluster.log"
    runserver = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    # runserver runs each request in a new thread and never closes that thread's database connection; with
    # persistent connections (DB_CONN_MAX_AGE, 300 s by default) they pile up until PostgreSQL refuses more
    # ("too many clients") while we poll. The web side only answers polls here, so it opens one per request.
    web_env = {**env, "DB_CONN_MAX_AGE": "0"}
    server = processes.start("runserver", runserver, env=web_env, log=server_log)
    wait_http(port, "/healthz", HOST, server, server_log, 120)
    qcluster = processes.start("qcluster", [sys.executable, "manage.py", "qcluster"], env=env, log=worker_log)

    def revive() -> bool:
        nonlocal server
        if server.poll() is None:
            return False
        print(f"  ! the web server exited ({server.returncode}), started again on port {port}")
        processes.stop(server)
        server = processes.start("runserver", runserver, env=web_env, log=server_log)
        wait_http(port, "/healthz", HOST, server, server_log, 120)
        state["pids"][0] = server.pid
        state["revived"] = True  # the dead server's CPU seconds are lost from the platform's CPU figure
        return True

    api = Api(port, revive)
    wait_worker(api, qcluster, worker_log)
    state["pids"] = [server.pid, qcluster.pid]
    api.token = api.json("POST", "/api/v1/auth/token", {"username": USERNAME, "password": PASSWORD})["token"]
    print(f"  platform up in {time.perf_counter() - t:.1f}s (port {port}, {state['threads']} threads per job)")
    return api


def tree_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and all their children (web server, cluster and its workers)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def platform_runs(args, api: Api, csv_path: Path, state: dict) -> list[dict]:
    pids = state["pids"]
    t = time.perf_counter()
    dataset = api.upload(csv_path, "bench-training")
    print(f"  uploaded {csv_path.stat().st_size / 2**20:.1f} MB: {dataset['rows']:,} rows x {dataset['columns']} "
          f"columns in {time.perf_counter() - t:.1f}s")
    common = {"dataset_id": dataset["id"], "target": TARGET, "algorithm": "random_forest", "cv_folds": args.folds,
              "test_size": 0.2, "random_state": 42}
    warm_wall, _ = run_job(api, {**common, "model_name": "warm-up", "search": "none", "cv_folds": 2,
                                 "params": {"n_estimators": 10}})
    print(f"  warm-up job (10 trees, no search): {warm_wall:.1f}s")
    runs = []
    for i in range(args.repeat):
        busy = cpu_busy()
        cpu = tree_cpu_seconds(pids)
        wall, job = run_job(api, {**common, "model_name": "bench-forest", "search": "random", "n_trials": args.trials})
        runs.append({"wall": wall, "job": job, "busy": busy, "cpu_s": tree_cpu_seconds(pids) - cpu,
                     "revived": state.pop("revived", False)})
        print(f"  measured job {job['id']}: {wall:.1f}s")
    return runs


def bare_run(args, csv_path: Path, candidates: list[dict], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    spec = {"csv": str(csv_path), "target": TARGET, "candidates": candidates, "folds": args.folds,
            "test_size": 0.2, "seed": 42, "threads": threads}
    busy = cpu_busy()
    done = subprocess.run([sys.executable, "-c", BARE], input=json.dumps(spec), env=env, cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the bare scikit-learn run failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "busy": busy}


def report(platform: dict, bare: dict, args) -> float:
    job, wall = platform["job"], platform["wall"]
    result = job["result"]
    ratio = wall / bare["seconds"]
    print(f"\nWall time, same work ({len(result['trials'])} random-forest candidates x {args.folds} folds, refit, "
          "test evaluation):")
    print(f"  platform job (start request -> succeeded seen): {wall:8.1f} s   (CPU busy before: {platform['busy']:.0%})")
    print(f"  bare scikit-learn (read CSV -> test scores):     {bare['seconds']:8.1f} s   (CPU busy before: {bare['busy']:.0%})")
    print(f"  ratio: {ratio:.3f}  (goal <= {GOAL})  -> {'OK' if ratio <= GOAL else 'ABOVE GOAL'}")
    print(f"  CPU seconds (less sensitive to other load): platform {platform['cpu_s']:.1f} (web server + worker "
          f"processes), bare {bare['cpu_s']:.1f}; ratio {platform['cpu_s'] / bare['cpu_s']:.3f}"
          + (" (approximate: the web server was restarted)" if platform.get("revived") else ""))
    print(f"\n  test ROC AUC: platform {result['test_metrics']['scores']['roc_auc']:.4f}, bare {bare['test_roc_auc']:.4f}; "
          f"best CV ROC AUC: platform {result['cv_mean']:.4f} (trial {next(t['number'] for t in result['trials'] if t['cv_mean'] == result['cv_mean'])}), "
          f"bare {bare['best_cv']:.4f} (candidate {bare['best_index'] + 1})")

    print("\nWhere the platform's time went:")
    rows = breakdown(job)
    for name, seconds in rows:
        print(f"  {name:<48} {seconds:8.2f} s  {seconds / wall:6.1%}")
    print(f"  {'(sum)':<48} {sum(s for _, s in rows):8.2f} s")
    print("\nThe bare run's parts:")
    for key, name in (("read_s", "read the CSV"), ("search_s", "search: cross-validation"),
                      ("refit_s", "refit the best parameters"), ("evaluate_s", "evaluate on the test part")):
        print(f"  {name:<48} {bare[key]:8.2f} s")

    ours = trial_seconds(job)
    print(f"\nCross-validation time per trial ({args.folds} fits + {args.folds} scorings), platform vs bare:")
    print("   #  n_estimators max_depth min_leaf max_features   platform     bare   ratio")
    for i, (trial, theirs) in enumerate(zip(result["trials"], bare["trial_s"])):
        p = trial["params"]
        mine = ours[i] if i < len(ours) else float("nan")
        print(f"  {trial['number']:2d}  {p['n_estimators']:12} {str(p['max_depth']):>9} {p['min_samples_leaf']:8} "
              f"{str(p['max_features']):>12} {mine:9.2f}s {theirs:7.2f}s {mine / theirs:7.2f}")
    print(f"  sum {'':44} {sum(ours):9.2f}s {sum(bare['trial_s']):7.2f}s {sum(ours) / sum(bare['trial_s']):7.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the synthetic table (default 50,000)")
    parser.add_argument("--trials", type=int, default=20, help="random-search trials (default 20)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs of each side (the fastest are compared)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs) at the end")
    args = parser.parse_args()

    def terminate(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, terminate)

    workdir = Path(tempfile.mkdtemp(prefix="bench-training-"))
    processes = Processes()
    state: dict = {}
    try:
        print(f"Working folder {workdir}; CPU busy now: {cpu_busy():.0%} of {os.cpu_count()} cores")
        csv_path = synthetic_csv(workdir, args.rows)
        print(f"Platform ({args.rows:,} rows, random forest, {args.trials}-trial random search, {args.folds}-fold CV):")
        api = platform_start(state, workdir, processes)
        runs = platform_runs(args, api, csv_path, state)
        processes.stop_all()  # nothing of the platform runs while the bare side is measured
        candidates = [t["params"] for t in runs[0]["job"]["result"]["trials"]]
        bares = []
        for i in range(args.repeat):
            bares.append(bare_run(args, csv_path, candidates, state["threads"]))
            print(f"Bare scikit-learn run {i + 1}: {bares[-1]['seconds']:.1f}s")
        report(min(runs, key=lambda r: r["wall"]), min(bares, key=lambda b: b["seconds"]), args)
    finally:
        processes.stop_all()
        if state.get("pg") is not None:
            state["pg"].cleanup()  # stops the server and deletes its data folder
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
