"""Everything `make demo` needs before serving: schemas migrated, the cache table, the demo organization."""
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.services import public_domain_ensure


class Command(BaseCommand):
    help = "Migrate every schema, create the cache table and seed the demo organization (safe to run again)."

    def handle(self, *args, **options):
        call_command("migrate_schemas", interactive=False, verbosity=0)
        call_command("createcachetable")
        public_domain_ensure()
        call_command("seed_demo")
