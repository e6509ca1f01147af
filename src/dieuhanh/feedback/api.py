"""Feedback's API: a citizen's intake and tracking (no login), a unit's queue and its verbs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime

from django.http import FileResponse, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.lockout import client_address
from dieuhanh.directives.api import PriorityCode
from dieuhanh.feedback import services, sessions
from dieuhanh.feedback.models import Event, Feedback
from dieuhanh.feedback.services import FeedbackError, Place
from dieuhanh.units.scoping import area_aware, public
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import Moment

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
    confirmation: str = Field("", max_length=12, description="the code sent by SMS to a repeated sender")


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
    photos: list[str] = Field(
        default_factory=list,
        description="the addresses of the photos posted with an answer or a progress update (public)",
    )


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
    merged_into: str | None = Field(
        None, description="the item this report was merged into: status, answer and history are that item's"
    )
    reporters: int = Field(1, description="citizens who reported it (the item and its merged duplicates)")
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
    reporters: int
    merged_into: str | None
    escalated_at: datetime | None
    directive: int | None
    task: int | None


class QueueOut(Schema):
    unit: str
    count: int = Field(
        ..., description=f"how many items, counted up to {services.COUNT_CAP:,} (see count_capped)"
    )
    count_capped: bool = Field(
        ..., description=f"there are more than {services.COUNT_CAP:,}: count stops there"
    )
    items: list[QueueItem]


class RatingIn(Schema):
    stars: int = Field(..., ge=1, le=5)


class AnswerIn(Schema):
    text: str


class ForwardIn(Schema):
    to: str = Field(..., description="the unit it belongs to, EDITION:CODE")
    reason: str


class MergeIn(Schema):
    into: str = Field(..., description="the code of the open item of the same category it duplicates")


class UnmergeIn(Schema):
    reason: str = Field(..., description="why the two reports are not the same (at least 10 characters)")


class DirectiveFromIn(Schema):
    codes: list[str] = Field(..., description="the reports (1 to 100) the directive comes from")
    title: str
    body: str = ""
    targets: list[str] = Field(default_factory=list, description="EDITION:CODE; default: the handling units")
    deadline: Moment | None = None
    priority: PriorityCode = "normal"


class TaskFromIn(Schema):
    codes: list[str]
    title: str
    owner: str = Field("", description="EDITION:CODE; default: the unit handling the first report")
    due: date | None = None


class WorkOut(Schema):
    kind: str
    id: int
    codes: list[str]


class AgencyIn(Schema):
    province: str = Field(..., description="EDITION:CODE of a province on the 2025 map")
    code: str = Field(..., description="the department's short code, e.g. SATTP")
    name: str


class AgencyOut(Schema):
    unit: str
    name: str


class SessionIn(Schema):
    unit: str = Field(..., description="EDITION:CODE of the unit holding the session")
    title: str
    date: date
    topics: list[str] = Field(default_factory=list)


class QuestionIn(Schema):
    topic: str = ""
    text: str


class QuestionAnswerIn(Schema):
    text: str
    answerer_title: str = ""
    topic: str = ""


class QuestionOut(Schema):
    id: int
    topic: str
    text: str
    asked_at: datetime
    answer: str
    answerer_title: str
    answered_at: datetime | None


class TopicOut(Schema):
    topic: str
    questions: list[QuestionOut]


class SessionOut(Schema):
    id: int
    unit: str
    unit_name: str
    title: str
    date: date
    status: str
    topics: list[str]
    published_at: datetime | None
    groups: list[TopicOut]


class AskedOut(Schema):
    id: int
    session: int
    topic: str


_CONFLICT = {
    "responses": {409: {"description": "the report's state does not allow it (e.g. already answered)"}}
}


def _events(item: Feedback, public_only: bool) -> list[dict]:
    rows = Event.objects.filter(feedback=item).select_related("unit").prefetch_related("photos")
    return [
        {
            "kind": e.kind,
            "label": e.get_kind_display(),
            "at": e.at,
            "unit": e.unit.ref,
            "unit_name": e.unit.name,
            # A forwarding reason is the officials' words about the case: the answer and the progress
            # updates alone are public.
            "note": e.note if e.kind in PUBLIC_NOTES or not public_only else "",
            "photos": [reverse("feedback-photo", args=[item.code, p.pk]) for p in e.photos.all()],
        }
        for e in rows
    ]


PUBLIC_NOTES = ("answered", "progress")


def track_out(item: Feedback) -> dict:
    """What the citizen sees; a merged duplicate shows the item it follows (status, answer, history)."""
    followed = item.merged_into if item.merged_into_id and item.merged_into else item
    history = _events(item, public_only=True)
    if followed is not item:
        joined = history[-1]["at"] if history else item.received_at
        history += [
            e for e in _events(followed, public_only=True) if e["at"] >= joined and e["kind"] != "joined"
        ]
    return {
        "code": item.code,
        "category": item.category_id,
        "category_name": item.category.name,
        "place": item.place_unit.name,
        "status": followed.status,
        "status_name": followed.get_status_display(),
        "received_at": item.received_at,
        "answer_due": followed.answer_due,
        "answer": followed.answer,
        "rating": item.rating,
        "merged_into": followed.code if followed is not item else None,
        "reporters": followed.reporters,
        "history": history,
    }


def _on_item(request: HttpRequest, code: str, verb: Callable[..., Feedback], **given: str) -> dict:
    """An official's verb on one report of their area (404 outside it, as for a missing one), answered
    with what the citizen sees of the report afterwards."""
    user = caller(request)
    return track_out(verb(actor=user, item=services.item_for(user, code), **given))


def _session_out(session, groups: list[dict]) -> dict:
    return {
        "id": session.pk,
        "unit": session.unit.ref,
        "unit_name": session.unit.name,
        "title": session.title,
        "date": session.date,
        "status": session.status,
        "topics": session.topics,
        "published_at": session.published_at,
        "groups": groups,
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


@router.get(
    "/feedback/sessions",
    response=list[SessionOut],
    summary="Question-and-answer sessions (Dân hỏi – Chính quyền trả lời) of units in your area",
)
@area_aware
def get_sessions(request: HttpRequest, unit: str | None = Query(None, description="EDITION:CODE")):
    return [_session_out(s, []) for s in sessions.sessions_for(caller(request), unit)[:200]]


@router.post("/feedback/sessions", response={201: SessionOut}, summary="Open a session for a date")
@area_aware
def post_session(request: HttpRequest, body: SessionIn):
    session = sessions.open_session(
        actor=caller(request), unit=body.unit, title=body.title, day=body.date, topics=body.topics
    )
    return Status(201, _session_out(session, []))


@router.get(
    "/feedback/sessions/{session_id}",
    response=SessionOut,
    summary="A session with every question by topic (officials of its unit's area)",
)
@area_aware
def get_session(request: HttpRequest, session_id: int):
    session = sessions.session_for(caller(request), session_id)
    return _session_out(session, sessions.by_topic(session, answered_only=False))


@router.get(
    "/feedback/sessions/{session_id}/public",
    response=SessionOut,
    auth=None,
    summary="A published session: its answered questions by topic (no login)",
)
@public
def get_public_session(request: HttpRequest, session_id: int):
    session = sessions.public_session(session_id)
    return _session_out(session, sessions.by_topic(session, answered_only=True))


@router.post(
    "/feedback/sessions/{session_id}/questions",
    response={201: AskedOut},
    auth=None,
    summary="A citizen asks a question in an open session (no login)",
    openapi_extra={"responses": {409: {"description": "the session takes no more questions"}}},
)
@public
def post_question(request: HttpRequest, session_id: int, body: QuestionIn):
    question = sessions.ask(
        session_id=session_id, topic=body.topic, text=body.text, client=client_address(request)
    )
    return Status(201, {"id": question.pk, "session": session_id, "topic": question.topic})


@router.post(
    "/feedback/sessions/{session_id}/questions/{question_id}/answer",
    response=QuestionOut,
    summary="Answer a question (and regroup it under another topic)",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_question_answer(request: HttpRequest, session_id: int, question_id: int, body: QuestionAnswerIn):
    q = sessions.answer_question(
        actor=caller(request),
        session_id=session_id,
        question_id=question_id,
        text=body.text,
        answerer_title=body.answerer_title,
        topic=body.topic,
    )
    return {
        "id": q.pk,
        "topic": q.topic,
        "text": q.text,
        "asked_at": q.asked_at,
        "answer": q.answer,
        "answerer_title": q.answerer_title,
        "answered_at": q.answered_at,
    }


@router.post(
    "/feedback/sessions/{session_id}/close",
    response=SessionOut,
    summary="Stop taking questions",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_session_close(request: HttpRequest, session_id: int):
    return _session_out(sessions.close(actor=caller(request), session_id=session_id), [])


@router.post(
    "/feedback/sessions/{session_id}/publish",
    response=SessionOut,
    summary="Publish the session's answered questions on the public page",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_session_publish(request: HttpRequest, session_id: int):
    session = sessions.publish_session(actor=caller(request), session_id=session_id)
    return _session_out(session, sessions.by_topic(session, answered_only=True))


@router.post(
    "/feedback/to-directive",
    response={201: WorkOut},
    summary="Reports become a directive (the directives' own verb and rules), linked both ways",
)
@area_aware
def post_to_directive(request: HttpRequest, body: DirectiveFromIn):
    directive = services.to_directive(
        actor=caller(request),
        codes=body.codes,
        title=body.title,
        body=body.body,
        targets=body.targets,
        deadline=body.deadline,
        priority=body.priority,
    )
    return Status(201, {"kind": "directive", "id": directive.pk, "codes": directive.targets["feedback"]})


@router.post(
    "/feedback/to-task",
    response={201: WorkOut},
    summary="Reports become a task (the tasks' own verb and rules), linked both ways",
)
@area_aware
def post_to_task(request: HttpRequest, body: TaskFromIn):
    task = services.to_task(
        actor=caller(request), codes=body.codes, title=body.title, owner=body.owner, due=body.due
    )
    codes = list(Feedback.objects.filter(task=task).exclude(status="merged").values_list("code", flat=True))
    return Status(201, {"kind": "task", "id": task.pk, "codes": codes})


@router.get(
    "/feedback/linked",
    response=list[QueueItem],
    summary="The reports a directive or a task came from (in your area)",
)
@area_aware
def get_linked(request: HttpRequest, directive: int | None = None, task: int | None = None):
    now = timezone.now()
    items = services.linked(caller(request), directive=directive, task=task)
    return [_queue_item(i, now) for i in items[:500]]


@router.post(
    "/feedback/agencies",
    response={201: AgencyOut},
    summary="A provincial department as an agency unit that categories may route to (admin)",
)
@area_aware
def post_agency(request: HttpRequest, body: AgencyIn):
    user = caller(request)
    unit_in_area(body.province, user.area(), field="province", may_act=user.area(role="admin"))
    unit = services.add_agency(actor=user, province=body.province, code=body.code, name=body.name)
    return Status(201, {"unit": unit.ref, "name": unit.name})


@router.post(
    "/feedback",
    response={201: SubmittedOut},
    auth=None,
    summary="File a report or question (no login; multipart with up to 3 photos)",
    openapi_extra={
        "responses": {
            413: {"description": "a photo is too large (field photos[i])"},
            415: {"description": "a photo is not a JPEG or PNG, or cannot be read (field photos[i])"},
            428: {"description": "a repeated sender: a phone number, then the code sent to it by SMS"},
            429: {"description": "too many reports from this client or phone; see Retry-After"},
            503: {"description": "the confirmation code could not be sent; see Retry-After"},
        }
    },
)
@public
def post_feedback(
    request: HttpRequest,
    body: Form[FeedbackIn],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    uploads = services.read_uploads(photos or [])  # stored without their metadata (services._photos)
    item = services.submit(
        category=body.category,
        text=body.text,
        place=Place(body.lat, body.lon, body.address),
        phone=body.phone,
        photos=uploads,
        client=client_address(request),
        confirmation=body.confirmation,
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
    status: str | None = Query(None, pattern="^(received|accepted|progress|answered|merged)$"),
    escalated: bool = Query(False, description="only the items escalated to the province"),
    limit: int = Query(100, ge=1, le=500),
):
    items = services.queue(caller(request), unit, overdue=overdue, status=status, escalated=escalated)
    count, capped = services.capped_count(items)
    rows = services.queue_rows(items, limit, timezone.now())
    return {"unit": unit, "count": count, "count_capped": capped, "items": rows}


def _queue_item(item: Feedback, now: datetime) -> dict:
    return {
        "code": item.code,
        "category": item.category_id,
        # Digit runs (phone and ID numbers the citizen wrote) masked here too: the API never shows them.
        "text": services.public_text(item.text),
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
        "reporters": item.reporters,
        "merged_into": item.merged_into.code if item.merged_into_id and item.merged_into else None,
        "escalated_at": item.escalated_at,
        "directive": item.directive_id,
        "task": item.task_id,
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
    return _on_item(request, code, services.accept)


_PHOTO_REFUSALS = {
    413: {"description": "a photo is too large (field photos[i])"},
    415: {"description": "a photo is not a JPEG or PNG, or cannot be read (field photos[i])"},
}
_POST_FORM = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "up to 3 JPEG or PNG photos, 5 MB each; public, stored without their metadata",
        },
    },
    "required": ["text"],
}


@router.post(
    "/feedback/{code}/answer",
    response=TrackOut,
    summary="Answer in public: JSON {text}, or multipart with text and up to 3 photos",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"text": {"type": "string"}},
                        "required": ["text"],
                    }
                },
                "multipart/form-data": {"schema": _POST_FORM},
            },
        },
        "responses": {**_CONFLICT["responses"], **_PHOTO_REFUSALS},
    },
)
@area_aware
def post_answer(request: HttpRequest, code: str):
    user = caller(request)
    item = services.item_for(user, code)
    # One verb, two encodings: JSON as before, or a form when photos come with the answer.
    if request.content_type == "multipart/form-data":
        text, uploads = request.POST.get("text", ""), services.read_uploads(request.FILES.getlist("photos"))
    else:
        try:
            body = AnswerIn.model_validate(json.loads(request.body or b"{}"))
        except ValueError:
            raise FeedbackError("text", _('send JSON {"text": …} or a multipart form')) from None
        text, uploads = body.text, []
    return track_out(services.answer(actor=user, item=item, text=text, photos=uploads))


@router.post(
    "/feedback/{code}/progress",
    response=TrackOut,
    summary="Post progress in public, with up to 3 photos (multipart); with a photo it meets the "
    "first-answer deadline (HCMC 1022)",
    openapi_extra={"responses": {**_CONFLICT["responses"], **_PHOTO_REFUSALS}},
)
@area_aware
def post_progress(
    request: HttpRequest,
    code: str,
    body: Form[AnswerIn],
    photos: File[list[UploadedFile]] = None,  # type: ignore[assignment]
):
    user = caller(request)
    item = services.item_for(user, code)
    uploads = services.read_uploads(photos or [])
    return track_out(services.post_progress(actor=user, item=item, text=body.text, photos=uploads))


@router.post(
    "/feedback/{code}/merge",
    response=TrackOut,
    summary="Merge a duplicate into the open item of the same category it repeats",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_merge(request: HttpRequest, code: str, body: MergeIn):
    return _on_item(request, code, services.merge, into=body.into)


@router.post(
    "/feedback/{code}/unmerge",
    response=TrackOut,
    summary="Undo a merge: the duplicate becomes a report of its own again",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_unmerge(request: HttpRequest, code: str, body: UnmergeIn):
    return _on_item(request, code, services.unmerge, reason=body.reason)


@router.post(
    "/feedback/{code}/forward",
    response=TrackOut,
    summary="Pass it to the unit it belongs to",
    openapi_extra=_CONFLICT,
)
@area_aware
def post_forward(request: HttpRequest, code: str, body: ForwardIn):
    return _on_item(request, code, services.forward, to=body.to, reason=body.reason)
