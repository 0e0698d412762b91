"""API of the registry under /api/v1/ml/: versions, deploy and roll back, predictions, evaluation, comparison,
monitoring, and API keys (owners)."""
from __future__ import annotations

from django.apps import apps
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from mlplatform import filestore
from mlplatform.api.authentication import ApiKeyAuthentication, CachedBearerTokenAuthentication
from mlplatform.api.serializers import InputSerializer
from mlplatform.api.base import BaseAPIView, referenced_or_400
from mlplatform.api.parsers import JSONBodyParser
from mlplatform.errors import ApplicationError
from mlplatform.validators import id_or_none
from mlplatform.api.permissions import CanPredict
from rest_framework.authentication import SessionAuthentication
from tenants.accounts.models import ApiKey

from . import batch, selectors, services, serving
from .models import BatchPredictionJob, ModelVersion, RegisteredModel


class VersionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="registered_model.name")
    version = serializers.IntegerField()
    algorithm = serializers.CharField()
    problem_type = serializers.CharField()
    target = serializers.CharField()
    classes = serializers.JSONField()
    metrics = serializers.JSONField()
    cv = serializers.JSONField()
    params = serializers.JSONField()
    aliases = serializers.SerializerMethodField()
    serving_engine = serializers.CharField()
    artifact_sha256 = serializers.CharField()
    artifact_size = serializers.IntegerField()
    dataset_id = serializers.IntegerField(allow_null=True)
    job_id = serializers.IntegerField(allow_null=True)
    created_by = serializers.CharField()
    created = serializers.DateTimeField()

    def get_aliases(self, version) -> list[str]:
        return sorted(a.name for a in version.aliases.all())


class VersionDetailOutput(VersionOutput):
    feature_schema = serializers.JSONField(help_text="per used column: name, kind, reading (how its values are read), "
                                                     "and what training saw (categories, min, max)")
    target_schema = serializers.JSONField(help_text="the target's reading; for regression its spread")
    importance = serializers.JSONField()
    library_versions = serializers.JSONField()
    onnx_check = serializers.JSONField()
    evaluations = serializers.SerializerMethodField()

    def get_evaluations(self, version) -> list[dict]:
        return [{"id": e.pk, "dataset_id": e.dataset_id, "dataset_name": e.dataset_name, "rows": e.rows,
                 "scores": e.metrics.get("scores"), "warnings": e.warnings, "created_by": e.created_by,
                 "created": e.created.isoformat()}
                for e in version.evaluations.all()]


class RegisteredModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    created = serializers.DateTimeField()
    aliases = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    def get_aliases(self, registered) -> dict:
        return {a.name: {"version_id": a.version_id, "version": a.version.version} for a in registered.aliases.all()}

    def get_versions(self, registered) -> list[dict]:
        return [{"id": v.pk, "version": v.version, "algorithm": v.algorithm} for v in registered.versions.all()]


class ModelVersionListApi(BaseAPIView):
    @extend_schema(parameters=[OpenApiParameter("name", str, description="only versions of this registered model")],
                   responses={200: VersionOutput(many=True)})
    def get(self, request):
        return Response(VersionOutput(selectors.version_list(name=request.query_params.get("name"))[:500], many=True).data)


class ModelVersionDetailApi(BaseAPIView):
    @extend_schema(responses={200: VersionDetailOutput})
    def get(self, request, version_id: int):
        return Response(VersionDetailOutput(get_object_or_404(selectors.version_list(), pk=version_id)).data)


class RegisteredModelListApi(BaseAPIView):
    @extend_schema(responses={200: RegisteredModelOutput(many=True)})
    def get(self, request):
        return Response(RegisteredModelOutput(selectors.registered_model_list(), many=True).data)


class AliasInput(InputSerializer):
    alias = serializers.CharField(max_length=60, default="production")


class DeployApi(BaseAPIView):
    """Point an alias (default `production`) of this version's model at this version."""

    @extend_schema(request=AliasInput, responses={200: RegisteredModelOutput})
    def post(self, request, version_id: int):
        version = get_object_or_404(ModelVersion, pk=version_id)
        data = AliasInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.alias_set(actor=self.audit_actor(), version=version, alias=data.validated_data["alias"])
        return Response(RegisteredModelOutput(selectors.registered_model_list().get(pk=version.registered_model_id)).data)


class RollbackApi(BaseAPIView):
    """Move the alias (default `production`) back to the version it pointed at before."""

    @extend_schema(request=AliasInput, responses={200: RegisteredModelOutput})
    def post(self, request, model_id: int):
        registered = get_object_or_404(RegisteredModel, pk=model_id)
        data = AliasInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.alias_rollback(actor=self.audit_actor(), registered=registered, alias=data.validated_data["alias"])
        return Response(RegisteredModelOutput(selectors.registered_model_list().get(pk=registered.pk)).data)


PredictInput = inline_serializer("PredictInput", {"records": serializers.ListField(child=serializers.DictField())})
PredictOutput = inline_serializer("PredictOutput", {
    "model_version": serializers.DictField(), "predictions": serializers.ListField(),
    "probabilities": serializers.ListField(child=serializers.DictField(), allow_null=True),
    "warnings": serializers.ListField(child=serializers.DictField(), required=False, help_text=(
        "values that changed meaning, per record and column: {record, column, code, message}; codes are "
        "unseen_category, out_of_range, ignored_column and more_warnings"))})


class _PredictBase(BaseAPIView):
    authentication_classes = [ApiKeyAuthentication, CachedBearerTokenAuthentication, SessionAuthentication]
    permission_classes = [CanPredict]

    def answer(self, request, version: ModelVersion):
        self.check_object_permissions(request, version.registered_model)
        return Response(serving.predict(version=version, body=request.data))


class PredictApi(_PredictBase):
    """Predict with one model version. Members, or an API key scoped to this model."""

    @extend_schema(request=PredictInput, responses={200: PredictOutput})
    def post(self, request, version_id: int):
        return self.answer(request, selectors.serving_version(version_id))


class DeploymentPredictApi(_PredictBase):
    """Predict with whatever version `production` points at: a URL that stays the same across versions."""

    @extend_schema(request=PredictInput, responses={200: PredictOutput})
    def post(self, request, model_name: str):
        return self.answer(request, selectors.serving_deployed_version(model_name))


class EvaluateApi(BaseAPIView):
    class EvaluateInput(InputSerializer):
        dataset_id = serializers.IntegerField()

    @extend_schema(request=EvaluateInput, responses={201: VersionDetailOutput})
    def post(self, request, version_id: int):
        version = get_object_or_404(ModelVersion.objects.select_related("registered_model"), pk=version_id)
        data = self.EvaluateInput(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = referenced_or_400(apps.get_model("training", "Dataset").objects, data.validated_data["dataset_id"],
                                    field="dataset_id", label="Dataset")
        frame = filestore.read_frame(dataset.file)
        services.evaluation_create(actor=self.audit_actor(), version=version, dataset=dataset, frame=frame)
        return Response(VersionDetailOutput(selectors.version_list().get(pk=version.pk)).data, status=status.HTTP_201_CREATED)


class CompareApi(BaseAPIView):
    required_role = "viewer"  # reads only

    class CompareInput(InputSerializer):
        model_ids = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=20)

    @extend_schema(request=CompareInput, responses={200: inline_serializer("Comparison", {
        "problem_type": serializers.CharField(), "metrics": serializers.ListField(), "best": serializers.DictField(),
        "cv_best": serializers.IntegerField(allow_null=True),
        "versions": serializers.ListField(child=serializers.DictField())})})
    def post(self, request):
        data = self.CompareInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(selectors.comparison(data.validated_data["model_ids"]))


class MonitoringApi(BaseAPIView):
    @extend_schema(parameters=[OpenApiParameter("minutes", int, description="window, default 1440")],
                   responses={200: inline_serializer("Monitoring", {"requests": serializers.IntegerField(),
                                                                   "errors": serializers.IntegerField(),
                                                                   "latency_ms": serializers.DictField(),
                                                                   "distribution": serializers.DictField(),
                                                                   "series": serializers.ListField()})})
    def get(self, request, model_name: str):
        registered = get_object_or_404(RegisteredModel, name=model_name)
        minutes = request.query_params.get("minutes", "1440")
        if not 1 <= (id_or_none(minutes) or 0) <= 60 * 24 * 31:
            return Response({"detail": "minutes must be an integer from 1 to 44640", "errors": {"minutes": ["out of range"]}}, status=400)
        return Response(selectors.monitoring(list(registered.versions.values_list("pk", flat=True)), minutes=id_or_none(minutes)))


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    models = serializers.SerializerMethodField()
    created_by = serializers.CharField()
    created = serializers.DateTimeField()
    last_used = serializers.DateTimeField(allow_null=True)
    revoked = serializers.DateTimeField(allow_null=True)

    def get_models(self, key) -> list[str]:
        return sorted(m.name for m in key.registered_models.all())


class ApiKeyListApi(BaseAPIView):
    read_role = "owner"
    required_role = "owner"

    class ApiKeyCreateInput(InputSerializer):
        name = serializers.CharField(max_length=100)
        model_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1,
                                          help_text="ids of registered models the key may predict with")

    @extend_schema(responses={200: ApiKeyOutput(many=True)})
    def get(self, request):
        return Response(ApiKeyOutput(ApiKey.objects.prefetch_related("registered_models"), many=True).data)

    @extend_schema(request=ApiKeyCreateInput, responses={201: inline_serializer("ApiKeyCreated", {
        "key": ApiKeyOutput(), "secret": serializers.CharField(help_text="shown once; store it now")})})
    def post(self, request):
        data = self.ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data["model_ids"]
        models = list(RegisteredModel.objects.filter(pk__in=ids))
        unknown = sorted(set(ids) - {m.pk for m in models})
        if unknown:
            return Response({"detail": f"registered model(s) {', '.join(map(str, unknown))} do not exist in this organization",
                             "errors": {"model_ids": ["unknown registered model"]}}, status=400)
        key, secret = services.api_key_create(actor=self.audit_actor(), name=data.validated_data["name"], registered_models=models)
        return Response({"key": ApiKeyOutput(key).data, "secret": secret}, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(BaseAPIView):
    read_role = "owner"
    required_role = "owner"

    @extend_schema(request=None, responses={200: ApiKeyOutput})
    def post(self, request, key_id: int):
        key = services.api_key_revoke(actor=self.audit_actor(), key=get_object_or_404(ApiKey, pk=key_id))
        return Response(ApiKeyOutput(key).data)


class BatchJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    version_id = serializers.IntegerField()
    model = serializers.CharField(source="version.__str__")
    input_name = serializers.CharField()
    dataset_id = serializers.IntegerField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField()
    stage = serializers.CharField()
    error = serializers.CharField()
    log = serializers.JSONField()
    created_by = serializers.CharField()
    created = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    peak_memory_mb = serializers.FloatField(allow_null=True)
    warnings = serializers.JSONField(help_text="values that changed meaning: [{column, code, count, examples}]")
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, job) -> str | None:
        return f"/api/v1/ml/batch-predict/{job.pk}/download" if job.status == "succeeded" and job.output_file else None


class BatchPredictListApi(BaseAPIView):
    parser_classes = [MultiPartParser, JSONBodyParser]  # a file, or a stored dataset by id
    class BatchPredictInput(InputSerializer):
        model_version_id = serializers.IntegerField(required=False, help_text="a model version, or")
        model_name = serializers.CharField(required=False, help_text="a registered model: its production version")
        dataset_id = serializers.IntegerField(required=False, help_text="a stored dataset, or")
        file = serializers.FileField(required=False, help_text="a CSV or Parquet file with the feature columns")

    @extend_schema(responses={200: BatchJobOutput(many=True)})
    def get(self, request):
        return Response(BatchJobOutput(BatchPredictionJob.objects.select_related("version__registered_model")[:200], many=True).data)

    @extend_schema(request={"multipart/form-data": BatchPredictInput, "application/json": BatchPredictInput},
                   responses={202: BatchJobOutput})
    def post(self, request):
        data = self.BatchPredictInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if ("model_version_id" in values) == ("model_name" in values):
            return Response({"detail": "give model_version_id or model_name (one of them)",
                             "errors": {"model_version_id": ["give model_version_id or model_name"]}}, status=400)
        if "model_name" in values:
            try:
                version = selectors.deployed_version(values["model_name"])
            except Http404 as exc:  # a name in the body: bad input, not a missing URL
                raise ApplicationError(str(exc), field="model_name") from exc
        else:
            version = referenced_or_400(ModelVersion.objects.select_related("registered_model"), values["model_version_id"],
                                        field="model_version_id", label="Model version")
        dataset = None
        if "dataset_id" in values:
            dataset = referenced_or_400(apps.get_model("training", "Dataset").objects, values["dataset_id"],
                                        field="dataset_id", label="Dataset")
        job = batch.batch_create(actor=self.audit_actor(), version=version, dataset=dataset, upload=values.get("file"))
        return Response(BatchJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class BatchPredictDetailApi(BaseAPIView):
    @extend_schema(responses={200: BatchJobOutput})
    def get(self, request, batch_id: int):
        return Response(BatchJobOutput(get_object_or_404(BatchPredictionJob.objects.select_related("version__registered_model"), pk=batch_id)).data)


class BatchPredictCancelApi(BaseAPIView):
    @extend_schema(request=None, responses={200: BatchJobOutput})
    def post(self, request, batch_id: int):
        job = batch.batch_cancel(actor=self.audit_actor(), job=get_object_or_404(BatchPredictionJob, pk=batch_id))
        return Response(BatchJobOutput(job).data)


class BatchPredictDownloadApi(BaseAPIView):
    """The result CSV: row, prediction, and one probability column per class. Members only."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY, 409: None})  # 409: no result yet
    def get(self, request, batch_id: int):
        return batch_download(get_object_or_404(BatchPredictionJob, pk=batch_id))


def batch_download(job: BatchPredictionJob):
    from django.http import FileResponse

    if job.status != "succeeded" or not job.output_file:
        return Response({"detail": f"Batch {job.pk} has no result to download (status: {job.status})."}, status=409)
    name = f"predictions-{job.version.registered_model.name}-v{job.version.version}-{job.pk}.csv"
    return FileResponse(filestore.open_stream(job.output_file), as_attachment=True, filename=name,
                        content_type="text/csv")
