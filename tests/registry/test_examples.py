"""The try-it form's example record: one for every column kind and schema shape, always accepted by the
prediction path."""
import html
import json
import re

import pandas as pd
import pytest
from django.test import Client

from models_registry.examples import example_record
from training.ml.records import records_to_frame

SCHEMAS = {
    "numeric": ({"name": "n", "kind": "numeric", "min": 1.5, "max": 2.5}, 2.0),
    "integers": ({"name": "n", "kind": "numeric", "min": 1, "max": 6}, 4),
    "numeric without a range": ({"name": "n", "kind": "numeric", "min": None, "max": None}, None),
    "numeric range as text": ({"name": "n", "kind": "numeric", "min": "1,5", "max": "2,5"}, None),
    "dates": ({"name": "d", "kind": "datetime", "min": "2024-01-01T00:00:00", "max": "2024-01-31T00:00:00"}, "2024-01-16"),
    "times": ({"name": "d", "kind": "datetime", "min": "2024-01-01T08:00:00", "max": "2024-01-01T10:00:00"},
              "2024-01-01T09:00:00"),
    "dates never seen": ({"name": "d", "kind": "datetime", "min": None, "max": None}, None),
    "dates unreadable": ({"name": "d", "kind": "datetime", "min": "soon", "max": "later"}, None),
    "boolean": ({"name": "b", "kind": "boolean", "values": ["no", "yes"]}, "no"),
    "boolean as JSON": ({"name": "b", "kind": "boolean", "values": [False, True]}, False),
    "categories": ({"name": "c", "kind": "categorical", "categories": ["Zürich", "Köln"]}, "Zürich"),
    "all missing": ({"name": "c", "kind": "categorical", "categories": [], "n_categories": 0}, None),
    "kind added later": ({"name": "t", "kind": "geopoint", "categories": ["47.37,8.54"]}, "47.37,8.54"),
    "kind without details": ({"name": "t", "kind": "text"}, None),
    "no kind at all": ({"name": "t"}, None),
    # written as the column's stored reading reads it
    "decimal commas": ({"name": "n", "kind": "numeric", "min": 800.25, "max": 1700.5,
                        "reading": {"kind": "numeric", "number_format": "decimal_comma"}}, "1250,375"),
    "dots between thousands": ({"name": "n", "kind": "numeric", "min": 1000, "max": 2000000,
                                "reading": {"kind": "numeric", "number_format": "dot_thousands"}}, "1.000.500"),
    "plain numbers": ({"name": "n", "kind": "numeric", "min": 1.5, "max": 2.5,
                       "reading": {"kind": "numeric", "number_format": "plain"}}, 2.0),
    "dd.mm.yyyy dates": ({"name": "d", "kind": "datetime", "min": "2023-01-15T00:00:00", "max": "2023-03-17T00:00:00",
                          "reading": {"kind": "datetime", "date_format": "dd.mm.yyyy"}}, "14.02.2023"),
    "dd.mm.yyyy times": ({"name": "d", "kind": "datetime", "min": "2023-01-15T08:00:00", "max": "2023-01-15T10:30:00",
                          "reading": {"kind": "datetime", "date_format": "dd.mm.yyyy"}}, "15.01.2023 09:15:00"),
    "ambiguous dates, day first chosen": ({"name": "d", "kind": "datetime", "min": "2023-01-02T00:00:00",
                                           "max": "2023-01-04T00:00:00",
                                           "reading": {"kind": "datetime", "date_format": "dd/mm/yyyy",
                                                       "alternatives": ["mm/dd/yyyy"]}}, "03/01/2023"),
    "ISO dates": ({"name": "d", "kind": "datetime", "min": "2024-01-01T00:00:00", "max": "2024-01-31T00:00:00",
                   "reading": {"kind": "datetime", "date_format": "iso8601"}}, "2024-01-16"),
    "yes/no": ({"name": "b", "kind": "boolean", "values": [False, True], "reading": {"kind": "boolean"}}, False),
}


@pytest.mark.parametrize("case", list(SCHEMAS))
def test_every_column_kind_gets_a_value_the_prediction_path_accepts(case):
    column, want = SCHEMAS[case]
    record = example_record([column])
    assert record == {column["name"]: want}
    frame, _ = records_to_frame([record], [column], max_records=1)  # raises if the form would be refused
    if want is not None and column.get("reading") and column["kind"] in ("numeric", "datetime"):
        assert frame.iloc[0, 0] == _middle(column)  # read back with the column's reading: what was meant


def _middle(column: dict):
    """The middle of what training saw, as the example means it (dates only when the range has no times)."""
    if column["kind"] == "numeric":
        return (column["min"] + column["max"]) / 2
    low, high = pd.Timestamp(column["min"]), pd.Timestamp(column["max"])
    middle = low + (high - low) / 2
    return middle.normalize() if low == low.normalize() and high == high.normalize() else middle


def test_a_record_for_a_whole_schema_names_every_column():
    schema = [column for column, _ in SCHEMAS.values()]
    schema = [{**c, "name": f"{case} ({i})"} for i, (case, c) in enumerate(zip(SCHEMAS, schema))]
    record = example_record(schema)
    assert list(record) == [c["name"] for c in schema]
    records_to_frame([record], schema, max_records=1)


@pytest.mark.django_db
def test_the_try_it_example_of_every_version_predicts(world):
    org = world.org
    client = Client(HTTP_HOST=org.host)
    assert client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"}).status_code == 302
    for sample in world.versions:
        page = client.get(f"/models/versions/{sample.value}/").content.decode()
        shown = re.search(r'<textarea id="try-record"[^>]*>(.*?)</textarea>', page, re.S)
        record = json.loads(html.unescape(shown.group(1)))
        answer = client.post(f"/api/v1/ml/models/{sample.value}/predict", {"records": [record]}, content_type="application/json")
        assert answer.status_code == 200, (sample.label, record, answer.content)
