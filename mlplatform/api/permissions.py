"""Role permissions, shared by every API view.

Reading needs membership (any role); changing needs the view's `required_role`
(editor by default). Members of another organization do not exist here at all:
their user rows live in another schema.
"""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants.accounts.selectors import membership_for


class IsMember(BasePermission):
    message = "You are not a member of this organization."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        membership = membership_for(user)
        if membership is None:
            return False
        needed = getattr(view, "read_role", "viewer") if request.method in SAFE_METHODS else getattr(view, "required_role", "editor")
        if not membership.has_role(needed):
            self.message = f"Your role ({membership.role}) cannot do this; it needs the {needed} role."
            return False
        return True
