"""The admin for an organization's own data, on its host; the platform admin (default site) lives on the public host."""
from django.contrib import admin
from django.contrib.admin import AdminSite

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
    """Owners manage everything of their organization here; the site already checked the role."""

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
