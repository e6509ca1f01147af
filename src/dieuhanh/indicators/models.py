"""Indicator systems: data elements and data sets, data values per unit and period, indicators
(formulas), targets. Periods are DHIS2 ids (indicators.periods); a value is kept with the period it
was reported for, also year-to-date ones, because the seeds report cumulative figures."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet

CODE_HELP = "lower-case letters, digits and _ (used in formulas as #{code})"
OWNER_HELP = "the unit whose admins (and those above it) may change or delete this; the nation's by default"


def owner_field() -> models.ForeignKey[Unit, Unit]:
    """Metadata belongs to a unit: a ward's admin must not rewrite what the nation reads."""
    return models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+", help_text=OWNER_HELP)


class Aggregation(models.TextChoices):
    """As DHIS2's aggregation types: how values combine over time and over units."""

    SUM = "sum", _("Sum (over time and units)")
    AVERAGE = "average", _("Average (over time and units)")
    LAST = "last", _("Last value in time, summed over units")
    NONE = "none", _("Not aggregated")


class ValueType(models.TextChoices):
    NUMBER = "number", _("Number")
    INTEGER = "integer", _("Integer")
    PERCENT = "percent", _("Percentage")


class PeriodType(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SIXMONTHLY = "sixmonthly", _("Six-monthly")
    YEARLY = "yearly", _("Yearly")


class DataElement(models.Model):
    code = models.SlugField(max_length=60, unique=True, help_text=CODE_HELP)
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)
    unit = models.CharField(
        max_length=40, blank=True, help_text="đồng, tỷ đồng, thuê bao, bưu gửi, lượt, %, …"
    )
    value_type = models.CharField(max_length=10, choices=ValueType.choices, default=ValueType.NUMBER)
    aggregation = models.CharField(max_length=10, choices=Aggregation.choices, default=Aggregation.SUM)
    period_type = models.CharField(max_length=12, choices=PeriodType.choices, default=PeriodType.MONTHLY)
    options = models.JSONField(
        default=list, blank=True, help_text='disaggregation options: [{"code": "viettel", "name": "Viettel"}]'
    )
    description = models.TextField(blank=True)
    owner_unit = owner_field()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def option_codes(self) -> list[str]:
        return [o["code"] for o in self.options]


class DataSet(models.Model):
    """Which data elements which kind of unit reports, for which period type, due when."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)
    period_type = models.CharField(max_length=12, choices=PeriodType.choices, default=PeriodType.MONTHLY)
    unit_kind = models.CharField(max_length=20, help_text="nation, province, district or commune")
    due_day = models.PositiveSmallIntegerField(default=15, help_text="days after the period's end")
    elements = models.ManyToManyField(DataElement, related_name="data_sets")
    owner_unit = owner_field()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Status(models.TextChoices):
    ESTIMATE = "estimate", _("Estimate")
    FINAL = "final", _("Final")


class DataValueQuerySet(AreaQuerySet):
    area_field = "unit"


class DataValue(models.Model):
    element = models.ForeignKey(DataElement, on_delete=models.PROTECT, related_name="values")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="data_values")
    period = models.CharField(max_length=12, help_text="DHIS2 period id: 202108, 2021Q3, 2021YTD08, …")
    option = models.CharField(max_length=60, blank=True, default="", help_text="disaggregation option code")
    value = models.FloatField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FINAL)
    comment = models.TextField(blank=True)
    stored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DataValueQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["element", "period", "unit", "option"], name="datavalue_cell"),
        ]
        indexes = [models.Index(fields=["unit", "period"], name="datavalue_unit_period")]

    def __str__(self) -> str:
        option = f".{self.option}" if self.option else ""
        return f"{self.element_id}{option} {self.unit_id} {self.period} = {self.value}"


class DataValueAudit(models.Model):
    """Every change of a data value: old and new value and status, who and when (as DHIS2's audit)."""

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        DELETE = "delete", _("Deleted")

    element = models.ForeignKey(DataElement, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=12)
    option = models.CharField(max_length=60, blank=True, default="")
    action = models.CharField(max_length=10, choices=Action.choices)
    old_value = models.FloatField(null=True, blank=True)
    new_value = models.FloatField(null=True, blank=True)
    old_status = models.CharField(max_length=10, blank=True)
    new_status = models.CharField(max_length=10, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["element", "unit", "period"], name="datavalueaudit_cell")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.element_id} {self.period}"


class Indicator(models.Model):
    code = models.SlugField(max_length=60, unique=True, help_text=CODE_HELP)
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)
    formula = models.TextField(
        help_text="e.g. yoy(#{postal_revenue}); #{ev.test.positive} / #{ev.test} * 100"
    )
    unit = models.CharField(max_length=40, blank=True)
    decimals = models.PositiveSmallIntegerField(default=2)
    description = models.TextField(blank=True)
    owner_unit = owner_field()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class TargetQuerySet(AreaQuerySet):
    area_field = "unit"


class Target(models.Model):
    """A planned value ("kế hoạch") of an indicator for a unit and period."""

    indicator = models.ForeignKey(Indicator, on_delete=models.CASCADE, related_name="targets")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="targets")
    period = models.CharField(max_length=12)
    value = models.FloatField()
    comment = models.TextField(blank=True)
    owner_unit = owner_field()

    objects = TargetQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["indicator", "unit", "period"], name="target_once")]

    def __str__(self) -> str:
        return f"{self.indicator_id} {self.unit_id} {self.period} = {self.value}"


class DataVersion(models.Model):
    """Counters that every write to a table analytics reads bumps, by database trigger
    (indicators.versions): an answer is current while the counters it was computed under are unchanged.

    A trigger and not the application's write verbs, so that no path (an ingest batch, the admin, a
    migration, a bulk load, raw SQL) can change a figure without the cached answers knowing. Each source
    has a few slots, bumped by the writing connection's slot, so that concurrent writers do not all
    queue on one row; a source's version is the sum of its slots. A source is a name of WATCHED, or a
    rollup kind's area (`kind@area`) or month (`kind#YYYYMM`) on PostgreSQL."""

    source = models.CharField(max_length=32)
    slot = models.PositiveSmallIntegerField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "slot"], name="dataversion_slot")]

    def __str__(self) -> str:
        return f"{self.source}[{self.slot}] = {self.n}"


class MonthPack(models.Model):
    """One month's monthly rollup rows of a count (an event kind and its dimensions), packed as analytics
    reads them, under the month's counters (indicators.versions): what one process read is there for
    every other (analytics.KeptMonths). A cache, never a source: a pack whose counters are no longer the
    month's is passed over and made again, and emptying the table loses nothing. PostgreSQL only."""

    kind = models.CharField(max_length=12)
    dims = models.TextField(help_text="the count's dimensions (dim1, dim2) as a JSON list")
    month = models.DateField(help_text="the first day of the month")
    version = models.BigIntegerField(
        help_text="the month's counter (kind#YYYYMM, a sum over its slots) the rows were read under"
    )
    emptied = models.BigIntegerField(null=True, help_text="the rollups' emptied counter (*), if any")
    packed = models.BinaryField(help_text="(leaf id, count) pairs, each a big-endian 8-byte integer")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "dims", "month"], name="monthpack_month")]

    def __str__(self) -> str:
        return f"{self.kind} {self.dims} {self.month:%Y-%m} @{self.version}"
