"""Column readings: one rule per column, decided from every value, read the same way whole and one value at a time."""
from __future__ import annotations

import io
import math
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from training.ml.errors import MLInputError
from training.ml.ingest import ingest_to_parquet
from training.ml.profile import profile_parquet
from training.ml.reading import (
    DATE_FORMATS, NUMBER_FORMATS, ColumnReading, UnreadableValue, infer_reading, infer_readings, read_frame,
    reading_for_kind, readings_from_schema,
)


def column(values, name="c", repeat=5) -> pd.Series:
    return pd.Series(list(values) * repeat, name=name, dtype=object)


# --- numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "number_format", "expected"), [
    (["86084,15", "12,5", "3"], "decimal_comma", [86084.15, 12.5, 3.0]),
    (["1.234,56", "86.084,15", "-7,5"], "dot_thousands", [1234.56, 86084.15, -7.5]),
    (["86,084.15", "1,234", "12.5"], "comma_thousands", [86084.15, 1234.0, 12.5]),
    (["1 234,5", "12 345 678,25", "7"], "space_thousands_comma", [1234.5, 12345678.25, 7.0]),
    (["1\u00a0234.5", "99.25"], "space_thousands", [1234.5, 99.25]),
    (["1'234.5", "12'000"], "apostrophe_thousands", [1234.5, 12000.0]),
    (["1.5", "-2e3", ".25"], "plain", [1.5, -2000.0, 0.25]),
])
def test_each_number_format_is_found_from_the_whole_column_and_read(values, number_format, expected):
    reading = infer_reading(column(values))
    assert (reading.kind, reading.number_format, reading.ambiguous) == ("numeric", number_format, False)
    assert reading.read(column(values, repeat=1)).tolist() == expected


def test_a_column_two_formats_read_differently_is_ambiguous_and_the_file_decides_the_default():
    # Given thousands written with a comma and nothing else: 1,234 is 1234 or 1.234
    values = column(["1,234", "5,678", "12,500"])
    # Then the reading says so, with the other reading as an alternative
    us = infer_reading(values)
    assert (us.number_format, us.alternatives) == ("comma_thousands", ("decimal_comma",))
    assert "ambiguous" in us.describe()
    # and a European file (decimal commas elsewhere, or ';' delimited) reads them the other way
    european = infer_readings(pd.DataFrame({"c": values, "price": column(["3,5", "12,25", "7,0"])}))["c"]
    assert (european.number_format, european.alternatives) == ("decimal_comma", ("comma_thousands",))


def test_one_value_in_another_format_settles_the_column():
    assert infer_reading(column(["1,234", "5,678", "0,5"])).number_format == "decimal_comma"
    assert infer_reading(column(["1,234", "5,678", "1,234.5"])).number_format == "comma_thousands"


def test_codes_with_leading_zeros_and_mixed_formats_are_not_numbers():
    assert infer_reading(column(["007", "012", "123"])).kind == "categorical"
    assert infer_reading(column(["1.5", "1,5", "2"])).kind == "categorical"  # no one format reads them all


# --- dates -----------------------------------------------------------------------------------------

def test_iso_dates_are_always_read_as_iso():
    # Given ISO dates whose day is 12 or less (a per-value guess read 2024-07-01 as 7 January)
    values = column(["2024-07-01", "2024-07-02", "2024-12-01", "2024-01-12"])
    reading = infer_reading(values)
    assert (reading.kind, reading.date_format, reading.ambiguous) == ("datetime", "iso8601", False)
    assert reading.read(values).dt.month.tolist()[:4] == [7, 7, 12, 1]


@pytest.mark.parametrize(("values", "date_format", "first"), [
    (["01.07.2024", "31.12.2024", "1.2.2023"], "dd.mm.yyyy", datetime(2024, 7, 1)),
    (["07/01/2024", "12/31/2024"], "mm/dd/yyyy", datetime(2024, 7, 1)),
    (["01/07/2024", "31/12/2024"], "dd/mm/yyyy", datetime(2024, 7, 1)),
    (["01-07-2024 13:45", "31-12-2024 08:00:30", "02-02-2024"], "dd-mm-yyyy", datetime(2024, 7, 1, 13, 45)),
    (["2024/07/01", "2024/12/31"], "yyyy/mm/dd", datetime(2024, 7, 1)),
])
def test_a_value_whose_day_is_over_12_settles_the_order_for_the_whole_column(values, date_format, first):
    reading = infer_reading(column(values))
    assert (reading.kind, reading.date_format, reading.ambiguous) == ("datetime", date_format, False)
    assert reading.read(column(values, repeat=1))[0] == first


def test_dates_whose_day_and_month_cannot_be_told_apart_are_flagged_and_can_be_chosen():
    values = column(["01/02/2024", "03/04/2024", "12/11/2024"])
    reading = infer_reading(values)
    assert (reading.date_format, reading.alternatives) == ("mm/dd/yyyy", ("dd/mm/yyyy",))
    chosen = reading.choose("dd/mm/yyyy")
    assert (chosen.date_format, chosen.alternatives, chosen.source) == ("dd/mm/yyyy", ("mm/dd/yyyy",), "user")
    assert chosen.read(values)[0] == datetime(2024, 2, 1)
    # a European file reads them day first by default
    semicolon = ingest(b"d;x\n" + b"\n".join(f"{v};1".encode() for v in values), delimiter=";")
    assert semicolon.readings["d"]["date_format"] == "dd/mm/yyyy"


def test_impossible_dates_and_stray_text_keep_a_column_from_being_dates():
    assert infer_reading(column(["31.02.2024", "01.01.2024"])).kind != "datetime"
    assert infer_reading(column(["01.07.2024", "soon"])).kind != "datetime"


# --- booleans and categories ------------------------------------------------------------------------

@pytest.mark.parametrize("values", [["yes", "no"], ["TRUE", "false", "True"], ["Y", "n"], ["t", "F"]])
def test_boolean_spellings_in_any_case(values):
    reading = infer_reading(column(values))
    assert reading.kind == "boolean"
    assert reading.read(column(values, repeat=1)).tolist() == [v.lower() in ("yes", "true", "y", "t") for v in values]


def test_zero_one_integers_are_booleans_and_integer_codes_can_be_declared_categorical():
    assert infer_reading(pd.Series([0, 1, 1, 0] * 10, name="flag")).kind == "boolean"
    codes = pd.Series([1, 2, 3, 2, np.nan] * 10, name="region")
    assert infer_reading(codes).kind == "numeric"
    declared = reading_for_kind(codes, "categorical", name="region")
    read = declared.read(codes)
    assert read.tolist()[:4] == ["1", "2", "3", "2"] and pd.isna(read[4])
    assert declared.read_value(2) == declared.read_value(2.0) == declared.read_value("2") == "2"


# --- one function, two forms --------------------------------------------------------------------------

CORPUS = ["1", "-2", "1.5", "1,5", "1.234", "1,234", "1.234,5", "1,234.5", "1 234,5", "1'234.5", "12,3456",
          "abc", "", " 7 ", "1e5", "007", "2024-07-01", "2024-07-01T13:45:00+02:00", "01.07.2024", "1.7.2024 13:45",
          "07/01/2024", "13/01/2024", "31.02.2024", "01-07-2024", "2024/07/01", "yes", "No", "T", "0", "NA", "n/a"]
READINGS = ([ColumnReading("numeric", number_format=k) for k in NUMBER_FORMATS]
            + [ColumnReading("datetime", date_format=k) for k in DATE_FORMATS]
            + [ColumnReading("boolean"), ColumnReading("categorical")])


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: f"{r.kind}-{r.format_key}")
def test_a_value_read_alone_reads_as_in_its_column(reading):
    # Given every spelling in the corpus read as a column and one by one
    whole = reading.read(pd.Series(CORPUS, dtype=object))
    read_one = reading.value_reader()
    for i, text in enumerate(CORPUS):
        try:
            alone = read_one(text)
        except UnreadableValue:
            alone = None
        # Then both agree: the same value, or missing in the column where the value alone is refused
        expected = whole.iloc[i]
        if alone is None or (isinstance(alone, float) and math.isnan(alone)) or alone is pd.NaT or (
                isinstance(alone, np.datetime64) and np.isnat(alone)):
            assert pd.isna(expected), (text, expected)
        else:
            assert expected == alone, (text, expected, alone)


@pytest.mark.parametrize("reading", READINGS[:-2], ids=lambda r: f"{r.kind}-{r.format_key}")
def test_a_value_written_in_a_columns_format_reads_back_as_itself(reading):
    # Given values of every sign and size (dates with and without a time)
    values = ([0, 7, -0.25, 1234.5, -1234567.125, 86084.15, 2.0e15] if reading.kind == "numeric"
              else [datetime(2024, 3, 7), datetime(1999, 12, 31, 23, 5, 9), datetime(2024, 11, 2, 0, 0, 1)])
    for value in values:
        # When it is written as the column writes its values, then read with the column's reading
        written = reading.write(value)
        assert (type(written) is not str) == (reading.kind == "numeric" and reading.format_key == "plain"), written
        # Then it is the same value
        assert reading.read_value(written) == (np.datetime64(value, "us") if reading.kind == "datetime" else value)
        if reading.format_key not in ("plain", "iso8601", None):
            assert reading.read(pd.Series([written], dtype=object)).iloc[0] == reading.read_value(written)


def test_typed_values_are_taken_as_they_are():
    reading = ColumnReading("numeric", number_format="dot_thousands")
    assert reading.read(pd.Series([1.5, None, 3])).tolist()[::2] == [1.5, 3.0]
    assert reading.read_value(1.5) == 1.5
    with pytest.raises(UnreadableValue, match="written like 1.234,5"):
        reading.read_value("1,234.5")


def test_readings_survive_json_and_old_schemas_get_the_old_rule():
    reading = infer_reading(column(["01/02/2024", "03/04/2024"]))
    assert ColumnReading.from_dict(reading.as_dict()) == reading
    # A schema from before readings: dates are ISO, else the parser's guess, as they were
    legacy = readings_from_schema([{"name": "d", "kind": "datetime"}, {"name": "x", "kind": "numeric"}])
    assert legacy["d"].source == "legacy" and legacy["d"].read_value("March 5, 2020") == np.datetime64("2020-03-05")
    assert read_frame(pd.DataFrame({"x": ["1.5"], "d": ["2020-03-05"]}), legacy)["x"].tolist() == [1.5]


# --- the user's choice -------------------------------------------------------------------------------

def test_a_kind_that_cannot_apply_is_refused_naming_the_column():
    with pytest.raises(MLInputError) as caught:
        reading_for_kind(column(["Paris", "Lyon"], name="city"), "date", name="city")
    assert caught.value.field == "column_kinds"
    assert "column 'city' cannot be read as dates" in caught.value.message
    with pytest.raises(MLInputError, match="unknown kind"):
        reading_for_kind(column(["1"]), "float", name="c")


def test_a_kind_most_values_fit_counts_the_others_as_missing():
    values = pd.Series(["1,5", "2,25", "oops"] + ["3,5"] * 40, name="amount")
    reading = reading_for_kind(values, "numeric", name="amount")
    assert (reading.number_format, reading.unreadable, reading.examples) == ("decimal_comma", 1, ("oops",))
    assert reading.read(values).isna().sum() == 1


# --- at upload ------------------------------------------------------------------------------------------

def ingest(content: bytes, *, delimiter=",", **kwargs):
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    result = ingest_to_parquet(io.BytesIO(content), folder / "d.parquet", filename="d.csv", max_bytes=10**7, **kwargs)
    result.path = folder / "d.parquet"
    return result


def test_upload_reads_each_column_from_all_its_rows_and_the_profile_shows_it():
    # Given a ';' file: decimal commas, dotted thousands, dd.mm.yyyy dates, yes/no and a numeric target with commas
    rows = [f"{i},5;{1 + i % 9}.{i:03d},75;{1 + i % 28:02d}.{1 + i % 12:02d}.2024;{'yes' if i % 2 else 'no'};"
            f"{i * 3},25" for i in range(150)]
    result = ingest(("amount;big;day;member;target\n" + "\n".join(rows)).encode(), delimiter=";")
    kinds = {name: (r["kind"], r.get("number_format") or r.get("date_format")) for name, r in result.readings.items()}
    assert kinds == {"amount": ("numeric", "decimal_comma"), "big": ("numeric", "dot_thousands"),
                     "day": ("datetime", "dd.mm.yyyy"), "member": ("boolean", None),
                     "target": ("numeric", "decimal_comma")}
    # the columns that need their reading are stored as written
    assert str(pq.read_schema(result.path).field("amount").type) == "string"

    profile = profile_parquet(result.path, readings=result.readings)
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["amount"]["kind"] == "numeric" and columns["amount"]["max"] == 149.5
    assert columns["big"]["min"] == 1000.75
    assert columns["day"]["min"].startswith("2024-01-01") and columns["member"]["kind"] == "boolean"
    assert columns["amount"]["reading"]["description"].startswith("numbers written like 1234,5")
    # and a numeric target with a decimal comma is a regression target, not 150 classes
    assert profile["suggested_target"] == "target" and profile["suggested_problem_type"] == "regression"


def test_a_column_that_looks_numeric_until_late_says_why_it_is_text():
    rows = "\n".join(["x"] + [f"{i}.5" for i in range(100)] + ["1.5.2"])
    result = ingest(rows.encode())
    assert "x" not in result.readings
    assert any("'1.5.2'" in note for note in result.notes)


def test_numbers_two_formats_read_differently_are_kept_as_text_so_the_reading_can_change():
    result = ingest(b"x\n1.234\n5.678\n9.1\n".replace(b"9.1", b"9.100"))
    assert result.readings["x"]["alternatives"] == ["dot_thousands"]
    assert str(pq.read_schema(result.path).field("x").type) == "string"


def test_a_thousands_separator_first_seen_deep_in_a_file_still_settles_the_column():
    # Given plain numbers for many blocks of the file, then one written with a thousands separator
    rows = [f"{i % 900}.5" for i in range(20_000)] + ['"1,234.5"'] + ["7.25"] * 10
    result = ingest(("x\n" + "\n".join(rows)).encode(), block_size=2**14)
    # Then the whole column is one format, found from every row, and stored so that it reads
    assert (result.readings["x"]["kind"], result.readings["x"]["number_format"]) == ("numeric", "comma_thousands")
    profile = profile_parquet(result.path, readings=result.readings)
    assert profile["columns"][0]["max"] == 1234.5 and profile["columns"][0]["missing"] == 0
