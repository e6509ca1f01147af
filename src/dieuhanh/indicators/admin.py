from django import forms
from django.contrib import admin

from dieuhanh.indicators.analytics import check_formula
from dieuhanh.indicators.formula import FormulaError
from dieuhanh.indicators.models import DataElement, DataSet, DataValue, DataValueAudit, Indicator, Target


@admin.register(DataElement)
class DataElementAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "unit", "aggregation", "period_type", "value_type"]
    list_filter = ["aggregation", "period_type"]
    search_fields = ["code", "name", "name_en"]


@admin.register(DataSet)
class DataSetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "period_type", "unit_kind", "due_day"]
    filter_horizontal = ["elements"]


class IndicatorForm(forms.ModelForm):
    class Meta:
        model = Indicator
        fields = ["code", "name", "name_en", "formula", "unit", "decimals", "description"]

    def clean_formula(self) -> str:
        text = self.cleaned_data["formula"]
        try:
            check_formula(text)
        except FormulaError as exc:
            raise forms.ValidationError(f"{exc}: {exc.pointer(text)}") from None
        return text


@admin.register(Indicator)
class IndicatorAdmin(admin.ModelAdmin):
    form = IndicatorForm
    list_display = ["code", "name", "formula", "unit", "decimals"]
    search_fields = ["code", "name", "formula"]


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["indicator", "unit", "period", "value"]
    raw_id_fields = ["unit"]


@admin.register(DataValue)
class DataValueAdmin(admin.ModelAdmin):
    """Read-only: values change through imports, which audit every change."""

    list_display = ["element", "unit", "period", "option", "value", "status", "stored_by", "updated_at"]
    list_filter = ["status", "element"]
    search_fields = ["element__code", "unit__code", "period"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(DataValueAudit)
class DataValueAuditAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "element", "unit", "period", "old_value", "new_value"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
