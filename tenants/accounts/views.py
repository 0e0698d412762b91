"""Pages: sign-in, sign-out, members (owners), audit log (owners)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from mlplatform.errors import ApplicationError
from mlplatform.client_address import client_address
from mlplatform.pages import member_required, require_form

from . import selectors, services
from .forms import LoginForm, MemberCreateForm, MemberUpdateForm


@require_form
def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    form = LoginForm(request.POST or None)
    status, headers = 200, {}
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_in(request=request, ip_address=client_address(request), **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            status, headers = exc.status, exc.headers
        else:
            login(request, user)
            return redirect(next_url or "dashboard")
    elif request.method == "POST":
        status = 400
    response = render(request, "accounts/login.html", {"form": form, "next": next_url}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@require_POST
def logout_view(request):
    if request.user.is_authenticated:
        services.audit_record(actor=request.user.username, action="sign_out", obj=request.user, ip_address=client_address(request))
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("login")


@require_form
@member_required("owner")
def members_view(request):
    form = MemberCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.member_create(actor=request.user.username, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{user.username} was added as {form.cleaned_data['role']}.")
            return redirect("members")
    return render(request, "accounts/members.html", {"form": form, "members": selectors.member_list()},
                  status=400 if form.errors else 200)


@require_POST
@member_required("owner")
def member_update_view(request, user_id: int):
    user = get_object_or_404(selectors.member_list(), pk=user_id)
    form = MemberUpdateForm(request.POST)
    if form.is_valid():
        try:
            services.member_update(actor=request.user.username, user=user, role=form.cleaned_data.get("role") or None,
                                   is_active=form.cleaned_data.get("is_active"))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{user.username} was updated.")
    else:
        messages.error(request, "Choose a valid role or status.")
    return redirect("members")


@require_safe
@member_required("owner")
def audit_view(request):
    events = selectors.audit_event_list(action=request.GET.get("action") or None, actor=request.GET.get("actor") or None)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {"page": page, "action": request.GET.get("action", ""),
                                                   "actor": request.GET.get("actor", "")})
