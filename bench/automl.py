"""Our AutoML against FLAML, a default random forest and a default XGBoost, on real datasets.

    .venv/bin/python bench/automl.py                    # every dataset, 60 s each
    .venv/bin/python bench/automl.py --budget 30 --datasets wine,fair
    .venv/bin/python bench/automl.py --skip-flaml       # ours and the defaults only

FLAML lives in its own virtualenv, ``bench/.flaml-venv`` (git-ignored), with the packages
that ship the datasets; create it once with

    python3 -m venv bench/.flaml-venv && bench/.flaml-venv/bin/pip install 'flaml[automl]' statsmodels palmerpenguins

That virtualenv writes every dataset as CSV (scikit-learn's bundled sets, ``palmerpenguins``,
tables shipped inside ``statsmodels``; nothing is downloaded), with a few missing values
injected deterministically where a table has none. Each dataset is split once (75/25,
stratified for classification, seed 0) and every contender gets the same training and test
rows, the same wall-clock budget and 2 threads, each in a fresh process:

- ours: ``run_automl`` (main virtualenv) with ``refit_on_all_rows``: the registered model is fitted
  again on every row it was given after its internal evaluation, as FLAML retrains on the full data
  (its ``retrain_full`` default) and the defaults below fit on all of it;
- FLAML: ``AutoML.fit(time_budget=...)`` with object columns as pandas categories;
- rf / xgb: library defaults behind the platform's preprocessing.

Scores on the test rows: ROC AUC (binary), log loss (multiclass), RMSE (regression); the
same metric is what ours and FLAML optimise. ``vs FLAML`` is ours relative to FLAML, with
> 1 meaning ours is better (ratio of AUCs; FLAML's loss or RMSE over ours).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"
FLAML_PYTHON = REPO / "bench" / ".flaml-venv" / "bin" / "python"
METRICS = {"binary": ("roc_auc", True), "multiclass": ("log_loss", False), "regression": ("rmse", False)}
THREADS = 2
SEED = 0


# --- datasets (run in the FLAML virtualenv, which has statsmodels and palmerpenguins) ------------

def _datasets() -> dict:
    """name -> (frame, target, problem type). Only packages' own files: no download."""
    import numpy as np
    import pandas as pd
    import palmerpenguins
    import statsmodels.api as sm
    from sklearn import datasets as skd

    def bundled(loader, problem, labels=None):
        frame = loader(as_frame=True).frame
        if labels:
            frame["target"] = frame["target"].map(labels)
        return frame, "target", problem

    fair = sm.datasets.fair.load_pandas().data
    fair["had_affair"] = np.where(fair.pop("affairs") > 0, "yes", "no")
    for column in ("occupation", "occupation_husb"):
        fair[column] = "occ" + fair[column].astype(int).astype(str)
    anes = sm.datasets.anes96.load_pandas().data.drop(columns=["logpopul"])
    anes["vote"] = anes["vote"].map({0.0: "clinton", 1.0: "dole"})
    star = sm.datasets.star98.load_pandas().data
    star["share_above"] = star["NABOVE"] / (star.pop("NABOVE") + star.pop("NBELOW"))
    grunfeld = sm.datasets.grunfeld.load_pandas().data
    randhie = sm.datasets.randhie.load_pandas().data
    return {
        "breast_cancer": bundled(skd.load_breast_cancer, "binary", {0: "malignant", 1: "benign"}),
        "fair": (fair, "had_affair", "binary"),
        "anes96": (anes, "vote", "binary"),
        "wine": bundled(skd.load_wine, "multiclass", {0: "a", 1: "b", 2: "c"}),
        "digits": bundled(skd.load_digits, "multiclass"),
        "penguins": (palmerpenguins.load_penguins(), "species", "multiclass"),
        "diabetes": bundled(skd.load_diabetes, "regression"),
        "star98": (star, "share_above", "regression"),
        "grunfeld": (grunfeld, "invest", "regression"),
        "randhie": (randhie, "mdvis", "regression"),
    }


def _inject_missing(frame, target: str, seed: int = SEED):
    """Blank 5 % of three numeric columns when the table has no missing value at all."""
    import numpy as np

    if frame.drop(columns=[target]).isna().any().any():
        return frame
    rng = np.random.default_rng(seed)
    numeric = [c for c in frame.columns if c != target and frame[c].dtype.kind == "f"][:3]
    for column in numeric:
        rows = rng.choice(len(frame), size=max(1, len(frame) // 20), replace=False)
        frame.loc[frame.index[rows], column] = np.nan
    return frame


def export(folder: Path, names: list[str]) -> None:
    from sklearn.model_selection import train_test_split

    catalog = {}
    for name, (frame, target, problem) in _datasets().items():
        if names and name not in names:
            continue
        frame = _inject_missing(frame.reset_index(drop=True), target)
        train, test = train_test_split(frame, test_size=0.25, random_state=SEED,
                                       stratify=frame[target] if problem != "regression" else None)
        train.to_csv(folder / f"{name}.train.csv", index=False)
        test.to_csv(folder / f"{name}.test.csv", index=False)
        catalog[name] = {"target": target, "problem": problem, "rows": len(frame), "columns": frame.shape[1] - 1,
                         "missing": int(frame.isna().sum().sum()),
                         "categorical": int(sum(frame[c].dtype == object for c in frame.columns if c != target))}
    (folder / "catalog.json").write_text(json.dumps(catalog, indent=1))


# --- scoring, shared by every contender ----------------------------------------------------------

def _score(problem: str, y_true, prediction, classes) -> float:
    import numpy as np
    from sklearn import metrics

    if problem == "binary":
        return float(metrics.roc_auc_score(np.asarray(y_true) == classes[1], prediction[:, 1]))
    if problem == "multiclass":
        return float(metrics.log_loss(y_true, prediction, labels=list(classes)))
    return float(np.sqrt(metrics.mean_squared_error(y_true, prediction)))


def _load(folder: Path, name: str, target: str, problem: str):
    import pandas as pd

    train, test = pd.read_csv(folder / f"{name}.train.csv"), pd.read_csv(folder / f"{name}.test.csv")
    if problem != "regression":  # labels as text everywhere, so classes sort the same for every contender
        train[target], test[target] = train[target].astype(str), test[target].astype(str)
    return train, test


# --- contenders (each runs in its own process) --------------------------------------------------

def run_ours(train, test, target: str, problem: str, budget: float) -> dict:
    sys.path.insert(0, str(REPO))
    from training.ml.automl import AutoMLConfig, run_automl

    metric = METRICS[problem][0]
    result = run_automl(train, AutoMLConfig(target=target, metric=metric, time_budget_s=budget,
                                            n_threads=THREADS, random_state=SEED, refit_on_all_rows=True))
    X = test.drop(columns=[target])
    if problem == "regression":
        prediction = result.pipeline.predict(X)
    else:
        prediction = result.pipeline.predict_proba(X)
    candidates = [row for row in result.leaderboard if row["number"] is not None]
    return {"score": _score(problem, test[target], prediction, result.classes),
            "model": result.algorithm, "cv": result.cv_mean, "candidates": len(candidates),
            "ensemble": result.ensemble.get("members") if result.ensemble.get("chosen") else None,
            "timings": result.timings}


def run_flaml(train, test, target: str, problem: str, budget: float) -> dict:
    import numpy as np
    from flaml import AutoML

    def frame(df):
        X = df.drop(columns=[target]).copy()
        for column in X.columns:
            if X[column].dtype == object:
                X[column] = X[column].astype("category")
        return X

    automl = AutoML()
    automl.fit(frame(train), train[target], task="regression" if problem == "regression" else "classification",
               metric=METRICS[problem][0], time_budget=budget, n_jobs=THREADS, seed=SEED, verbose=0)
    X = frame(test)
    for column in X.columns:  # the same categories as in training
        if str(X[column].dtype) == "category":
            X[column] = X[column].cat.set_categories(frame(train)[column].cat.categories)
    if problem == "regression":
        prediction = automl.predict(X)
        classes = None
    else:
        prediction = automl.predict_proba(X)
        classes = np.asarray(automl.classes_)
    return {"score": _score(problem, test[target], prediction, classes), "model": automl.best_estimator,
            "cv": None, "candidates": None, "ensemble": None}


def _default_model(kind: str, problem: str):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from xgboost import XGBClassifier, XGBRegressor

    sys.path.insert(0, str(REPO))
    from training.ml.wrappers import LabelEncodedClassifier

    if kind == "rf":
        model_class = RandomForestRegressor if problem == "regression" else RandomForestClassifier
        return model_class(n_jobs=THREADS, random_state=SEED)
    if problem == "regression":
        return XGBRegressor(n_jobs=THREADS, random_state=SEED)
    return LabelEncodedClassifier(XGBClassifier(n_jobs=THREADS, random_state=SEED))


def run_default(kind: str):
    def run(train, test, target: str, problem: str, budget: float) -> dict:
        sys.path.insert(0, str(REPO))
        from training.ml.preprocess import plan_preprocessing
        from training.ml.search import build_pipeline

        X, y = train.drop(columns=[target]), train[target]
        plan = plan_preprocessing(X, scale_numeric=False)
        pipeline = build_pipeline(plan.transformer, _default_model(kind, problem)).fit(X[plan.used_columns], y)
        X_test = test[plan.used_columns]
        prediction = pipeline.predict(X_test) if problem == "regression" else pipeline.predict_proba(X_test)
        classes = None if problem == "regression" else pipeline.classes_
        return {"score": _score(problem, test[target], prediction, classes), "model": kind, "cv": None,
                "candidates": 1, "ensemble": None}
    return run


CONTENDERS = {"ours": (MAIN_PYTHON, run_ours), "flaml": (FLAML_PYTHON, run_flaml),
              "rf": (MAIN_PYTHON, run_default("rf")), "xgb": (MAIN_PYTHON, run_default("xgb"))}


def child(contender: str, folder: Path, name: str, budget: float) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    catalog = json.loads((folder / "catalog.json").read_text())[name]
    train, test = _load(folder, name, catalog["target"], catalog["problem"])
    started = time.monotonic()
    out = CONTENDERS[contender][1](train, test, catalog["target"], catalog["problem"], budget)
    out["wall_s"] = round(time.monotonic() - started, 1)
    print("RESULT " + json.dumps(out))


def _spawn(contender: str, folder: Path, name: str, budget: float) -> dict:
    python = CONTENDERS[contender][0]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONWARNINGS": "ignore"}
    command = [str(python), str(Path(__file__).resolve()), "--child", contender, "--folder", str(folder),
               "--datasets", name, "--budget", str(budget)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"score": None, "error": " | ".join(tail)}
    return json.loads(lines[-1][len("RESULT "):])


def _relative(problem: str, ours: float | None, other: float | None) -> float | None:
    if ours is None or other is None or ours == 0 or other == 0:
        return None
    return ours / other if METRICS[problem][1] else other / ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per dataset and contender")
    parser.add_argument("--datasets", default="", help="comma-separated names (default: all)")
    parser.add_argument("--skip-flaml", action="store_true")
    parser.add_argument("--export", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    names = [n for n in args.datasets.split(",") if n]
    if args.export:
        export(Path(args.export), names)
        return
    if args.child:
        child(args.child, Path(args.folder), names[0], args.budget)
        return
    if not FLAML_PYTHON.exists():
        sys.exit(f"missing {FLAML_PYTHON}; see the module docstring for how to create it")

    contenders = [c for c in CONTENDERS if not (args.skip_flaml and c == "flaml")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([str(FLAML_PYTHON), str(Path(__file__).resolve()), "--export", tmp,
                        "--datasets", ",".join(names)], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        catalog = json.loads((folder / "catalog.json").read_text())
        results = {}
        header = (f"{'dataset':<14}{'task':<11}{'rows':>6}{'cols':>5} {'metric':<9}"
                  + "".join(f"{c:>10}" for c in contenders) + f"{'vs FLAML':>10}{'vs RF':>8}  our model")
        print(f"budget {args.budget:g} s per contender, {THREADS} threads\n" + header, flush=True)
        for name, info in catalog.items():
            row = {c: _spawn(c, folder, name, args.budget) for c in contenders}
            results[name] = {**info, **row}
            problem = info["problem"]
            cells = "".join(f"{row[c]['score']:>10.4f}" if row[c]["score"] is not None else f"{'error':>10}"
                            for c in contenders)
            vs_flaml = _relative(problem, row["ours"]["score"], row.get("flaml", {}).get("score"))
            vs_rf = _relative(problem, row["ours"]["score"], row["rf"]["score"])
            results[name]["vs_flaml"], results[name]["vs_rf"] = vs_flaml, vs_rf
            model = row["ours"].get("model") or row["ours"].get("error", "")
            print(f"{name:<14}{problem:<11}{info['rows']:>6}{info['columns']:>5} {METRICS[problem][0]:<9}{cells}"
                  f"{(f'{vs_flaml:.4f}' if vs_flaml else '-'):>10}{(f'{vs_rf:.4f}' if vs_rf else '-'):>8}  {model}"
                  f" ({row['ours'].get('wall_s', '?')} s, FLAML {row.get('flaml', {}).get('wall_s', '-')} s)",
                  flush=True)
            for contender in contenders:
                if row[contender].get("error"):
                    print(f"    {contender}: {row[contender]['error']}", flush=True)
        ratios = [r["vs_flaml"] for r in results.values() if r.get("vs_flaml")]
        rf_ratios = [r["vs_rf"] for r in results.values() if r.get("vs_rf")]
        if ratios:
            print(f"\nvs FLAML: median {statistics.median(ratios):.4f}, ours better or equal on "
                  f"{sum(r >= 1 for r in ratios)}/{len(ratios)} datasets")
        if rf_ratios:
            print(f"vs default RF: worst {min(rf_ratios):.4f}, ours better or equal on "
                  f"{sum(r >= 1 for r in rf_ratios)}/{len(rf_ratios)} datasets")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
