"""Users, their grants on units, API tokens, and the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.scoping import visible_to
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area


class Role(models.TextChoices):
    LEADER = "leader", _("Leader")
    ANALYST = "analyst", _("Analyst")
    OPERATOR = "operator", _("Operator")
    TRACER = "tracer", _("Tracer")
    ENTERPRISE = "enterprise", _("Enterprise safety officer")
    ADMIN = "admin", _("Administrator")


class User(AbstractUser):
    class Kind(models.TextChoices):
        PERSON = "person", _("Person")
        SOURCE = "source", _("Source platform")

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PERSON)
    full_name = models.CharField(max_length=200, blank=True)
    language = models.CharField(
        max_length=8,
        blank=True,
        choices=[("vi", "Tiếng Việt"), ("en", "English")],
        help_text="the language the user chose for pages (accounts.language); empty: Vietnamese",
    )

    def held(self) -> list[Grant]:
        """The user's grants with their units, read once per instance (a request's user): the area, the
        inbox's own units, the menu and /me all read them, and each used to ask the database again."""
        if "_held" not in self.__dict__:
            self.hold(list(self.grants.select_related("unit")))
        return self.__dict__["_held"]

    def hold(self, grants: Sequence[Grant]) -> None:
        """Remember the user's grants (with their units), read along with something else."""
        # Sorted here, not in SQL: compiling the ORDER BY cost more than the sort (bench/load.py).
        self.__dict__["_held"] = sorted(grants, key=lambda g: (g.unit.path, g.role))

    def area(self, role: str | None = None) -> Area:
        """The units this user may see (through grants of `role` only, when given); cached per instance."""
        cache: dict[str | None, Area] = self.__dict__.setdefault("_areas", {})
        if role not in cache:
            cache[role] = visible_to(self, role=role)
        return cache[role]


class Grant(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="grants")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="grants")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "unit", "role"], name="grant_once")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} @ {self.unit.ref}"


class ApiToken(models.Model):
    """A bearer token: shown once, kept only as its SHA-256 (tokens are 256-bit random)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="first characters, to tell tokens apart")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditEntry(models.Model):
    """Append-only: who did or read what, when, and how many rows."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="kept when the user is deleted")
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}"


class LoginThrottle(models.Model):
    """Failed logins of one account name or one client address in the current window (accounts.lockout).

    Keyed by the name as typed, whether or not such a user exists, so that a lockout never tells which
    accounts exist. Rows live only while a window or a lock is running."""

    class Scope(models.TextChoices):
        ACCOUNT = "account", _("Account")
        CLIENT = "client", _("Client address")

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=150, help_text="the user name as typed, or the client's IP address")
    failures = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="login_throttle_once")]
        verbose_name = _("failed login counter")
        verbose_name_plural = _("failed login counters")

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.key}: {self.failures}"
