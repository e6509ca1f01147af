"""The approval page (issue 19): a data set's period at one unit — its own state and that of each unit
of the chain's level below it inside the caller's area — with what the caller may do there:

- approve, accept (the level above's step) or unapprove with a reason, many units at once;
- ask for a lock exception for the unit, or grant (until an end date) or refuse the requests of the
  units below;
- for a national admin, the data set's approval settings (levels per map, expiry days).

Every act goes through approval.services, as the API's do, so the page refuses what the API refuses,
in the same words; a unit outside the caller's area is answered 404, as if it did not exist."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.commandroom.entry_views import default_period
from dieuhanh.commandroom.room import room_unit
from dieuhanh.errors import DomainError
from dieuhanh.indicators.approval import services
from dieuhanh.indicators.approval.models import LockException
from dieuhanh.indicators.models import DataSet
from dieuhanh.indicators.periods import PeriodError, parse
from dieuhanh.indicators.periods import read as read_period
from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.vnformat import DateTextError, parse_date_text, whole_number

ACT_LABELS = {
    "approve": gettext_lazy("Approve"),
    "accept": gettext_lazy("Accept"),
    "unapprove": gettext_lazy("Withdraw approval"),
}
DONE = {
    "approve": gettext_lazy("Approved %(n)s units."),
    "accept": gettext_lazy("Accepted the approval of %(n)s units."),
    "unapprove": gettext_lazy("Withdrew the approval of %(n)s units."),
}


def _data_set(code: str) -> DataSet:
    found = DataSet.objects.filter(code=code).first()
    if found is None:
        raise Http404(_("No such data set."))
    return found


def _refused(exc: DomainError) -> None:
    """A look-up refused by the services: the page's 404 or 403 (the same words as the API's)."""
    if exc.status == 404:
        raise Http404(str(exc.message))
    raise PermissionDenied(str(exc.message))


def _unit(user: User, ref: str) -> Unit:
    ref = ref.strip()
    try:
        return room_unit(user, ref or None, None)
    except Unit.DoesNotExist:
        if ref:
            raise Http404(_("No such unit in your area.")) from None
        raise PermissionDenied(_("You hold no grant on any unit.")) from None
    except DomainError as exc:
        _refused(exc)
        raise


def _back(code: str, unit: str, period: str) -> HttpResponse:
    return redirect(f"{reverse('approval', args=[code])}?{urlencode({'unit': unit, 'period': period})}")


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


@login_required
@area_aware
def approval_page(request: HttpRequest, code: str) -> HttpResponse:
    user = caller(request)
    data_set = _data_set(code)
    unit = _unit(user, request.GET.get("unit", ""))
    context: dict[str, Any] = {"data_set": data_set, "unit": unit, "is_national_admin": _national_admin(user)}
    try:
        period = read_period(request.GET.get("period", "").strip() or default_period(data_set))
    except PeriodError:
        context["error"] = _("Not a period: write 202108 (a month), 2021Q3, 2021S1 or 2021.")
        return render(request, "commandroom/approval.html", context, status=422)
    context["period"] = period
    settings = services.settings_of(data_set)
    context["settings"] = settings
    if settings is not None:
        try:
            answer = services.states(user=user, data_set=data_set, period=period.id, unit=unit)
        except DomainError as exc:
            context["error"] = str(exc.message)
            return render(request, "commandroom/approval.html", context, status=exc.status)
        rows = answer["units"]
        for row in rows:
            row["approved_at"], row["accepted_at"] = _when(row["approvedAt"]), _when(row["acceptedAt"])
            row["next_label"] = ACT_LABELS.get((row["next"] or {}).get("action", ""), "")
        can = {a for r in rows for a in r["youCan"]}
        context.update(
            answer=answer,
            rows=rows,
            acts=[(a, ACT_LABELS[a]) for a in services.ACTIONS if a in can],
            exceptions=_exceptions(user, data_set, unit),
            may_request=services.Powers.of(user).acts_for(unit) or user.area("operator").contains(unit),
        )
    if context["is_national_admin"]:
        context["editions"] = [
            (e.code, ", ".join(((settings.levels or {}) if settings else {}).get(e.code, [])), e.levels)
            for e in Edition.objects.order_by("code")
        ]
    return render(request, "commandroom/approval.html", context)


def _national_admin(user: User) -> bool:
    return user.area("admin").everything


def _exceptions(user: User, data_set: DataSet, unit: Unit) -> list[dict[str, Any]]:
    """The lock exceptions of the set at the unit and below, inside the caller's area, newest first,
    each with whether the caller decides it (the level above the asking unit)."""
    rows: QuerySet[LockException] = (
        LockException.objects.visible_to(user)
        .filter(data_set=data_set, unit__edition_id=unit.edition_id, unit__path__under=unit.path)
        .select_related("unit", "requested_by", "decided_by")[:200]
    )
    powers = services.Powers.of(user)
    out = []
    for e in rows:
        decider = services.deciding_unit(e) if e.state == LockException.State.REQUESTED else None
        decides = decider is not None and powers.acts_for(decider)
        out.append({"e": e, "period": parse(e.period).label(), "decides": decides})
    return out


def _posted(request: HttpRequest, code: str) -> tuple[User, DataSet, Unit, str]:
    """Who posts, the data set, the unit the page shows and its period."""
    user = caller(request)
    unit = _unit(user, request.POST.get("unit", ""))
    return user, _data_set(code), unit, request.POST.get("period", "").strip()


@login_required
@area_aware
@require_POST
def approval_act(request: HttpRequest, code: str) -> HttpResponse:
    """Approve, accept or unapprove the units ticked, all or nothing (approval.services.act)."""
    user, data_set, unit, period = _posted(request, code)
    action = request.POST.get("action", "")
    refs = request.POST.getlist("units")
    try:
        chosen = services.units_named(refs, user.area(), unit.edition_id) if refs else []
        if not chosen:
            raise DomainError("units", _("Choose at least one unit."))
        services.act(
            actor=user,
            action=action,
            data_set=data_set,
            period=period,
            units=chosen,
            reason=request.POST.get("reason", ""),
        )
    except DomainError as exc:  # all or nothing: the first refused unit and how many more
        messages.error(request, str(exc.message))
    else:
        messages.success(request, DONE[action] % {"n": len(chosen)} if action in DONE else _("Saved."))
    return _back(code, unit.ref, period)


@login_required
@area_aware
@require_POST
def approval_exception(request: HttpRequest, code: str) -> HttpResponse:
    """The shown unit asks for a lock exception on the period."""
    user, data_set, unit, period = _posted(request, code)
    try:
        services.request_exception(
            actor=user, data_set=data_set, period=period, unit=unit, reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Lock exception requested; the level above will decide."))
    return _back(code, unit.ref, period)


@login_required
@area_aware
@require_POST
def approval_decision(request: HttpRequest, code: str, exception_id: int) -> HttpResponse:
    """The level above grants (until an end date) or refuses a unit's request."""
    user, data_set, unit, period = _posted(request, code)
    found: LockException | None = (
        LockException.objects.visible_to(user)
        .filter(pk=exception_id, data_set=data_set)
        .select_related("data_set", "unit")
        .first()
    )
    if found is None:
        raise Http404(_("No such exception request."))
    grant = request.POST.get("decision") == "grant"
    try:
        text = request.POST.get("ends_on", "").strip()
        ends_on = parse_date_text(text) if grant and text else None
        services.decide_exception(
            actor=user, exception=found, grant=grant, ends_on=ends_on, note=request.POST.get("note", "")
        )
    except DateTextError as exc:
        messages.error(request, exc.for_field(_("End date")))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Exception granted.") if grant else _("Request refused."))
    return _back(code, unit.ref, period)


@login_required
@area_aware
@require_POST
def approval_settings(request: HttpRequest, code: str) -> HttpResponse:
    """A national admin turns approval on for the set, or changes its levels and expiry days."""
    user, data_set, unit, period = _posted(request, code)
    if not _national_admin(user):
        raise PermissionDenied(_("Approval settings need a national administrator."))
    levels = {}
    for edition in Edition.objects.order_by("code"):
        kinds = [k.strip() for k in request.POST.get(f"levels:{edition.code}", "").split(",") if k.strip()]
        if kinds:
            levels[edition.code] = kinds
    try:
        days = int(request.POST.get("expiry_days", "0").strip() or 0)
        if not 0 <= days <= 3650:
            raise DomainError(
                "expiryDays", _("Entry expiry days go from 0 to %(max)s.") % {"max": whole_number(3650)}
            )
        services.configure(actor=user, data_set=data_set, levels=levels, expiry_days=days)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    except ValueError:
        messages.error(request, _("Entry expiry days must be a whole number."))
    else:
        messages.success(request, _("Approval settings saved."))
    return _back(code, unit.ref, period)
