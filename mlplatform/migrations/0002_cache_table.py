"""The database cache table (CACHES, when REDIS_URL is not set): made by migrating, so `migrate_schemas` alone
gives a working platform. `createcachetable` is idempotent; with Redis configured there is nothing to make."""
from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("mlplatform", "0001_housekeeping_schedule")]
    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
