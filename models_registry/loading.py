"""Loading model files: digest and HMAC checked before any byte is deserialized, then cached in the process.

A tampered file is refused (409 and an audit entry) and never loaded; a file encrypted under a key this
server lacks answers 503 naming the key (mlplatform.filestore). The cache is keyed by schema, version
and digest, so a warm request does no disk I/O and no verification work.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection

from mlplatform import filestore
from mlplatform.errors import ApplicationError
from tenants.accounts.services import audit_record

from .models import ModelVersion
from .signing import verify

logger = logging.getLogger(__name__)
CACHE_SIZE = 32


class ArtifactRefused(ApplicationError):
    def __init__(self, version: ModelVersion, what: str):
        super().__init__(f"The model file of {version} failed its integrity check ({what}); it was not loaded. "
                         "Retrain or restore the version.", status=409)


@dataclass
class ServingEntry:
    version_id: int
    label: str
    predictor: object  # training.ml.predictors.Predictor
    validator: object  # training.ml.records.RecordValidator
    engine: str


_cache: OrderedDict[tuple, ServingEntry] = OrderedDict()
_lock = threading.Lock()


def _read_verified(version: ModelVersion, path: str, sha256: str, mac: str, what: str) -> bytes:
    try:
        data = filestore.read_bytes(path)
    except FileNotFoundError as exc:
        audit_record(actor="system", action="model_file_missing", obj=version, detail={"file": what})
        raise ArtifactRefused(version, f"{what} file is missing") from exc
    except filestore.StoredFileCorrupt as exc:
        audit_record(actor="system", action="model_file_tampered", obj=version, detail={"file": what, "encrypted": True})
        logger.error("refused %s of %s in %s: %s", what, version, connection.schema_name, exc.message)
        raise ArtifactRefused(version, f"{what} file failed decryption: altered or damaged") from exc
    if not verify(data, sha256=sha256, mac=mac):
        audit_record(actor="system", action="model_file_tampered", obj=version, detail={"file": what})
        logger.error("refused tampered %s of %s in %s", what, version, connection.schema_name)
        raise ArtifactRefused(version, f"{what} digest or signature mismatch")
    return data


def load_pipeline_verified(version: ModelVersion):
    from training.ml.artifacts import UntrustedArtifact, load_pipeline

    data = _read_verified(version, version.artifact, version.artifact_sha256, version.artifact_hmac, "pipeline")
    try:
        return load_pipeline(data)
    except UntrustedArtifact as exc:  # signed, yet not a file the platform writes: refuse, never execute
        audit_record(actor="system", action="model_file_refused", obj=version, detail={"reason": str(exc)[:200]})
        raise ArtifactRefused(version, f"not a safe model file: {exc}") from exc


def serving_entry(version: ModelVersion) -> ServingEntry:
    """The cached real-time predictor for a version, loading (and verifying) it on first use.

    Engine: ONNX Runtime on one thread when the version has a graph that agreed with the pipeline at
    registration (``serving_engine == "onnx"``): one record in about 60 us against about 10 ms natively
    (``bench/serving.py``). Otherwise, and for a graph that fails to load, the native pipeline on one thread.
    Batch predictions and evaluations use the engine measured fastest over whole tables (``table_predictor``).
    """
    key = (connection.schema_name, version.pk, version.artifact_sha256, version.onnx_sha256)
    with _lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
            return entry
    entry = _load(version)
    with _lock:
        _cache[key] = entry
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


def _load(version: ModelVersion) -> ServingEntry:
    from training.ml.predictors import NativePredictor, OnnxPredictor
    from training.ml.records import RecordValidator

    columns = [c["name"] for c in version.feature_schema]
    kinds = {c["name"]: c.get("kind") for c in version.feature_schema}
    classes = version.classes or None
    if version.serving_engine == "onnx" and version.onnx_artifact:
        data = _read_verified(version, version.onnx_artifact, version.onnx_sha256, version.onnx_hmac, "onnx")
        predictor = OnnxPredictor(data, version.problem_type, classes, columns, kinds)
    else:
        predictor = NativePredictor(load_pipeline_verified(version), version.problem_type, classes, columns)
    return ServingEntry(version_id=version.pk, label=str(version), predictor=predictor,
                        validator=RecordValidator(version.feature_schema), engine=predictor.engine)


def table_engine(version: ModelVersion) -> str:
    """"onnx" or "native": the engine whole tables of this version are predicted with (see ``table_predictor``)."""
    from training.ml.algorithms import ALGORITHMS

    algorithm = ALGORITHMS.get(version.algorithm)
    usable = version.serving_engine == "onnx" and bool(version.onnx_artifact)
    return "onnx" if algorithm is not None and algorithm.table_engine == "onnx" and usable else "native"


def table_predictor(version: ModelVersion, *, n_threads: int):
    """The predictor for whole tables (batch predictions, evaluations): the engine the version's algorithm
    predicts tables fastest with (``Algorithm.table_engine``, measured by ``bench/engines.py``: the native
    pipeline with ``n_threads`` for forests, 2.4x to 3.4x the one-thread graph's rows/s; the ONNX graph for
    histogram gradient boosting, 1.7x to 3x native). ONNX only when the version has a
    graph that agreed with the pipeline at registration; otherwise, or if it fails to load, native."""
    from training.ml.predictors import NativePredictor, OnnxPredictor

    columns = [c["name"] for c in version.feature_schema]
    classes = version.classes or None
    if table_engine(version) == "onnx":
        data = _read_verified(version, version.onnx_artifact, version.onnx_sha256, version.onnx_hmac, "onnx")
        try:
            return OnnxPredictor(data, version.problem_type, classes, columns,
                                 {c["name"]: c.get("kind") for c in version.feature_schema})
        except Exception:
            logger.warning("ONNX graph of %s not usable for a table, predicting natively", version, exc_info=True)
    return NativePredictor(load_pipeline_verified(version), version.problem_type, classes, columns,
                           n_threads=n_threads)


def cache_clear() -> None:
    with _lock:
        _cache.clear()
