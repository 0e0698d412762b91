"""Reads of the registry in the current organization's schema."""
from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from mlplatform.errors import ApplicationError
from mlplatform.hotcache import HotCache

from .models import Alias, AliasMove, ModelVersion, PredictionStats, RegisteredModel

HEADLINE_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}


def registered_model_list() -> QuerySet:
    return RegisteredModel.objects.prefetch_related(
        Prefetch("aliases", queryset=Alias.objects.select_related("version")),
        Prefetch("versions", queryset=ModelVersion.objects.order_by("-version").defer("feature_schema", "importance", "metrics")),
    )


def version_list(*, name: str | None = None) -> QuerySet:
    qs = ModelVersion.objects.select_related("registered_model").prefetch_related("aliases")
    if name:
        qs = qs.filter(registered_model__name=name)
    return qs


def version_get(version_id: int) -> ModelVersion:
    return version_list().get(pk=version_id)


def deployed_version(model_name: str, alias: str = "production") -> ModelVersion:
    """The version an alias points at; 404 when the model or alias does not exist here."""
    found = Alias.objects.select_related("version__registered_model").filter(registered_model__name=model_name, name=alias).first()
    if found is None:
        raise Http404(f"No model named '{model_name}' is deployed as '{alias}' in this organization.")
    return found.version


# --- The prediction hot path: versions as serving needs them, cached per process --------------------------
#: Fields serving never reads (the large ones): left out of the cached rows.
NOT_SERVED = ("metrics", "cv", "params", "importance", "onnx_check", "library_versions")
versions_by_id = HotCache("versions by id")
versions_by_alias = HotCache("versions by alias")


def serving_version(version_id: int) -> ModelVersion:
    """The version to predict with; 404 when it does not exist here. Cached: versions never change once
    registered, and a deleted one is forgotten within HOT_CACHE_TTL_S."""
    def load():
        return ModelVersion.objects.select_related("registered_model").defer(*NOT_SERVED).filter(pk=version_id).first()

    return _or_404(versions_by_id.get(connection.schema_name, version_id, load),
                   f"No model version {version_id} in this organization.")


def serving_deployed_version(model_name: str, alias: str = "production") -> ModelVersion:
    """`deployed_version` for serving: cached until the next deploy or roll back (services.alias_set)."""
    def load():
        found = (Alias.objects.select_related("version__registered_model").defer(*(f"version__{f}" for f in NOT_SERVED))
                 .filter(registered_model__name=model_name, name=alias).first())
        return found.version if found else None

    return _or_404(versions_by_alias.get(connection.schema_name, (model_name, alias), load),
                   f"No model named '{model_name}' is deployed as '{alias}' in this organization.")


def _or_404(version: ModelVersion | None, message: str) -> ModelVersion:
    if version is None:
        raise Http404(message)
    return version


def headline(version: ModelVersion) -> tuple[str, float | None]:
    key = HEADLINE_METRIC.get(version.problem_type, "")
    return key, (version.metrics.get("scores") or {}).get(key)


def rollback_target(current: Alias) -> ModelVersion | None:
    """The version a roll back of this alias would move it to: where it pointed before its last move."""
    last = AliasMove.objects.filter(registered_model_id=current.registered_model_id, alias=current.name,
                                    to_version_id=current.version_id).select_related(
        "from_version__registered_model").first()
    return last.from_version if last else None


def alias_history(registered: RegisteredModel) -> QuerySet:
    return AliasMove.objects.filter(registered_model=registered).select_related("from_version", "to_version")


def comparison(version_ids: list[int]) -> dict:
    """Metrics side by side with CV spread; the best value of each metric marked, by the metric's direction
    (`best`: metric -> version id, `cv_best`: version id when all were cross-validated on one metric). Same
    problem type only."""
    versions = list(version_list().filter(pk__in=version_ids))
    missing = sorted(set(version_ids) - {v.pk for v in versions})
    if missing:
        raise ApplicationError(f"Model version(s) {', '.join(map(str, missing))} do not exist in this organization.",
                               field="model_ids")
    if len(versions) < 2:
        raise ApplicationError("Choose at least two model versions to compare.", field="model_ids")
    kinds = {v.problem_type for v in versions}
    if len(kinds) > 1:
        raise ApplicationError(f"Versions of different problem types ({', '.join(sorted(kinds))}) cannot be compared.",
                               field="model_ids")
    from training.ml.metrics import greater_is_better

    names = sorted({k for v in versions for k, value in (v.metrics.get("scores") or {}).items() if value is not None})
    best = {name: _best([((v.metrics.get("scores") or {}).get(name), v.pk) for v in versions], greater_is_better(name))
            for name in names}
    cv_metrics = {(v.cv or {}).get("metric") for v in versions}  # CV scores compare only under one metric
    cv_best = _best([((v.cv or {}).get("mean"), v.pk) for v in versions],
                    greater_is_better(next(iter(cv_metrics)) or "") if len(cv_metrics) == 1 else None)
    return {
        "problem_type": kinds.pop(),
        "metrics": names,
        "best": best,
        "cv_best": cv_best,
        "versions": [{
            "id": v.pk, "name": v.registered_model.name, "version": v.version, "algorithm": v.algorithm,
            "scores": {n: (v.metrics.get("scores") or {}).get(n) for n in names}, "cv": v.cv,
            "params": v.params, "created": v.created.isoformat(),
        } for v in sorted(versions, key=lambda v: (v.registered_model.name, v.version))],
    }


def _best(values: list[tuple[float | None, int]], higher_is_better: bool | None) -> int | None:
    """The id holding the best value; None when no value is known or the direction is not."""
    known = [(value, pk) for value, pk in values if value is not None]
    if not known or higher_is_better is None:
        return None
    return (max(known) if higher_is_better else min(known))[1]


def monitoring(version_ids: list[int], *, minutes: int = 24 * 60) -> dict:
    """Requests, errors, p50/p95 latency per minute and the distribution of predictions."""
    import numpy as np

    since = timezone.now() - timedelta(minutes=minutes)
    rows = list(PredictionStats.objects.filter(version_id__in=version_ids, minute__gte=since).order_by("minute"))
    latencies = [ms for r in rows for ms in r.latencies_ms]
    distribution: dict[str, int] = {}
    for r in rows:
        for k, n in r.predictions.items():
            distribution[k] = distribution.get(k, 0) + n

    def pct(values, q):
        return round(float(np.percentile(values, q)), 3) if values else None

    return {
        "requests": sum(r.requests for r in rows), "errors": sum(r.errors for r in rows),
        "records": sum(r.records for r in rows),
        "latency_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95)},
        "distribution": dict(sorted(distribution.items(), key=lambda kv: -kv[1])[:50]),
        "series": [{"minute": r.minute.isoformat(), "version_id": r.version_id, "requests": r.requests, "errors": r.errors,
                    "p50_ms": pct(r.latencies_ms, 50), "p95_ms": pct(r.latencies_ms, 95), "predictions": r.predictions}
                   for r in rows],
    }
