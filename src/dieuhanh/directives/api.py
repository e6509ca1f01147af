"""Directives' API: issue, update, cancel; the inbox; read, acknowledge, respond; the room's status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import BeforeValidator, Field

from dieuhanh.accounts.guards import caller
from dieuhanh.directives import services
from dieuhanh.directives.contact_lists import send_contact_lists
from dieuhanh.directives.models import Delivery, Directive, current_code
from dieuhanh.directives.present import (
    XLSX_TYPE,
    attachment_out,
    deliveries_out,
    delivery_out,
    directive_out,
    directives_out,
    status_xlsx,
)
from dieuhanh.directives.services import DirectiveError, DirectiveInput, Targets
from dieuhanh.tracing import services as tracing_services
from dieuhanh.units.scoping import area_aware
from dieuhanh.vnformat import Moment

router = Router(tags=["directives"])


class TargetsIn(Schema):
    units: list[str] = Field(default_factory=list, description="EDITION:CODE refs")
    level: Literal["commune", "district", "province", "industrial_park", "enterprise"] | None = Field(
        None, description="every unit of this kind under `units` (or the group); null: the units themselves"
    )
    group: str | None = Field(None, description="a saved group's code")


class Question(Schema):
    key: str
    label: str
    type: Literal["text", "number", "datetime"] = "text"
    data_element: str | None = None


# The old codes (khan, thuong) are still accepted for one release: directives.models.OLD_CODES.
PriorityCode = Annotated[Literal["urgent", "normal"], BeforeValidator(current_code)]


class DirectiveIn(Schema):
    title: str = Field(..., min_length=1, max_length=300)
    body: str = ""
    number: str = Field("", max_length=40)
    kind: Literal["directive", "report_request", "notice"] = "directive"
    priority: PriorityCode = "normal"
    requires_ack: bool = True
    deadline: Moment | None = None
    late_answers: bool = True
    form: list[Question] = Field(default_factory=list)
    targets: TargetsIn


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _may_be_left_out(**constraints: Any) -> Any:
    """A field of a change that is changed only when sent, and cannot be sent as null (the directive
    always has one): null is refused with 422 rather than reaching the database."""
    return Field(None, json_schema_extra=_no_default, **constraints)


class DirectiveChange(Schema):
    title: str = _may_be_left_out(min_length=1, max_length=300)
    body: str = _may_be_left_out()
    number: str = _may_be_left_out(max_length=40)
    priority: PriorityCode = _may_be_left_out()
    deadline: Moment | None = Field(None, description="null removes the deadline")
    requires_ack: bool = _may_be_left_out()
    late_answers: bool = _may_be_left_out()
    note: str = ""


class NoteIn(Schema):
    note: str = ""


class ResponseIn(Schema):
    text: str = ""
    figures: dict[str, float] = Field(default_factory=dict)


class StateCounts(Schema):
    total: int
    sent: int
    read: int
    acknowledged: int
    responded: int
    overdue: int


class ProvinceCounts(StateCounts):
    unit: str
    name: str
    figures: dict[str, float] = Field(description="the units' latest reported figures, summed")


class StatusOut(StateCounts):
    figures: dict[str, float]
    provinces: list[ProvinceCounts]


class RevisionOut(Schema):
    version: int
    action: str
    changes: dict[str, Any]
    note: str
    by: str
    at: datetime


class AttachmentOut(Schema):
    id: int
    name: str
    content_type: str
    size: int
    url: str


class GroupIn(Schema):
    code: str = Field(..., pattern=r"^[a-z0-9-]{2,60}$")
    name: str = Field(..., min_length=1, max_length=200)
    targets: TargetsIn


class GroupOut(Schema):
    code: str
    name: str
    edition: str
    units: int


class DirectiveOut(Schema):
    id: int
    number: str
    title: str
    body: str
    kind: str
    priority: str
    issuer_unit: str
    issuer_name: str
    issued_by: str
    issued_at: datetime
    requires_ack: bool
    deadline: datetime | None
    late_answers: bool
    form: list[dict[str, Any]]
    targets: dict[str, Any]
    edition: str
    version: int
    cancelled_at: datetime | None
    revisions: list[RevisionOut]
    attachments: list[AttachmentOut]
    status: StatusOut | None = None


class ResponseOut(Schema):
    version: int
    text: str
    figures: dict[str, float]
    by: str
    at: datetime


class DeliveryOut(Schema):
    id: int
    unit: str
    unit_name: str
    state: str
    overdue: bool
    escalated: bool
    sent_at: datetime
    read_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    responded_at: datetime | None
    last_error: str
    directive: DirectiveOut
    responses: list[ResponseOut]


class InboxOut(Schema):
    unread: int
    items: list[DeliveryOut]


class PendingOut(Schema):
    unit: str
    name: str
    state: str
    delivery: int


def _directive(request: HttpRequest, directive_id: int) -> Directive:
    found = services.visible_directives(caller(request)).filter(pk=directive_id).first()
    if found is None:
        raise DirectiveError("id", services.NO_DIRECTIVE % {"id": directive_id}, status=404)
    return found


class TargetCountOut(Schema):
    count: int
    edition: str
    sample: list[str]


@router.get(
    "/directives/targets",
    response=TargetCountOut,
    summary="How many units a choice of targets reaches (the composer's live count)",
)
@area_aware
def get_target_count(
    request: HttpRequest,
    units: str = Query("", description="comma-separated EDITION:CODE refs"),
    level: Literal["commune", "district", "province", "industrial_park", "enterprise"] | None = None,
    group: str | None = None,
):
    refs = tuple(r.strip() for r in units.replace("\n", ",").split(",") if r.strip())
    found = services.resolve_targets(Targets(refs, level, group), services.issuing_area(caller(request)))
    found.sort(key=lambda u: u.path)
    return {"count": len(found), "edition": found[0].edition_id, "sample": [u.name for u in found[:5]]}


@router.post("/directives", response={201: DirectiveOut}, summary="Issue a directive to units of your area")
@area_aware
def post_directive(request: HttpRequest, body: DirectiveIn):
    user = caller(request)
    data = DirectiveInput(
        **body.model_dump(exclude={"form", "targets"}),  # the schema's other fields are the input's
        form=[q.model_dump(exclude_none=True) for q in body.form],
        targets=Targets(tuple(body.targets.units), body.targets.level, body.targets.group),
    )
    directive = services.issue_directive(actor=user, data=data)
    return Status(201, directive_out(directive, status=services.status(directive, user.area())))


@router.get("/directives", response=list[DirectiveOut], summary="Directives issued in or reaching your area")
@area_aware
def list_directives(request: HttpRequest, limit: int = Query(100, ge=1, le=500)):
    found = services.visible_directives(caller(request)).select_related("issuer_unit", "issued_by")
    return directives_out(list(found.order_by("-issued_at", "-id")[:limit]))


@router.get(
    "/directives/{directive_id}", response=DirectiveOut, summary="A directive and its status in your area"
)
@area_aware
def get_directive(request: HttpRequest, directive_id: int):
    directive = _directive(request, directive_id)
    return directive_out(directive, status=services.status(directive, caller(request).area()))


@router.get(
    "/directives/{directive_id}/pending",
    response=list[PendingOut],
    summary="Units of your area that have not yet acknowledged or responded",
)
@area_aware
def get_pending(request: HttpRequest, directive_id: int):
    directive = _directive(request, directive_id)
    rows = services.pending(directive, caller(request).area()).order_by("unit__path")[:10_000]
    return [{"unit": d.unit.ref, "name": d.unit.name, "state": d.state, "delivery": d.pk} for d in rows]


@router.get(
    "/directives/{directive_id}/status.xlsx",
    summary="The status per unit as an Excel file",
    openapi_extra={"responses": {200: {"content": {XLSX_TYPE: {}}}}},
)
@area_aware
def get_status_xlsx(request: HttpRequest, directive_id: int) -> HttpResponse:
    directive = _directive(request, directive_id)
    content, content_type = status_xlsx(directive, caller(request).area())
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="chi-dao-{directive.pk}.xlsx"'
    return response


@router.post(
    "/directives/{directive_id}/update", response=DirectiveOut, summary="Change a directive (CAP Update)"
)
@area_aware
def post_update(request: HttpRequest, directive_id: int, body: DirectiveChange):
    changes = body.model_dump(exclude_unset=True)
    note = changes.pop("note", "")
    directive = services.update_directive(
        actor=caller(request), directive=_directive(request, directive_id), changes=changes, note=note
    )
    return directive_out(directive)


@router.post(
    "/directives/{directive_id}/cancel", response=DirectiveOut, summary="Cancel a directive (CAP Cancel)"
)
@area_aware
def post_cancel(request: HttpRequest, directive_id: int, body: NoteIn):
    directive = services.cancel_directive(
        actor=caller(request), directive=_directive(request, directive_id), note=body.note
    )
    return directive_out(directive)


@router.get("/inbox", response=InboxOut, summary="Your units' directives: urgent first, then newest")
@area_aware
def get_inbox(request: HttpRequest, limit: int = Query(50, ge=1, le=500)):
    user = caller(request)
    items = services.inbox(user)
    unread = items.filter(state="sent", unit_id__in=services.own_units(user)).count()
    page = list(items.select_related("acknowledged_by")[:limit])
    return {"unread": unread, "items": deliveries_out(page, timezone.now())}


def _delivery(request: HttpRequest, delivery_id: int) -> Delivery:
    return services.delivery_for(caller(request), delivery_id)


@router.get(
    "/deliveries/{delivery_id}", response=DeliveryOut, summary="One delivery (opening it marks it read)"
)
@area_aware
def get_delivery(request: HttpRequest, delivery_id: int):
    delivery = services.read_delivery(actor=caller(request), delivery=_delivery(request, delivery_id))
    return delivery_out(delivery, timezone.now())


@router.post("/deliveries/{delivery_id}/read", response=DeliveryOut, summary="Mark read")
@area_aware
def post_read(request: HttpRequest, delivery_id: int):
    delivery = services.read_delivery(actor=caller(request), delivery=_delivery(request, delivery_id))
    return delivery_out(delivery, timezone.now())


@router.post("/deliveries/{delivery_id}/ack", response=DeliveryOut, summary="Acknowledge (đã nhận)")
@area_aware
def post_ack(request: HttpRequest, delivery_id: int):
    delivery = services.acknowledge_delivery(actor=caller(request), delivery=_delivery(request, delivery_id))
    return delivery_out(delivery, timezone.now())


@router.post(
    "/deliveries/{delivery_id}/respond", response={201: DeliveryOut}, summary="Respond (a new version)"
)
@area_aware
def post_respond(request: HttpRequest, delivery_id: int, body: ResponseIn):
    delivery = _delivery(request, delivery_id)
    services.respond_delivery(actor=caller(request), delivery=delivery, text=body.text, figures=body.figures)
    delivery.refresh_from_db()
    return Status(201, delivery_out(delivery, timezone.now()))


class SendIn(Schema):
    depth: int = Field(2, ge=1, le=2)
    deadline: Moment | None = Field(None, description="when the communes report back (default: in 24 hours)")


class SentOut(Schema):
    directive: int
    unit: str
    unit_name: str
    title: str


class SendOut(Schema):
    sent: list[SentOut]
    already: list[str]
    outside: list[str]
    undeclared: int


@router.post(
    "/tracing/cases/{case_id}/send",
    response=SendOut,
    tags=["tracing"],
    summary="Send each commune of residence its own contacts of the case, as an urgent directive",
)
@area_aware
def post_send_lists(request: HttpRequest, case_id: int, body: SendIn):
    user = caller(request)
    case = tracing_services.own_case(user, case_id)
    report = send_contact_lists(actor=user, case=case, depth=body.depth, deadline=body.deadline)
    return {
        "sent": [
            {"directive": d.pk, "unit": d.targets["units"][0], "unit_name": _unit_name(d), "title": d.title}
            for d in report.sent
        ],
        "already": [u.ref for u in report.already],
        "outside": [u.ref for u in report.outside],
        "undeclared": report.undeclared,
    }


def _unit_name(directive: Directive) -> str:
    delivery = directive.deliveries.select_related("unit").first()
    return delivery.unit.name if delivery else ""


@router.post(
    "/directives/{directive_id}/attachments",
    response={201: AttachmentOut},
    summary="Attach a file (PDF, image, DOCX, XLSX; at most 10 MB)",
)
@area_aware
def post_attachment(request: HttpRequest, directive_id: int, file: File[UploadedFile]):
    if (file.size or 0) > services.MAX_ATTACHMENT_BYTES:
        raise DirectiveError("file", services.too_large(), status=413)
    attachment = services.attach(
        actor=caller(request),
        directive=_directive(request, directive_id),
        name=file.name or "",
        content=file.read(services.MAX_ATTACHMENT_BYTES + 1),
    )
    return Status(201, attachment_out(attachment))


@router.get("/attachments/{attachment_id}", summary="Download an attachment of a directive you can see")
@area_aware
def get_attachment(request: HttpRequest, attachment_id: int):
    attachment = services.attachment_for(caller(request), attachment_id)
    response = FileResponse(attachment.file.open("rb"), as_attachment=True, filename=attachment.name)
    response["Content-Type"] = attachment.content_type
    response["X-Content-Type-Options"] = "nosniff"
    return response


@router.post("/unit-groups", response={201: GroupOut}, summary="Save a group of units to address again")
@area_aware
def post_group(request: HttpRequest, body: GroupIn):
    targets = Targets(tuple(body.targets.units), body.targets.level, body.targets.group)
    group = services.create_group(actor=caller(request), code=body.code, name=body.name, targets=targets)
    return Status(
        201,
        {"code": group.code, "name": group.name, "edition": group.edition_id, "units": group.units.count()},
    )


@router.get("/unit-groups", response=list[GroupOut], summary="Saved groups of units inside your area")
@area_aware
def list_groups(request: HttpRequest):
    groups = services.groups_within(caller(request).area())
    return [
        {"code": g.code, "name": g.name, "edition": g.edition_id, "units": g.n}
        for g in groups.annotate(n=Count("units")).order_by("name")
    ]
