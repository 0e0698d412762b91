"""Model versions trained once per session in acme (committed: the runner's monitor thread needs to see them)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django_tenants.utils import schema_context

from tests.training.conftest import csv_bytes, table, upload


def regression_table(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.uniform(20, 200, n).round(1), "rooms": rng.integers(1, 6, n),
                          "area": rng.choice(["north", "south"], n)})
    frame["price"] = (frame["size"] * 3 + frame["rooms"] * 10 + (frame["area"] == "south") * 50
                      + rng.normal(0, 5, n)).round(2)
    return frame


def train(org, dataset_id: int, **settings) -> dict:
    from training.runner import run_training_job

    response = org.client("editor").post("/api/v1/ml/training/start", {"dataset_id": dataset_id, **settings}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    with schema_context(org.schema):
        assert run_training_job(job_id) == "succeeded"
    job = org.client("viewer").get(f"/api/v1/ml/training/jobs/{job_id}").json()
    return org.client("viewer").get(f"/api/v1/ml/models/{job['model_version_id']}").json()


@pytest.fixture(scope="session")
def trained(orgs, django_db_blocker) -> dict:
    acme = orgs["acme"]
    with django_db_blocker.unblock():
        churn_data = upload(acme, csv_bytes(table(400)), name="churn-data").json()
        price_data = upload(acme, csv_bytes(regression_table()), name="price-data").json()
        versions = {
            "churn_v1": train(acme, churn_data["id"], target="label", model_name="churn", algorithm="random_forest",
                              params={"n_estimators": 30}, cv_folds=3),
            "churn_v2": train(acme, churn_data["id"], target="label", model_name="churn", algorithm="logistic_regression",
                              cv_folds=3),
            "price_v1": train(acme, price_data["id"], target="price", model_name="price", algorithm="ridge", cv_folds=3),
        }
    return {"datasets": {"churn": churn_data, "price": price_data}, **versions}
