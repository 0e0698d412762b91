"""ONNX export: every registered algorithm is exported, answers like its pipeline, and falls back cleanly."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from tests.ml.helpers import algorithm_problem_pairs, fast_params, pair_id
from training.ml.algorithms import get_algorithm
from training.ml.onnx_export import OnnxUnsupported, build_predictor, check_parity, export_onnx
from training.ml.predictors import NativePredictor, OnnxPredictor, number
from training.ml.problem import ProblemType
from training.ml.trainer import TrainConfig, TrainResult, train

PAIRS = algorithm_problem_pairs()
TARGETS = {ProblemType.BINARY: "churn", ProblemType.MULTICLASS: "plan", ProblemType.REGRESSION: "spend"}
#: Algorithm -> why it is served natively. Empty: every registered algorithm exports with parity.
UNSUPPORTED: dict[str, str] = {}


def _table(n: int, *, n_numeric: int = 4, n_categorical: int = 2, seed: int = 0) -> pd.DataFrame:
    """Numbers of very different scales and categories with rare values, all with gaps; three targets."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"num{i}": rng.normal(size=n) * 10.0 ** (i % 4) + (1.6e9 if i == 3 else 0)
                          for i in range(n_numeric)})
    for j in range(n_categorical):
        labels = [f"c{j}_{k}" for k in range(4 + 6 * j)]
        weights = np.arange(len(labels), 0, -1.0) ** 2
        frame[f"cat{j}"] = rng.choice(labels, n, p=weights / weights.sum()).astype(object)
    for column in frame.columns:
        frame.loc[rng.random(n) < 0.08, column] = np.nan
    score = (frame["num0"].fillna(0) + np.where(frame["cat0"] == "c0_0", 1.0, 0.0)
             + 0.05 * frame["num1"].fillna(0) + rng.normal(scale=0.3, size=n))
    frame["churn"] = np.where(score > 0.4, "yes", "no")
    frame["plan"] = np.select([score < -0.4, score < 0.6], ["basic", "plus"], "pro")
    frame["spend"] = 50 * score + 200
    return frame


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return _table(240)


@pytest.fixture(scope="session")
def probe(table) -> pd.DataFrame:
    """Rows a client could send: unseen and missing categories, text and inf in numbers."""
    frame = table.drop(columns=list(TARGETS.values())).head(60).astype(object)
    frame.loc[frame.index[:10], "cat0"] = "never seen"
    frame.loc[frame.index[10:20], "cat1"] = None
    frame.loc[frame.index[20:25], "num0"] = "not a number"
    frame.loc[frame.index[25:30], "num1"] = float("inf")
    frame.loc[frame.index[30:35], "num2"] = "12.5"
    frame.loc[frame.index[35:40], "cat1"] = 7
    return frame


@pytest.fixture(scope="session")
def exported(table) -> Callable[[str, ProblemType], tuple[TrainResult, bytes | None]]:
    """Train and export each (algorithm, problem type) once; bytes are None where export is refused."""
    cache: dict = {}

    def get(key: str, problem_type: ProblemType):
        if (key, problem_type) not in cache:
            target = TARGETS[problem_type]
            data = table.drop(columns=[t for t in TARGETS.values() if t != target])
            result = train(data, TrainConfig(target=target, algorithm=key, problem_type=problem_type.value,
                                             cv_folds=3, params=fast_params(get_algorithm(key))))
            try:
                onnx_bytes = export_onnx(result.pipeline, result.test_frame, problem_type=result.problem_type,
                                         classes=result.classes)
            except OnnxUnsupported:
                if key not in UNSUPPORTED:
                    raise
                onnx_bytes = None
            cache[key, problem_type] = result, onnx_bytes
        return cache[key, problem_type]

    return get


def _predictors(result: TrainResult, onnx_bytes: bytes) -> tuple[OnnxPredictor, NativePredictor]:
    args = (result.problem_type, result.classes, result.used_columns)
    return OnnxPredictor(onnx_bytes, *args), NativePredictor(result.pipeline, *args)


def _assert_same_answers(ours, theirs, problem_type: ProblemType) -> None:
    (labels, proba), (native_labels, native_proba) = ours, theirs
    if problem_type.is_classification:
        assert list(labels) == list(native_labels)
        np.testing.assert_allclose(proba, native_proba, rtol=0, atol=1e-4)
    else:
        assert proba is None and native_proba is None
        np.testing.assert_allclose(labels, native_labels, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_export_agrees_with_the_pipeline(pair, exported, table):
    # Given a trained pipeline / When it is exported
    result, onnx_bytes = exported(*pair)
    if pair[0] in UNSUPPORTED:
        assert onnx_bytes is None, f"{pair[0]} now exports; remove it from UNSUPPORTED"
        return
    # Then the graph agrees with the pipeline on the held-out rows and on the whole table
    for frame in (result.test_frame, table):
        # regression agrees within 1e-6 of the target's spread, as the runner asks (std on the test split)
        report = check_parity(result.pipeline, onnx_bytes, frame, problem_type=result.problem_type,
                              classes=result.classes, spread=result.target_schema.get("std_test"))
        assert report["agree"], report
        assert report["labels_identical"] and report["rows"] == len(frame)
        assert 0 <= report["max_abs_diff"] <= 1e-4 * (1 if result.problem_type.is_classification else 1000)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p[0] not in UNSUPPORTED], ids=pair_id)
def test_onnx_predictor_answers_like_the_native_one_on_awkward_rows(pair, exported, probe):
    # Given both predictors of one model and rows with unseen categories, text in numbers, inf, gaps
    result, onnx_bytes = exported(*pair)
    onnx_predictor, native = _predictors(result, onnx_bytes)
    # When both predict from a frame and from records, Then nothing crashes and the answers match
    expected = native.predict(probe)
    _assert_same_answers(onnx_predictor.predict(probe), expected, result.problem_type)
    _assert_same_answers(onnx_predictor.predict_records(probe.to_dict("records")), expected, result.problem_type)
    _assert_same_answers(native.predict_records(probe.to_dict("records")), expected, result.problem_type)
    if result.problem_type.is_classification:
        assert set(expected[0]) <= set(result.classes)
        np.testing.assert_allclose(expected[1].sum(axis=1), 1.0)
    assert onnx_predictor.engine == "onnx" and native.engine == "native"


def test_absent_columns_count_as_missing(exported, probe):
    result, onnx_bytes = exported("xgboost", ProblemType.BINARY)
    onnx_predictor, native = _predictors(result, onnx_bytes)
    # Given records that leave out a numeric and a categorical column
    records = [{k: v for k, v in record.items() if k not in ("num0", "cat1")} for record in probe.to_dict("records")]
    # Then both engines read them as missing values
    _assert_same_answers(onnx_predictor.predict_records(records), native.predict_records(records), ProblemType.BINARY)
    _assert_same_answers(onnx_predictor.predict(probe.drop(columns=["num0", "cat1"])),
                         native.predict(probe.assign(num0=None, cat1=None)), ProblemType.BINARY)


@pytest.mark.parametrize("pair", [("random_forest", ProblemType.MULTICLASS), ("ridge", ProblemType.REGRESSION)],
                         ids=pair_id)
def test_empty_inputs_and_empty_records(pair, exported, probe):
    result, onnx_bytes = exported(*pair)
    for predictor in _predictors(result, onnx_bytes):
        # No rows give empty answers of the right shape
        labels, proba = predictor.predict(probe.head(0))
        assert labels.shape == (0,)
        assert proba is None if pair[1] is ProblemType.REGRESSION else proba.shape == (0, len(result.classes))
        assert predictor.predict_records([])[0].shape == (0,)
    # A record with nothing in it is all missing values, on both engines alike
    onnx_predictor, native = _predictors(result, onnx_bytes)
    _assert_same_answers(onnx_predictor.predict_records([{}]), native.predict_records([{}]), pair[1])


def test_every_column_kind_exports(mixed_df):
    # Given dates as strings, yes/no, categories with gaps and dropped identifier / text columns
    result = train(mixed_df, TrainConfig(target="churn", algorithm="random_forest", cv_folds=3,
                                         params={"n_estimators": 15}))
    onnx_bytes = export_onnx(result.pipeline, result.test_frame, problem_type=result.problem_type,
                             classes=result.classes)
    onnx_predictor, native = _predictors(result, onnx_bytes)
    # Then the graph takes the date parts and booleans and agrees with the pipeline, odd values included
    assert onnx_predictor.input_kinds == {c["name"]: c["kind"] for c in result.feature_schema}
    report = check_parity(result.pipeline, onnx_bytes, mixed_df, problem_type=result.problem_type,
                          classes=result.classes)
    assert report["agree"], report
    odd = mixed_df[result.used_columns].head(12).astype(object)
    odd.loc[odd.index[:4], "signup"] = ["not a date", None, "2031-02-29", "2024-06-01T13:45:00+02:00"]
    odd.loc[odd.index[4:8], "active"] = ["maybe", None, True, 0]
    _assert_same_answers(onnx_predictor.predict_records(odd.to_dict("records")), native.predict(odd),
                         result.problem_type)


def test_columns_named_like_graph_outputs_are_renamed(table):
    data = table.rename(columns={"num0": "value", "cat0": "label", "num1": "__input", "num2": "price (€)/m²: 1"})
    data = data.drop(columns=["plan", "spend"])
    result = train(data, TrainConfig(target="churn", algorithm="logistic_regression", cv_folds=3))
    onnx_bytes = export_onnx(result.pipeline, result.test_frame, problem_type=result.problem_type,
                             classes=result.classes)
    assert check_parity(result.pipeline, onnx_bytes, data, problem_type=result.problem_type,
                        classes=result.classes)["agree"]


def sneaky(X):
    return X


def _pipeline_with(**changes) -> Pipeline:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5, "b": [1.0, 0.0, 1.0, 0.0] * 5})
    y = np.array(["x", "y"] * 10)
    transformer = ColumnTransformer([("numeric", changes.get("step", FunctionTransformer(sneaky)), ["a", "b"])])
    return Pipeline([("preprocess", transformer), ("model", changes.get("model", LogisticRegression()))]).fit(X, y)


@pytest.mark.parametrize(("pipeline", "reason"), [
    (lambda: _pipeline_with(), "does not start by reading its columns"),
    (lambda: LogisticRegression().fit([[0.0], [1.0]], ["x", "y"]), "only a Pipeline"),
    (lambda: _pipeline_with(step="passthrough"), "does not start by reading its columns"),
], ids=["unknown-function", "not-a-pipeline", "passthrough"])
def test_unsupported_pipelines_raise_with_a_reason(pipeline, reason):
    with pytest.raises(OnnxUnsupported, match=reason):
        export_onnx(pipeline(), pd.DataFrame({"a": [1.0], "b": [0.0]}), problem_type="binary", classes=["x", "y"])


def test_a_model_without_a_converter_raises(exported):
    # Given a trained pipeline whose model is swapped for one skl2onnx cannot convert
    result, _ = exported("logistic_regression", ProblemType.BINARY)
    X, y = result.test_frame[result.used_columns], result.test_frame["churn"]
    model = SVC(kernel=lambda a, b: a @ b.T).fit(result.pipeline[0].transform(X), y)
    pipeline = Pipeline([("preprocess", result.pipeline[0]), ("model", model)])
    # Then export refuses it with the reason instead of crashing
    with pytest.raises(OnnxUnsupported, match="SVC could not be converted"):
        export_onnx(pipeline, X, problem_type="binary", classes=result.classes)


def test_label_encoded_classifier_converts_on_its_own(exported):
    # Given the XGBoost wrapper of a trained pipeline, converted by skl2onnx without our graph around it
    import onnxruntime as ort
    from skl2onnx import to_onnx

    from training.ml.onnx_export import register_converters

    result, _ = exported("xgboost", ProblemType.MULTICLASS)
    features = result.pipeline[0].transform(result.test_frame[result.used_columns]).astype(np.float32)
    wrapper = result.pipeline[-1]
    register_converters()
    graph = to_onnx(wrapper, features[:1], options={id(wrapper): {"zipmap": False}},
                    target_opset={"": 18, "ai.onnx.ml": 3})
    # Then it answers with the original labels and the wrapper's probabilities
    labels, proba = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": features})
    assert list(labels) == list(wrapper.predict(features))
    np.testing.assert_allclose(proba, wrapper.predict_proba(features), atol=1e-5)


def test_parity_reports_disagreement_and_bad_graphs_without_raising(exported, table):
    result, onnx_bytes = exported("random_forest", ProblemType.MULTICLASS)
    other, _ = exported("logistic_regression", ProblemType.MULTICLASS)
    kwargs = {"problem_type": result.problem_type, "classes": result.classes}
    # A graph of another model disagrees
    report = check_parity(other.pipeline, onnx_bytes, table, **kwargs)
    assert not report["agree"] and report["max_abs_diff"] > 1e-4 and "labels differ" in report["reason"]
    # Garbage bytes and an empty frame are reported, not raised
    assert check_parity(result.pipeline, b"not onnx", table, **kwargs)["reason"].startswith("the ONNX graph cannot")
    assert check_parity(result.pipeline, onnx_bytes, table.head(0), **kwargs)["reason"] == "no rows to compare"


def test_build_predictor_prefers_onnx_and_falls_back_to_native(exported):
    result, onnx_bytes = exported("hist_gradient_boosting", ProblemType.REGRESSION)
    args = {"pipeline": result.pipeline, "problem_type": result.problem_type, "classes": None,
            "input_columns": result.used_columns}
    assert build_predictor(onnx_bytes=onnx_bytes, **args).engine == "onnx"
    assert build_predictor(onnx_bytes=None, **args).engine == "native"
    assert build_predictor(onnx_bytes=b"broken", **args).engine == "native"
    with pytest.raises(ValueError, match="written for"):
        OnnxPredictor(onnx_bytes, result.problem_type, None, result.used_columns,
                      input_kinds={"cat0": "numeric"})
    with pytest.raises(ValueError, match="written for a regression model"):
        OnnxPredictor(onnx_bytes, "binary", ["no", "yes"], result.used_columns)


def test_one_predictor_serves_many_threads(exported, probe):
    result, onnx_bytes = exported("xgboost", ProblemType.MULTICLASS)
    predictor, _ = _predictors(result, onnx_bytes)
    records = probe.to_dict("records")
    expected = [predictor.predict_records([record]) for record in records]
    failures: list[str] = []

    def serve():
        for record, (labels, proba) in zip(records * 5, expected * 5):
            got_labels, got_proba = predictor.predict_records([record])
            if list(got_labels) != list(labels) or not np.array_equal(got_proba, proba):
                failures.append(str(record))

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (2.5, 2.5), (True, 1.0), (None, np.nan), (float("inf"), np.nan), (" 1e3 ", 1000.0),
    ("abc", np.nan), ("1_000", np.nan), (np.int64(4), 4.0), (np.float32(0.5), 0.5), (np.float64(-np.inf), np.nan),
    (pd.NA, np.nan), ("-.5", -0.5),
])
def test_numbers_are_read_like_the_pipeline_reads_them(value, expected):
    from training.ml.preprocess import to_float_frame

    native = to_float_frame(pd.DataFrame({"x": pd.Series([value], dtype=object)}))[0, 0]
    np.testing.assert_equal(number(value), native)
    np.testing.assert_equal(number(value), expected)


def _median_us(call: Callable[[], object], repeat: int) -> float:
    for _ in range(10):
        call()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1e6)


@pytest.mark.parametrize("key", ["random_forest", "xgboost"])
def test_single_record_latency(key, capsys):
    # Given 100 trees / rounds on 20 features, 4 of them categorical
    data = _table(1000, n_numeric=16, n_categorical=4, seed=1).drop(columns=["plan", "spend"])
    result = train(data, TrainConfig(target="churn", algorithm=key, cv_folds=2, params={"n_estimators": 100}))
    onnx_bytes = export_onnx(result.pipeline, result.test_frame, problem_type=result.problem_type,
                             classes=result.classes)
    onnx_predictor, native = _predictors(result, onnx_bytes)
    row = result.test_frame[result.used_columns].head(1)
    record = row.to_dict("records")[0]
    # When one record is predicted again and again (not asserted: machines differ)
    timings = {
        "onnx records": _median_us(lambda: onnx_predictor.predict_records([record]), 1000),
        "onnx frame": _median_us(lambda: onnx_predictor.predict(row), 300),
        "native frame": _median_us(lambda: native.predict(row), 30),
    }
    with capsys.disabled():
        print(f"\n{key} single-record median latency: "
              + ", ".join(f"{name} {us:,.0f} us" for name, us in timings.items()))
    _assert_same_answers(onnx_predictor.predict_records([record]), native.predict(row), result.problem_type)


@pytest.mark.parametrize(("algorithm", "params", "agrees"), [
    ("random_forest", {"n_estimators": 20}, True),
    ("hist_gradient_boosting", {"max_iter": 30}, True),
    ("ridge", {}, True),
    ("xgboost", {"n_estimators": 30}, False),
])
def test_a_target_near_1e9_is_judged_against_its_spread(algorithm, params, agrees):
    # Given y = 1e9 + 1000 x: values that single precision holds only to 64, with a spread of about 290
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.uniform(0, 1, 300), "z": rng.normal(size=300)})
    frame["y"] = 1e9 + 1000 * frame["x"] + rng.normal(0, 1, 300)
    result = train(frame, TrainConfig(target="y", algorithm=algorithm, cv_folds=2, params=params))
    spread = result.target_schema["std_test"]
    onnx_bytes = export_onnx(result.pipeline, result.test_frame[result.used_columns], problem_type="regression",
                             classes=None)

    report = check_parity(result.pipeline, onnx_bytes, result.test_frame, problem_type="regression", classes=None,
                          spread=spread)

    # Then trees written here (their sums kept near zero in single precision) agree within 1e-6 of the spread;
    # XGBoost's single-precision graph cannot, and the report says so (the version then serves natively)
    assert report["agree"] is agrees, report
    assert report["tolerance"] == pytest.approx(1e-6 * spread)
    if not agrees:
        assert "single precision" in report["reason"] and report["model_precision"] == "float32"
