from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import Role, User
from dieuhanh.indicators import services
from dieuhanh.indicators.analytics import check_formula
from dieuhanh.indicators.formula import FormulaError
from dieuhanh.indicators.models import DataElement, DataSet, DataValue, DataValueAudit, Indicator, Target
from dieuhanh.indicators.services import IndicatorError


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class OwnedAdmin(admin.ModelAdmin):
    """Metadata in the admin site follows the API's rules: only admins of an item's owner unit (or
    above it) change or delete it, and every save or delete goes through the services' verbs, which
    audit it with its before and after. A code and an owner are set when an item is created; the
    owner of a new item is the actor's (the nation for a national admin) unless named."""

    owner_help = _("leave empty: your admin unit (the nation for a national admin)")
    # The verbs' refusals, each with .field and .message.
    verb_errors: tuple[type[Exception], ...] = (IndicatorError,)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fixed = ["code", "owner_unit"] if obj is not None else []
        return [*super().get_readonly_fields(request, obj), *fixed]

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)
        # A subclass made per request: its form runs the verb's checks as this actor (VerbForm).
        form: type[forms.ModelForm] = type(
            base.__name__, (base,), {"actor": _actor(request), "model_admin": self}
        )
        if obj is None and "owner_unit" in form.base_fields:
            form.base_fields["owner_unit"].required = False
            form.base_fields["owner_unit"].help_text = self.owner_help
        return form

    def has_add_permission(self, request: HttpRequest) -> bool:
        user = _actor(request)
        held = user is not None and bool(user.area(Role.ADMIN))
        return held and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._may(request, obj) and super().has_delete_permission(request, obj)

    def _may(self, request: HttpRequest, obj: Model | None) -> bool:
        user = _actor(request)
        if user is None:
            return False
        if obj is None:
            return bool(user.area(Role.ADMIN))
        return services.may_manage(user, obj.owner_unit)  # type: ignore[attr-defined]

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> Any:
        # The verb saves; ModelAdmin must not save the instance itself first.
        return form.save(commit=False)

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        saved = self.save_verb(_actor(request), obj, form.cleaned_data)
        obj.pk = saved.pk

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets, change: bool) -> None:
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_verb(_actor(request), obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            try:
                self.delete_verb(_actor(request), obj)
            except self.verb_errors as exc:
                self.message_user(request, getattr(exc, "message", str(exc)), messages.ERROR)

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        raise NotImplementedError


class VerbForm(forms.ModelForm):
    """Runs the verb's checks (owner, formula, what it reads) as the form's validation, in a
    savepoint that is rolled back: an error is shown on the form, never a server error."""

    actor: User | None = None
    model_admin: OwnedAdmin | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors or self.model_admin is None:
            return data
        try:
            with transaction.atomic():
                self.model_admin.save_verb(self.actor, self.instance, data)
                transaction.set_rollback(True)
        except self.model_admin.verb_errors as exc:
            field = getattr(exc, "field", None)
            message = getattr(exc, "message", str(exc))
            if field in self.fields:
                raise forms.ValidationError({field: message}) from None
            raise forms.ValidationError(message) from None
        return data


def _owner(obj: Any, data: dict[str, Any]) -> Any:
    return data.get("owner_unit") if obj.pk is None else None


def _coded(obj: Any, data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A coded item's verb arguments from the form: its code (fixed once created), the owner named on
    creating it, and the fields the form holds."""
    return {"code": obj.code or data["code"], "owner_unit": _owner(obj, data)} | {
        f: data[f] for f in fields if f in data
    }


class DataElementForm(VerbForm):
    class Meta:
        model = DataElement
        fields = ["code", *services.ELEMENT_FIELDS, "owner_unit"]


@admin.register(DataElement)
class DataElementAdmin(OwnedAdmin):
    form = DataElementForm
    list_display = ["code", "name", "unit", "aggregation", "period_type", "value_type", "owner_unit"]
    list_filter = ["aggregation", "period_type"]
    search_fields = ["code", "name", "name_en"]
    raw_id_fields = ["owner_unit"]

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        return services.save_data_element(actor=actor, **_coded(obj, data, services.ELEMENT_FIELDS))

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        services.delete_data_element(actor=actor, element=obj)


class DataSetForm(VerbForm):
    class Meta:
        model = DataSet
        fields = ["code", *services.DATA_SET_FIELDS, "elements", "owner_unit"]


@admin.register(DataSet)
class DataSetAdmin(OwnedAdmin):
    form = DataSetForm
    list_display = ["code", "name", "period_type", "unit_kind", "due_day", "owner_unit"]
    filter_horizontal = ["elements"]
    raw_id_fields = ["owner_unit"]

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        elements = [e.code for e in data.get("elements", [])]
        return services.save_data_set(
            actor=actor, elements=elements, **_coded(obj, data, services.DATA_SET_FIELDS)
        )

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        services.delete_data_set(actor=actor, data_set=obj)


class IndicatorForm(VerbForm):
    class Meta:
        model = Indicator
        fields = ["code", *services.INDICATOR_FIELDS, "owner_unit"]

    def clean_formula(self) -> str:
        text = self.cleaned_data["formula"]
        try:
            check_formula(text)
        except FormulaError as exc:
            raise forms.ValidationError(f"{exc}: {exc.pointer(text)}") from None
        return text


@admin.register(Indicator)
class IndicatorAdmin(OwnedAdmin):
    form = IndicatorForm
    list_display = ["code", "name", "formula", "unit", "decimals", "owner_unit"]
    search_fields = ["code", "name", "formula"]
    raw_id_fields = ["owner_unit"]

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        return services.save_indicator(actor=actor, **_coded(obj, data, services.INDICATOR_FIELDS))

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        services.delete_indicator(actor=actor, indicator=obj)


class TargetForm(VerbForm):
    class Meta:
        model = Target
        fields = ["indicator", "unit", "period", "value", "comment", "owner_unit"]


@admin.register(Target)
class TargetAdmin(OwnedAdmin):
    form = TargetForm
    list_display = ["indicator", "unit", "period", "value", "owner_unit"]
    raw_id_fields = ["unit", "owner_unit"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fixed = ["indicator", "unit", "period", "owner_unit"] if obj is not None else []
        return [*admin.ModelAdmin.get_readonly_fields(self, request, obj), *fixed]

    def save_verb(self, actor: User | None, obj: Any, data: dict[str, Any]) -> Model:
        indicator = obj.indicator if obj.pk else data["indicator"]
        return services.save_target(
            actor=actor,
            indicator=indicator.code,
            unit=obj.unit if obj.pk else data["unit"],
            period=obj.period if obj.pk else data["period"],
            value=data["value"],
            comment=data.get("comment", ""),
            owner_unit=_owner(obj, data),
        )

    def delete_verb(self, actor: User | None, obj: Any) -> None:
        services.delete_target(actor=actor, target=obj)


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
