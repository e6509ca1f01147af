"""The public pages: file a report (/phan-anh/), follow it, and read the answers (/phan-anh/cong-khai/)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.lockout import client_address
from dieuhanh.errors import not_found
from dieuhanh.feedback import services, sessions
from dieuhanh.feedback.models import Event, PostPhoto
from dieuhanh.feedback.services import FeedbackError, Place
from dieuhanh.units.scoping import public

FIELD_LABELS = {
    "category": "Lĩnh vực",
    "text": "Nội dung",
    "address": "Địa chỉ",
    "lat": "Vị trí",
    "lon": "Vị trí",
    "phone": "Số điện thoại",
    "photos": "Ảnh",
    "confirmation": "Mã xác nhận",
    "topic": "Chủ đề",
}


def _number(raw: str) -> float | None:
    try:
        return float(raw.replace(",", ".")) if raw.strip() else None
    except ValueError:
        return None


@public
def form_page(request: HttpRequest) -> HttpResponse:
    values = request.POST if request.method == "POST" else {}
    error = field_label = None
    status = 200
    needs_code = False
    if request.method == "POST":
        try:
            photos = services.read_uploads(request.FILES.getlist("photos"))
            lat, lon = _number(values.get("lat", "")), _number(values.get("lon", ""))
            use_pin = values.get("where") == "pin"
            item = services.submit(
                category=values.get("category", ""),
                text=values.get("text", ""),
                place=Place(
                    lat if use_pin else None,
                    lon if use_pin else None,
                    "" if use_pin else values.get("address", ""),
                ),
                phone=values.get("phone", ""),
                photos=photos,
                client=client_address(request),
                confirmation=values.get("confirmation", ""),
            )
        except FeedbackError as exc:
            error = exc.message
            field_label = FIELD_LABELS.get((exc.field or "").split("[")[0])
            status = exc.status
            needs_code = exc.field == "confirmation" or bool(values.get("confirmation"))
        else:
            return redirect("feedback-track", code=item.code)
    context = {
        "categories": services.active_categories(),
        "values": values,
        "error": error,
        "error_field": field_label,
        "max_photos": services.MAX_PHOTOS,
        "needs_code": needs_code,
    }
    return render(request, "feedback/form.html", context, status=status)


@public
def track_page(request: HttpRequest, code: str, error: str | None = None) -> HttpResponse:
    try:
        item = services.track(code)
    except FeedbackError:
        return render(request, "feedback/track.html", {"code": code[:20], "item": None}, status=404)
    followed = item.merged_into or item
    history = list(Event.objects.filter(feedback=item).select_related("unit"))
    if followed != item:  # the merged item's own steps, after this report joined it
        joined = history[-1].at if history else item.received_at
        theirs = Event.objects.filter(feedback=followed, at__gte=joined).exclude(kind="joined")
        history += list(theirs.select_related("unit"))
    with_photos(history, {item.pk: item.code, followed.pk: followed.code})
    context = {
        "code": item.code,
        "item": item,
        "followed": followed,
        "history": history,
        "error": error,
        "stars": range(1, 6),
    }
    return render(request, "feedback/track.html", context, status=409 if error else 200)


RATING_RANGE = _("a rating is 1 to 5 stars")  # services.rate's own words, for a number that is none


@public
def rate_page(request: HttpRequest, code: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("feedback-track", code=code)
    try:
        services.rate(code=code, stars=int(request.POST.get("stars", "0") or 0))
    except (FeedbackError, ValueError) as exc:
        message = str(exc.message if isinstance(exc, FeedbackError) else RATING_RANGE)
        return track_page(request, code, error=message)
    return redirect("feedback-track", code=code)


@public
def track_lookup(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("ma", "").strip()
    return redirect("feedback-track", code=code) if code else redirect("feedback-form")


class CappedPaginator(Paginator):
    """Counts at most CAP + 1 rows (services.capped_count): an exact count of a million answers, or
    of a province's queue, costs more than the page. Past the cap, the page says "Hơn 10.000" and the
    last page is the cap's."""

    CAP = services.COUNT_CAP

    @cached_property
    def count(self) -> int:
        items: QuerySet = self.object_list  # type: ignore[assignment]
        shown, capped = services.capped_count(items)
        return shown + 1 if capped else shown

    @property
    def capped(self) -> bool:
        return self.count > self.CAP


PUBLIC_PAGE_SIZE = 20


@public
def public_page(request: HttpRequest) -> HttpResponse:
    query, category = request.GET.get("q", "")[:100], request.GET.get("linh-vuc", "")[:40]
    answered = services.answered(query, category)
    page = CappedPaginator(answered, PUBLIC_PAGE_SIZE).get_page(request.GET.get("trang"))
    # The page's own rows are read by answered_page, not object_list (as the officials' queue does).
    items = services.answered_page(answered, (page.number - 1) * PUBLIC_PAGE_SIZE, PUBLIC_PAGE_SIZE)
    history: dict[int, list[Event]] = {}
    events = list(Event.objects.filter(feedback__in=items).select_related("unit"))
    for event in with_photos(events, {i.pk: i.code for i in items}):
        history.setdefault(event.feedback_id, []).append(event)
    rows = [
        {"item": i, "text": services.public_text(i.text), "history": history.get(i.pk, [])} for i in items
    ]
    context = {
        "rows": rows,
        "page": page,
        "q": query,
        "category": category,
        "categories": services.active_categories(),
        "sessions": list(sessions.published()[:5]) if page.number == 1 else [],
        "open_sessions": list(sessions.open_sessions()[:5]) if page.number == 1 else [],
    }
    return render(request, "feedback/public.html", context)


def with_photos(events: list[Event], codes: dict[int, str]) -> list[Event]:
    """Each event with `photo_urls`: the public addresses of the photos posted with it (an answer or
    a progress update), read in one query for all of them."""
    posted = [e for e in events if e.kind in ("answered", "progress")]
    feedback_of = {e.pk: e.feedback_id for e in posted}
    urls: dict[int, list[str]] = {}
    for photo in PostPhoto.objects.filter(event__in=posted).only("id", "event_id"):
        code = codes[feedback_of[photo.event_id]]
        urls.setdefault(photo.event_id, []).append(reverse("feedback-photo", args=[code, photo.pk]))
    for e in events:
        e.photo_urls = urls.get(e.pk, [])  # type: ignore[attr-defined]
    return events


@public
def photo_page(request: HttpRequest, code: str, photo_id: int) -> FileResponse:
    """A photo an official posted with an answer or a progress update: public, stored without its
    metadata; found only under its item's code."""
    with not_found(FeedbackError, message=_("No such photo.")):
        photo = services.post_photo(code, photo_id)
    response = FileResponse(photo.file.open("rb"), content_type=photo.content_type)
    response["Cache-Control"] = "public, max-age=86400"  # a posted photo never changes
    return response


@public
def session_page(request: HttpRequest, session_id: int) -> HttpResponse:
    """A session: while open, citizens send questions here; once published, the answers by topic."""
    try:
        session = sessions.public_or_open(session_id)
    except FeedbackError:
        return render(request, "feedback/session.html", {"session": None}, status=404)
    error = sent = None
    status = 200
    values = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        try:
            sessions.ask(
                session_id=session.pk,
                topic=values.get("topic", ""),
                text=values.get("text", ""),
                client=client_address(request),
            )
        except FeedbackError as exc:
            error, status = exc.labelled(FIELD_LABELS), exc.status
        else:
            sent, values = True, {}
    groups = sessions.by_topic(session, answered_only=True) if session.status == "published" else []
    context = {"session": session, "groups": groups, "error": error, "sent": sent, "values": values}
    return render(request, "feedback/session.html", context, status=status)
