"""The admin for an organization's own data, on its host; the platform admin (default site) lives on the public host."""
from django.contrib import admin
from django.contrib.admin import AdminSite

from mlplatform import hotcache
from tenants.accounts.selectors import membership_for


class OrganizationAdminSite(AdminSite):
    site_header = "Organization admin"
    site_title = "Organization admin"
    index_title = "Data of this organization"

    def has_permission(self, request) -> bool:
        membership = membership_for(request.user)
        return bool(request.user.is_active and request.user.is_staff and membership and membership.has_role("owner"))


organization_admin = OrganizationAdminSite(name="org_admin")


class OwnerAdmin(admin.ModelAdmin):
    """Owners manage everything of their organization here; the site already checked the role.
    Every change made here is in the organization's audit log too, and the prediction endpoints forget
    what they cached (a user deactivated here is refused at once)."""

    def _audit(self, request, action: str, obj, message="") -> None:
        from tenants.accounts.services import audit_record

        audit_record(actor=request.user.get_username(), action=action, obj=obj,
                     detail={"model": str(obj._meta.verbose_name), **({"change": message} if message else {})})

    def log_addition(self, request, obj, message):
        self._audit(request, "admin_added", obj, message)
        hotcache.bump()  # after the save (the row is written before it is logged)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, "admin_changed", obj, message)
        hotcache.bump()
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):  # called before the rows go: the bump follows the deletion
        for obj in queryset:
            self._audit(request, "admin_deleted", obj)
        return super().log_deletions(request, queryset)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        hotcache.bump()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        hotcache.bump()

    def has_module_permission(self, request):
        return organization_admin.has_permission(request)

    has_view_permission = has_change_permission = has_add_permission = lambda self, request, obj=None: organization_admin.has_permission(request)

    def has_delete_permission(self, request, obj=None):
        return organization_admin.has_permission(request)


class ReadOnlyAdmin(OwnerAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
