"""Pages of the registry: models, a version, deploy and roll back, try it, compare, monitoring, API keys."""
from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from mlplatform import filestore, present
from mlplatform.errors import ApplicationError
from mlplatform.forms import PlatformForm
from mlplatform.pages import has_role, member_required, require_form
from mlplatform.validators import id_or_none
from training.ml.errors import MLInputError
from tenants.accounts.models import ApiKey
from training import charts

from . import selectors, services
from .examples import example_record
from .loading import table_engine
from .models import ModelVersion, RegisteredModel


@require_safe
@member_required("viewer")
def model_list_view(request):
    rows = []
    for registered in selectors.registered_model_list():
        versions = list(registered.versions.all())
        alias_rows = {a.name: a for a in registered.aliases.all()}  # prefetched with their versions
        aliases = {name: a.version for name, a in alias_rows.items()}
        production = aliases.get("production")
        latest = versions[0] if versions else None
        shown = production or latest
        rows.append({"model": registered, "versions": versions, "aliases": aliases, "production": production,
                     "latest": latest, "headline": selectors.headline(shown) if shown else ("", None),
                     "rollback_to": selectors.rollback_target(alias_rows["production"]) if production else None})
    return render(request, "models_registry/model_list.html", {"rows": rows})


@require_safe
@member_required("viewer")
def version_detail_view(request, version_id: int):
    version = get_object_or_404(selectors.version_list(), pk=version_id)
    metrics = version.metrics or {}
    return render(request, "models_registry/version_detail.html", {
        "version": version,
        "aliases": [a.name for a in version.aliases.all()],
        "history": selectors.alias_history(version.registered_model)[:50],
        "evaluations": version.evaluations.all(),
        "importance_chart": charts.importance_chart(version.importance),
        "confusion_chart": charts.confusion_chart(metrics.get("confusion_matrix")),
        "roc_chart": charts.curve_chart(metrics.get("roc_curve"), "fpr", "tpr", "ROC curve"),
        "residuals_chart": charts.residuals_chart((metrics.get("residuals") or {}).get("points")),
        "example_record": json.dumps(example_record(version.feature_schema), indent=1, ensure_ascii=False),
        "table_engine": table_engine(version),
        "parameters": present.parameter_rows(version.params),
        "members": present.ensemble_members(version.params, _leaderboard(version)),
        "datasets": _datasets(),
    })


def _leaderboard(version: ModelVersion) -> list[dict]:
    """The leaderboard of the AutoML job that made an ensemble (its members are candidates of that search)."""
    if not (version.params or {}).get("members") or version.job_id is None:
        return []
    return ((version.job.result if version.job else None) or {}).get("leaderboard") or []


def _datasets():
    from django.apps import apps

    return apps.get_model("training", "Dataset").objects.only("id", "name", "rows")


@require_POST
@member_required("editor")
def deploy_view(request, version_id: int):
    version = get_object_or_404(ModelVersion, pk=version_id)
    try:
        services.alias_set(actor=request.user.username, version=version, alias=request.POST.get("alias") or "production")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{version} is now {request.POST.get('alias') or 'production'}.")
    return redirect("models-version", version_id=version.pk)


@require_POST
@member_required("editor")
def rollback_view(request, model_id: int):
    registered = get_object_or_404(RegisteredModel, pk=model_id)
    try:
        alias = services.alias_rollback(actor=request.user.username, registered=registered,
                                        alias=request.POST.get("alias") or "production")
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("models")
    messages.success(request, f"Rolled back: {alias.version} is {alias.name} again.")
    return redirect("models-version", version_id=alias.version_id)


@require_POST
@member_required("editor")
def evaluate_view(request, version_id: int):
    """Evaluate the version on a labelled dataset (the page form; the API has the same service)."""
    version = get_object_or_404(ModelVersion.objects.select_related("registered_model"), pk=version_id)
    from django.apps import apps

    dataset = apps.get_model("training", "Dataset").objects.filter(pk=id_or_none(request.POST.get("dataset_id"))).first()
    if dataset is None:
        messages.error(request, "Choose a dataset to evaluate on.")
    else:
        try:
            services.evaluation_create(actor=request.user.username, version=version, dataset=dataset,
                                       frame=filestore.read_frame(dataset.file))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Evaluated {version} on {dataset.name}.")
    return redirect("models-version", version_id=version.pk)


@require_safe
@member_required("viewer")
def compare_view(request):
    ids = [i for i in map(id_or_none, request.GET.getlist("v")) if i is not None]
    context = {"all_versions": selectors.version_list()[:300], "selected": ids}
    if ids:
        try:
            comparison = selectors.comparison(ids)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            context["comparison"] = comparison
            context["rows"] = [(m, [{"value": v["scores"].get(m), "best": comparison["best"].get(m) == v["id"]}
                                    for v in comparison["versions"]]) for m in comparison["metrics"]]
            context["chart"] = _comparison_chart(comparison)
    return render(request, "models_registry/compare.html", context)


def _comparison_chart(comparison: dict) -> dict:
    """One small bar chart per metric (each on its own scale: an RMSE of 20 and an R² of 0.9 share no axis)."""
    from plotly.subplots import make_subplots

    metrics = comparison["metrics"]
    columns = min(3, len(metrics)) or 1
    rows = -(-len(metrics) // columns) or 1
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=metrics, vertical_spacing=0.3 / rows + 0.08)
    names = [f"{v['name']} v{v['version']}" for v in comparison["versions"]]
    for i, metric in enumerate(metrics):
        best = comparison["best"].get(metric)
        fig.add_bar(x=names, y=[v["scores"].get(metric) for v in comparison["versions"]], row=i // columns + 1,
                    col=i % columns + 1, showlegend=False, name=metric,
                    marker_color=["#059669" if v["id"] == best else "#4f46e5" for v in comparison["versions"]])
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(height=220 * rows, showlegend=False, margin={"t": 40})
    return json.loads(fig.to_json())


@require_safe
@member_required("viewer")
def monitoring_view(request, model_id: int):
    import plotly.graph_objects as go

    registered = get_object_or_404(RegisteredModel, pk=model_id)
    data = selectors.monitoring(list(registered.versions.values_list("pk", flat=True)))
    series = data["series"]
    traffic = go.Figure()
    traffic.add_bar(name="requests", x=[s["minute"] for s in series], y=[s["requests"] for s in series], marker_color="#4f46e5")
    traffic.add_bar(name="errors", x=[s["minute"] for s in series], y=[s["errors"] for s in series], marker_color="#dc2626")
    latency = go.Figure()
    latency.add_scatter(name="p50", x=[s["minute"] for s in series], y=[s["p50_ms"] for s in series], mode="lines+markers")
    latency.add_scatter(name="p95", x=[s["minute"] for s in series], y=[s["p95_ms"] for s in series], mode="lines+markers")
    latency.update_layout(yaxis_title="ms")
    dist = go.Figure(go.Bar(x=list(data["distribution"]), y=list(data["distribution"].values()), marker_color="#4f46e5"))
    figures = {name: json.loads(fig.update_layout(height=300).to_json()) for name, fig in
               (("traffic", traffic), ("latency", latency), ("distribution", dist))}
    return render(request, "models_registry/monitoring.html", {"model": registered, "data": data, "figures": figures})


class ApiKeyForm(PlatformForm):
    name = forms.CharField(max_length=100)


@require_form
@member_required("owner")
def api_keys_view(request):
    secret = None
    if request.method == "POST":
        models = list(RegisteredModel.objects.filter(pk__in=[id_or_none(i) for i in request.POST.getlist("model_ids")]))
        form = ApiKeyForm(request.POST)
        try:
            if not form.is_valid():
                raise ApplicationError(f"Name: {' '.join(form.errors.get('name', ['invalid']))}", field="name")
            key, secret = services.api_key_create(actor=request.user.username, name=form.cleaned_data["name"],
                                                  registered_models=models)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Created key {key.name}. Copy the secret now: it is not shown again.")
    return render(request, "models_registry/api_keys.html", {
        "keys": ApiKey.objects.prefetch_related("registered_models"), "models": RegisteredModel.objects.all(),
        "secret": secret})


@require_POST
@member_required("owner")
def api_key_revoke_view(request, key_id: int):
    try:
        key = services.api_key_revoke(actor=request.user.username, key=get_object_or_404(ApiKey, pk=key_id))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked {key}.")
    return redirect("api_keys")


@require_form
@member_required("viewer")
def batch_list_view(request):
    from django.apps import apps

    from .batch import batch_create
    from .models import BatchPredictionJob

    if request.method == "POST":
        if not has_role(request, "editor"):
            raise PermissionDenied("Batch predictions need the editor role.")
        version = ModelVersion.objects.filter(pk=id_or_none(request.POST.get("version_id"))).first()
        dataset = apps.get_model("training", "Dataset").objects.filter(pk=id_or_none(request.POST.get("dataset_id"))).first()
        upload = request.FILES.get("file")
        try:
            if version is None:
                raise ApplicationError("Choose a model version.")
            job = batch_create(actor=request.user.username, version=version, dataset=None if upload else dataset, upload=upload)
        except (ApplicationError, MLInputError) as exc:
            messages.error(request, exc.message)
        else:
            return redirect("models-batch-detail", batch_id=job.pk)
    return render(request, "models_registry/batch_list.html", {
        "jobs": BatchPredictionJob.objects.select_related("version__registered_model")[:100],
        "versions": selectors.version_list()[:300], "datasets": _datasets(),
        "selected_version": request.GET.get("version")})


@require_safe
@member_required("viewer")
def batch_detail_view(request, batch_id: int):
    from .models import BatchPredictionJob

    job = get_object_or_404(BatchPredictionJob.objects.select_related("version__registered_model"), pk=batch_id)
    template = "models_registry/_batch_status.html" if request.headers.get("HX-Request") else "models_registry/batch_detail.html"
    return render(request, template, {"job": job})


@require_safe
@member_required("viewer")
def batch_download_view(request, batch_id: int):
    from .apis import batch_download
    from .models import BatchPredictionJob

    job = get_object_or_404(BatchPredictionJob.objects.select_related("version__registered_model"), pk=batch_id)
    if job.status != "succeeded":
        messages.error(request, "This batch has no result to download yet.")
        return redirect("models-batch-detail", batch_id=job.pk)
    return batch_download(job)
