import numpy as np
import pandas as pd
import pytest

from training.ml.columns import column_schema, infer_column_kind
from training.ml.preprocess import feature_sources, plan_preprocessing
from training.ml.trainer import TrainConfig, train


def test_column_kinds_of_a_mixed_frame(mixed_df):
    kinds = {c: infer_column_kind(mixed_df[c]) for c in mixed_df.columns}
    assert kinds == {
        "customer_id": "identifier", "code": "identifier", "city": "categorical", "signup": "datetime",
        "active": "boolean", "comment": "text", "amount": "numeric", "churn": "boolean",
    }


@pytest.mark.parametrize(
    ("series", "kind"),
    [
        (pd.Series(["May", "June", "July"] * 10, name="month"), "categorical"),  # month names are not dates
        (pd.Series([2019, 2020, 2021] * 10, name="year"), "numeric"),
        (pd.Series(np.random.default_rng(0).normal(size=50), name="x"), "numeric"),  # distinct floats: not an id
        (pd.Series(range(50), name="sqft") * 37 % 1000, "numeric"),  # distinct, but not a sequence
        (pd.Series(pd.date_range("2024-01-01", periods=30, tz="Europe/Paris")), "datetime"),
        (pd.Series(["03/15/2024 10:00", "04/01/2024 11:30"] * 15), "datetime"),
    ],
    ids=["month-names", "years", "floats", "distinct-ints", "tz-datetime", "us-dates"],
)
def test_column_kind_edge_cases(series, kind):
    assert infer_column_kind(series) == kind


def test_identifier_and_text_columns_are_dropped_with_a_reason(mixed_df):
    plan = plan_preprocessing(mixed_df.drop(columns="churn"), scale_numeric=False)
    assert set(plan.dropped) == {"customer_id", "code", "comment"}
    assert "identifier" in plan.dropped["customer_id"]
    assert "free text" in plan.dropped["comment"]
    assert any("'comment'" in note for note in plan.notes)
    assert plan.used_columns == ["city", "signup", "active", "amount"]


def test_constant_column_is_dropped():
    X = pd.DataFrame({"a": [1.0] * 30, "b": np.arange(30.0) / 7})
    plan = plan_preprocessing(X, scale_numeric=False)
    assert "a" in plan.dropped and plan.used_columns == ["b"]


def test_datetime_strings_become_calendar_features(mixed_df):
    X = mixed_df[["signup"]]
    transformer = plan_preprocessing(X, scale_numeric=False).transformer.fit(X)
    out = transformer.transform(pd.DataFrame({"signup": ["2023-07-14", "not a date"]}))
    names = list(transformer.get_feature_names_out())
    assert names[:4] == ["datetime__signup_year", "datetime__signup_month", "datetime__signup_day",
                         "datetime__signup_day_of_week"]
    assert out[0, :4].tolist() == [2023, 7, 14, 4]  # 14 July 2023 was a Friday (dayofweek 4)
    assert np.isfinite(out[1]).all()  # an unparseable date is imputed, not NaN


def test_unknown_and_missing_values_at_predict_time_do_not_crash(mixed_df):
    # Given a model trained on known cities and yes/no answers
    result = train(mixed_df, TrainConfig(target="churn", algorithm="logistic_regression", cv_folds=3))
    # When a row arrives with a never-seen city, garbage in every other column, or nothing at all
    rows = pd.DataFrame({"city": ["Berlin", None, "Paris"], "signup": ["garbage", None, "2020-06-01"],
                         "active": ["maybe", None, "no"], "amount": ["abc", None, 95.0]})
    predictions = result.pipeline.predict(rows[result.used_columns])
    # Then every row still gets one of the trained labels
    assert set(predictions) <= {"yes", "no"}
    # And the signal the model learned survives: a known churn pattern is predicted as churn
    assert predictions[2] == "yes"


def test_feature_sources_map_one_hot_columns_back():
    X = pd.DataFrame({"colour": ["red", "green", "blue", "red_dark"] * 10, "size": np.arange(40.0)})
    transformer = plan_preprocessing(X, scale_numeric=True, kinds={"colour": "categorical", "size": "numeric"})
    fitted = transformer.transformer.fit(X)
    sources = feature_sources(fitted)
    assert len(sources) == fitted.transform(X).shape[1]
    assert sources.count("colour") == 4 and sources.count("size") == 1


def test_column_schema_describes_what_a_caller_must_send(mixed_df):
    city = column_schema(mixed_df["city"], "categorical")
    amount = column_schema(mixed_df["amount"], "numeric")
    assert set(city["categories"]) == {"Paris", "Lyon", "Nice"} and city["nullable"] is True
    assert amount["min"] < 100 < amount["max"]
