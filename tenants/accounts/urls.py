from django.urls import path

from . import apis, views

page_urls = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("members/", views.members_view, name="members"),
    path("members/<int:user_id>/", views.member_update_view, name="members-update"),
    path("audit/", views.audit_view, name="audit"),
]

api_urls = [
    path("auth/token", apis.TokenApi.as_view(), name="api-token"),
    path("me", apis.MeApi.as_view(), name="api-me"),
    path("members", apis.MemberListApi.as_view(), name="api-members"),
    path("members/<int:user_id>", apis.MemberDetailApi.as_view(), name="api-member"),
    path("audit", apis.AuditEventListApi.as_view(), name="api-audit"),
]
