"""Demo content: sample datasets uploaded through the same path as a user's upload."""
from __future__ import annotations

import io

from django.core.files.uploadedfile import SimpleUploadedFile

from .models import Dataset
from .services import dataset_create


def _sample_csvs() -> dict[str, bytes]:
    from sklearn.datasets import load_diabetes, load_iris

    iris = load_iris(as_frame=True).frame
    iris["species"] = iris.pop("target").map(dict(enumerate(load_iris().target_names)))
    diabetes = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    out = {}
    for name, frame in (("iris", iris), ("diabetes", diabetes)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        out[name] = buffer.getvalue().encode()
    return out


def seed_sample_dataset() -> str:
    made = []
    for name, content in _sample_csvs().items():
        if not Dataset.objects.filter(name=name).exists():
            dataset_create(actor="system", file=SimpleUploadedFile(f"{name}.csv", content, "text/csv"), name=name)
            made.append(name)
    return f"Sample datasets added: {', '.join(made)}" if made else ""
