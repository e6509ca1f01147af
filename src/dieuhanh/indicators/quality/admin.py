"""Validation rules and violations in the admin site, read-only: rules are made and changed through
`quality.rules.save_rule` (POST /api/v1/validation/rules), which checks the owner and the formulas and
audits; violations are kept by entries and runs."""

from __future__ import annotations

from django.contrib import admin

from dieuhanh.accounts.admin import ReadOnlyAdmin
from dieuhanh.indicators.quality.models import ValidationRule, Violation


@admin.register(ValidationRule)
class ValidationRuleAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "expression", "importance", "strictness", "period_type", "active")
    list_filter = ("strictness", "importance", "period_type", "active")
    search_fields = ("code", "name")


@admin.register(Violation)
class ViolationAdmin(ReadOnlyAdmin):
    list_display = ("rule", "unit", "period", "left_value", "right_value", "state", "task_id", "last_seen")
    list_filter = ("state", "rule")
    search_fields = ("unit__name", "unit__code", "rule__code")
    raw_id_fields = ("unit",)
