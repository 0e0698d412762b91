"""The platform admin on the public host: organizations and their domains."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from mlplatform import hotcache
from tenants.middleware import PUBLIC

from .models import Domain, Organization, WorkerHeartbeat


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "created", "max_concurrent_jobs", "storage_quota_mb", "max_upload_mb",
                    "max_job_memory_mb", "api_rate_per_minute", "api_burst")
    search_fields = ("name", "slug")
    readonly_fields = ("schema_name", "created")
    inlines = [DomainInline]

    def has_delete_permission(self, request, obj=None):
        return False  # dropping a schema is not a click in the admin

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        hotcache.bump(PUBLIC)  # domains may have moved: prediction servers look hosts up again


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker", "last_seen")
    readonly_fields = ("worker", "last_seen")

    def has_add_permission(self, request):
        return False  # workers write their own heartbeats


class PlatformUserAdmin(UserAdmin):
    """Platform admins (users of the public schema). Deactivate one rather than delete it: a user's deletion
    collects the rows that point at it, and memberships exist only in organizations' schemas, so the query
    fails here."""

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), PlatformUserAdmin)
