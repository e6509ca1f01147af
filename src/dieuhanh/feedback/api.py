"""Feedback's API: a citizen's intake and tracking (no login), a unit's queue and its verbs."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.http import FileResponse, HttpRequest
from django.utils import timezone
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.lockout import client_address
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Event, Feedback
from dieuhanh.feedback.services import FeedbackError, Place, Upload
from dieuhanh.units.scoping import area_aware, public

router = Router(tags=["feedback"])


class CategoryOut(Schema):
    code: str
    name: str
    handler: str
    forward_minutes: int
    answer_days: int


class FeedbackIn(Schema):
    category: str = Field(..., description="a code from GET /api/v1/feedback/categories")
    text: str
    lat: float | None = Field(None, description="a map pin: latitude (with lon; or give an address)")
    lon: float | None = None
    address: str = Field("", max_length=300, description="the place in the old (pre-2025) or new form")
    phone: str = Field("", max_length=30, description="optional; kept only in the identity vault")


class SubmittedOut(Schema):
    code: str
    status: str
    unit: str
    unit_name: str
    answer_due: datetime


class EventOut(Schema):
    kind: str
    label: str
    at: datetime
    unit: str
    unit_name: str
    note: str


class TrackOut(Schema):
    code: str
    category: str
    category_name: str
    place: str = Field(..., description="the commune (never the address or the pin)")
    status: str
    status_name: str
    received_at: datetime
    answer_due: datetime
    answer: str
    rating: int | None = Field(None, description="the citizen's 1-5 on the answer")
    history: list[EventOut]


class QueueItem(Schema):
    code: str
    category: str
    text: str
    unit: str
    unit_name: str
    place: str
    address: str
    lat: float | None
    lon: float | None
    photos: int
    status: str
    received_at: datetime
    forward_due: datetime
    answer_due: datetime
    overdue: bool


class QueueOut(Schema):
    unit: str
    count: int
    items: list[QueueItem]


class RatingIn(Schema):
    stars: int = Field(..., ge=1, le=5)


class AnswerIn(Schema):
    text: str


class ForwardIn(Schema):
    to: str = Field(..., description="the unit it belongs to, EDITION:CODE")
    reason: str


_CONFLICT = {
    "responses": {409: {"description": "the report's state does not allow it (e.g. already answered)"}}
}


def _events(item: Feedback, public_only: bool) -> list[dict]:
    rows = Event.objects.filter(feedback=item).select_related("unit")
    return [
        {
            "kind": e.kind,
            "label": e.get_kind_display(),
            "at": e.at,
            "unit": e.unit.ref,
            "unit_name": e.unit.name,
            # A forwarding reason is the officials' words about the case: the answer alone is public.
            "note": e.note if e.kind == "answered" or not public_only else "",
        }
        for e in rows
    ]


def track_out(item: Feedback) -> dict:
    return {
        "code": item.code,
        "category": item.category_id,
        "category_name": item.category.name,
        "place": item.place_unit.name,
        "status": item.status,
        "status_name": item.get_status_display(),
        "received_at": item.received_at,
        "answer_due": item.answer_due,
        "answer": item.answer,
        "rating": item.rating,
        "history": _events(item, public_only=True),
    }


@router.get("/feedback/categories", response=list[CategoryOut], auth=None, summary="Categories of reports")
@public
def get_categories(request: HttpRequest):
    return [
        {
            "code": c.code,
            "name": c.name,
            "handler": c.handler,
            "forward_minutes": c.forward_minutes,
            "answer_days": c.answer_days,
        }
        for c in services.active_categories()
    ]


@router.post(
    "/feedback",
    response={201: SubmittedOut},
    auth=None,
    summary="File a report or question (no login; multipart with up to 3 photos)",
    openapi_extra={
        "responses": {
            413: {"description": "a photo is too large"},
            415: {"description": "a photo is not a JPEG or PNG"},
            429: {"description": "too many reports from this client or phone; see Retry-After"},
        }
    },
)
@public
def post_feedback(
    request: HttpRequest,
    body: Form[FeedbackIn],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    uploads = []
    for i, f in enumerate(photos or []):
        if (f.size or 0) > services.MAX_PHOTO_BYTES:  # before reading it into memory
            raise FeedbackError(
                f"photos[{i}]", f"ảnh quá lớn: tối đa {services.MAX_PHOTO_BYTES // 2**20} MB", status=413
            )
        uploads.append(Upload(f.name or "", f.read(services.MAX_PHOTO_BYTES + 1)))
    item = services.submit(
        category=body.category,
        text=body.text,
        place=Place(body.lat, body.lon, body.address),
        phone=body.phone,
        photos=uploads,
        client=client_address(request),
    )
    return Status(
        201,
        {
            "code": item.code,
            "status": item.status,
            "unit": item.unit.ref,
            "unit_name": item.unit.name,
            "answer_due": item.answer_due,
        },
    )


@router.get("/feedback/track/{code}", response=TrackOut, auth=None, summary="Follow a report by its code")
@public
def get_track(request: HttpRequest, code: str):
    return track_out(services.track(code))


@router.post(
    "/feedback/track/{code}/rating",
    response=TrackOut,
    auth=None,
    summary="The citizen rates the answer (1 to 5, once)",
    openapi_extra={"responses": {409: {"description": "not answered yet, or already rated"}}},
)
@public
def post_rating(request: HttpRequest, code: str, body: RatingIn):
    return track_out(services.rate(code=code, stars=body.stars))


@router.get("/feedback", response=QueueOut, summary="A unit's queue: its reports and those below it")
@area_aware
def get_queue(
    request: HttpRequest,
    unit: str = Query(..., description="EDITION:CODE"),
    overdue: bool = False,
    status: str | None = Query(None, pattern="^(received|accepted|answered)$"),
    limit: int = Query(100, ge=1, le=500),
):
    items = services.queue(caller(request), unit, overdue=overdue, status=status)
    now = timezone.now()
    page = items.annotate(photo_count=Count("photos"))[:limit]
    return {"unit": unit, "count": items.count(), "items": [_queue_item(i, now) for i in page]}


def _queue_item(item: Feedback, now: datetime) -> dict:
    return {
        "code": item.code,
        "category": item.category_id,
        "text": item.text,
        "unit": item.unit.ref,
        "unit_name": item.unit.name,
        "place": item.place_unit.name,
        "address": item.address,
        "lat": item.lat,
        "lon": item.lon,
        "photos": item.photo_count if hasattr(item, "photo_count") else item.photos.count(),
        "status": item.status,
        "received_at": item.received_at,
        "forward_due": item.forward_due,
        "answer_due": item.answer_due,
        "overdue": services.is_overdue(item, now),
    }


@router.get("/feedback/{code}", response=QueueItem, summary="One report in your area")
@area_aware
def get_item(request: HttpRequest, code: str):
    item = services.item_for(caller(request), code)
    return _queue_item(item, timezone.now())


@router.get(
    "/feedback/{code}/photos/{number}",
    summary="A photo of a report in your area (1 to 3, in the order sent)",
    openapi_extra={"responses": {200: {"content": {"image/jpeg": {}, "image/png": {}}}}},
)
@area_aware
def get_photo(request: HttpRequest, code: str, number: int) -> FileResponse:
    photo = services.photo_of(services.item_for(caller(request), code), number)
    response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
    # Photos may show faces and house numbers: never kept by shared caches.
    response["Cache-Control"] = "private, no-store"
    return response


@router.post(
    "/feedback/{code}/accept",
    response=TrackOut,
    summary="Take the report as your unit's",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_accept(request: HttpRequest, code: str):
    user = caller(request)
    return track_out(services.accept(actor=user, item=services.item_for(user, code)))


@router.post(
    "/feedback/{code}/answer", response=TrackOut, summary="Answer in public", openapi_extra=_CONFLICT
)
@area_aware
def post_answer(request: HttpRequest, code: str, body: AnswerIn):
    user = caller(request)
    return track_out(services.answer(actor=user, item=services.item_for(user, code), text=body.text))


@router.post(
    "/feedback/{code}/forward",
    response=TrackOut,
    summary="Pass it to the unit it belongs to",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_forward(request: HttpRequest, code: str, body: ForwardIn):
    user = caller(request)
    return track_out(
        services.forward(actor=user, item=services.item_for(user, code), to=body.to, reason=body.reason)
    )
