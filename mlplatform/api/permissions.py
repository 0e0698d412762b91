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


class CanPredict(BasePermission):
    """Members (any role) predict with any model; an API key only with the registered models in its scope.
    The view names the registered model with `registered_model_for(request)`."""

    message = "This API key may not predict with this model."

    def has_permission(self, request, view) -> bool:
        from mlplatform.api.authentication import ApiKeyPrincipal

        if isinstance(request.user, ApiKeyPrincipal):
            return True  # scope is checked per object, once the model is known
        if not (request.user and request.user.is_authenticated) or membership_for(request.user) is None:
            self.message = IsMember.message
            return False
        return True

    def has_object_permission(self, request, view, registered_model) -> bool:
        from mlplatform.api.authentication import ApiKeyPrincipal

        if isinstance(request.user, ApiKeyPrincipal):
            return registered_model.pk in request.user.model_ids
        return True
