import json

from django import forms
from django.contrib import admin

from dieuhanh.reports.compose import check_templates
from dieuhanh.reports.definition import DefinitionError, check
from dieuhanh.reports.models import Report, ReportDefinition


class ReportDefinitionForm(forms.ModelForm):
    class Meta:
        model = ReportDefinition
        fields = [
            "code",
            "name",
            "period_type",
            "unit",
            "owner",
            "schedule_day",
            "provincial_cutoff",
            "formats",
            "body",
        ]

    def clean_body(self) -> dict:
        body = self.cleaned_data["body"]
        try:
            check_templates(check(body))
        except DefinitionError as exc:
            raise forms.ValidationError(f"{exc.where or 'body'}: {exc}") from None
        return body


@admin.register(ReportDefinition)
class ReportDefinitionAdmin(admin.ModelAdmin):
    form = ReportDefinitionForm
    list_display = ["code", "name", "period_type", "unit", "schedule_day", "provincial_cutoff", "updated_at"]
    raw_id_fields = ["unit", "owner"]
    search_fields = ["code", "name"]


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
