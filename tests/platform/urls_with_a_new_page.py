"""The organization's URLconf plus a page nobody has told the walk about (tests/platform/test_urlwalk.py)."""
from django.http import HttpResponse
from django.urls import path

from mlplatform.urls import handler403, handler404, handler500, urlpatterns as organization_patterns  # noqa: F401

urlpatterns = [*organization_patterns, path("gadgets/<int:gadget_id>/", lambda request, gadget_id: HttpResponse(), name="gadget")]
