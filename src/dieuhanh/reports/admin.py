from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model

from dieuhanh.accounts.models import User
from dieuhanh.indicators.admin import OwnedAdmin, VerbForm
from dieuhanh.reports import services
from dieuhanh.reports.compose import check_templates
from dieuhanh.reports.definition import DefinitionError, check
from dieuhanh.reports.models import Report, ReportDefinition

DEFINITION_FIELDS = [
    "name",
    "period_type",
    "unit",
    "owner",
    "schedule_day",
    "provincial_cutoff",
    "formats",
    "body",
]


class ReportDefinitionForm(VerbForm):
    class Meta:
        model = ReportDefinition
        fields = ["code", *DEFINITION_FIELDS, "owner_unit"]

    def clean_body(self) -> dict:
        body = self.cleaned_data["body"]
        try:
            check_templates(check(body))
        except DefinitionError as exc:
            raise forms.ValidationError(f"{exc.where or 'body'}: {exc.message}") from None
        return body


@admin.register(ReportDefinition)
class ReportDefinitionAdmin(OwnedAdmin):
    """Saved and deleted through the reports' verbs: owner rules and audit as for indicators."""

    form = ReportDefinitionForm
    verb_errors = (services.ReportError,)
    list_display = ["code", "name", "period_type", "unit", "schedule_day", "provincial_cutoff", "owner_unit"]
    raw_id_fields = ["unit", "owner", "owner_unit"]
    search_fields = ["code", "name"]

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        return services.save_definition(
            actor=actor,
            code=obj.code or data["code"],
            owner_unit=data.get("owner_unit") if obj.pk is None else None,
            **{f: data[f] for f in DEFINITION_FIELDS if f in data},
        )

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        services.delete_definition(actor=actor, definition=obj)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """The archive is a record: reports are made by the service, never edited by hand."""

    list_display = ["id", "definition", "unit", "period", "format", "state", "scheduled", "created_at"]
    list_filter = ["state", "format", "definition"]
    readonly_fields = [f.name for f in Report._meta.fields] + ["missing_figures"]
    exclude = ["snapshot"]

    @admin.display(description="Số liệu chưa có")
    def missing_figures(self, report: Report) -> str:
        return json.dumps(report.missing, ensure_ascii=False, indent=1)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
