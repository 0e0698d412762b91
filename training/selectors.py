"""Reads of datasets and jobs in the current organization's schema, and of the ML registries for forms and the API."""
from __future__ import annotations

from django.db.models import QuerySet

from training.ml.algorithms import ALGORITHMS
from training.ml.metrics import DEFAULT_METRICS, METRICS
from training.ml.search import SEARCHERS

from .models import Dataset, TrainingJob


def dataset_list() -> QuerySet:
    return Dataset.objects.defer("profile")


def job_list(*, status: str | None = None, dataset_id: int | None = None) -> QuerySet:
    qs = TrainingJob.objects.select_related("model_version__registered_model").defer("log", "result", "config")
    if status:
        qs = qs.filter(status=status)
    if dataset_id:
        qs = qs.filter(dataset_id=dataset_id)
    return qs


def job_get(job_id: int) -> TrainingJob:
    return TrainingJob.objects.select_related("dataset", "model_version__registered_model").get(pk=job_id)


def algorithm_labels(keys) -> list[str]:
    """Labels of the algorithms a job was limited to (an AutoML `algorithms` setting); [] for all of them."""
    if isinstance(keys, str):
        keys = [keys]
    return [ALGORITHMS[k].label if k in ALGORITHMS else str(k) for k in keys or []]


def ml_catalog() -> dict:
    """Algorithms, searchers and metrics a job may use, straight from the registries."""
    return {
        "algorithms": [a.describe() for a in ALGORITHMS.values()],
        "searches": [{"key": s.key, "label": s.label} for s in SEARCHERS.values()],
        "metrics": [m.describe() for m in METRICS.values()],
        "default_metrics": {p.value if hasattr(p, "value") else p: m for p, m in DEFAULT_METRICS.items()},
    }
