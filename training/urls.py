from django.urls import path

from . import apis, views

api_urls = [
    path("datasets", apis.DatasetListApi.as_view(), name="api-datasets"),
    path("datasets/<int:dataset_id>", apis.DatasetDetailApi.as_view(), name="api-dataset"),
    path("datasets/<int:dataset_id>/preview", apis.DatasetPreviewApi.as_view(), name="api-dataset-preview"),
    path("training/start", apis.TrainingStartApi.as_view(), name="api-training-start"),
    path("training/jobs", apis.JobListApi.as_view(), name="api-jobs"),
    path("training/jobs/<int:job_id>", apis.JobDetailApi.as_view(), name="api-job"),
    path("training/jobs/<int:job_id>/cancel", apis.JobCancelApi.as_view(), name="api-job-cancel"),
    path("catalog", apis.CatalogApi.as_view(), name="api-catalog"),
    path("suggestions", apis.SuggestionsApi.as_view(), name="api-suggestions"),
]

page_urls = [
    path("datasets/", views.dataset_list_view, name="datasets"),
    path("datasets/<int:dataset_id>/", views.dataset_detail_view, name="datasets-detail"),
    path("datasets/<int:dataset_id>/delete/", views.dataset_delete_view, name="datasets-delete"),
    path("datasets/<int:dataset_id>/automl/", views.dataset_automl_view, name="datasets-automl"),
    path("datasets/<int:dataset_id>/reading/", views.dataset_reading_view, name="datasets-reading"),
    path("training/", views.job_list_view, name="training"),
    path("training/new/", views.job_new_view, name="training-new"),
    path("training/<int:job_id>/", views.job_detail_view, name="training-detail"),
    path("training/<int:job_id>/status/", views.job_status_partial, name="training-status"),
    path("training/<int:job_id>/cancel/", views.job_cancel_view, name="training-cancel"),
]
