"""Per-organization tables (they live in each organization's schema): roles and the audit log."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


# What each role may do; checked by pages and the API alike.
ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2}


class Membership(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.username} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # append-only
        raise TypeError("audit events cannot be changed")

    def delete(self):
        raise TypeError("audit events cannot be deleted")


class AuditEvent(models.Model):
    """Append-only: who did what to which object, and when."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="Username, API key name, or 'system'.")
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit events cannot be deleted")


class ApiKey(models.Model):
    """A secret for integrations, allowed to call prediction endpoints of chosen registered models only.
    The secret is shown once; only its SHA-256 is kept (it is random, so a slow hash adds nothing)."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    registered_models = models.ManyToManyField("models_registry.RegisteredModel", related_name="api_keys")
    created_by = models.CharField(max_length=150)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked is None


class SignInThrottle(models.Model):
    """Sign-in attempts of one key ("user-address:<username>|<address>" or "address:<address>"), counted
    atomically in one SQL statement each (tenants/accounts/throttle.py)."""

    key = models.CharField(max_length=250, unique=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts since the last quiet period or lockout.")
    lockouts = models.PositiveIntegerField(default=0, help_text="Consecutive lockouts: each doubles the next one.")
    locked_until = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.attempts} attempts"
