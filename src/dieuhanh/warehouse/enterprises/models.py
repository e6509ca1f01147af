"""Enterprises and industrial parks (units of kinds `enterprise` and `industrial_park`), their venues,
their workers' roster, and their figures counted by worker and by gate.

An enterprise or a park is a `units.Unit` like any commune: its path lies under its park or its commune
(a park's under its commune or its province), so every area rule applies to it unchanged. What is
particular to it lives here: the profile (tax code, address, the commune it stands in), the venues
that belong to it, the roster of its workers (person keys only: the raw ID never reaches the
database), and the enterprise rollups — its workers' events wherever they happened, and its gates'
check-ins — kept up to date at ingest and when a roster or a venue changes.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet
from dieuhanh.warehouse.models import Venue

# Enterprises and parks are not map levels: they take levels past the deepest map's (VN-2021's
# communes are level 3), so that LEVEL-n questions and level filters of the maps never meet them.
PARK_LEVEL = 4
ENTERPRISE_LEVEL = 5
KINDS = ("enterprise", "industrial_park")


class ProfileQuerySet(AreaQuerySet):
    area_field = "unit"


class Profile(models.Model):
    """What an enterprise or park unit has beyond a unit: its tax code, address and commune."""

    unit = models.OneToOneField(Unit, on_delete=models.CASCADE, primary_key=True, related_name="enterprise")
    tax_code = models.CharField(_("tax code"), max_length=14, help_text="mã số thuế; also the unit's code")
    address = models.CharField(_("address"), max_length=300, blank=True)
    commune = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="the commune it stands in (a park under its province may have none)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        verbose_name = _("enterprise profile")
        indexes = [models.Index(fields=["tax_code"], name="enterprise_tax_code")]

    def __str__(self) -> str:
        return f"{self.tax_code} {self.unit.name}"


class WorkerQuerySet(AreaQuerySet):
    area_field = "enterprise"


class Worker(models.Model):
    """One person on one enterprise's roster, from `start` to `end` (open when null)."""

    enterprise = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="workers")
    person_key = models.BinaryField(max_length=32, help_text="HMAC-SHA256 of the normalised ID")
    start = models.DateField()
    end = models.DateField(null=True, blank=True)
    max_dose = models.PositiveSmallIntegerField(
        default=0, help_text="the highest vaccine dose this person received (any enterprise, any place)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enterprise", "person_key"], name="worker_once_per_enterprise")
        ]
        indexes = [models.Index(fields=["person_key"], name="worker_person")]

    def __str__(self) -> str:
        return f"worker of {self.enterprise_id} ({self.start}–{self.end or ''})"


class VenueLink(models.Model):
    """A venue (a gate, a canteen) that belongs to an enterprise: its check-ins count for it too."""

    venue = models.OneToOneField(Venue, on_delete=models.CASCADE, primary_key=True, related_name="enterprise")
    enterprise = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="enterprise_venues")

    def __str__(self) -> str:
        return f"{self.venue_id} → {self.enterprise_id}"


class EnterpriseRollup(models.Model):
    """An enterprise's counts per local day × kind × the kind's two small dimensions (as warehouse
    rollups): its workers' events of the person kinds, and the check-ins at its venues."""

    enterprise = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    day = models.DateField()
    kind = models.CharField(max_length=12)
    dim1 = models.CharField(max_length=40, default="")
    dim2 = models.CharField(max_length=40, default="")
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "kind", "day", "dim1", "dim2"], name="enterprise_rollup_cell"
            )
        ]
        indexes = [
            # A park's figures: an index-only scan on PostgreSQL (its enterprises × the days asked).
            models.Index(
                fields=["enterprise", "kind", "day"],
                include=["dim1", "dim2", "count"],
                name="enterprise_rollup_read",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.enterprise_id} {self.day} {self.dim1}/{self.dim2}: {self.count}"


class EnterpriseRollupMonth(models.Model):
    """The same counts per enterprise × local month (its first day): a park's figures over whole months
    read a thirtieth of the rows (warehouse.RollupMonth does the same for communes)."""

    enterprise = models.ForeignKey(
        Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    month = models.DateField(help_text="the first day of the month")
    kind = models.CharField(max_length=12)
    dim1 = models.CharField(max_length=40, default="")
    dim2 = models.CharField(max_length=40, default="")
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "kind", "month", "dim1", "dim2"], name="enterprise_rollupmonth_cell"
            )
        ]
        indexes = [
            models.Index(
                fields=["enterprise", "kind", "month"],
                include=["dim1", "dim2", "count"],
                name="enterprise_rollupmonth_read",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.enterprise_id} {self.month:%Y-%m} {self.dim1}/{self.dim2}: {self.count}"
