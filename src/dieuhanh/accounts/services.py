"""Accounts: every change of users, grants and tokens goes through a verb here, with its audit row."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dieuhanh.accounts.models import ApiToken, AuditEntry, Grant, Role, User
from dieuhanh.units.models import Unit

TOKEN_PREFIX = "dh_"  # noqa: S105 - a marker, not a secret
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def audit(
    actor: User | None, action: str, target: str = "", *, rows: int | None = None, **detail
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.username if actor else "system",
        action=action,
        target=target,
        rows=rows,
        detail=detail,
    )


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValueError(f"unknown role '{role}'; roles are: {', '.join(Role.values)}")


@transaction.atomic
def create_user(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    grants: Iterable[tuple[Unit, str]] = (),
    full_name: str = "",
    kind: str = User.Kind.PERSON,
    validate: bool = True,
    superuser: bool = False,
) -> User:
    grants = list(grants)
    for _, role in grants:
        _check_role(role)
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user '{username}' already exists")
    user = User(username=username, full_name=full_name, kind=kind, is_staff=superuser, is_superuser=superuser)
    if password is None:  # a service user (a source platform): tokens only, no login
        user.set_unusable_password()
    else:
        if validate:
            validate_password(password, user)
        user.set_password(password)
    user.save()
    for unit, role in grants:
        Grant.objects.create(user=user, unit=unit, role=role)
    audit(
        actor,
        "user.create",
        username,
        grants=[f"{role}@{unit.ref}" for unit, role in grants],
        superuser=superuser,
    )
    return user


@transaction.atomic
def grant_role(*, actor: User | None, user: User, unit: Unit, role: str) -> Grant:
    _check_role(role)
    grant, created = Grant.objects.get_or_create(user=user, unit=unit, role=role)
    if created:
        audit(actor, "grant.add", user.username, role=role, unit=unit.ref)
    return grant


@transaction.atomic
def revoke_role(*, actor: User | None, user: User, unit: Unit, role: str) -> bool:
    deleted, _ = Grant.objects.filter(user=user, unit=unit, role=role).delete()
    if deleted:
        audit(actor, "grant.revoke", user.username, role=role, unit=unit.ref)
    return bool(deleted)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def create_token(*, actor: User | None, user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for the user; the raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], key_hash=_hash(raw))
    audit(actor, "token.create", user.username, name=name, prefix=token.prefix)
    return token, raw


@transaction.atomic
def revoke_token(*, actor: User | None, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit(actor, "token.revoke", token.user.username, name=token.name, prefix=token.prefix)


def user_for_token(raw: str) -> User | None:
    """The active user behind a bearer token, or None for an unknown, revoked or inactive one."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    key_hash = _hash(raw)
    # The token, its user and the user's grants with their units in one query: nearly every request
    # reads the grants next (User.held). Only a user who holds no grant costs a second query.
    grants = list(
        Grant.objects.select_related("user", "unit")
        .filter(user__tokens__key_hash=key_hash, user__tokens__revoked_at__isnull=True)
        .annotate(token_id=F("user__tokens__id"), token_used=F("user__tokens__last_used_at"))
    )
    if grants:
        user, token_id, last_used = grants[0].user, grants[0].token_id, grants[0].token_used
        for grant in grants:
            grant.user = user
        user.hold(grants)
    else:
        found = ApiToken.objects.select_related("user").filter(key_hash=key_hash, revoked_at__isnull=True)[:1]
        token = next(iter(found), None)  # [:1], not .first(): its ORDER BY is paid on every request
        if token is None:
            return None
        user, token_id, last_used = token.user, token.pk, token.last_used_at
        user.hold([])
    if not user.is_active:
        return None
    now = timezone.now()
    if last_used is None or now - last_used > _LAST_USED_RESOLUTION:
        # Coarse on purpose: one write a minute per token, not one per request.
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return user
