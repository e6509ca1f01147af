"""Approval of a data set's figures per period and unit, up the levels of the unit's map, and the locks
it sets (issue 19, points 3 and 4).

A data set takes part in approval when it has a `DataSetApproval` (its levels per map and its expiry
days). An `Approval` row says that the unit approved the set for the period at the unit's own level
(accepted: the level above acknowledged it). Unapproving deletes the row; every action leaves an
`ApprovalAudit` row with who, when and why. A `LockException` lets a unit write after the expiry days.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.indicators.models import DataSet
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet

LEVELS_HELP = (
    'the kinds that approve, from the lowest up, per map: {"VN-2025": ["commune", "province", "nation"]}; '
    "a map not named uses every level of the map from the data set's unit kind up"
)


class DataSetApproval(models.Model):
    """A data set's approval settings: which levels approve on each map, and its expiry days."""

    data_set = models.OneToOneField(DataSet, on_delete=models.CASCADE, related_name="approval")
    levels = models.JSONField(default=dict, blank=True, help_text=LEVELS_HELP)
    expiry_days = models.PositiveSmallIntegerField(
        default=0,
        help_text="days after a period's end when its values lock for entry (0: never; as DHIS2)",
    )

    class Meta:
        verbose_name = _("data set approval settings")
        verbose_name_plural = _("data set approval settings")

    def __str__(self) -> str:
        return f"{self.data_set.code}: {self.levels or 'every level'}, {self.expiry_days} days"


class ApprovalQuerySet(AreaQuerySet):
    area_field = "unit"


class Approval(models.Model):
    """The unit approved the data set for the period at its level; `accepted_at` once the level above
    acknowledged it. The unit's figures and everything below it are then locked for the period."""

    data_set = models.ForeignKey(DataSet, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=12)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField()
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)

    objects = ApprovalQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["data_set", "period", "unit"], name="approval_once"),
        ]
        indexes = [models.Index(fields=["data_set", "period"], name="approval_set_period")]

    def __str__(self) -> str:
        return f"{self.data_set_id} {self.period} {self.unit_id}{' (accepted)' if self.accepted_at else ''}"


class ApprovalAudit(models.Model):
    """Every approval action on a unit: approve, accept, unapprove; with the reason where one is given."""

    class Action(models.TextChoices):
        APPROVE = "approve", _("Approved")
        ACCEPT = "accept", _("Accepted")
        UNAPPROVE = "unapprove", _("Unapproved")

    data_set = models.ForeignKey(DataSet, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=12)
    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["data_set", "period", "unit"], name="approvalaudit_cell")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.unit_id} {self.period}"


class LockExceptionQuerySet(AreaQuerySet):
    area_field = "unit"


class LockException(models.Model):
    """A unit's request to write a data set's values for a period past its expiry days; the level
    above grants it (until `ends_on`, inclusive, in Vietnam's time) or refuses it."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        GRANTED = "granted", _("Granted")
        REFUSED = "refused", _("Refused")

    data_set = models.ForeignKey(DataSet, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=12)
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.REQUESTED)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    ends_on = models.DateField(null=True, blank=True)

    objects = LockExceptionQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["data_set", "period", "unit"], name="lockexception_cell")]

    def __str__(self) -> str:
        return f"{self.data_set_id} {self.period} {self.unit_id}: {self.state}"
