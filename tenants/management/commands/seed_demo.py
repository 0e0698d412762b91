"""Idempotent: the demo organization with an owner, an editor and a viewer (and, once datasets exist, a sample dataset)."""
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string
from django_tenants.utils import schema_context

from tenants.accounts.models import Membership
from tenants.accounts.services import member_create
from tenants.models import Organization
from tenants.services import organization_create, organization_url

DEMO_USERS = [("owner", "demo-owner-pass"), ("editor", "demo-editor-pass"), ("viewer", "demo-viewer-pass")]
# Other apps add their demo content here (dotted paths to functions called inside the demo schema).
DEMO_CONTENT = ["training.demo.seed_sample_dataset"]


class Command(BaseCommand):
    help = "Create (or complete) the demo organization at demo.<BASE_DOMAIN> with one user per role."

    def handle(self, *args, **options):
        org = Organization.objects.filter(slug="demo").first()
        if org is None:
            org = organization_create(name="Demo", slug="demo", owner_username="owner", owner_password=DEMO_USERS[0][1])
        with schema_context(org.schema_name):
            for username, password in DEMO_USERS:
                if not Membership.objects.filter(user__username=username).exists():
                    member_create(actor="system", username=username, password=password, role=username)
            for path in DEMO_CONTENT:
                message = import_string(path)()
                if message:
                    self.stdout.write(message)
        self.stdout.write(self.style.SUCCESS(f"Demo organization ready at {organization_url(org)}"))
        for username, password in DEMO_USERS:
            self.stdout.write(f"  {username:<7} password: {password}  (role: {username})")
