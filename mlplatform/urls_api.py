"""/api/v1/ on an organization's host."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from tenants.accounts.urls import api_urls as account_api_urls
from models_registry.urls import api_urls as registry_api_urls
from models_registry.urls import key_api_urls
from training.urls import api_urls as training_api_urls

urlpatterns = [
    *account_api_urls,
    path("ml/", include(training_api_urls)),
    path("ml/", include(registry_api_urls)),
    *key_api_urls,
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]), name="api-schema"),
    # the split view serves its start-up script from a URL: the Content-Security-Policy allows no inline script;
    # a page, so GET and HEAD only (no OPTIONS)
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=[AllowAny], authentication_classes=[],
                                                      http_method_names=["get", "head"]), name="api-docs"),
]
