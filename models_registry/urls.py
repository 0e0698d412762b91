from django.urls import path

from . import apis, views

api_urls = [
    path("models", apis.ModelVersionListApi.as_view(), name="api-model-versions"),
    path("models/compare", apis.CompareApi.as_view(), name="api-models-compare"),
    path("models/<int:version_id>", apis.ModelVersionDetailApi.as_view(), name="api-model-version"),
    path("models/<int:version_id>/deploy", apis.DeployApi.as_view(), name="api-model-deploy"),
    path("models/<int:version_id>/predict", apis.PredictApi.as_view(), name="api-model-predict"),
    path("models/<int:version_id>/evaluate", apis.EvaluateApi.as_view(), name="api-model-evaluate"),
    path("registered-models", apis.RegisteredModelListApi.as_view(), name="api-registered-models"),
    path("registered-models/<int:model_id>/rollback", apis.RollbackApi.as_view(), name="api-model-rollback"),
    path("deployments/<str:model_name>/predict", apis.DeploymentPredictApi.as_view(), name="api-deployment-predict"),
    path("batch-predict", apis.BatchPredictListApi.as_view(), name="api-batch"),
    path("batch-predict/<int:batch_id>", apis.BatchPredictDetailApi.as_view(), name="api-batch-detail"),
    path("batch-predict/<int:batch_id>/cancel", apis.BatchPredictCancelApi.as_view(), name="api-batch-cancel"),
    path("batch-predict/<int:batch_id>/download", apis.BatchPredictDownloadApi.as_view(), name="api-batch-download"),
    path("deployments/<str:model_name>/monitoring", apis.MonitoringApi.as_view(), name="api-deployment-monitoring"),
]
key_api_urls = [
    path("api-keys", apis.ApiKeyListApi.as_view(), name="api-keys"),
    path("api-keys/<int:key_id>/revoke", apis.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]

page_urls = [
    path("models/", views.model_list_view, name="models"),
    path("models/compare/", views.compare_view, name="models-compare"),
    path("models/versions/<int:version_id>/", views.version_detail_view, name="models-version"),
    path("models/versions/<int:version_id>/deploy/", views.deploy_view, name="models-deploy"),
    path("models/versions/<int:version_id>/evaluate/", views.evaluate_view, name="models-evaluate"),
    path("models/<int:model_id>/rollback/", views.rollback_view, name="models-rollback"),
    path("models/<int:model_id>/monitoring/", views.monitoring_view, name="models-monitoring"),
    path("models/batch/", views.batch_list_view, name="models-batch"),
    path("models/batch/<int:batch_id>/", views.batch_detail_view, name="models-batch-detail"),
    path("models/batch/<int:batch_id>/download/", views.batch_download_view, name="models-batch-download"),
    path("api-keys/", views.api_keys_view, name="api_keys"),
    path("api-keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_keys-revoke"),
]
