"""Tracing's API: cases, their contacts (JSON, CSV, XLSX), identities from the vault, clusters.

Every route needs a tracer grant; every read of person-level results is audited (services)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.tracing import services
from dieuhanh.tracing.exports import XLSX_TYPE, list_csv, list_xlsx
from dieuhanh.tracing.present import case_out, list_rows, local, trace_out
from dieuhanh.tracing.services import CaseInput, TracingError
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import Moment
from dieuhanh.warehouse import vault
from dieuhanh.warehouse.persons import PersonIdError

router = Router(tags=["tracing"])


class TestRef(Schema):
    source: str = Field(description="the source platform's name")
    event_id: str = Field(description="the test's source_event_id")


class CaseIn(Schema):
    person_id: str | None = Field(None, description="CCCD or mobile number; pseudonymised at once")
    test: TestRef | None = Field(None, description="or: promote this positive test")
    confirmed_at: Moment | None = Field(None, description="default: the test's sampling time")
    onset_at: Moment | None = None
    window_start: Moment | None = Field(None, description="default: 2 days before onset or confirmation")
    window_end: Moment | None = Field(None, description="isolation; open (until now) when empty")
    commune: str | None = Field(None, description="EDITION:CODE of residence; default: test or declaration")
    note: str = ""


class CaseChange(Schema):
    onset_at: Moment | None = None
    window_start: Moment | None = None
    window_end: Moment | None = None
    note: str | None = None


class CaseOut(Schema):
    id: int
    person_key: str
    confirmed_at: datetime
    onset_at: datetime | None
    window_start: datetime
    window_end: datetime | None
    commune: str | None
    commune_name: str | None
    test: str | None
    note: str


class IntervalOut(Schema):
    start: datetime
    end: datetime
    minutes: float
    source: str


class VenueExposureOut(Schema):
    venue: str
    name: str
    commune: str
    intervals: list[IntervalOut]


class ContactOut(Schema):
    person_key: str
    generation: int
    venues: list[VenueExposureOut]
    overlap_minutes: float
    first_exposure: datetime
    commune: str | None
    commune_name: str | None
    is_case: bool
    paths: list[str]


class EdgeOut(Schema):
    from_: str = Field(alias="from")
    to: str
    venue: str
    start: datetime
    end: datetime
    minutes: float


class TraceOut(Schema):
    case: CaseOut
    depth: int
    rule: dict[str, int]
    counts: dict[str, int]
    computed_ms: float
    contacts: list[ContactOut]
    edges: list[EdgeOut]


class RuleQuery(Schema):
    depth: int = Field(1, ge=1, le=2, description="1: F1; 2: F1 and F2")
    min_overlap: int | None = Field(None, ge=1, le=1440, description="minutes (default 10)")
    dwell: int | None = Field(None, ge=1, le=1440, description="minutes without check-out (default 60)")
    decay: int | None = Field(None, ge=0, le=240, description="aerosol tail cap, minutes (default 30)")
    max_stay_hours: int | None = Field(None, ge=1, le=168, description="longest stay counted (default 24)")
    contact_days: int | None = Field(None, ge=1, le=60, description="an F1's window (default 14)")

    def rule(self) -> services.Rule:
        return services.rule_from(
            min_overlap=self.min_overlap,
            dwell=self.dwell,
            decay=self.decay,
            max_stay_hours=self.max_stay_hours,
            contact_days=self.contact_days,
        )


class ListQuery(RuleQuery):
    format: Literal["csv", "xlsx"] = "csv"
    identities: bool = Field(False, description="add CCCD/phone from the identity vault (audited)")


# Checked by the schema, before the case is read: a malformed key answers the same for any case id.
PersonKeyHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$")]


class IdentitiesIn(Schema):
    person_keys: list[PersonKeyHex] = Field(..., min_length=1, max_length=10_000)
    purpose: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)] = Field(
        ..., description="why: written to the audit log"
    )


class ClusterQuery(Schema):
    from_: Moment = Field(..., alias="from")
    to: Moment
    min_cases: int = Field(2, ge=1, le=1000)


class ClusterOut(Schema):
    venue: str
    name: str
    commune: str
    commune_name: str
    lat: float | None
    lon: float | None
    cases: list[int]
    case_count: int
    stays: int
    contacts: int
    first: datetime
    last: datetime


def _commune(user: User, ref: str | None) -> Unit | None:
    return unit_in_area(ref, user.area(role="tracer"), field="commune") if ref else None


@router.post("/tracing/cases", response={201: CaseOut}, summary="Register a confirmed case (F0)")
@area_aware
def post_case(request: HttpRequest, body: CaseIn):
    user = caller(request)
    services.require_tracer(user)
    if (body.person_id is None) == (body.test is None):
        raise TracingError("person_id", _("give either person_id or test, not both nor neither"))
    data = CaseInput(
        confirmed_at=body.confirmed_at,
        onset_at=body.onset_at,
        window_start=body.window_start,
        window_end=body.window_end,
        commune=_commune(user, body.commune),
        note=body.note,
    )
    if body.test is not None:
        case = services.promote_test(
            actor=user,
            source=body.test.source,
            test_event_id=body.test.event_id,
            data=data,
        )
    else:
        try:
            case = services.register_case(actor=user, person_id=body.person_id or "", data=data)
        except PersonIdError as e:
            raise TracingError("person_id", str(e)) from None
    return Status(201, case_out(case))


@router.get("/tracing/cases", response=list[CaseOut], summary="Cases in your area, newest first")
@area_aware
def list_cases(request: HttpRequest):
    return [case_out(c) for c in services.list_cases(caller(request))]


@router.get("/tracing/cases/{case_id}", response=CaseOut, summary="One case of your area")
@area_aware
def get_case(request: HttpRequest, case_id: int):
    return case_out(services.own_case(caller(request), case_id))


@router.patch("/tracing/cases/{case_id}", response=CaseOut, summary="Correct a case's onset or window")
@area_aware
def patch_case(request: HttpRequest, case_id: int, body: CaseChange):
    changes = body.model_dump(exclude_unset=True)
    return case_out(services.change_case(caller(request), case_id, changes))


@router.delete("/tracing/cases/{case_id}", response={204: None}, summary="Withdraw a case entered by mistake")
@area_aware
def delete_case(request: HttpRequest, case_id: int):
    services.withdraw_case(caller(request), case_id)
    return Status(204, None)


@router.get(
    "/tracing/cases/{case_id}/contacts",
    response=TraceOut,
    by_alias=True,
    summary="The case's contacts (F1, and F2 at depth 2) and the edges between stays; audited",
)
@area_aware
def get_contacts(request: HttpRequest, case_id: int, q: Query[RuleQuery]):
    # The rule is checked before the case is read: its errors cannot tell which ids exist.
    user, rule = caller(request), q.rule()
    case = services.case_for(user, case_id)
    return trace_out(services.contacts(actor=user, case=case, depth=q.depth, rule=rule))


@router.get(
    "/tracing/cases/{case_id}/contacts/list",
    summary="The contact list per commune of residence, CSV or XLSX; audited",
    openapi_extra={"responses": {200: {"content": {"text/csv": {}, XLSX_TYPE: {}}}}},
)
@area_aware
def get_contact_list(request: HttpRequest, case_id: int, q: Query[ListQuery]) -> HttpResponse:
    user, rule = caller(request), q.rule()
    case = services.case_for(user, case_id)
    view = services.contacts(actor=user, case=case, depth=q.depth, rule=rule)
    found = (
        vault.reveal(
            actor=user, keys=[c.person for c in view.contacts], purpose=f"contact list of case {case.pk}"
        )
        if q.identities and view.contacts
        else None
    )
    rows = list_rows(view, found)
    name = f"tiep-xuc-ca-{case.pk}-F{q.depth}"
    if q.format == "xlsx":
        made = local(int(time.time())).strftime("%H:%M %d/%m/%Y")
        title = f"Danh sách tiếp xúc của ca bệnh #{case.pk} (đến F{q.depth}), lập lúc {made}"
        response = HttpResponse(list_xlsx(rows, title), content_type=XLSX_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
    else:
        response = HttpResponse(list_csv(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@router.post(
    "/tracing/cases/{case_id}/identities",
    response=dict[str, str],
    summary="CCCD/phone of the case or its contacts you may see, from the identity vault; audited",
)
@area_aware
def post_identities(request: HttpRequest, case_id: int, body: IdentitiesIn, q: Query[RuleQuery]):
    user, rule = caller(request), q.rule()
    case = services.case_for(user, case_id)
    keys = services.revealable(actor=user, case=case, hex_keys=body.person_keys, depth=q.depth, rule=rule)
    found = vault.reveal(actor=user, keys=keys, purpose=body.purpose)
    return {k.hex(): v for k, v in found.items()}


@router.get(
    "/tracing/clusters",
    response=list[ClusterOut],
    by_alias=True,
    summary="Venues of your area where several cases stayed while infectious; audited",
)
@area_aware
def get_clusters(request: HttpRequest, q: Query[ClusterQuery]):
    found = services.clusters(
        actor=caller(request), start=q.from_, end=q.to, min_cases=q.min_cases, rule=services.Rule()
    )
    return [_cluster_out(c) for c in found]


def _cluster_out(c: services.Cluster) -> dict[str, Any]:
    return {
        "venue": c.venue.code,
        "name": c.venue.name,
        "commune": c.venue.commune.ref,
        "commune_name": c.venue.commune.name,
        "lat": c.venue.lat,
        "lon": c.venue.lon,
        "cases": [case.pk for case in c.cases],
        "case_count": len(c.cases),
        "stays": c.stays,
        "contacts": c.contacts,
        "first": local(c.first),
        "last": local(c.last),
    }
