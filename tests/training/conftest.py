from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A small binary problem: the label depends on x1, x2 and the colour."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x1": rng.normal(size=n).round(4),
        "x2": rng.uniform(0, 10, size=n).round(3),
        "color": rng.choice(["red", "green", "blue"], size=n),
    })
    score = frame["x1"] + (frame["x2"] - 5) / 3 + (frame["color"] == "red") * 1.0
    frame["label"] = np.where(score + rng.normal(scale=0.3, size=n) > 0.3, "yes", "no")
    return frame


def csv_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, **kwargs)
    return buffer.getvalue().encode()


def upload(org, content: bytes, filename: str = "data.csv", role: str = "editor", name: str = ""):
    return org.client(role).post("/api/v1/ml/datasets", {"file": SimpleUploadedFile(filename, content), "name": name},
                                 format="multipart")


def assert_400_naming(response, field: str, words: str) -> None:
    """A 400 whose errors name ``field`` and whose message says ``words``."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert words in body["detail"] or words in str(body["errors"])


@pytest.fixture
def uploaded(acme, db):
    """A dataset in acme (rolled back after the test)."""
    response = upload(acme, csv_bytes(table()), name="customers")
    assert response.status_code == 201, response.content
    return response.json()
