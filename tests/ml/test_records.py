"""Real-time prediction bodies become the frame the model was trained on, or a message naming record and column."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from training.ml.errors import MLInputError
from training.ml.records import RecordValidator, records_to_frame
from training.ml.trainer import TrainConfig, TrainResult, train


@pytest.fixture(scope="module")
def model(mixed_df) -> TrainResult:
    """Churn from city (categorical), signup (dates as text), active (yes/no) and amount (numeric)."""
    config = TrainConfig(target="churn", algorithm="random_forest", cv_folds=2, params={"n_estimators": 15})
    return train(mixed_df, config)


@pytest.fixture(scope="module")
def validator(model) -> RecordValidator:
    return RecordValidator(model.feature_schema)


def good_record(**changes) -> dict:
    record = {"city": "Paris", "signup": "2020-03-01", "active": "yes", "amount": 120.5}
    record.update(changes)
    return record


def rejected(validator: RecordValidator, records, *, max_records: int = 100) -> MLInputError:
    with pytest.raises(MLInputError) as caught:
        validator.to_frame(records, max_records=max_records)
    assert caught.value.status == 400
    return caught.value


def test_the_schema_has_one_column_of_each_kind(model):
    # Given the model trained on the mixed data, the tests below exercise every kind.
    assert {c["name"]: c["kind"] for c in model.feature_schema} == {
        "city": "categorical", "signup": "datetime", "active": "boolean", "amount": "numeric"}


def test_a_valid_record_becomes_a_frame_the_model_predicts(model, validator):
    # When one good record is converted
    frame, warnings = validator.to_frame([good_record()], max_records=10)

    # Then it has the model's columns in training order, the training dtypes, and predicts
    assert list(frame.columns) == model.used_columns
    assert frame.dtypes.astype(str).to_dict() == {
        "city": "object", "signup": "datetime64[us]", "active": "boolean", "amount": "float64"}
    assert frame.iloc[0].to_dict() == {"city": "Paris", "signup": pd.Timestamp("2020-03-01"),
                                       "active": True, "amount": 120.5}
    assert warnings == []
    assert model.pipeline.predict(frame)[0] in {"yes", "no"}


def test_predictions_match_the_same_rows_read_from_the_training_data(model, validator, mixed_df):
    # Given rows of the training data sent as JSON would send them (NaN as null)
    rows = mixed_df[model.used_columns].head(40)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in rows.to_dict("records")]

    # When they go through the validator, then the model gives the same answers as on the training frame
    frame, _ = validator.to_frame(records, max_records=100)
    np.testing.assert_array_equal(model.pipeline.predict(frame), model.pipeline.predict(rows))
    np.testing.assert_allclose(model.pipeline.predict_proba(frame), model.pipeline.predict_proba(rows))


def test_records_to_frame_is_the_validator_in_one_call(model, validator):
    records = [good_record(), good_record(city="Lyon", amount=None)]
    frame, warnings = records_to_frame(records, model.feature_schema, max_records=10)
    expected, expected_warnings = validator.to_frame(records, max_records=10)
    pd.testing.assert_frame_equal(frame, expected)
    assert warnings == expected_warnings


def test_null_is_accepted_in_every_column_and_imputed(model, validator):
    frame, _ = validator.to_frame([{"city": None, "signup": None, "active": None, "amount": None}], max_records=1)
    assert frame.isna().all(axis=None)
    assert model.pipeline.predict_proba(frame).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("blank", ["", "  ", "NA", "n/a", "null"])
def test_blank_and_missing_spellings_are_null_as_they_were_at_ingest(validator, blank):
    frame, _ = validator.to_frame([{"city": blank, "signup": blank, "active": blank, "amount": blank}],
                                  max_records=1)
    assert frame.isna().all(axis=None)


def test_an_unseen_category_is_predicted_not_refused(model, validator):
    frame, warnings = validator.to_frame([good_record(city="Atlantis"), good_record(city="paris")], max_records=2)
    assert frame.loc[0, "city"] == "Atlantis"
    # and each unseen value is named, by record and column; a case difference says which category it resembles
    assert [(w.record, w.column, w.code) for w in warnings] == [(0, "city", "unseen_category"),
                                                                (1, "city", "unseen_category")]
    assert "'Paris' was" in warnings[1].message
    assert model.pipeline.predict_proba(frame).sum(axis=1) == pytest.approx([1.0, 1.0])


def test_numbers_and_dates_far_outside_training_are_named(validator, mixed_df):
    # Given amounts seen between about 40 and 160 and signups from January to October 2020
    frame, warnings = validator.to_frame([good_record(amount=10_000), good_record(signup="2035-01-01"),
                                          good_record(amount=121)], max_records=3)
    assert [(w.record, w.column, w.code) for w in warnings] == [(0, "amount", "out_of_range"),
                                                                (1, "signup", "out_of_range")]
    assert "10000 is far outside the range seen in training" in warnings[0].message


@pytest.mark.parametrize(("column", "sent", "stored"), [
    ("amount", 7, 7.0),
    ("amount", "  -3.5 ", -3.5),
    ("amount", "1e3", 1000.0),
    ("city", 75001, "75001"),
    ("city", 7.0, "7"),
    ("city", "  Nice ", "Nice"),
    ("active", True, True),
    ("active", "No", False),
    ("active", 1, True),
    ("active", "0", False),
    ("signup", "2020-03-01T23:30:00-02:00", pd.Timestamp("2020-03-02 01:30")),  # UTC, as in training
    ("signup", "2020-03-01 08:15", pd.Timestamp("2020-03-01 08:15")),
])
def test_values_are_read_the_way_the_training_data_was(validator, column, sent, stored):
    frame, _ = validator.to_frame([good_record(**{column: sent})], max_records=1)
    assert frame.loc[0, column] == stored


@pytest.mark.parametrize(("records", "words"), [
    (None, "records must be a list of objects, one per row to predict, got nothing"),
    ({"city": "Paris"}, "records must be a list of objects, one per row to predict, got an object"),
    ("Paris", "records must be a list of objects, one per row to predict, got text 'Paris'"),
    ([], "records is empty; send at least one record to predict"),
])
def test_records_must_be_a_non_empty_list(validator, records, words):
    error = rejected(validator, records)
    assert error.field == "records"
    assert error.message == words


def test_too_many_records_names_the_limit(validator):
    error = rejected(validator, [good_record()] * 6, max_records=5)
    assert error.field == "records"
    assert "too many records: 6; at most 5" in error.message


@pytest.mark.parametrize(("item", "words"), [
    (["Paris", 1.0], "got a list"), ("Paris", "got text 'Paris'"), (None, "got null"), (3, "got int 3")])
def test_each_record_must_be_an_object(validator, item, words):
    error = rejected(validator, [good_record(), item])
    assert error.field == "records[1]"
    assert error.message == f"records[1] must be an object of column: value pairs, {words}"


def test_a_missing_column_names_the_record_and_the_column(validator):
    # Given a third record without 'amount'
    records = [good_record(), good_record(), {k: v for k, v in good_record().items() if k != "amount"}]

    error = rejected(validator, records)

    assert error.field == "records[2].amount"
    assert error.message.startswith("records[2] is missing column 'amount';")
    assert "send null" in error.message


def test_all_missing_columns_of_the_record_are_listed(validator):
    error = rejected(validator, [{"city": "Paris"}])
    assert error.field == "records[0].signup"
    assert error.message.startswith("records[0] is missing columns 'signup', 'active', 'amount';")


@pytest.mark.parametrize(("column", "value", "words"), [
    ("amount", "abc", "must be a number, got 'abc'"),
    ("amount", "1_000", "must be a number, got '1_000'"),
    ("amount", "inf", "must be a number, got 'inf'"),
    ("amount", float("nan"), "must be a finite number or null, got nan"),
    ("amount", True, "must be a number, got true; send 1 or 0 for yes or no"),
    ("amount", [1, 2], "must be a number, got a list"),
    ("amount", 10**400, "is too large a number"),
    ("city", {"name": "Paris"}, "must be text, got an object"),
    ("city", False, "must be text, got false"),
    ("active", "maybe", "must be true or false, got 'maybe'"),
    ("active", 2, "must be true or false, got 2"),
    ("active", ["yes"], "must be true or false, got a list"),
    ("signup", "not a date", "must be a date in ISO 8601 (such as \"2024-05-01\""),
    ("signup", "March 5, 2020", "must be a date in ISO 8601"),  # the column was read as ISO 8601: no guessing
    ("signup", 1700000000, "must be a date as text"),
    ("signup", "12", "must be a date in ISO 8601"),
    # text no encoder can write, or with control characters, in every kind of column
    ("city", "Par\ud800is", "contains a lone surrogate (U+D800)"),
    ("amount", "\udfff", "contains a lone surrogate (U+DFFF)"),
    ("active", "yes\x00", "contains a control character (U+0000)"),
    ("signup", "2024-05-01\x1b", "contains a control character (U+001B)"),
])
def test_a_value_of_the_wrong_type_names_the_record_and_column(validator, column, value, words):
    # Given a good first record and a bad value in the second
    error = rejected(validator, [good_record(), good_record(**{column: value})])

    assert error.field == f"records[1].{column}"
    assert error.message.startswith(f"records[1].{column} {words}")


def test_unknown_columns_are_ignored_and_reported_once(validator):
    # Given three records, two of which carry columns the model does not use
    records = [good_record(note="vip", id=1), good_record(), good_record(id=3)]

    frame, warnings = validator.to_frame(records, max_records=10)

    assert "note" not in frame.columns and "id" not in frame.columns
    assert [(w.record, w.column, w.code) for w in warnings] == [(None, "note", "ignored_column"),
                                                                (None, "id", "ignored_column")]


def test_one_record_is_converted_in_well_under_a_millisecond():
    # Given a 20-column model (16 numbers, 4 categories), the usual shape of a request
    schema = ([{"name": f"x{i}", "kind": "numeric"} for i in range(16)]
              + [{"name": f"c{i}", "kind": "categorical"} for i in range(4)])
    record = {**{f"x{i}": i / 3 for i in range(16)}, **{f"c{i}": "a" for i in range(4)}}
    validator = RecordValidator(schema)
    validator.to_frame([record], max_records=1)

    # When it is converted many times, then the median call stays on the hot-path budget
    # (about 40 microseconds on a laptop; the bound leaves room for slow CI machines).
    timings = []
    for _ in range(300):
        started = time.perf_counter()
        validator.to_frame([record], max_records=1)
        timings.append(time.perf_counter() - started)
    assert float(np.median(timings)) < 500e-6
