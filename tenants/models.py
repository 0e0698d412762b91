"""Organizations and their domains: the public schema's view of who the tenants are."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
RESERVED_SLUGS = {"public", "www", "admin", "api", "static", "pg_catalog", "information_schema"}


def default_job_memory_mb() -> int:
    return settings.JOB_MEMORY_LIMIT_MB


class Organization(TenantMixin):
    """One organization, one PostgreSQL schema (named after the slug)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(
        max_length=40,
        unique=True,
        validators=[RegexValidator(SLUG_PATTERN, "Use 2-40 lowercase letters, digits or hyphens, starting with a letter.")],
    )
    created = models.DateTimeField(auto_now_add=True)
    max_concurrent_jobs = models.PositiveIntegerField(default=2, help_text="Training and batch jobs running or queued at once.")
    storage_quota_mb = models.PositiveIntegerField(default=5 * 1024, help_text="Total size of datasets and model files.")
    max_upload_mb = models.PositiveIntegerField(default=200, help_text="Largest single dataset upload.")
    max_job_memory_mb = models.PositiveIntegerField(
        default=default_job_memory_mb, validators=[MinValueValidator(64)],
        help_text="Memory one job (training, AutoML, batch prediction) may use, in MB; past it the job fails.")
    # API rate limits (mlplatform/api/throttling.py): per member and per API key. The defaults stop a runaway
    # integration within a second of a burst and are never met by hundreds of requests a minute.
    api_rate_per_minute = models.PositiveIntegerField(
        default=1200, validators=[MinValueValidator(1)],
        help_text="API requests per minute for each member and each API key, sustained.")
    api_burst = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1)],
        help_text="API requests each member or API key may send at once, above the sustained rate.")

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class WorkerHeartbeat(models.Model):
    """Last sign of life of each job worker, shown by /healthz."""

    worker = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
