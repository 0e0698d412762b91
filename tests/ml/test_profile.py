"""The dataset profile: exact counts over the whole file, shapes from a sample, a target guess."""
from __future__ import annotations

import io
import json
import math
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.ml.ingest import ingest_to_parquet
from training.ml.profile import preview_parquet, profile_parquet

N = 40


@pytest.fixture
def customers(tmp_path):
    """40 customers with known gaps: 4 ages, 3 incomes (2 NaN, 1 null), 2 cities, 1 signup missing."""
    age = [20 + i for i in range(N)]
    for i in (3, 7, 11, 15):
        age[i] = None
    income = [1000.0 + 10 * i for i in range(N)]
    income[0], income[1], income[2] = float("nan"), float("nan"), None
    city = ["Paris"] * 20 + ["Lyon"] * 12 + ["Nice"] * 6 + [None] * 2
    signup = [pd.Timestamp("2021-01-01") + pd.Timedelta(days=i) for i in range(N)]
    signup[5] = None
    table = pa.table({
        "customer_id": pa.array(range(1, N + 1), pa.int64()),
        "age": pa.array(age, pa.int64()),
        "income": pa.array(income, pa.float64(), from_pandas=False),
        "city": pa.array(city),
        "signup": pa.array(signup, pa.timestamp("us")),
        "comment": pa.array([f"a long free-text comment written by customer number {i}" for i in range(N)]),
        "churn": pa.array(["yes" if i % 3 == 0 else "no" for i in range(N)]),
    })
    path = tmp_path / "customers.parquet"
    pq.write_table(table, path, row_group_size=15)
    return path


def by_name(profile: dict) -> dict[str, dict]:
    return {c["name"]: c for c in profile["columns"]}


def assert_plain_json(value) -> None:
    """Only JSON's own types: numpy floats pass json.dumps, so check the types themselves."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            assert_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain_json(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), f"{value!r} is {type(value)}"
        if type(value) is float:
            assert math.isfinite(value)


def test_profile_counts_rows_columns_and_missing_values_exactly(customers):
    profile = profile_parquet(customers)

    assert (profile["rows"], profile["n_columns"]) == (N, 7)
    assert (profile["sampled"], profile["sample_size"]) == (False, N)
    columns = by_name(profile)
    assert {name: c["missing"] for name, c in columns.items()} == {
        "customer_id": 0, "age": 4, "income": 3, "city": 2, "signup": 1, "comment": 0, "churn": 0}
    assert columns["income"]["missing_fraction"] == 3 / N, "NaN counts as missing, like a null"
    assert columns["city"]["distinct"] == 3


def test_profile_kinds_and_dtypes(customers):
    columns = by_name(profile_parquet(customers))

    assert {name: c["kind"] for name, c in columns.items()} == {
        "customer_id": "identifier", "age": "numeric", "income": "numeric", "city": "categorical",
        "signup": "datetime", "comment": "text", "churn": "boolean"}
    assert {name: c["dtype"] for name, c in columns.items()} == {
        "customer_id": "int64", "age": "int64", "income": "float64", "city": "string",
        "signup": "datetime", "comment": "string", "churn": "string"}


def test_numeric_summary_and_histogram(customers):
    age = by_name(profile_parquet(customers))["age"]
    present = [20 + i for i in range(N) if i not in (3, 7, 11, 15)]

    assert (age["min"], age["max"]) == (20, 59)
    assert age["mean"] == pytest.approx(np.mean(present))
    assert age["std"] == pytest.approx(np.std(present, ddof=1))
    histogram = age["histogram"]
    assert sum(histogram["counts"]) == N - 4, "every non-missing value falls in one bin"
    assert len(histogram["edges"]) == len(histogram["counts"]) + 1 <= 21
    assert histogram["edges"][0] == 20 and histogram["edges"][-1] == 59


def test_top_values_for_categories_and_booleans(customers):
    columns = by_name(profile_parquet(customers))

    assert columns["city"]["top"] == [
        {"value": "Paris", "count": 20}, {"value": "Lyon", "count": 12}, {"value": "Nice", "count": 6}]
    assert columns["churn"]["top"] == [{"value": "no", "count": 26}, {"value": "yes", "count": 14}]
    assert "top" not in columns["age"]


def test_datetime_range_as_iso_strings(customers):
    signup = by_name(profile_parquet(customers))["signup"]

    assert (signup["min"], signup["max"]) == ("2021-01-01T00:00:00", "2021-02-09T00:00:00")


def test_profile_is_plain_json(customers, tmp_path):
    # Given also a column with nothing in it and one with infinities
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({
        "empty": pa.array([None] * 5, pa.float64()),
        "wild": pa.array([1.0, float("inf"), -float("inf"), 2.0, None]),
        "label": pa.array(["a", "b", "a", "b", "a"]),
    }), path)

    for profile in (profile_parquet(customers), profile_parquet(path)):
        assert_plain_json(profile)
        json.dumps(profile, allow_nan=False)
    odd = by_name(profile_parquet(path))
    assert odd["empty"]["missing"] == 5 and odd["empty"]["histogram"] is None
    assert sum(odd["wild"]["histogram"]["counts"]) == 4, "infinities land in the end bins"


def test_large_file_counts_exactly_and_describes_a_sample(tmp_path):
    # Given 5,000 rows in 5 row groups, one extreme value and every 10th income missing
    n = 5_000
    income = np.linspace(0, 1, n)
    income[::10] = np.nan
    score = np.arange(n, dtype=float)
    score[4321] = -1000.0
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"income": pa.array(income, from_pandas=True), "score": score,
                             "group": np.where(np.arange(n) % 4 == 0, "a", "b")}), path, row_group_size=1_000)

    profile = profile_parquet(path, sample_rows=500)

    assert (profile["rows"], profile["sampled"], profile["sample_size"]) == (n, True, 500)
    columns = by_name(profile)
    assert columns["income"]["missing"] == 500, "missing is counted over the whole file"
    assert (columns["score"]["min"], columns["score"]["max"]) == (-1000.0, n - 1)
    assert sum(columns["score"]["histogram"]["counts"]) == 500, "shapes come from the sample"
    assert sum(t["count"] for t in columns["group"]["top"]) == 500


def test_profile_of_a_million_rows_takes_seconds(tmp_path):
    rng = np.random.default_rng(0)
    n = 1_000_000
    data = {f"x{i}": rng.normal(size=n) for i in range(12)}
    data |= {f"n{i}": rng.integers(0, 50, n) for i in range(4)}
    data |= {f"c{i}": rng.choice(np.array(["red", "green", "blue", "grey"]), n) for i in range(3)}
    data["target"] = rng.choice(np.array(["yes", "no"]), n)
    path = tmp_path / "million.parquet"
    pq.write_table(pa.table(data), path, row_group_size=250_000)

    started = time.perf_counter()
    profile = profile_parquet(path)
    elapsed = time.perf_counter() - started

    assert profile["rows"] == n and profile["n_columns"] == 20
    assert elapsed < 20, f"profiling took {elapsed:.1f} s"


# --- the suggested target ------------------------------------------------------------

def write(tmp_path, **columns) -> str:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), path)
    return str(path)


def test_a_column_named_like_a_target_is_suggested_with_the_problem_type(customers):
    profile = profile_parquet(customers)

    assert profile["suggested_target"] == "churn"
    assert profile["suggested_problem_type"] == "binary"
    assert "2 distinct values" in profile["suggested_problem_type_reason"]


def test_target_name_is_matched_without_case_and_before_later_columns(tmp_path):
    rng = np.random.default_rng(1)
    path = write(tmp_path, Label=rng.choice(["cat", "dog", "bird"], 60), size=rng.normal(size=60))

    profile = profile_parquet(path)

    assert profile["suggested_target"] == "Label"
    assert profile["suggested_problem_type"] == "multiclass"


def test_without_a_target_name_the_last_usable_column_is_suggested(tmp_path):
    rng = np.random.default_rng(2)
    n = 60
    path = write(tmp_path,
                 rooms=rng.integers(1, 6, n), price=rng.normal(300_000, 50_000, n),
                 notes=[f"a long free-text description of the house, number {i}" for i in range(n)],
                 house_id=np.arange(n))

    profile = profile_parquet(path)

    assert profile["suggested_target"] == "price", "free text and identifiers are not targets"
    assert profile["suggested_problem_type"] == "regression"


def test_a_target_named_column_with_one_value_is_passed_over(tmp_path):
    path = write(tmp_path, target=["same"] * 30, colour=["red", "blue", "green"] * 10)

    assert profile_parquet(path)["suggested_target"] == "colour"


def test_no_usable_column_means_no_suggestion(tmp_path):
    path = write(tmp_path, only=["x"] * 5)

    profile = profile_parquet(path)

    assert profile["suggested_target"] is None and profile["suggested_problem_type"] is None


# --- preview and the whole path from an upload -----------------------------------------

def test_preview_gives_the_first_rows_as_json_values(customers):
    preview = preview_parquet(customers, n=3)

    assert preview["columns"][:3] == ["customer_id", "age", "income"]
    assert len(preview["rows"]) == 3
    first = dict(zip(preview["columns"], preview["rows"][0]))
    assert first["customer_id"] == 1 and first["city"] == "Paris"
    assert first["income"] is None, "NaN becomes null"
    assert first["signup"] == "2021-01-01T00:00:00"
    assert_plain_json(preview)


def test_uploaded_csv_profile_counts_na_tokens_as_missing(tmp_path):
    csv = b"height;team;won\n1.8;red;yes\nN/A;blue;no\n1.7;;yes\n ;red;no\n"
    dest = tmp_path / "d.parquet"
    ingest_to_parquet(io.BytesIO(csv), dest, filename="games.csv", max_bytes=2**20)

    columns = by_name(profile_parquet(dest))

    assert columns["height"]["missing"] == 2 and columns["height"]["dtype"] == "float64"
    assert columns["team"]["missing"] == 1
    assert (columns["height"]["min"], columns["height"]["max"]) == (1.7, 1.8)
