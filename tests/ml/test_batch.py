"""Batch prediction: a stored Parquet dataset in, a CSV a spreadsheet can open safely out, chunk by chunk."""
from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.ml.batch import escape_formulas, predict_batch
from training.ml.errors import JobCancelled, MLInputError
from training.ml.trainer import TrainConfig, TrainResult, train

LABELS = ["=HYPERLINK(\"http://x.example\")", "@risk", "plain"]


class PipelinePredictor:
    """The Predictor interface (training.ml.predictors) over a fitted pipeline; records what it was given."""

    def __init__(self, result: TrainResult):
        self.pipeline = result.pipeline
        self.problem_type = result.problem_type.value
        self.classes = result.classes
        self.input_columns = result.used_columns
        self.engine = "sklearn"
        self.frames: list[pd.DataFrame] = []

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        self.frames.append(frame)
        if self.classes is None:
            return self.pipeline.predict(frame), None
        proba = self.pipeline.predict_proba(frame)
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)], proba


def features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(0, 10, n).round(2),
        "city": rng.choice(["Paris", "Lyon", "Nice"], n),
        "active": rng.choice([True, False], n),
    })


@pytest.fixture(scope="module")
def classifier() -> TrainResult:
    """Three classes whose names a spreadsheet would run as formulas (two of them)."""
    frame = features(300, seed=0)
    frame["label"] = np.where(frame["amount"] > 5, LABELS[0], np.where(frame["city"] == "Paris", LABELS[1], LABELS[2]))
    config = TrainConfig(target="label", algorithm="random_forest", cv_folds=2, params={"n_estimators": 15})
    return train(frame, config)


@pytest.fixture(scope="module")
def regressor() -> TrainResult:
    """Predicts values around -50, so most predictions are negative numbers."""
    frame = features(300, seed=1)
    frame["value"] = frame["amount"] * 3 - 50 + np.where(frame["active"], 5, 0)
    config = TrainConfig(target="value", algorithm="random_forest", cv_folds=2, params={"n_estimators": 15})
    return train(frame, config)


@pytest.fixture
def dataset(tmp_path) -> tuple[Path, pd.DataFrame]:
    """A stored dataset of 30 rows: the model's columns, plus one the model does not use."""
    frame = features(30, seed=2).assign(customer="c")
    path = tmp_path / "dataset.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path, frame


@pytest.fixture
def out_dir(tmp_path) -> Path:
    folder = tmp_path / "outputs"
    folder.mkdir()
    return folder


def raw_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_every_row_gets_its_number_prediction_and_class_probabilities(classifier, dataset, out_dir):
    # Given a classifier and a 30-row dataset
    source, frame = dataset
    predictor = PipelinePredictor(classifier)

    # When the whole dataset is predicted
    result = predict_batch(source, predictor, out_dir / "out.csv", feature_schema=classifier.feature_schema)

    # Then each input row has a line: its 1-based number, the label and one probability per class
    output = pd.read_csv(out_dir / "out.csv", keep_default_na=False)
    columns = ["row", "prediction"] + [f"proba_{label}" for label in classifier.classes]
    assert list(output.columns) == columns + ["warnings"] == result["columns"]
    assert (output["warnings"] == "").all()
    assert result["rows"] == 30 and result["warnings"] == []
    assert output["row"].tolist() == list(range(1, 31))
    expected_proba = classifier.pipeline.predict_proba(frame[classifier.used_columns])
    np.testing.assert_allclose(output[columns[2:]].to_numpy(), expected_proba)
    np.testing.assert_allclose(output[columns[2:]].sum(axis=1), 1.0)
    unescaped = output["prediction"].str.removeprefix("'")
    assert unescaped.tolist() == classifier.pipeline.predict(frame[classifier.used_columns]).tolist()


def test_labels_a_spreadsheet_would_run_are_escaped(classifier, dataset, out_dir):
    source, _ = dataset
    predict_batch(source, PipelinePredictor(classifier), out_dir / "out.csv", feature_schema=classifier.feature_schema)

    header, *rows = raw_rows(out_dir / "out.csv")
    cells = {row[1] for row in rows}
    # Every class turns up, so every escaping decision is checked
    assert cells == {"'=HYPERLINK(\"http://x.example\")", "'@risk", "plain"}
    # The header cells start with "proba_", so they cannot be formulas
    assert header[2:] == [f"proba_{label}" for label in classifier.classes] + ["warnings"]


def test_negative_predictions_stay_numbers(regressor, dataset, out_dir):
    source, frame = dataset
    result = predict_batch(source, PipelinePredictor(regressor), out_dir / "out.csv",
                           feature_schema=regressor.feature_schema)

    header, *rows = raw_rows(out_dir / "out.csv")
    assert header == result["columns"] == ["row", "prediction", "warnings"]
    values = [row[1] for row in rows]
    assert sum(v.startswith("-") for v in values) > 20
    assert not any(v.startswith("'") for v in values)
    np.testing.assert_allclose([float(v) for v in values], regressor.pipeline.predict(frame[regressor.used_columns]))


@pytest.mark.parametrize(("cell", "written"), [
    ("=1+1", "'=1+1"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTAB", "'\tTAB"),
    ("\rCR", "'\rCR"),
    ("-", "'-"),
    ("-3", "-3"),  # a plain number, read as a number by a spreadsheet
    ("+1.5e3", "+1.5e3"),
    ("a=b", "a=b"),
    ("", ""),
    (None, None),
])
def test_escape_formulas(cell, written):
    assert escape_formulas(pa.array([cell], pa.string())).to_pylist() == [written]


def test_escape_formulas_leaves_numbers_alone():
    numbers = pa.array([-1.5, 2.0, -3.0])
    assert escape_formulas(numbers) is numbers


def test_the_model_sees_bounded_chunks_and_progress_follows_them(classifier, dataset, out_dir):
    # Given chunks of 7 rows over 30 rows
    source, _ = dataset
    predictor = PipelinePredictor(classifier)
    reported = []

    # When predicted
    predict_batch(source, predictor, out_dir / "chunked.csv", feature_schema=classifier.feature_schema,
                  chunk_rows=7, progress=lambda done, total: reported.append((done, total)))

    # Then the model never holds more than a chunk, reads only its own columns, and progress follows each chunk
    assert [len(f) for f in predictor.frames] == [7, 7, 7, 7, 2]
    assert all(list(f.columns) == classifier.used_columns for f in predictor.frames)
    assert reported == [(7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]
    # and the file is the same as a one-chunk run, row numbers running on across chunks
    predict_batch(source, PipelinePredictor(classifier), out_dir / "whole.csv",
                  feature_schema=classifier.feature_schema)
    assert (out_dir / "chunked.csv").read_bytes() == (out_dir / "whole.csv").read_bytes()


def test_cancelling_between_chunks_stops_and_leaves_no_file(classifier, dataset, out_dir):
    # Given a user who cancels once the first chunk is done
    source, _ = dataset
    predictor = PipelinePredictor(classifier)
    checks = []

    def check_cancel():
        checks.append(len(predictor.frames))
        if len(predictor.frames) >= 1:
            raise JobCancelled()

    # When predicted in chunks of 10
    with pytest.raises(JobCancelled):
        predict_batch(source, predictor, out_dir / "out.csv", feature_schema=classifier.feature_schema,
                      chunk_rows=10, check_cancel=check_cancel)

    # Then no more chunks were predicted, and neither the output nor a temporary file is left
    assert checks == [0, 1]
    assert len(predictor.frames) == 1
    assert list(out_dir.iterdir()) == []


def test_a_failing_model_leaves_no_partial_file(classifier, dataset, out_dir):
    source, _ = dataset
    predictor = PipelinePredictor(classifier)
    real_predict = predictor.predict

    def predict(frame):
        if predictor.frames:
            raise MemoryError("out of memory")
        return real_predict(frame)

    predictor.predict = predict
    with pytest.raises(MemoryError):
        predict_batch(source, predictor, out_dir / "out.csv", feature_schema=classifier.feature_schema,
                      chunk_rows=10)
    assert list(out_dir.iterdir()) == []


def test_missing_columns_are_named_before_any_work(classifier, tmp_path, out_dir):
    # Given a dataset without the model's 'amount' and 'city'
    source = tmp_path / "other.parquet"
    pq.write_table(pa.table({"active": [True, False], "comment": ["a", "b"]}), source)
    predictor = PipelinePredictor(classifier)
    progress = []

    with pytest.raises(MLInputError) as caught:
        predict_batch(source, predictor, out_dir / "out.csv", feature_schema=classifier.feature_schema,
                      progress=lambda *args: progress.append(args))

    error = caught.value
    assert error.field == "dataset"
    assert error.message == ("the dataset lacks the columns 'amount', 'city' the model was trained on; "
                             "its columns are: active, comment")
    assert predictor.frames == [] and progress == []
    assert list(out_dir.iterdir()) == []


def test_numbers_stored_as_text_are_read_and_text_that_is_no_number_is_warned_about(classifier, dataset, tmp_path,
                                                                                     out_dir):
    # Given the amounts stored as text, three of them not numbers, and a city never seen in training
    _, frame = dataset
    frame = frame.astype({"amount": str})
    frame.loc[[2, 5, 9], "amount"] = ["abc", "12,5", "inf"]
    frame.loc[4, "city"] = "Oslo"
    source = tmp_path / "text.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source)
    predictor = PipelinePredictor(classifier)

    result = predict_batch(source, predictor, out_dir / "out.csv", feature_schema=classifier.feature_schema)

    # Then the model saw numbers, the other amounts as they were written
    assert result["rows"] == 30
    seen = predictor.frames[0]["amount"]
    assert seen.dtype == float and seen[0] == float(frame.loc[0, "amount"]) and seen[[2, 5, 9]].isna().all()
    # and every changed value is in the summary (1-based rows, as in the CSV) and on its row
    summary = {(w["column"], w["code"]): w for w in result["warnings"]}
    assert summary["amount", "unreadable_value"]["count"] == 3
    assert [e["row"] for e in summary["amount", "unreadable_value"]["examples"]] == [3, 6, 10]
    assert summary["city", "unseen_category"]["count"] == 1
    output = pd.read_csv(out_dir / "out.csv", keep_default_na=False)
    assert output.loc[4, "warnings"].startswith("city: 'Oslo' was not seen in training")
    assert output.loc[2, "warnings"].startswith("amount: 'abc' cannot be read as numbers written like 1234.5")


def test_an_empty_dataset_gives_just_the_header(classifier, dataset, tmp_path, out_dir):
    _, frame = dataset
    source = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pandas(frame.head(0), preserve_index=False), source)

    result = predict_batch(source, PipelinePredictor(classifier), out_dir / "out.csv",
                           feature_schema=classifier.feature_schema)

    assert result["rows"] == 0
    assert raw_rows(out_dir / "out.csv") == [result["columns"]]


def test_numeric_class_labels_are_written_as_numbers(dataset, out_dir):
    # Given a model whose classes are the integers -1 and 1
    frame = features(300, seed=3)
    frame["label"] = np.where(frame["amount"] > 0, 1, -1)
    model = train(frame, TrainConfig(target="label", algorithm="random_forest", problem_type="binary",
                                     cv_folds=2, params={"n_estimators": 15}))
    source, _ = dataset

    result = predict_batch(source, PipelinePredictor(model), out_dir / "out.csv", feature_schema=model.feature_schema)

    header, *rows = raw_rows(out_dir / "out.csv")
    assert header == result["columns"] == ["row", "prediction", "proba_-1", "proba_1", "warnings"]
    assert {row[1] for row in rows} == {"-1", "1"}


def test_the_serving_layers_native_predictor_writes_the_same_file(classifier, dataset, out_dir):
    # Given the platform's own predictor (it takes over the pipeline, hence the copy)
    predictors = pytest.importorskip("training.ml.predictors")
    native = predictors.NativePredictor(copy.deepcopy(classifier.pipeline), classifier.problem_type,
                                        classifier.classes, classifier.used_columns)
    source, _ = dataset

    # When a batch runs through it, then it writes what the plain pipeline writes
    predict_batch(source, native, out_dir / "native.csv", feature_schema=classifier.feature_schema, chunk_rows=8)
    predict_batch(source, PipelinePredictor(classifier), out_dir / "pipeline.csv",
                  feature_schema=classifier.feature_schema)
    assert (out_dir / "native.csv").read_bytes() == (out_dir / "pipeline.csv").read_bytes()
