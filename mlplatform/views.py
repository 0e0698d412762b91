"""Pages that belong to no single app: the public landing page, the dashboard, health, errors."""
from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from mlplatform.jobs import worker_status
from mlplatform.pages import member_required
from mlplatform.selectors import dashboard_summary


@require_safe
def landing(request):
    return render(request, "public/landing.html", {"base_domain": settings.BASE_DOMAIN, "port": settings.PUBLIC_PORT})


@require_safe
@member_required("viewer")
def dashboard(request):
    return render(request, "dashboard.html", {"summary": dashboard_summary()})


@never_cache
@require_safe
def healthz(request):
    """Database and worker liveness. 200 when both are fine, 503 otherwise (the body says which)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = {"ok": True}
    except Exception as exc:  # the point of this endpoint is to report it
        database = {"ok": False, "error": exc.__class__.__name__}
    worker = worker_status(stale_after_s=settings.JOB_HEARTBEAT_STALE_SECONDS + 60) if database["ok"] else {"alive": False}
    ok = database["ok"] and worker["alive"]
    return JsonResponse({"status": "ok" if ok else "degraded", "database": database, "worker": worker}, status=200 if ok else 503)


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def error_400(request, exception=None):
    """A request Django refused before any view (a body too large, too many fields, a bad host header...):
    JSON for the API, a page otherwise, with the status the problem deserves (413 for a body too large)."""
    from mlplatform.api.errors import body_refusal

    refusal = body_refusal(exception) if exception is not None else None
    status = refusal.status if refusal else 400
    reason = refusal.message if refusal else "The request could not be read."
    if _is_api(request):
        return JsonResponse({"detail": reason}, status=status)
    return render(request, "errors/400.html", {"reason": reason}, status=status)


def error_404(request, exception=None):
    if _is_api(request):  # e.g. /api/v1/ml/models/abc: no such path is a JSON 404 like any other
        return JsonResponse({"detail": f"No such path in this API: {request.path_info}"}, status=404)
    return render(request, "errors/404.html", status=404)


def error_403(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": str(exception) if exception else "Forbidden."}, status=403)
    return render(request, "errors/403.html", {"reason": str(exception) if exception else ""}, status=403)


def error_500(request):
    if _is_api(request):
        return JsonResponse({"detail": "Server error. It was logged; try again, and tell your administrator if it "
                                       "keeps happening."}, status=500)
    return render(request, "errors/500.html", status=500)
