"""Where an organization's files live: its own folder under MEDIA_ROOT (TenantFileSystemStorage), never a public URL."""
from __future__ import annotations

import os
import uuid

from django.core.files.storage import default_storage
from django.db.models import Sum

MB = 1024 * 1024


def new_dataset_path() -> tuple[str, str]:
    """(name in storage, absolute path) for a new Parquet file of the current organization."""
    name = f"datasets/{uuid.uuid4().hex}.parquet"
    path = default_storage.path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return name, path


def absolute_path(name: str) -> str:
    return default_storage.path(name)


def storage_used_bytes() -> int:
    from models_registry.models import ModelVersion

    from .models import Dataset

    datasets = Dataset.objects.aggregate(n=Sum("stored_bytes"))["n"] or 0
    models = ModelVersion.objects.aggregate(n=Sum("artifact_size"))["n"] or 0
    return datasets + models
