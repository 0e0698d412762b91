"""URLs on the public host (localhost): what the platform is, the platform admin, health."""
from django.contrib import admin
from django.urls import path

from mlplatform import views

admin.site.site_header = "Platform admin"
admin.site.site_title = "Platform admin"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
]

handler400 = "mlplatform.views.error_400"
handler403 = "mlplatform.views.error_403"
handler404 = "mlplatform.views.error_404"
handler500 = "mlplatform.views.error_500"
