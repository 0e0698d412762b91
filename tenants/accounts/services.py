"""Writes for members, sign-in and the audit log. Every change leaves an audit event."""
from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mlplatform import hotcache
from mlplatform.errors import ApplicationError

from .models import AuditEvent, Membership, Role

User = get_user_model()


def audit_record(*, actor: str, action: str, obj=None, object_type: str = "", object_id: str = "",
                 object_repr: str = "", detail: dict | None = None, ip_address: str | None = None) -> AuditEvent:
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)[:200]
    return AuditEvent.objects.create(
        actor=actor[:150], action=action, object_type=object_type, object_id=object_id,
        object_repr=object_repr[:200], detail=detail or {}, ip_address=ip_address,
    )


# --- Sign-in, throttled per (username, address) and per address (throttle.py) ----------------------
def user_sign_in(*, request, username: str, password: str, ip_address: str | None = None):
    """Check credentials. The username is compared after normalisation and without case. Returns the user;
    raises ApplicationError: 400 for wrong credentials, 429 (with Retry-After) while throttled."""
    from . import throttle

    username = username_normalize(username)
    reservation = throttle.reserve(username=username, address=ip_address)
    stored = User.objects.filter(username__iexact=username).values_list("username", flat=True).first()
    user = authenticate(request, username=stored or username, password=password)
    membership = Membership.objects.filter(user=user).first() if user else None
    if user is None or membership is None:
        audit_record(actor=username or "?", action="sign_in_failed", object_type="user", object_repr=username,
                     ip_address=ip_address)
        reservation.failed()
        raise ApplicationError("Wrong username or password for this organization.", status=400)
    reservation.succeeded()
    audit_record(actor=user.username, action="sign_in", obj=user, ip_address=ip_address)
    return user


# --- Members ---------------------------------------------------------------------
def username_normalize(username: str) -> str:
    """The username as stored and compared: NFKC (Django's AbstractBaseUser.normalize_username, so
    'ｅｄｉｔｏｒ１' is 'editor1'), without surrounding spaces. Case is kept as typed but never distinguishes two
    members: 'Editor1' next to 'editor1' would be a lookalike of a colleague, so uniqueness and sign-in
    compare without case (a unique index on UPPER(username) in every organization, migration 0003)."""
    return User.normalize_username(username or "").strip()


def username_check(username: str) -> None:
    """The model field's rules (at most 150 characters; letters, digits and @ . + - _ only, so no control
    characters, spaces or line breaks). Raises ApplicationError naming the field."""
    if not username:
        raise ApplicationError("Username is required.", field="username")
    try:
        User._meta.get_field("username").run_validators(username)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="username") from exc


def _username_taken(username: str) -> ApplicationError:
    return ApplicationError(f"A member named '{username}' already exists (names are compared without case and "
                            "after Unicode normalisation).", field="username", status=409)


def _check_password(password: str, user=None) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), field="password") from exc


def member_create(*, actor: str, username: str, password: str, role: str, email: str = "") -> User:
    """A member with a role. Raises ApplicationError naming the field: 400 for a bad username, password or
    role, 409 for a name taken (also when two requests race for it: the database's unique index decides)."""
    username = username_normalize(username)
    username_check(username)
    if role not in Role.values:
        raise ApplicationError(f"Unknown role '{role}'; roles are: {', '.join(Role.values)}.", field="role")
    if User.objects.filter(username__iexact=username).exists():
        raise _username_taken(username)
    _check_password(password)
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, password=password, email=email,
                                            is_staff=role == Role.OWNER)
            Membership.objects.create(user=user, role=role)
            audit_record(actor=actor, action="member_added", obj=user, detail={"role": role})
    except IntegrityError as exc:
        if User.objects.filter(username__iexact=username).exists():
            raise _username_taken(username) from exc
        raise
    return user


def _owners_left_after(user, *, role: str | None = None, active: bool | None = None) -> int:
    owners = Membership.objects.filter(role=Role.OWNER, user__is_active=True).exclude(user=user).count()
    user_stays_owner = (role or user.membership.role) == Role.OWNER and (active if active is not None else user.is_active)
    return owners + (1 if user_stays_owner else 0)


@transaction.atomic
def member_update(*, actor: str, user, role: str | None = None, is_active: bool | None = None) -> User:
    if role is not None and role not in Role.values:
        raise ApplicationError(f"Unknown role '{role}'; roles are: {', '.join(Role.values)}.", field="role")
    if _owners_left_after(user, role=role, active=is_active) == 0:
        raise ApplicationError("An organization needs at least one active owner.", field="role", status=409)
    membership = user.membership
    changes = {}
    if role is not None and role != membership.role:
        changes["role"] = [membership.role, role]
        membership.role = role
        membership.save(update_fields=["role"])
        user.is_staff = role == Role.OWNER  # the organization's admin site is for owners
        user.save(update_fields=["is_staff"])
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = [user.is_active, is_active]
        user.is_active = is_active
        user.save(update_fields=["is_active"])
        if not is_active:
            from rest_framework.authtoken.models import Token

            Token.objects.filter(user=user).delete()  # a deactivated member's token stops working at once
    if changes:
        audit_record(actor=actor, action="member_changed", obj=user, detail=changes)
        hotcache.bump()  # the prediction endpoints cache who a token is and the member's role
    return user


def token_for(user):
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=user)
    return token
