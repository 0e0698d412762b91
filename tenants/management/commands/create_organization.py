from django.core.management.base import BaseCommand, CommandError

from mlplatform.errors import ApplicationError
from tenants.services import organization_create, organization_url


class Command(BaseCommand):
    help = "Create an organization: its schema, its domain (<slug>.<BASE_DOMAIN>) and its first owner."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="lowercase letters, digits and hyphens; becomes the subdomain")
        parser.add_argument("--owner-username", required=True)
        parser.add_argument("--owner-password", required=True)

    def handle(self, *args, name, slug, owner_username, owner_password, **options):
        try:
            org = organization_create(name=name, slug=slug, owner_username=owner_username, owner_password=owner_password)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {org.name}: {organization_url(org)} (owner: {owner_username})"))
