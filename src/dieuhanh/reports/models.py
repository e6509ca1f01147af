"""Report definitions (what a periodic report says and where its figures come from) and the archive of
the reports generated from them, each with the data it used so that it can be produced again."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.indicators.models import owner_field
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet


class ReportDefinition(models.Model):
    """A periodic report as its issuing office writes it; `body` holds the header fields and sections
    (see reports/definition.py for its shape), checked on every save."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=300, help_text=_("as the list of reports shows it"))
    period_type = models.CharField(max_length=12, help_text=_("monthly, quarterly, sixmonthly, yearly"))
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="+", help_text=_("the unit it reports on by default")
    )
    body = models.JSONField(help_text=_("header, recipients, signer and sections"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("scheduled reports are generated with this person's area"),
    )
    schedule_day = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("day of the month on which the report for the period before is due"),
    )
    provincial_cutoff = models.BooleanField(
        default=False, help_text=_("a month runs from the 15th to the 14th, as provinces report")
    )
    formats = models.JSONField(default=list, blank=True, help_text=_("formats made by the schedule"))
    owner_unit = owner_field()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    @property
    def period_type_label(self) -> str:
        return str(PERIOD_TYPE_LABELS.get(self.period_type, self.period_type))


PERIOD_TYPE_LABELS = {
    "monthly": _("monthly"),
    "quarterly": _("quarterly"),
    "sixmonthly": _("six-monthly"),
    "yearly": _("yearly"),
}


class ReportState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ReportQuerySet(AreaQuerySet):
    area_field = "unit"


class Report(models.Model):
    """One generated report: its file, and the snapshot (definition and every figure read) it came from."""

    definition = models.ForeignKey(ReportDefinition, on_delete=models.PROTECT, related_name="reports")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    period = models.CharField(max_length=16)
    format = models.CharField(max_length=4)
    state = models.CharField(max_length=8, choices=ReportState.choices, default=ReportState.QUEUED)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled = models.BooleanField(default=False)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    snapshot = models.JSONField(default=dict, blank=True)
    missing = models.JSONField(default=list, blank=True, help_text=_("figures the report lacked"))
    file = models.CharField(
        max_length=300, blank=True, help_text=_("its name among the stored files (DIEUHANH_FILES)")
    )
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ReportQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["definition", "period", "unit"], name="report_lookup")]

    def __str__(self) -> str:
        return f"{self.definition.code} {self.period} {self.unit_id} {self.format}"
