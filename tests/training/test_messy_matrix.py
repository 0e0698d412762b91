"""The messy-table matrix: tables written the way people write them, end to end through the API.

Each case builds, in the test, a table's *meaning* (a correctly typed DataFrame) and the messy file a person
would write for it (dates as dd.mm.yyyy, numbers with decimal commas, yes/no, unicode names ...). Then:

1. the upload's profile reads every messy column right (kind and format, ambiguity flagged);
2. a model trained on it through the API scores what plain scikit-learn scores on the correctly typed copy:
   the same split, the same estimator and settings, the same encodings, computed here (never a literal);
3. real-time (the API, records sent as the file writes them), batch (the file uploaded as a batch input) and
   evaluation answer alike: labels identical, probabilities within 1e-6, values within 1e-6 of the target's
   spread on the test split (``onnx_export.PARITY_TOLERANCE``), whichever engine each route uses.

``pytest tests/training/test_messy_matrix.py -s`` prints the matrix table; ``bench/messy_matrix.py`` runs this
module and prints it for a closing note (it sets ``MESSY_MATRIX_TABLE`` to a file the rows are written to).
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from django_tenants.utils import schema_context
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.impute import SimpleImputer
from xgboost import XGBRegressor

from tests.conftest import train_version
from tests.training.conftest import upload

N = 160
TOLERANCE = 1e-6
TABLE: list[dict] = []


# --- the cases -----------------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    truth: pd.DataFrame  # what the table means, correctly typed
    messy: pd.DataFrame  # the same table as text, the way the file writes it
    target: str
    algorithm: str
    expect: dict[str, tuple]  # column -> (kind, format or None, ambiguous)
    params: dict = field(default_factory=dict)
    delimiter: str = ","
    choose: dict | None = None  # a PATCH of the dataset before training (the user settles an ambiguity)
    column_kinds: dict | None = None  # the job's own kinds
    change: Callable[[pd.DataFrame], pd.DataFrame] | None = None  # the rows to predict, as written
    warnings: set = field(default_factory=set)  # (column, code) the predictions must warn about
    engine: str | None = None  # the real-time engine the version must end up with, when it matters

    def file(self, frame: pd.DataFrame | None = None) -> bytes:
        buffer = io.StringIO()
        (self.messy if frame is None else frame).to_csv(buffer, index=False, sep=self.delimiter,
                                                        quoting=csv.QUOTE_MINIMAL)
        return buffer.getvalue().encode()


def _dates(rng, n, *, max_day=28) -> pd.Series:
    days = rng.integers(1, max_day + 1, n)
    months = rng.integers(1, 13, n)
    return pd.to_datetime(pd.DataFrame({"year": rng.choice([2023, 2024], n), "month": months, "day": days}))


def _date_case(case_id: str, written: str, *, max_day=28, expect_format: str, ambiguous=False, choose=None) -> Case:
    rng = np.random.default_rng(sum(map(ord, case_id)))
    when = _dates(rng, N, max_day=max_day)
    x = rng.uniform(-2, 2, N).round(3)
    y = (3 * when.dt.month + 0.5 * when.dt.day + 2 * x + rng.normal(0, 0.5, N)).round(3)
    truth = pd.DataFrame({"when": when, "x": x, "y": y})
    messy = pd.DataFrame({"when": when.dt.strftime(written), "x": x.astype(str), "y": y.astype(str)})
    return Case(case_id, truth, messy, "y", "ridge", {"when": ("datetime", expect_format, ambiguous)},
                choose=choose)


def _numbers_case() -> Case:
    rng = np.random.default_rng(5)
    amount = rng.uniform(10, 900, N).round(2)
    big = rng.uniform(1000, 90000, N).round(2)
    y = (amount * 2 + big / 100 + rng.normal(0, 5, N)).round(2)
    truth = pd.DataFrame({"amount": amount, "big": big, "price": y})
    comma = lambda v: f"{v:.2f}".replace(".", ",")  # noqa: E731
    dotted = lambda v: f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")  # noqa: E731
    messy = pd.DataFrame({"amount": [comma(v) for v in amount], "big": [dotted(v) for v in big],
                          "price": [comma(v) for v in y]})
    return Case("decimal-comma", truth, messy, "price", "ridge", delimiter=";", expect={
        "amount": ("numeric", "decimal_comma", False), "big": ("numeric", "dot_thousands", False),
        "price": ("numeric", "decimal_comma", False)})


def _thousands_case() -> Case:
    rng = np.random.default_rng(6)
    revenue = rng.uniform(1000, 900000, N).round(2)
    staff = rng.uniform(1000, 50000, N).round(1)
    y = (revenue / 1000 + staff / 500 + rng.normal(0, 3, N)).round(2)
    truth = pd.DataFrame({"revenue": revenue, "staff": staff, "profit": y})
    messy = pd.DataFrame({"revenue": [f"{v:,.2f}" for v in revenue],
                          "staff": [f"{v:,.1f}".replace(",", " ") for v in staff], "profit": y.astype(str)})
    # histogram gradient boosting: its batch and evaluation answers come from its ONNX graph, measured faster
    return Case("thousands-separators", truth, messy, "profit", "hist_gradient_boosting", params={"max_iter": 30},
                expect={
        "revenue": ("numeric", "comma_thousands", False), "staff": ("numeric", "space_thousands", False)})


def _boolean_case() -> Case:
    rng = np.random.default_rng(7)
    member, active, opted, paid = (rng.choice([True, False], N) for _ in range(4))
    score = 1.5 * member - active + 0.8 * opted + paid + rng.normal(0, 0.7, N)
    label = np.where(score > 0.6, "churn", "stay")
    truth = pd.DataFrame({"member": member, "active": active, "opted_in": opted, "paid": paid, "label": label})
    spell = lambda values, yes, no: [rng.choice(yes) if v else rng.choice(no) for v in values]  # noqa: E731
    messy = pd.DataFrame({"member": spell(member, ["yes", "Yes", "YES"], ["no", "No"]),
                          "active": spell(active, ["true", "TRUE"], ["false", "False"]),
                          "opted_in": np.where(opted, "1", "0"), "paid": spell(paid, ["y", "Y"], ["n", "N"]),
                          "label": label})
    return Case("booleans", truth, messy, "label", "logistic_regression", expect={
        "member": ("boolean", None, False), "active": ("boolean", None, False),
        "opted_in": ("boolean", None, False), "paid": ("boolean", None, False)})


def _integer_codes_case() -> Case:
    rng = np.random.default_rng(8)
    region = rng.integers(1, 6, N)
    effect = np.array([0, 5.0, -3.0, 8.0, 1.0, -6.0])  # not in the order of the codes
    x = rng.normal(size=N).round(3)
    y = (effect[region] + x + rng.normal(0, 0.3, N)).round(3)
    truth = pd.DataFrame({"region": region.astype(str), "x": x, "y": y})
    messy = pd.DataFrame({"region": region.astype(str), "x": x.astype(str), "y": y.astype(str)})
    return Case("integer-coded-categories", truth, messy, "y", "ridge", column_kinds={"region": "categorical"},
                expect={"region": ("numeric", "plain", False)})


def _unicode_case() -> Case:
    rng = np.random.default_rng(9)
    size = rng.uniform(20, 200, N).round(1)
    town = rng.choice(["Zürich", "Malmö", "Łódź", "São Paulo"], N)
    y = (size * 3 + (town == "Zürich") * 40 + rng.normal(0, 4, N)).round(2)
    truth = pd.DataFrame({"Größe (m²)": size, "ville/city ✓": town, "résultat €": y})
    messy = pd.DataFrame({"Größe (m²)": size.astype(str), "ville/city ✓": town, "résultat €": y.astype(str)})
    return Case("unicode-names", truth, messy, "résultat €", "ridge", expect={
        "Größe (m²)": ("numeric", "plain", False), "ville/city ✓": ("categorical", None, False)})


def _large_target_case() -> Case:
    rng = np.random.default_rng(10)
    x = rng.uniform(0, 1, N).round(4)
    y = (1e9 + 1000 * x + rng.normal(0, 1, N)).round(2)
    truth = pd.DataFrame({"x": x, "y": y})
    messy = pd.DataFrame({"x": x.astype(str), "y": y.astype(str)})
    # XGBoost's ONNX graph computes in single precision: near 1e9 it cannot agree within 1e-6 of the spread,
    # so the version must serve real-time predictions natively, and say why
    return Case("large-magnitude-target", truth, messy, "y", "xgboost", params={"n_estimators": 50},
                expect={"y": ("numeric", "plain", False)}, engine="native")


def _unseen_case() -> Case:
    rng = np.random.default_rng(11)
    city = rng.choice(["oslo", "bergen", "tromsø"], N)
    x = rng.normal(size=N).round(3)
    label = np.where((city == "oslo") * 1.5 + x + rng.normal(0, 0.5, N) > 0.7, "buy", "wait")
    truth = pd.DataFrame({"city": city, "x": x, "label": label})
    messy = pd.DataFrame({"city": city, "x": x.astype(str), "label": label})

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[0, "city"], frame.loc[1, "city"] = "Oslo", "Stavanger"  # a case difference, a city never seen
        frame.loc[2, "x"] = "250"  # far outside -3 .. 3
        return frame

    return Case("unseen-categories", truth, messy, "label", "logistic_regression", change=change,
                expect={"city": ("categorical", None, False)},
                warnings={("city", "unseen_category"), ("x", "out_of_range")})


CASES = [
    _date_case("iso-dates", "%Y-%m-%d", expect_format="iso8601"),
    _date_case("dd.mm.yyyy-dates", "%d.%m.%Y", expect_format="dd.mm.yyyy"),
    _date_case("mm/dd/yyyy-dates", "%m/%d/%Y", expect_format="mm/dd/yyyy"),
    _date_case("ambiguous-dates", "%d/%m/%Y", max_day=12, expect_format="mm/dd/yyyy", ambiguous=True,
               choose={"column_readings": {"when": {"format": "dd/mm/yyyy"}}}),
    _numbers_case(),
    _thousands_case(),
    _boolean_case(),
    _integer_codes_case(),
    _unicode_case(),
    _large_target_case(),
    _unseen_case(),
]


# --- plain scikit-learn on the correctly typed copy ----------------------------------------------------

def _date_parts(X: pd.DataFrame) -> np.ndarray:
    return np.column_stack([getattr(X[c].dt, part).to_numpy(dtype=float) for c in X.columns
                            for part in ("year", "month", "day", "day_of_week", "hour")])


def plain_pipeline(kinds: dict[str, str], algorithm: str, params: dict, classification: bool) -> Pipeline:
    """The same encodings and estimator settings as the platform's, written with scikit-learn alone."""
    scale = algorithm in ("ridge", "logistic_regression")
    scaled = [("scale", StandardScaler())] if scale else []
    of = lambda kind: [c for c, k in kinds.items() if k == kind]  # noqa: E731
    parts = []
    if of("numeric"):
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), *scaled]), of("numeric")))
    if of("boolean"):
        parts.append(("boolean", FunctionTransformer(lambda X: X.astype(float)), of("boolean")))
    if of("datetime"):
        parts.append(("datetime", Pipeline([("parts", FunctionTransformer(_date_parts)), *scaled]), of("datetime")))
    parts += [(f"categorical_{i}", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                                  max_categories=20, sparse_output=False), [c])
              for i, c in enumerate(of("categorical"))]
    estimators = {
        "ridge": lambda: Ridge(alpha=params["alpha"], random_state=42),
        "logistic_regression": lambda: LogisticRegression(C=params["C"], class_weight=params["class_weight"],
                                                          max_iter=params["max_iter"], random_state=42),
        "xgboost": lambda: XGBRegressor(**params, tree_method="hist", random_state=42, n_jobs=1),
        "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(**params, random_state=42),
    }
    return Pipeline([("features", ColumnTransformer(parts)), ("model", estimators[algorithm]())])


SCORES = {
    "rmse": lambda y, pred, proba, classes: float(np.sqrt(skm.mean_squared_error(y, pred))),
    "roc_auc": lambda y, pred, proba, classes: float(skm.roc_auc_score(y == classes[1], proba[:, 1])),
}


# --- the routes --------------------------------------------------------------------------------------------

def realtime(org, version_id: int, rows: pd.DataFrame) -> dict:
    records = [{k: (None if v == "" else v) for k, v in row.items()} for row in rows.to_dict("records")]
    response = org.client("viewer").post(f"/api/v1/ml/models/{version_id}/predict", {"records": records},
                                         format="json")
    assert response.status_code == 200, response.content
    return response.json()


def batch(org, case: Case, version_id: int, rows: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    from models_registry.batch import run_batch

    response = org.client("editor").post("/api/v1/ml/batch-predict", {
        "model_version_id": version_id, "file": io.BytesIO(case.file(rows))}, format="multipart")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    with schema_context(org.schema):
        assert run_batch(job_id) == "succeeded"
    job = org.client("viewer").get(f"/api/v1/ml/batch-predict/{job_id}").json()
    content = b"".join(org.client("viewer").get(job["download_url"]).streaming_content).decode()
    return pd.read_csv(io.StringIO(content), keep_default_na=False), job


def evaluate(org, version_id: int, dataset_id: int) -> dict:
    response = org.client("editor").post(f"/api/v1/ml/models/{version_id}/evaluate", {"dataset_id": dataset_id},
                                         format="json")
    assert response.status_code == 201, response.content
    return response.json()["evaluations"][0]


def _read(profile: dict, expect: dict) -> str:
    """What was read, for the table: column -> kind and format."""
    columns = {c["name"]: c for c in profile["columns"]}
    shown = []
    for name in expect:
        reading = columns[name].get("reading") or {}
        fmt = reading.get("date_format") or (reading.get("number_format") if reading.get("kind") == "numeric" else None)
        flags = " ambiguous" if reading.get("alternatives") else ""
        shown.append(f"{name}: {columns[name]['kind']}{f' {fmt}' if fmt and fmt != 'plain' else ''}{flags}")
    return "; ".join(shown)


# --- the test -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_messy_table(acme, committed, case):
    # Given the messy file, uploaded
    response = upload(acme, case.file(), filename=f"{case.id}.csv", name=f"matrix-{case.id}")
    assert response.status_code == 201, response.content
    dataset = response.json()

    # Then the profile reads every messy column right, and flags what it cannot decide
    profile = {c["name"]: c for c in dataset["profile"]["columns"]}
    for name, (kind, fmt, ambiguous) in case.expect.items():
        reading = profile[name]["reading"]
        assert profile[name]["kind"] == kind, (name, profile[name])
        if fmt is not None:
            assert fmt in (reading.get("number_format"), reading.get("date_format")), (name, reading)
        assert bool(reading.get("alternatives")) is ambiguous, (name, reading)
    read = _read(dataset["profile"], case.expect)
    if case.column_kinds:
        read += "; declared in the job: " + ", ".join(f"{c}: {k}" for c, k in case.column_kinds.items())
    if case.choose:
        chosen = acme.client("editor").patch(f"/api/v1/ml/datasets/{dataset['id']}", case.choose, format="json")
        assert chosen.status_code == 200, chosen.content
        read += f" -> chosen: {_read(chosen.json()['profile'], case.expect).split(': ', 1)[1]}"

    # When a model is trained on it through the API
    version = train_version(acme, dataset["id"], target=case.target, model_name=f"matrix-{case.id}",
                            algorithm=case.algorithm, params=case.params, cv_folds=2,
                            **({"column_kinds": case.column_kinds} if case.column_kinds else {}))
    classification = version["problem_type"] != "regression"
    if case.engine:
        assert version["serving_engine"] == case.engine, version["onnx_check"]
        assert "single precision" in version["onnx_check"]["reason"]
    assert version["problem_type"] == ("regression" if case.truth[case.target].dtype.kind == "f" else "binary")

    # Then it scores what plain scikit-learn scores on the correctly typed copy (same split, same settings)
    kinds = {c["name"]: c["kind"] for c in version["feature_schema"]}
    X, y = case.truth[list(kinds)], case.truth[case.target]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42,
                                                        stratify=y if classification else None)
    plain = plain_pipeline(kinds, case.algorithm, version["params"], classification).fit(X_train, y_train)
    metric = version["cv"]["metric"]
    proba = plain.predict_proba(X_test) if classification else None
    plain_score = SCORES[metric](y_test.to_numpy(), plain.predict(X_test), proba, plain.classes_ if classification
                                 else None)
    ours = version["metrics"]["scores"][metric]
    assert ours == pytest.approx(plain_score, rel=1e-6, abs=1e-9), (ours, plain_score)

    # And real-time, batch and evaluation answer alike on the rows as the file writes them
    rows = case.messy if case.change is None else case.change(case.messy)
    features = rows.drop(columns=[case.target])
    answer = realtime(acme, version["id"], features)
    output, job = batch(acme, case, version["id"], rows)
    eval_dataset = dataset if case.change is None else upload(acme, case.file(rows), name=f"matrix-{case.id}-eval").json()
    evaluation = evaluate(acme, version["id"], eval_dataset["id"])
    spread = version["target_schema"].get("std_test")
    if classification:
        assert answer["predictions"] == output["prediction"].astype(str).tolist()
        rt_proba = np.array([[p[c] for c in version["classes"]] for p in answer["probabilities"]])
        batch_proba = output[[f"proba_{c}" for c in version["classes"]]].to_numpy(dtype=float)
        worst = float(np.max(np.abs(rt_proba - batch_proba)))
        assert worst <= TOLERANCE, worst
        from training.ml.metrics import classification_report
        from_batch = classification_report(case.truth[case.target].to_numpy(), output["prediction"].to_numpy(),
                                           batch_proba, np.asarray(version["classes"], dtype=object))["scores"]
    else:
        rt_values, batch_values = np.array(answer["predictions"]), output["prediction"].to_numpy(dtype=float)
        worst = float(np.max(np.abs(rt_values - batch_values)))
        assert worst <= TOLERANCE * spread, (worst, spread, version["serving_engine"])
        from training.ml.metrics import regression_report
        from_batch = regression_report(case.truth[case.target].to_numpy(), batch_values)["scores"]
    for key, value in evaluation["scores"].items():
        if value is not None:
            assert value == pytest.approx(from_batch[key], rel=1e-9, abs=1e-12), key

    # and every value that changed meaning is named, per record and column, on both routes
    realtime_found = {(w["column"], w["code"]) for w in answer.get("warnings", [])}
    batch_found = {(w["column"], w["code"]) for w in job["warnings"]}
    assert realtime_found == batch_found, (realtime_found, batch_found)
    assert batch_found == case.warnings
    assert {(w["column"], w["code"]) for w in evaluation["warnings"]} == case.warnings

    batch_engine = "onnx" if any("engine: ONNX" in line for _, line in job["log"]) else "native"
    TABLE.append({"case": case.id, "read": read, "metric": metric, "ours": ours, "sklearn": plain_score,
                  "engine": f"real-time {version['serving_engine']}, batch {batch_engine}", "max_diff": worst,
                  "tolerance": TOLERANCE if classification else TOLERANCE * spread,
                  "warnings": ", ".join(sorted(f"{c}:{k}" for c, k in realtime_found)) or "-"})


@pytest.fixture(scope="module", autouse=True)
def _print_table():
    yield
    if not TABLE:
        return
    lines = ["| case | what was read | metric | ours | plain scikit-learn | real-time = batch = evaluate "
             "(engines; largest difference) | warnings |", "|---|---|---|---|---|---|---|"]
    for row in TABLE:
        lines.append(f"| {row['case']} | {row['read']} | {row['metric']} | {row['ours']:.6g} | {row['sklearn']:.6g} "
                     f"| yes ({row['engine']}; {row['max_diff']:.2g} <= {row['tolerance']:.2g}) | {row['warnings']} |")
    table = "\n".join(lines)
    print("\n" + table)
    if os.environ.get("MESSY_MATRIX_TABLE"):
        with open(os.environ["MESSY_MATRIX_TABLE"], "w") as out:
            out.write(table + "\n")
