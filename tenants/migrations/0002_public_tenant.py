from django.conf import settings
from django.db import migrations


def create_public_tenant(apps, schema_editor):
    """The public schema is a tenant too for django-tenants: it serves the landing page and platform admin."""
    Organization = apps.get_model("tenants", "Organization")
    Domain = apps.get_model("tenants", "Domain")
    public, _ = Organization.objects.get_or_create(schema_name="public", defaults={"name": "Platform", "slug": "public"})
    Domain.objects.get_or_create(domain=settings.BASE_DOMAIN, defaults={"tenant": public, "is_primary": True})


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(create_public_tenant, migrations.RunPython.noop)]
