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


def referenced_or_400(queryset, pk, *, field: str, label: str):
    """An object a request body refers to by id; one not in this organization is a 400 naming the field."""
    from mlplatform.errors import ApplicationError

    found = queryset.filter(pk=pk).first()
    if found is None:
        raise ApplicationError(f"{label} {pk} does not exist in this organization.", field=field)
    return found
