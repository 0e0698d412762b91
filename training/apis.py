"""API for datasets and training jobs under /api/v1/ml/."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from mlplatform import filestore
from mlplatform.api.base import BaseAPIView, referenced_or_400
from mlplatform.api.serializers import InputSerializer
from mlplatform.validators import id_or_none, validate_text
from training.ml.reading import DATE_FORMATS, KIND_CHOICES, NUMBER_FORMATS

from . import selectors, services
from .models import Dataset, JobStatus


class DatasetOutput(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "original_filename", "file_format", "delimiter", "encoding", "size_bytes", "stored_bytes",
                  "rows", "columns", "created_by", "created"]


class DatasetDetailOutput(DatasetOutput):
    class Meta(DatasetOutput.Meta):
        fields = DatasetOutput.Meta.fields + ["profile", "notes"]


class DatasetListApi(BaseAPIView):
    parser_classes = [MultiPartParser]

    class DatasetUploadInput(InputSerializer):
        file = serializers.FileField(help_text="CSV (any common delimiter; UTF-8, UTF-8 with BOM or Latin-1) or Parquet.")
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(responses={200: DatasetOutput(many=True)})
    def get(self, request):
        return Response(DatasetOutput(selectors.dataset_list(), many=True).data)

    @extend_schema(request={"multipart/form-data": DatasetUploadInput}, responses={201: DatasetDetailOutput})
    def post(self, request):
        services.check_upload_size(id_or_none(request.META.get("CONTENT_LENGTH")) or 0)
        data = self.DatasetUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_create(actor=self.audit_actor(), file=data.validated_data["file"],
                                          name=data.validated_data.get("name", ""))
        return Response(DatasetDetailOutput(dataset).data, status=status.HTTP_201_CREATED)


NAME_LENGTH = 40  # the longest kind or format name is 21 characters
KIND_HELP = ", ".join(label for _, label in KIND_CHOICES)
FORMAT_HELP = (f"a date format ({', '.join(DATE_FORMATS)}) or a number format "
               f"({', '.join(f'{key}: {number.label}' for key, number in NUMBER_FORMATS.items())})")


class ColumnReadingInput(InputSerializer):
    """How one column is read: its kind and, for numbers and dates, its format (other keys are refused)."""

    kind = serializers.CharField(required=False, max_length=NAME_LENGTH, help_text=KIND_HELP)
    format = serializers.CharField(required=False, max_length=NAME_LENGTH, help_text=FORMAT_HELP)


@extend_schema_field({"oneOf": [
    {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "description": KIND_HELP},
    {"type": "object", "additionalProperties": False, "properties": {
        "kind": {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "description": KIND_HELP},
        "format": {"type": "string", "minLength": 1, "maxLength": NAME_LENGTH, "description": FORMAT_HELP}}},
]})
class KindOrReadingField(serializers.Field):
    """A column's kind as text ("date"), or an object read by the strict ``ColumnReadingInput``
    ({"kind": "date", "format": "dd/mm/yyyy"})."""

    default_error_messages = {
        "invalid": 'Must be a kind (text) or an object such as {{"kind": "date", "format": "dd/mm/yyyy"}}.',
        "max_length": f"Ensure this field has no more than {NAME_LENGTH} characters.",
        "blank": "This field may not be blank.",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(validate_text)  # checks the text form; an object's fields check themselves

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not data.strip():
                self.fail("blank")
            if len(data) > NAME_LENGTH:
                self.fail("max_length")
            return data
        if isinstance(data, dict):
            reading = ColumnReadingInput(data=data)
            reading.is_valid(raise_exception=True)
            return dict(reading.validated_data)
        self.fail("invalid")

    def to_representation(self, value):
        return value


class DatasetDetailApi(BaseAPIView):
    class DatasetReadingsInput(InputSerializer):
        column_kinds = serializers.DictField(
            child=serializers.CharField(max_length=NAME_LENGTH), required=False, help_text=f"column -> kind: {KIND_HELP}")
        column_readings = serializers.DictField(
            child=ColumnReadingInput(), required=False,
            help_text=f'column -> {{"format": ...}} (and optionally "kind"): {FORMAT_HELP}')

    @extend_schema(responses={200: DatasetDetailOutput})
    def get(self, request, dataset_id: int):
        return Response(DatasetDetailOutput(get_object_or_404(Dataset, pk=dataset_id)).data)

    @extend_schema(request=DatasetReadingsInput, responses={200: DatasetDetailOutput})
    def patch(self, request, dataset_id: int):
        """Set how some columns are read (kind, date or number format); checked against every value."""
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        data = self.DatasetReadingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = services.dataset_set_readings(actor=self.audit_actor(), dataset=dataset,
                                                column_kinds=data.validated_data.get("column_kinds"),
                                                column_readings=data.validated_data.get("column_readings"))
        return Response(DatasetDetailOutput(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: int):
        services.dataset_delete(actor=self.audit_actor(), dataset=get_object_or_404(Dataset, pk=dataset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetPreviewApi(BaseAPIView):
    @extend_schema(parameters=[OpenApiParameter("n", int, description="rows, at most 200 (default 20)")],
                   responses={200: inline_serializer("DatasetPreview", {"columns": serializers.ListField(), "rows": serializers.ListField()})})
    def get(self, request, dataset_id: int):
        from training.ml.profile import preview_parquet

        dataset = get_object_or_404(Dataset, pk=dataset_id)
        try:
            n = min(200, max(1, int(request.query_params.get("n", 20))))
        except ValueError:
            return Response({"detail": "n must be an integer", "errors": {"n": ["must be an integer"]}}, status=400)
        with filestore.open_parquet(dataset.file) as source:
            return Response(preview_parquet(source, n=n))


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    kind = serializers.CharField()
    dataset_id = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField()
    model_name = serializers.CharField()
    created_by = serializers.CharField()
    created = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    progress = serializers.FloatField()
    stage = serializers.CharField()
    error = serializers.CharField()
    cancel_requested = serializers.BooleanField()
    model_version_id = serializers.IntegerField(allow_null=True)


class JobDetailOutput(JobOutput):
    config = serializers.JSONField()
    log = serializers.JSONField()
    result = serializers.JSONField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    peak_memory_mb = serializers.FloatField(allow_null=True)
    library_versions = serializers.JSONField()


class TrainingStartApi(BaseAPIView):
    class TrainingStartInput(InputSerializer):
        dataset_id = serializers.IntegerField()
        target = serializers.CharField(max_length=200)
        model_name = serializers.CharField(max_length=200)
        features = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, allow_empty=False)
        algorithm = serializers.CharField(default="auto", help_text="a key from GET /api/v1/ml/catalog, or 'auto' for an "
                                          "AutoML run across the algorithms within time_budget_s")
        problem_type = serializers.ChoiceField(choices=["auto", "binary", "multiclass", "regression"], default="auto")
        search = serializers.ChoiceField(choices=["none", "grid", "random", "bayesian"], default="none")
        n_trials = serializers.IntegerField(default=20, min_value=1, max_value=1000)
        time_limit_s = serializers.FloatField(required=False, allow_null=True, min_value=1, max_value=7 * 24 * 3600)
        metric = serializers.CharField(required=False, allow_null=True, help_text="default depends on the problem type")
        cv_folds = serializers.IntegerField(default=5, min_value=2, max_value=20)
        test_size = serializers.FloatField(default=0.2, min_value=0.05, max_value=0.5)
        random_state = serializers.IntegerField(default=42, min_value=0, max_value=2**31 - 1)
        params = serializers.DictField(required=False, default=dict, help_text="fixed hyperparameters")
        time_budget_s = serializers.FloatField(required=False, min_value=5, max_value=24 * 3600,
                                               help_text="AutoML: wall-clock budget (default 60)")
        ensemble = serializers.BooleanField(required=False, help_text="AutoML: try an ensemble of the best few (default true)")
        keep_best_on_cancel = serializers.BooleanField(required=False, help_text="AutoML: when cancelled, register the best so far")
        refit_on_all_rows = serializers.BooleanField(
            required=False, help_text="after the evaluation on the test part, fit the registered model again on every "
            "row (test part included); its test metrics are those of the evaluated fit (default false)")
        column_kinds = serializers.DictField(
            child=KindOrReadingField(), required=False, allow_null=True,
            help_text=f'column -> kind for this job ({KIND_HELP}), or column -> {{"kind": ..., "format": ...}}; '
                      'other columns are read as the dataset says. '
                      "Recorded in the job's config with the readings used")

    @extend_schema(request=TrainingStartInput, responses={202: JobDetailOutput})
    def post(self, request):
        data = self.TrainingStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        dataset_id = values.pop("dataset_id")
        dataset = referenced_or_400(Dataset.objects, dataset_id, field="dataset_id", label="Dataset")
        job = services.training_job_create(actor=self.audit_actor(), dataset=dataset,
                                           model_name=values.pop("model_name"), settings_in=values)
        return Response(JobDetailOutput(job).data, status=status.HTTP_202_ACCEPTED)


class JobListApi(BaseAPIView):
    @extend_schema(parameters=[OpenApiParameter("status", str, enum=JobStatus.values), OpenApiParameter("dataset_id", int)],
                   responses={200: JobOutput(many=True)})
    def get(self, request):
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in JobStatus.values:
            return Response({"detail": f"unknown status '{status_filter}'; statuses are: {', '.join(JobStatus.values)}",
                             "errors": {"status": ["unknown status"]}}, status=400)
        dataset_id = request.query_params.get("dataset_id")
        if dataset_id and id_or_none(dataset_id) is None:
            return Response({"detail": "dataset_id must be an integer", "errors": {"dataset_id": ["must be an integer"]}}, status=400)
        jobs = selectors.job_list(status=status_filter, dataset_id=id_or_none(dataset_id))[:500]
        return Response(JobOutput(jobs, many=True).data)


class JobDetailApi(BaseAPIView):
    @extend_schema(responses={200: JobDetailOutput})
    def get(self, request, job_id: int):
        return Response(JobDetailOutput(get_object_or_404(selectors.job_list().defer(None), pk=job_id)).data)


class JobCancelApi(BaseAPIView):
    @extend_schema(request=None, responses={200: JobDetailOutput})
    def post(self, request, job_id: int):
        job = get_object_or_404(selectors.job_list(), pk=job_id)
        job = services.training_job_cancel(actor=self.audit_actor(), job=job)
        return Response(JobDetailOutput(job).data)


class CatalogApi(BaseAPIView):
    @extend_schema(responses={200: inline_serializer("Catalog", {"algorithms": serializers.ListField(), "searches": serializers.ListField(),
                                                                 "metrics": serializers.ListField(), "default_metrics": serializers.DictField()})})
    def get(self, request):
        return Response(selectors.ml_catalog())


class SuggestionsApi(BaseAPIView):
    """Problem type, metric, ranked algorithms, search settings and warnings for a dataset and target."""

    required_role = "viewer"  # reads only

    class SuggestionsInput(InputSerializer):
        dataset_id = serializers.IntegerField()
        target = serializers.CharField(max_length=200)

    @extend_schema(request=SuggestionsInput, responses={200: inline_serializer("Suggestions", {
        "problem_type": serializers.CharField(), "reason": serializers.CharField(), "metric": serializers.CharField(),
        "metric_reason": serializers.CharField(), "algorithms": serializers.ListField(child=serializers.DictField()),
        "search": serializers.DictField(), "warnings": serializers.ListField(child=serializers.DictField()),
        "sampled": serializers.BooleanField()})})
    def post(self, request):
        data = self.SuggestionsInput(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = referenced_or_400(Dataset.objects, data.validated_data["dataset_id"], field="dataset_id", label="Dataset")
        return Response(services.suggestions_for(dataset=dataset, target=data.validated_data["target"]))
