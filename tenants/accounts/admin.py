from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from mlplatform.admin_sites import OwnerAdmin, ReadOnlyAdmin, organization_admin

from .models import AuditEvent, Membership


class MemberUserAdmin(UserAdmin, OwnerAdmin):
    list_display = ("username", "email", "is_active", "last_login")


class MembershipAdmin(OwnerAdmin):
    list_display = ("user", "role", "created")
    list_filter = ("role",)


class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created", "actor", "action", "object_type", "object_repr")
    list_filter = ("action",)
    search_fields = ("actor", "object_repr")


organization_admin.register(get_user_model(), MemberUserAdmin)
organization_admin.register(Membership, MembershipAdmin)
organization_admin.register(AuditEvent, AuditEventAdmin)
