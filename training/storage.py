"""Where an organization's dataset files go, and how much room its files take. Every read and write goes
through `mlplatform.filestore` (the organization's own folder, encryption at rest, atomic writes)."""
from __future__ import annotations

from django.db.models import Sum

from mlplatform import filestore

MB = 1024 * 1024


def new_dataset_name() -> str:
    return filestore.new_name(filestore.DATASETS, ".parquet")


def storage_used_bytes() -> int:
    from models_registry.models import ModelVersion

    from .models import Dataset

    datasets = Dataset.objects.aggregate(n=Sum("stored_bytes"))["n"] or 0
    models = ModelVersion.objects.aggregate(n=Sum("artifact_size"))["n"] or 0
    return datasets + models
