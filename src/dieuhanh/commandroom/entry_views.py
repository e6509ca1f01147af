"""Data entry: a data set's form for one unit and period, with last period's and last year's values
beside each field, and the same form as an Excel file to download, fill and upload.

Both paths write through the dataValueSets import (indicators.datavalues), so the web form, the
Excel upload and the API validate, audit and answer alike: the page shows DHIS2's import summary.
Only units inside the caller's writable area (operator and admin grants) can be chosen; any other
unit is answered 404, as if it did not exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.indicators import datavalues, excel
from dieuhanh.indicators.approval.figures import entry_acts, entry_note
from dieuhanh.indicators.approval.services import ApprovalError
from dieuhanh.indicators.approval.services import act as approval_act
from dieuhanh.indicators.datavalues import Conflict, ImportSummary
from dieuhanh.indicators.excel import FormRow
from dieuhanh.indicators.models import DataSet
from dieuhanh.indicators.periods import PeriodError, period_of
from dieuhanh.indicators.periods import read as read_period
from dieuhanh.indicators.quality.outliers import flags as outlier_flags
from dieuhanh.indicators.services import writable_area
from dieuhanh.units.models import Unit, UnitQuerySet
from dieuhanh.units.scoping import Area, area_aware
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import VN_TZ, number, parse_number

DEFAULT_EDITION = "VN-2025"
CHOICE_LIMIT = 300  # beyond this many units a drop-down is useless; the unit is typed as EDITION:CODE
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def _writer(request: HttpRequest) -> tuple[User, Area]:
    user = caller(request)
    area = writable_area(user)
    if not area:
        raise PermissionDenied(_("Entering data needs an operator grant."))
    return user, area


def _reporters(data_set: DataSet, area: Area) -> UnitQuerySet:
    """The units of the set's kind that the caller may report for (the 2025 map for a national grant)."""
    units = Unit.objects.filter(kind=data_set.unit_kind).within(area)
    if area.everything:
        units = units.filter(edition_id=DEFAULT_EDITION)
    return units.order_by("edition_id", "path")


def default_period(data_set: DataSet) -> str:
    """The period just ended: the one a unit is reporting now."""
    return period_of(data_set.period_type, datetime.now(VN_TZ).date()).previous().id


def _data_set(code: str) -> DataSet:
    found = DataSet.objects.filter(code=code).first()
    if found is None:
        raise Http404(_("No such data set."))
    return found


@dataclass
class Chooser:
    """The unit-and-period form at the head of the entry pages."""

    data_set: DataSet
    count: int
    units: list[Unit] | None  # None: too many to list, the unit is typed
    period: str


def _chooser(data_set: DataSet, area: Area, period: str = "") -> Chooser:
    units = _reporters(data_set, area)
    count = units.count()
    listed = list(units[:CHOICE_LIMIT]) if count <= CHOICE_LIMIT else None
    return Chooser(data_set, count, listed, period or default_period(data_set))


@login_required
@area_aware
def entry_list(request: HttpRequest) -> HttpResponse:
    """The data sets the caller may report, each with a unit and period to open its form."""
    _user, area = _writer(request)
    choosers = [_chooser(data_set, area) for data_set in DataSet.objects.order_by("name")]
    return render(request, "commandroom/entry_list.html", {"choosers": [c for c in choosers if c.count]})


@login_required
@area_aware
@require_POST
def entry_approval(request: HttpRequest, code: str) -> HttpResponse:
    """Approve or unapprove (with a reason) the period's figures of the unit from its entry form
    (issue 19); the rules are the API's (approval.services.act): the unit's own level, its area."""
    user, area = _writer(request)
    data_set = _data_set(code)
    unit = unit_in_area(request.POST.get("unit", ""), area)
    period = request.POST.get("period", "")
    action = request.POST.get("action", "")
    try:
        approval_act(
            actor=user,
            action=action,
            data_set=data_set,
            period=period,
            units=[unit],
            reason=request.POST.get("reason", ""),
        )
    except ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        done = {"approve": _("This period's figures are approved."), "unapprove": _("Approval withdrawn.")}
        messages.success(request, done.get(action, _("Saved.")))
    return redirect(f"{reverse('entry-form', args=[code])}?{urlencode({'unit': unit.ref, 'period': period})}")


@login_required
@area_aware
def entry_form(request: HttpRequest, code: str) -> HttpResponse:
    user, area = _writer(request)
    data_set = _data_set(code)
    chooser = _chooser(data_set, area, request.GET.get("period", "").strip())
    ref = request.GET.get("unit", "").strip()
    if not ref and chooser.units is not None and len(chooser.units) == 1:
        ref = chooser.units[0].ref
    context: dict[str, Any] = {"chooser": chooser, "data_set": data_set, "unit_ref": ref}
    try:
        period = read_period(chooser.period)
    except PeriodError:
        context["error"] = _("Not a period: write it as 202108 (month), 2021Q3, 2021S1 or 2021.")
        return render(request, "commandroom/entry_form.html", context)
    if request.method == "GET" and chooser.period != period.id:
        # Typed as people write it ('tháng 8/2021'): the address keeps the period's identifier.
        return redirect(f"{request.path}?{urlencode({'unit': ref, 'period': period.id})}")
    if not ref:
        return render(request, "commandroom/entry_form.html", context)
    unit = unit_in_area(ref, area)
    typed: dict[str, str] = {}
    if request.method == "POST":
        context["summary"], typed = _save(request.POST, data_set, unit, period.id, user, area)
    language = request.LANGUAGE_CODE
    context.update(
        unit=unit,
        period=period,
        period_label=period.label(language),
        previous_label=period.previous().label(language),
        last_year_label=period.last_year().label(language),
        fields=[_field(row, typed) for row in excel.form_rows(data_set, unit, period.id)],
        approval=entry_note(data_set, period.id, unit),  # approved (locked) or not yet (issue 19)
        approval_can=entry_acts(user, data_set, period.id, unit),
    )
    # Figures far from what the unit usually reports, marked beside their field (issue 19, point 2).
    unusual = outlier_flags(unit, period, sorted({f.row.element.code for f in context["fields"]}))
    for f in context["fields"]:
        f.outlier = "" if f.row.option else unusual.get(f.row.element.code, {}).get("text", "")
    return render(request, "commandroom/entry_form.html", context)


@dataclass
class Field:
    row: FormRow
    name: str
    label: str
    text: str  # what the input shows: the stored value in Vietnamese notation, or what was typed
    estimate: bool
    outlier: str = ""  # "Bất thường: …" when the stored figure is an outlier of the unit's series


def _name(row: FormRow) -> str:
    return f"v:{row.element.code}:{row.option}"


def _label(row: FormRow) -> str:
    option = next((o["name"] for o in row.element.options if o["code"] == row.option), row.option)
    return f"{row.element.name} — {option}" if option else row.element.name


def _field(row: FormRow, typed: dict[str, str]) -> Field:
    name = _name(row)
    # The input always holds Vietnamese notation (1.200,5), which is what parse_number reads back; ten
    # decimals so that saving the page unchanged never rounds a stored figure.
    stored = number(row.stored.value, "vi", 10) if row.stored else ""
    estimate = bool(row.stored and row.stored.status == "estimate")
    return Field(row, name, _label(row), typed.get(name, stored), estimate)


@dataclass
class Outcome:
    """The import summary as the page shows it: counts, and each refused field with its reason."""

    summary: ImportSummary
    refused: list[tuple[str, str, str]]  # (field or line, what, reason)

    @property
    def warnings(self) -> list[str]:
        """Broken `warn` validation rules: the values were saved, the violation is followed."""
        return [w["message"] for w in self.summary.warnings]

    @property
    def written(self) -> int:
        return self.summary.imported + self.summary.updated + self.summary.deleted

    @property
    def tone(self) -> str:
        return "bad" if self.refused and not self.written else "warn" if self.refused else "ok"

    @property
    def headline(self) -> str:
        if self.refused:
            return _("Saved, but some values were refused.") if self.written else _("Nothing was saved.")
        return _("Saved.") if self.written else _("Nothing changed.")


def _save(
    post: QueryDict, data_set: DataSet, unit: Unit, period: str, user: User, area: Area
) -> tuple[Outcome, dict[str, str]]:
    """The form as a dataValueSet through the import; text that is not a number is never sent, and
    is kept in its input for the user to correct."""
    records, sent, typed, refused = [], [], {}, []
    for row in excel.form_rows(data_set, unit, period):
        name = _name(row)
        raw = post.get(name, "").strip()
        if not raw and row.stored is None:
            continue
        try:
            value = parse_number(raw) if raw else ""
        except ValueError:
            typed[name] = raw
            refused.append((_label(row), raw, _("not a number (write 1.200 or 3,46)")))
            continue
        records.append(_record(row, unit, period, value, post.get(f"e:{name}") == "on"))
        sent.append(row)
    summary = datavalues.import_values(records, actor=user, area=area, edition=unit.edition_id)
    for conflict in summary.conflicts:
        row = sent[conflict.index]
        typed[_name(row)] = post.get(_name(row), "")
        refused.append((_label(row), conflict.object, str(conflict.value)))
    return Outcome(summary, refused), typed


def _record(row: FormRow, unit: Unit, period: str, value: float | str, estimate: bool) -> dict[str, Any]:
    return {
        "dataElement": row.element.code,
        "categoryOptionCombo": row.option,
        "period": period,
        "orgUnit": unit.ref,
        "value": value,
        "status": "estimate" if estimate else "final",
        # The web form has no comment box; a comment made in the Excel form is kept as it is.
        "comment": row.stored.comment if row.stored else "",
    }


FIELD_NAMES = {
    "dataElement": "Mã chỉ tiêu",
    "period": "Kỳ báo cáo",
    "orgUnit": "Đơn vị",
    "categoryOptionCombo": "Phân tổ",
    "value": "Giá trị",
    "status": "Ước tính (x)",
    "dataValues": "",
}


def _line(conflict: Conflict) -> tuple[str, str, str]:
    """A refused spreadsheet row: its row number, the column as the form heads it, and the reason."""
    where = _("Row %(line)s") % {"line": conflict.line} if conflict.line else ""
    column = FIELD_NAMES.get(conflict.field, conflict.field)
    return where, f"{column}: {conflict.object}" if column else conflict.object, str(conflict.value)


@login_required
@area_aware
@require_POST
def entry_upload(request: HttpRequest, code: str) -> HttpResponse:
    """A filled Excel form in; the import summary out, each refused row with its spreadsheet row."""
    user, area = _writer(request)
    data_set = _data_set(code)
    back = {k: request.POST.get(k, "").strip() for k in ("unit", "period")}
    context: dict[str, Any] = {"data_set": data_set, "back": urlencode({k: v for k, v in back.items() if v})}
    upload = request.FILES.get("file")
    if upload is None:
        context["error"] = _("Choose the filled Excel file first.")
    elif upload.size and upload.size > MAX_UPLOAD_BYTES:
        context["error"] = _("The file is larger than 10 MB.")
    else:
        try:
            records = excel.records(upload.read(), data_set)
        except excel.TemplateError as exc:
            context["error"] = _("This is not a filled form of this data set: %(reason)s") % {"reason": exc}
        else:
            summary = datavalues.import_values(records, actor=user, area=area)
            refused = [_line(c) for c in sorted(summary.conflicts, key=lambda c: c.line or 0)]
            context["outcome"] = Outcome(summary, refused)
    status = 422 if "error" in context else 200
    return render(request, "commandroom/entry_upload.html", context, status=status)
