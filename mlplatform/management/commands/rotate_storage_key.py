"""Re-encrypt every organization's stored files under the current storage key.

Rotating a key: generate a new one (`--generate-key`), set it as STORAGE_ENCRYPTION_KEY and move the old one
to STORAGE_ENCRYPTION_OLD_KEYS, restart the web servers and workers, run this command, then drop the old
key. While it runs, every file stays readable (each is replaced atomically, and both keys are configured);
run it again after an interruption: files already under the current key are skipped. With no current key
(only old ones), it decrypts every file back to plain. Plain files written before encryption was turned
on are encrypted by it too.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context

from mlplatform import encryption, filestore


class Command(BaseCommand):
    help = "Re-encrypt every organization's files under STORAGE_ENCRYPTION_KEY (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--generate-key", action="store_true", help="print a new random key and exit")
        parser.add_argument("--organization", action="append", default=[], metavar="SLUG",
                            help="only this organization (repeatable); default: all of them")
        parser.add_argument("--check", action="store_true",
                            help="change nothing: read every file through and report the key each one needs")

    def handle(self, *args, generate_key=False, organization=(), check=False, **options):
        if generate_key:
            self.stdout.write(encryption.generate_key())
            return
        key = filestore.current_key()
        if key is None and not filestore.keyring():
            raise CommandError("No STORAGE_ENCRYPTION_KEY (nor old keys) is configured: there is nothing to rotate to "
                               "or from.")
        organizations = get_tenant_model().objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name")
        if organization:
            organizations = organizations.filter(slug__in=organization)
            missing = set(organization) - set(organizations.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No organization with slug(s): {', '.join(sorted(missing))}")
        target = f"key {encryption.key_id_text(key.key_id)}" if key else "plain files (no current key)"
        self.stdout.write(("Checking" if check else "Re-encrypting under ") + ("" if check else target))
        failures = 0
        for org in organizations:
            with schema_context(org.schema_name):
                counts, problems = self._organization(check)
            failures += len(problems)
            summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "no files"
            self.stdout.write(f"{org.slug}: {summary}")
            for name, message in problems:
                self.stderr.write(f"  {name}: {message}")
        if failures:
            raise CommandError(f"{failures} file(s) could not be read; they were left as they were (see above). "
                               "Configure the key they need and run the command again.")
        self.stdout.write(self.style.SUCCESS("Every file is readable." if check else "Done: every file is under " + target))

    def _organization(self, check: bool) -> tuple[dict[str, int], list[tuple[str, str]]]:
        counts = {"re-encrypted": 0, "already done": 0} if not check else {}
        problems = []
        for name in filestore.stored_files():
            try:
                if check:
                    label = _verify(name)
                    counts[label] = counts.get(label, 0) + 1
                elif filestore.reencrypt(name):
                    counts["re-encrypted"] += 1
                else:
                    counts["already done"] += 1
            except FileNotFoundError:
                continue  # deleted while we ran
            except (filestore.StorageKeyUnavailable, filestore.StoredFileCorrupt) as exc:
                problems.append((name, exc.message))
        return counts, problems


def _verify(name: str) -> str:
    """Read the file through (authenticating every chunk); returns how it is stored."""
    with open(filestore.path(name), "rb") as handle:
        header = encryption.read_header(handle)
    with filestore.open_stream(name) as stream:
        while stream.read(filestore.BLOCK):
            pass
    return f"under key {encryption.key_id_text(header.key_id)}" if header else "plain"
