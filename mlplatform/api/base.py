"""The base every API view builds on: authentication and role checks come from settings, errors from the handler."""
from __future__ import annotations

from rest_framework.views import APIView

from tenants.accounts.selectors import membership_for


class BaseAPIView(APIView):
    """`read_role` is needed for GET/HEAD/OPTIONS, `required_role` for anything that changes state."""

    read_role = "viewer"
    required_role = "editor"

    def audit_actor(self) -> str:
        return self.request.user.get_username()

    def role(self) -> str | None:
        membership = membership_for(self.request.user)
        return membership.role if membership else None
