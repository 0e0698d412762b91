"""Usernames are unique without case in every organization (tenants.accounts.services.username_normalize):
the database decides, so two requests racing for 'bob' and 'Bob' cannot both win."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_apikey"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS accounts_username_unique_without_case ON auth_user (UPPER(username))",
            "DROP INDEX IF EXISTS accounts_username_unique_without_case",
        ),
    ]
