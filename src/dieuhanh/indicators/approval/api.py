"""The approval API (issue 19): approve, accept, unapprove many units in one call; each unit's state
and who acts next; the map layer; lock exceptions; a data set's approval settings (national admin)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.indicators.approval import services
from dieuhanh.indicators.approval.models import Approval, DataSetApproval, LockException
from dieuhanh.indicators.approval.services import ApprovalError
from dieuhanh.indicators.periods import parse, period_of
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area, area_aware, metadata

router = Router(tags=["approval"])


class ApprovalIn(Schema):
    action: Literal["approve", "accept", "unapprove"]
    data_set: str = Field(..., alias="dataSet")
    period: str
    units: list[str] = Field(
        ..., description="EDITION:CODE (or a code of `edition`) of each unit", max_length=20_000
    )
    reason: str = Field("", description="required to unapprove")
    edition: str = "VN-2025"


@router.post(
    "/approvals",
    response=dict[str, Any],
    summary="Approve, accept (the level above) or unapprove a data set's period for many units at once",
)
@area_aware
def post_approvals(request: HttpRequest, body: ApprovalIn):
    """All or nothing: any refused unit writes nothing; the answer names each refused unit (404 for one
    unknown or outside your area, 403 for one not at your level, 409 for one whose state forbids it)."""
    user = caller(request)
    data_set, _settings = services.data_set_named(body.data_set)
    units = services.units_named(body.units, user.area(), body.edition)
    outcome = services.act(
        actor=user, action=body.action, data_set=data_set, period=body.period, units=units, reason=body.reason
    )
    return outcome.as_dict()


class StateQuery(Schema):
    data_set: str = Field(..., alias="dataSet")
    period: str
    unit: str | None = Field(None, description="EDITION:CODE; by default your own unit")
    children: bool = Field(True, description="also the units of the level below it")
    edition: str = "VN-2025"


@router.get(
    "/approvals",
    response=dict[str, Any],
    summary="Each unit's approval state for a data set and period, and who can act next",
)
@area_aware
def get_approvals(request: HttpRequest, q: Query[StateQuery]):
    user = caller(request)
    data_set, _settings = services.data_set_named(q.data_set)
    unit = _unit_or_root(user, q.unit, q.edition)
    return services.states(user=user, data_set=data_set, period=q.period, unit=unit, children=q.children)


class MapQuery(Schema):
    unit: str | None = None
    data_set: str | None = Field(
        None, alias="dataSet", description="by default the first data set with approval"
    )
    period: str | None = Field(None, description="by default the latest period with an approval action")
    edition: str = "VN-2025"


@router.get(
    "/approvals/map",
    response=dict[str, Any],
    summary="The approval state of each unit below one, keyed by unit, for the room's map layer",
)
@area_aware
def get_approval_map(request: HttpRequest, q: Query[MapQuery]):
    user = caller(request)
    if q.data_set:
        data_set, _settings = services.data_set_named(q.data_set)
    else:
        found = DataSetApproval.objects.select_related("data_set").order_by("data_set__code").first()
        if found is None:
            return {"dataSet": None, "period": None, "values": {}, "legend": legend()}
        data_set = found.data_set
    unit = _unit_or_root(user, q.unit, q.edition)
    period = q.period or _latest_period(data_set.pk, data_set.period_type, unit)
    answer = services.states(user=user, data_set=data_set, period=period, unit=unit)
    return {
        "dataSet": data_set.code,
        "dataSetName": data_set.name,
        "period": answer["period"],
        "periodLabel": answer["periodLabel"],
        "unit": unit.ref,
        "values": {r["unit"]: {"value": r["state"], "text": r["label"]} for r in answer["units"][1:]},
        "self": {"value": answer["units"][0]["state"], "text": answer["units"][0]["label"]},
        "legend": legend(),
    }


LEGEND = [
    ("open", "#c9c9c9", _("Not approved")),
    ("approved", "#7fb77e", _("Approved")),
    ("accepted", "#1d6b2f", _("Accepted by the level above")),
    ("approved_above", "#0b3d91", _("Approved by the level above")),
]


def legend() -> list[dict[str, str]]:
    """The map layer's legend in the caller's language (the labels are read per request)."""
    return [{"value": value, "colour": colour, "label": str(label)} for value, colour, label in LEGEND]


def _latest_period(data_set_id: int, period_type: str, unit: Unit) -> str:
    """The latest period approved within the shown unit's area (never a hint of approvals elsewhere),
    else the last whole period."""
    latest = (
        Approval.objects.filter(Area.of(unit).q("unit"), data_set_id=data_set_id)
        .order_by("-approved_at")
        .values_list("period", flat=True)
        .first()
    )
    if latest:
        return latest
    return period_of(period_type, services.vn_today()).previous().id


def _unit_or_root(user: User, ref: str | None, edition: str) -> Unit:
    area = user.area()
    if ref:
        refs = services.units_named([ref], area, edition)
        return refs[0]
    if area.everything:
        nation = Unit.objects.filter(edition_id=edition, level=0).first()
        if nation is None:
            raise ApprovalError("edition", _("No map '%(code)s'.") % {"code": edition}, 404)
        return nation
    own = [g.unit for g in user.held() if g.unit.edition_id == edition] or [g.unit for g in user.held()]
    if not own:
        raise ApprovalError(None, _("you hold no grant on any unit"), 403)
    return min(own, key=lambda u: (u.level, u.path))


# Lock exceptions


class ExceptionIn(Schema):
    data_set: str = Field(..., alias="dataSet")
    period: str
    unit: str
    reason: str
    edition: str = "VN-2025"


class DecisionIn(Schema):
    grant: bool
    ends_on: date | None = Field(
        None, alias="endsOn", description="the last day the exception holds (to grant)"
    )
    note: str = ""


def _exception(e: LockException) -> dict[str, Any]:
    return {
        "id": e.pk,
        "dataSet": e.data_set.code,
        "period": e.period,
        "periodLabel": parse(e.period).label(),
        "unit": e.unit.ref,
        "unitName": e.unit.name,
        "state": e.state,
        "reason": e.reason,
        "requestedBy": e.requested_by.username if e.requested_by else None,
        "requestedAt": e.requested_at.isoformat(),
        "decidedBy": e.decided_by.username if e.decided_by else None,
        "decidedAt": e.decided_at.isoformat() if e.decided_at else None,
        "endsOn": e.ends_on.isoformat() if e.ends_on else None,
        "active": e.state == "granted" and e.ends_on is not None and e.ends_on >= services.vn_today(),
        "note": e.decision_note,
    }


@router.post("/approvals/exceptions", response={201: dict[str, Any]}, summary="Ask for a lock exception")
@area_aware
def post_exception(request: HttpRequest, body: ExceptionIn):
    """A unit asks to write a data set's values of a period past its expiry days; the level above decides."""
    user = caller(request)
    data_set, _settings = services.data_set_named(body.data_set)
    unit = services.units_named([body.unit], user.area(), body.edition)[0]
    found = services.request_exception(
        actor=user, data_set=data_set, period=body.period, unit=unit, reason=body.reason
    )
    return Status(201, _exception(found))


@router.get(
    "/approvals/exceptions", response=list[dict[str, Any]], summary="Lock exceptions inside your area"
)
@area_aware
def list_exceptions(request: HttpRequest, state: Literal["requested", "granted", "refused"] | None = None):
    rows: QuerySet[LockException] = LockException.objects.visible_to(caller(request)).select_related(
        "data_set", "unit", "requested_by", "decided_by"
    )
    if state:
        rows = rows.filter(state=state)
    return [_exception(e) for e in rows[:1000]]


@router.post(
    "/approvals/exceptions/{exception_id}/decision",
    response=dict[str, Any],
    summary="Grant (until an end date) or refuse a lock exception (the level above)",
)
@area_aware
def post_decision(request: HttpRequest, exception_id: int, body: DecisionIn):
    user = caller(request)
    found: LockException | None = (
        LockException.objects.visible_to(user)
        .select_related("data_set", "unit", "requested_by", "decided_by")
        .filter(pk=exception_id)
        .first()
    )
    if found is None:
        raise ApprovalError("exception", _("No lock exception request %(id)s.") % {"id": exception_id}, 404)
    decided = services.decide_exception(
        actor=user, exception=found, grant=body.grant, ends_on=body.ends_on, note=body.note
    )
    return _exception(decided)


# Settings (national admin)


class SettingsIn(Schema):
    data_set: str = Field(..., alias="dataSet")
    levels: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per map, the approving kinds from the lowest up; {} for every level",
    )
    expiry_days: int = Field(0, alias="expiryDays", ge=0, le=3650)


@router.post(
    "/approvals/settings",
    response=dict[str, Any],
    summary="Turn approval on for a data set: its levels per map and its expiry days (national admin)",
)
@metadata  # a data set's settings belong to the shared catalogue; only a national admin changes them
def post_settings(request: HttpRequest, body: SettingsIn):
    user = caller(request)
    if not user.area("admin").everything:
        raise ApprovalError(None, _("Configuring approval needs a national admin grant."), 403)
    data_set = services.DataSet.objects.filter(code=body.data_set).first()
    if data_set is None:
        raise ApprovalError("dataSet", _("No data set '%(code)s'.") % {"code": body.data_set}, 404)
    found = services.configure(
        actor=user, data_set=data_set, levels=body.levels, expiry_days=body.expiry_days
    )
    return {"dataSet": data_set.code, "levels": found.levels, "expiryDays": found.expiry_days}
