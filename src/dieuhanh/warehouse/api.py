from datetime import date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.errors import DomainError
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware, public
from dieuhanh.units.services import unit_in_area
from dieuhanh.warehouse import services
from dieuhanh.warehouse.ingest import body_records
from dieuhanh.warehouse.kinds import BEFORE, KINDS, FieldError
from dieuhanh.warehouse.models import Venue, VenueKind
from dieuhanh.warehouse.persons import PersonIdError, normalise
from dieuhanh.warehouse.qr import payload

router = Router(tags=["warehouse"])

INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


class RejectedOut(Schema):
    line: int
    field: str | None
    error: str


class IngestOut(Schema):
    accepted: int
    duplicates: int
    rejected: list[RejectedOut]


@router.post(
    "/events/{kind}",
    response=IngestOut,
    openapi_extra=INGEST_BODY,
    summary="A batch of events from a source platform (NDJSON or CSV body)",
)
@area_aware  # writes only; a source's events are placed by their own communes
def post_events(request: HttpRequest, kind: str):
    if kind not in KINDS:
        raise DomainError("kind", services.UNKNOWN_KIND % {"kind": kind, "kinds": ", ".join(KINDS)}, 404)
    source = services.source_of(caller(request))
    if source is None:
        raise DomainError(None, services.ONLY_SOURCES, 403)
    services.check_may_send(source, kind)
    records = body_records(_batch_body(request), request.content_type or "")
    # All or nothing: an answer that never reaches the source leaves it nothing to repair, only to resend.
    return services.ingest(source, kind, records, atomic=True).as_dict()


def _batch_body(request: HttpRequest) -> bytes:
    """The request's body, or 413 when it is over the limit (by its header, or as read without one)."""
    limit = settings.MAX_BATCH_BYTES
    too_big = DomainError(
        None, _("the body is over the limit of %(limit)s bytes; split the batch") % {"limit": limit}, 413
    )
    if int(request.headers.get("Content-Length") or 0) > limit:
        raise too_big
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_big from None
    if len(body) > limit:
        raise too_big
    return body


class VenueIn(Schema):
    code: str = Field(max_length=40)
    name: str = Field(max_length=200)
    kind: VenueKind
    commune: str = Field(description="EDITION:CODE of the venue's commune")
    lat: float | None = None
    lon: float | None = None
    dwell_minutes: int | None = None


class VenueOut(Schema):
    code: str
    name: str
    kind: str
    commune: str
    lat: float | None
    lon: float | None
    dwell_minutes: int | None
    qr_payload: str


def _venue_out(venue: Venue) -> dict[str, Any]:
    return {
        "code": venue.code,
        "name": venue.name,
        "kind": venue.kind,
        "commune": venue.commune.ref,
        "lat": venue.lat,
        "lon": venue.lon,
        "dwell_minutes": venue.dwell_minutes,
        "qr_payload": payload(venue.code),
    }


WRITERS = {"operator", "admin", "enterprise", "leader"}


@router.post("/venues", response={201: VenueOut}, summary="Create or update a QR venue in your area")
@area_aware
def post_venue(request: HttpRequest, venue: VenueIn):
    user = caller(request)
    if not WRITERS & set(user.grants.values_list("role", flat=True)):
        raise DomainError(
            None, _("registering venues needs an operator, enterprise, leader or admin grant"), 403
        )
    try:
        saved = services.save_venue(actor=user, venue=services.VenueInput(**venue.dict()), area=user.area())
    except FieldError as e:
        raise DomainError(e.field, str(e)) from None
    return Status(201, _venue_out(saved))


@router.get("/venues", response=list[VenueOut], summary="Venues in your area (by commune)")
@area_aware
def list_venues(request: HttpRequest, commune: str | None = None, limit: int = Query(100, ge=1, le=1000)):
    venues: QuerySet[Venue] = (
        Venue.objects.visible_to(request.user).select_related("commune").order_by("code")
    )
    if commune:
        commune_unit = unit_in_area(commune, caller(request).area(), field="commune")
        venues = venues.filter(commune__in=Unit.objects.under(commune_unit))
    return [_venue_out(v) for v in venues[:limit]]


class CountsQuery(Schema):
    kind: Literal["checkin", "health", "travel", "test", "vaccination", "quarantine", "report"]
    unit: str | None = Field(None, description="EDITION:CODE; default: your own unit")
    from_: date = Field(alias="from")
    to: date
    by: Literal["day", "unit", "none"] = "none"
    result: str | None = None
    method: str | None = None
    dose: str | None = None
    symptomatic: Literal["yes", "no"] | None = None
    place: str | None = None
    category: str | None = None
    venue_kind: str | None = None
    mode: str | None = None


class CountRow(Schema):
    unit: str
    day: date | None
    count: float


class CountsOut(Schema):
    total: float
    rows: list[CountRow]


def _default_unit(request: HttpRequest) -> Unit:
    grants = list(caller(request).grants.select_related("unit").order_by("unit__level"))
    if not grants:
        raise DomainError(None, _("you hold no grant on any unit"), 403)
    return grants[0].unit


@router.get(
    "/warehouse/counts", response=CountsOut, summary="Event counts for a unit of either map, from rollups"
)
@area_aware
def get_counts(request: HttpRequest, q: Query[CountsQuery]):
    unit = unit_in_area(q.unit, caller(request).area()) if q.unit else _default_unit(request)
    if q.to < q.from_:
        raise DomainError("to", BEFORE % {"other": "from"})
    if q.to - q.from_ > timedelta(days=3660):
        raise DomainError("to", _("the window is over ten years"))
    dims = {name: value for name in KINDS[q.kind].dims if name and (value := getattr(q, name)) is not None}
    unused = [
        n
        for n in ("result", "method", "dose", "symptomatic", "place", "category", "venue_kind", "mode")
        if getattr(q, n) is not None and n not in KINDS[q.kind].dims
    ]
    if unused:
        raise DomainError(
            unused[0],
            _("not a dimension of '%(kind)s' (its dimensions: %(dims)s)")
            % {"kind": q.kind, "dims": ", ".join(d for d in KINDS[q.kind].dims if d)},
        )
    return services.counts(services.CountQuery(q.kind, unit, q.from_, q.to, q.by, dims))


class PersonEventOut(Schema):
    kind: str
    time: datetime
    commune: str
    commune_name: str
    source: str
    source_event_id: str
    details: dict[str, Any]


class PersonQuery(Schema):
    person_id: str = Field(max_length=40, description="CCCD or mobile number; pseudonymised at once")
    from_: datetime | None = Field(None, alias="from")
    to: datetime | None = None


@router.post(
    "/persons/events",
    response=list[PersonEventOut],
    summary="One person's events in your area (tracers only; every call is audited)",
)
@area_aware
def post_person_events(request: HttpRequest, body: PersonQuery):
    # The ID travels in the body, never in the path: request paths are written to the server's log.
    user = caller(request)
    area = user.area(role="tracer")
    if not area:
        raise DomainError(None, _("person-level data needs a tracer grant"), 403)
    try:
        normalise(body.person_id)
    except PersonIdError as e:
        raise DomainError("person_id", str(e)) from None
    return services.person_events(
        actor=user, person_id=body.person_id, area=area, start=body.from_, end=body.to
    )


@router.get(
    "/persons/{person_id}/events",
    response={410: None},
    deprecated=True,
    summary="Gone: use POST /api/v1/persons/events (the ID in the body)",
)
@public  # reads nothing: answers the same to everyone
def get_person_events_gone(request: HttpRequest, person_id: str):
    raise DomainError(
        None,
        _(
            "This path is no longer served: it put the ID in the address, and addresses are written to "
            "the server's log. Send POST /api/v1/persons/events with the CCCD or phone number in the "
            'request body: {"person_id": "…", "from": "…", "to": "…"}.'
        ),
        410,
    )
