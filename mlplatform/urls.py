"""URLs on an organization's host (acme.localhost)."""
from django.urls import include, path

from mlplatform import views
from mlplatform.admin_sites import organization_admin
from tenants.accounts.urls import page_urls as account_page_urls
from models_registry.urls import page_urls as registry_page_urls
from training.urls import page_urls as training_page_urls

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    *account_page_urls,
    *training_page_urls,
    *registry_page_urls,
    path("admin/", organization_admin.urls),
    path("api/v1/", include("mlplatform.urls_api")),
    path("healthz", views.healthz, name="healthz"),
]

handler400 = "mlplatform.views.error_400"
handler403 = "mlplatform.views.error_403"
handler404 = "mlplatform.views.error_404"
handler500 = "mlplatform.views.error_500"
