"""Real-time predictions: read records with the version's stored column readings, predict, answer with labels.

Engine: ONNX Runtime when the version's graph agreed with the pipeline at registration (about 100 times faster
for one record: ``bench/serving.py``), else the native pipeline on one thread; see ``loading.serving_entry``.
Warnings name, per record and column, every value that changed meaning (``training.ml.value_checks``).
"""
from __future__ import annotations

import time

from django.conf import settings

from mlplatform.api.serializers import unknown_field_errors
from training.ml.errors import MLInputError
from training.ml.value_checks import capped

from .loading import serving_entry
from .models import ModelVersion
from .monitoring import stats_buffer


BODY_FIELDS = ["records"]


def predict(*, version: ModelVersion, body) -> dict:
    """`body` is the parsed JSON: {"records": [...]}. Errors a caller can fix raise MLInputError (→ 400)."""
    started = time.perf_counter()
    ok, predictions = False, []
    try:
        if not isinstance(body, dict) or "records" not in body:
            raise MLInputError('The body must be a JSON object {"records": [{column: value, ...}, ...]}.', field="records")
        if len(body) > 1:
            field, messages = next(iter(unknown_field_errors(body.keys(), BODY_FIELDS).items()))
            raise MLInputError(f"{field}: {messages[0]}", field=field)
        entry = serving_entry(version)
        frame, warnings = entry.validator.to_frame(body["records"], max_records=settings.PREDICT_MAX_RECORDS)
        labels, proba = entry.predictor.predict(frame)
        predictions = labels.tolist()
        answer = {
            "model_version": {"id": version.pk, "name": version.registered_model.name, "version": version.version,
                              "engine": entry.engine},
            "predictions": predictions,
            "probabilities": _probabilities(entry.predictor.classes, proba),
        }
        if warnings:
            answer["warnings"] = capped(warnings)
        ok = True
        return answer
    finally:
        stats_buffer.record(version_id=version.pk, latency_ms=(time.perf_counter() - started) * 1000, ok=ok,
                            records=len(predictions), predictions=predictions)


def _probabilities(classes, proba) -> list[dict] | None:
    if proba is None or not classes:
        return None
    labels = [c if isinstance(c, (str, int, float, bool)) else str(c) for c in classes]
    return [dict(zip(labels, row)) for row in proba.round(6).tolist()]
