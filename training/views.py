"""Pages for datasets and training jobs."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from mlplatform import filestore, present
from mlplatform.errors import ApplicationError
from mlplatform.pages import has_role, member_required, require_form
from mlplatform.validators import id_or_none
from training.ml.errors import MLInputError
from training.ml.profile import preview_parquet

from . import charts, selectors, services
from .forms import PROBLEM_TYPE_CHOICES, ColumnReadingForm, DatasetUploadForm, TrainingJobForm
from .models import Dataset, TrainingJob


@require_form
@member_required("viewer")
def dataset_list_view(request):
    form = DatasetUploadForm()
    status = 200
    if request.method == "POST":
        if not has_role(request, "editor"):
            return render(request, "errors/403.html", {"reason": "Uploading needs the editor role."}, status=403)
        try:
            services.check_upload_size(id_or_none(request.META.get("CONTENT_LENGTH")) or 0)
            form = DatasetUploadForm(request.POST, request.FILES)
            if form.is_valid():
                dataset = services.dataset_create(actor=request.user.username, file=form.cleaned_data["file"],
                                                  name=form.cleaned_data["name"])
                messages.success(request, f"Uploaded {dataset.name}: {dataset.rows:,} rows, {dataset.columns} columns.")
                return redirect("datasets-detail", dataset_id=dataset.pk)
            status = 400
        except (ApplicationError, MLInputError) as exc:
            form.add_error("file", exc.message)
            status = exc.status
    return render(request, "training/dataset_list.html", {"datasets": selectors.dataset_list(), "form": form}, status=status)


@require_safe
@member_required("viewer")
def dataset_detail_view(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    columns = [{**c, "chart": charts.column_histogram(c), "chart_id": f"hist-{i}", "formats": _format_choices(c)}
               for i, c in enumerate(dataset.profile.get("columns", []))]
    with filestore.open_parquet(dataset.file) as source:
        preview = preview_parquet(source, n=20)
    return render(request, "training/dataset_detail.html", {
        "dataset": dataset, "columns": columns, "preview": preview, "kind_choices": ColumnReadingForm.KIND_CHOICES,
        "jobs": selectors.job_list(dataset_id=dataset.pk)[:20], "automl_budget_s": services.DEFAULT_AUTOML_BUDGET_S,
    })


def _format_choices(column: dict) -> list[tuple[str, str]]:
    """(format key, label) a column's reading can switch to: the ones every value also fits first."""
    from training.ml.reading import DATE_FORMATS, NUMBER_FORMATS

    reading = column.get("reading") or {}
    kind = reading.get("kind") or column.get("kind")
    labels = ({k: f.label for k, f in NUMBER_FORMATS.items()} if kind == "numeric" else
              {k: k for k in DATE_FORMATS} if kind == "datetime" else {})
    first = [k for k in (reading.get("number_format") if kind == "numeric" else reading.get("date_format"),
                         *reading.get("alternatives", [])) if k in labels]
    return [(k, labels[k] + (" (also fits)" if k in reading.get("alternatives", []) else ""))
            for k in dict.fromkeys([*first, *labels])]


@require_POST
@member_required("editor")
def dataset_reading_view(request, dataset_id: int):
    """The per-column form of the dataset page: set a column's kind, or its date or number format."""
    from training.ml.reading import DATE_FORMATS, KIND_NAMES, NUMBER_FORMATS

    dataset = get_object_or_404(Dataset, pk=dataset_id)
    form = ColumnReadingForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()))
        return redirect("datasets-detail", dataset_id=dataset.pk)
    column, kind, chosen = (form.cleaned_data[k] for k in ("column", "kind", "format"))
    current = next((c for c in dataset.profile.get("columns", []) if c["name"] == column), None)
    if current is None:
        messages.error(request, f"Dataset {dataset.name} has no column '{column}'.")
        return redirect("datasets-detail", dataset_id=dataset.pk)
    kind_changed = bool(kind) and KIND_NAMES.get(kind) != current.get("kind")
    formats = {"datetime": DATE_FORMATS, "numeric": NUMBER_FORMATS}.get(KIND_NAMES.get(kind or current["kind"]), {})
    if not kind_changed and chosen not in formats:
        messages.info(request, f"Column '{column}' is read as before: choose another kind or format.")
        return redirect("datasets-detail", dataset_id=dataset.pk)
    try:
        dataset = services.dataset_set_readings(
            actor=request.user.username, dataset=dataset, column_kinds={column: kind} if kind_changed else None,
            column_readings={column: {"format": chosen}} if chosen in formats and not kind_changed else None)
    except (ApplicationError, MLInputError) as exc:
        messages.error(request, exc.message)
    else:
        reading = next(c for c in dataset.profile["columns"] if c["name"] == column).get("reading") or {}
        messages.success(request, f"Column '{column}' is now read as {reading.get('description', kind)}.")
    return redirect("datasets-detail", dataset_id=dataset.pk)


@require_POST
@member_required("editor")
def dataset_delete_view(request, dataset_id: int):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    try:
        services.dataset_delete(actor=request.user.username, dataset=dataset)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("datasets-detail", dataset_id=dataset.pk)
    messages.success(request, f"Deleted dataset {dataset.name}.")
    return redirect("datasets")


@require_safe
@member_required("viewer")
def job_list_view(request):
    return render(request, "training/job_list.html", {"jobs": selectors.job_list()[:200]})


@require_form
@member_required("editor")
def job_new_view(request):
    """The new-job form. It starts from the suggestions it shows for the chosen dataset and target; changing
    the dataset, the target or the problem type sends the form back (without `submit`) to be drawn again."""
    datasets = list(selectors.dataset_list())
    if not datasets:
        messages.info(request, "Upload a dataset first.")
        return redirect("datasets")
    sent = request.POST if request.method == "POST" else request.GET
    chosen = id_or_none(sent.get("dataset"))
    dataset = get_object_or_404(Dataset, pk=chosen if chosen is not None else datasets[0].pk)
    target = sent.get("target") if sent.get("target") in dataset.column_names else dataset.profile.get("suggested_target")
    suggestion, suggestion_error = None, ""
    if target:
        try:
            suggestion = services.suggestions_for(dataset=dataset, target=target)
        except (ApplicationError, MLInputError) as exc:
            suggestion_error = exc.message
    problem_type = sent.get("problem_type") if sent.get("problem_type") in dict(PROBLEM_TYPE_CHOICES) else "auto"
    detected = (suggestion or {}).get("problem_type")
    initial = _job_defaults(dataset, target, suggestion, problem_type, model_name=sent.get("model_name"))
    form = TrainingJobForm(request.POST if request.method == "POST" and "submit" in request.POST else None,
                           datasets=datasets, columns=dataset.column_names, target=target, initial=initial,
                           problem_type=detected if problem_type == "auto" else problem_type)
    status = 200
    if form.is_bound:
        if form.is_valid():
            data = dict(form.cleaned_data)
            data.pop("dataset")
            model_name = data.pop("model_name")
            data["features"] = data["features"] or None
            data["metric"] = data["metric"] or None
            try:
                job = services.training_job_create(actor=request.user.username, dataset=dataset, model_name=model_name,
                                                   settings_in=data)
            except (ApplicationError, MLInputError) as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Job {job.pk} is queued.")
                return redirect("training-detail", job_id=job.pk)
        status = 400
    return render(request, "training/job_new.html", {"form": form, "dataset": dataset, "s": suggestion,
                                                     "error": suggestion_error}, status=status)


def _job_defaults(dataset: Dataset, target: str | None, suggestion: dict | None, problem_type: str, *,
                  model_name: str | None) -> dict:
    """The form's starting values: the suggested algorithm, search, trials, folds, metric and AutoML budget
    (those that apply when the person chose a problem type other than the detected one)."""
    initial = {"dataset": dataset.pk, "target": target, "model_name": model_name or f"{dataset.name}-model",
               "problem_type": problem_type, "algorithm": "auto", "search": "none"}
    if not suggestion:
        return initial
    applies = problem_type in ("auto", suggestion["problem_type"])
    search = suggestion.get("search") or {}
    ranked = [a["key"] for a in suggestion.get("algorithms") or []]
    initial.update({"search": search.get("method", "none"), "n_trials": search.get("n_trials"),
                    "cv_folds": search.get("cv_folds"), "time_budget_s": search.get("time_budget_s")})
    if applies:
        initial.update({"metric": suggestion.get("metric") or "", "algorithm": ranked[0] if ranked else "auto"})
    return {k: v for k, v in initial.items() if v is not None}


def _job_context(job: TrainingJob) -> dict:
    result = job.result or {}
    metrics = result.get("test_metrics") or {}
    return {
        "job": job, "result": result, "metrics": metrics,
        "automl_algorithms": selectors.algorithm_labels(job.config.get("algorithms")),
        "best_params": present.parameter_rows(result.get("best_params")),
        "best_members": present.ensemble_members(result.get("best_params"), result.get("leaderboard")),
        "leaderboard": present.leaderboard_rows(result),
        "importance_chart": charts.importance_chart(result.get("importance") or []),
        "trials_chart": charts.trials_chart(result.get("trials") or [], result.get("metric", "")),
        "leaderboard_chart": charts.leaderboard_chart(result.get("leaderboard") or [], result.get("metric", "")),
        "confusion_chart": charts.confusion_chart(metrics.get("confusion_matrix")),
        "roc_chart": charts.curve_chart(metrics.get("roc_curve"), "fpr", "tpr", "ROC curve"),
        "pr_chart": charts.curve_chart(metrics.get("pr_curve"), "recall", "precision", "Precision-recall curve"),
        "residuals_chart": charts.residuals_chart((metrics.get("residuals") or {}).get("points")),
    }


@require_safe
@member_required("viewer")
def job_detail_view(request, job_id: int):
    job = get_object_or_404(TrainingJob.objects.select_related("dataset", "model_version__registered_model"), pk=job_id)
    return render(request, "training/job_detail.html", _job_context(job))


@require_safe
@member_required("viewer")
def job_status_partial(request, job_id: int):
    """Polled by htmx while the job is active; once it ends, the whole page reloads to show the results."""
    job = get_object_or_404(TrainingJob, pk=job_id)
    if job.is_terminal and request.GET.get("was") in ("queued", "running"):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "training/_job_status.html", {"job": job})


@require_POST
@member_required("editor")
def job_cancel_view(request, job_id: int):
    job = get_object_or_404(TrainingJob, pk=job_id)
    try:
        job = services.training_job_cancel(actor=request.user.username, job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, "Cancelled." if job.status == "cancelled" else "Cancelling: the worker stops at its next check.")
    return redirect("training-detail", job_id=job.pk)


@require_POST
@member_required("editor")
def dataset_automl_view(request, dataset_id: int):
    """One click on the dataset page: AutoML on the suggested target with the default budget."""
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    target = request.POST.get("target") or dataset.profile.get("suggested_target")
    try:
        job = services.training_job_create(actor=request.user.username, dataset=dataset,
                                           model_name=f"{dataset.name}-automl",
                                           settings_in={"target": target, "algorithm": "auto",
                                                        "time_budget_s": services.DEFAULT_AUTOML_BUDGET_S,
                                                        "keep_best_on_cancel": True})
    except (ApplicationError, MLInputError) as exc:
        messages.error(request, exc.message)
        return redirect("datasets-detail", dataset_id=dataset.pk)
    messages.success(request, f"AutoML job {job.pk} is queued: {services.DEFAULT_AUTOML_BUDGET_S} s on target '{target}'.")
    return redirect("training-detail", job_id=job.pk)
