"""Failed logins: counted per account name and per client address, locked out for a while past a limit.

The thresholds:

- **5 failures of one account name in 15 minutes lock that name for 15 minutes.** An official who
  mistypes gets four more tries; a guesser gets at most 480 tries a day against one account, which
  cannot reach a password the validators accept. A lock ends by itself (an attacker can lock a
  colleague out, but only for 15 minutes at a time), and an admin can end it sooner.
- **20 failures from one client address in 15 minutes lock that address for 15 minutes.** A commune's
  office may share one address behind its router: several people mistyping must not lock each other
  out, but one machine trying many names (password spraying) is stopped after 20.

Failures are counted in a fixed window that opens with the first failure. Tries refused during a lock
are not counted, so a lock is never extended by the attacker. A successful login clears the account's
count, not the address's: a guesser holding one valid account could otherwise reset their address.
Names are counted whether or not such a user exists, so a lock tells nothing about which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from dieuhanh.accounts.models import LoginThrottle, User
from dieuhanh.accounts.services import audit

WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
LIMITS = {LoginThrottle.Scope.ACCOUNT: 5, LoginThrottle.Scope.CLIENT: 20}
_KEY_LENGTH = LoginThrottle._meta.get_field("key").max_length or 150


@dataclass(frozen=True)
class Lock:
    scope: str  # LoginThrottle.Scope
    until: datetime


def client_address(request: HttpRequest | None) -> str:
    """The client's IP address: REMOTE_ADDR, or behind a trusted proxy (TRUSTED_PROXIES) the nearest
    address in X-Forwarded-For that is not itself a trusted proxy. Without the setting every official
    behind nginx would share the proxy's address, and 20 failures would lock everyone out."""
    if request is None:
        return ""
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = set(getattr(settings, "TRUSTED_PROXIES", ()))
    if remote in trusted:
        # Only the right end of the header is trustworthy: each proxy appends what it saw.
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if hop not in trusted:
                return hop[:_KEY_LENGTH]
    return remote[:_KEY_LENGTH]


def _keys(username: str, client: str) -> list[tuple[str, str]]:
    keys = [(LoginThrottle.Scope.ACCOUNT.value, username[:_KEY_LENGTH])]
    if client:
        keys.append((LoginThrottle.Scope.CLIENT.value, client))
    return keys


def current_lock(username: str, client: str) -> Lock | None:
    """The lock that refuses this try now (the account's first), or None."""
    now = timezone.now()
    either = Q()
    for scope, key in _keys(username, client):
        either |= Q(scope=scope, key=key)
    locks = {
        row.scope: row.locked_until
        for row in LoginThrottle.objects.filter(either, locked_until__gt=now)
        if row.locked_until
    }
    for scope in (LoginThrottle.Scope.ACCOUNT, LoginThrottle.Scope.CLIENT):
        if scope in locks:
            return Lock(scope, locks[scope])
    return None


@transaction.atomic
def record_failure(*, username: str, client: str) -> Lock | None:
    """Counts a failed login against the name and the address; the lock it starts, if any (audited)."""
    now = timezone.now()
    # Rows whose window and lock are both over hold nothing: dropping them keeps the table to the
    # names and addresses of the last quarter of an hour, however many names a sprayer tries.
    LoginThrottle.objects.filter(window_start__lt=now - WINDOW).exclude(locked_until__gt=now).delete()
    started = None
    for scope, key in _keys(username, client):
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(
            scope=scope, key=key, defaults={"window_start": now}
        )
        if row.locked_until and row.locked_until > now:
            continue  # a try refused during a lock does not extend it
        if now - row.window_start >= WINDOW:
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= LIMITS[LoginThrottle.Scope(scope)]:
            row.locked_until = now + LOCK
            started = started or Lock(scope, row.locked_until)
            audit(
                None,
                "login.locked",
                key,
                scope=scope,
                failures=row.failures,
                until=row.locked_until.isoformat(),
                client=client,
            )
        row.save()
    return started


def record_success(username: str) -> None:
    """A successful login clears its account's count (the address's stays, see the module's note)."""
    LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT, key=username[:_KEY_LENGTH]).delete()


@transaction.atomic
def unlock(*, actor: User | None, scope: str, key: str) -> bool:
    """Ends a lock and clears its count before time (an admin's act, audited); whether a lock was running."""
    row = LoginThrottle.objects.select_for_update().filter(scope=scope, key=key).first()
    if row is None:
        return False
    was_locked = bool(row.locked_until and row.locked_until > timezone.now())
    row.delete()
    audit(actor, "login.unlock", key, scope=scope, failures=row.failures, was_locked=was_locked)
    return was_locked
