"""Validation rules and the violations they find (issue 19, point 1).

A rule is `left operator right`, each side a formula over data elements and indicators (the same
language as indicators: indicators.formula). It has an importance, the period type it is checked at,
the levels and units it applies to, and a strictness: `warn` lets the value in and records the
violation, `refuse` turns the value away where it enters (entry page, API, Excel, DHIS2 import).

A violation is one rule × unit × period found broken, by an entry or by a run. It is kept, with the
values seen, until a later check finds the rule holds: then it is resolved (by whom, when), so the
share of violations fixed can be followed. A violation may be handed to its unit as a task
(directives.Task, by id: the tasks live above this layer).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.indicators.models import DataSet, PeriodType, owner_field
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet


class Operator(models.TextChoices):
    EQUAL = "==", _("equal to")
    NOT_EQUAL = "!=", _("not equal to")
    GREATER = ">", _("greater than")
    GREATER_EQUAL = ">=", _("greater than or equal to")
    LESS = "<", _("less than")
    LESS_EQUAL = "<=", _("less than or equal to")


class Importance(models.TextChoices):
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")


class Strictness(models.TextChoices):
    WARN = "warn", _("Warn: the value is kept and the violation recorded")
    REFUSE = "refuse", _("Refuse: the value is not accepted")


class Missing(models.TextChoices):
    """As DHIS2's missing value strategy: what a side with missing figures means."""

    SKIP_IF_ANY = "skip_if_any_missing", _("Skip the check when any figure is missing")
    SKIP_IF_ALL = "skip_if_all_missing", _("Skip only when every figure is missing (others count as 0)")
    NEVER_SKIP = "never_skip", _("Never skip (missing figures count as 0)")


class ValidationRule(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)
    instruction = models.TextField(blank=True, help_text="what the operator should check when it fails")
    left = models.TextField(help_text="a formula, e.g. #{online_dossiers}")
    operator = models.CharField(max_length=2, choices=Operator.choices)
    right = models.TextField(help_text="a formula, e.g. #{dossiers_received}")
    importance = models.CharField(max_length=8, choices=Importance.choices, default=Importance.MEDIUM)
    period_type = models.CharField(max_length=12, choices=PeriodType.choices, default=PeriodType.MONTHLY)
    strictness = models.CharField(max_length=8, choices=Strictness.choices, default=Strictness.WARN)
    missing = models.CharField(max_length=20, choices=Missing.choices, default=Missing.SKIP_IF_ANY)
    data_set = models.ForeignKey(
        DataSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="validation_rules"
    )
    levels = models.JSONField(
        default=list, blank=True, help_text="unit levels it applies to (2 = communes on VN-2025); empty: all"
    )
    units = models.ManyToManyField(
        Unit,
        blank=True,
        related_name="+",
        help_text="the units (and their subtrees) it applies to; empty: all",
    )
    active = models.BooleanField(default=True)
    owner_unit = owner_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def expression(self) -> str:
        return f"{self.left} {self.operator} {self.right}"


class ViolationQuerySet(AreaQuerySet):
    area_field = "unit"


class Violation(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")

    rule = models.ForeignKey(ValidationRule, on_delete=models.CASCADE, related_name="violations")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    period = models.CharField(max_length=12)
    left_value = models.FloatField(null=True, blank=True)
    right_value = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="the directives.Task made of it (kept by id: tasks live above)"
    )

    objects = ViolationQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "unit", "period"], name="violation_once")]
        indexes = [models.Index(fields=["unit", "period"], name="violation_unit_period")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.unit_id} {self.period} ({self.state})"
