"""The public pages: file a report (/phan-anh/), follow it, and read the answers (/phan-anh/cong-khai/)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dieuhanh.accounts.lockout import client_address
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Event
from dieuhanh.feedback.services import FeedbackError, Place, Upload
from dieuhanh.units.scoping import public

FIELD_LABELS = {
    "category": "Lĩnh vực",
    "text": "Nội dung",
    "address": "Địa chỉ",
    "lat": "Vị trí",
    "lon": "Vị trí",
    "phone": "Số điện thoại",
    "photos": "Ảnh",
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
    if request.method == "POST":
        files = request.FILES.getlist("photos")
        try:
            for i, f in enumerate(files):
                if (f.size or 0) > services.MAX_PHOTO_BYTES:
                    raise FeedbackError(f"photos[{i}]", "ảnh quá lớn: tối đa 5 MB", status=413)
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
                photos=[Upload(f.name or "", f.read(services.MAX_PHOTO_BYTES + 1)) for f in files],
                client=client_address(request),
            )
        except FeedbackError as exc:
            error = exc.message
            field_label = FIELD_LABELS.get((exc.field or "").split("[")[0])
            status = exc.status
        else:
            return redirect("feedback-track", code=item.code)
    context = {
        "categories": services.active_categories(),
        "values": values,
        "error": error,
        "error_field": field_label,
        "max_photos": services.MAX_PHOTOS,
    }
    return render(request, "feedback/form.html", context, status=status)


@public
def track_page(request: HttpRequest, code: str, error: str | None = None) -> HttpResponse:
    try:
        item = services.track(code)
    except FeedbackError:
        return render(request, "feedback/track.html", {"code": code[:20], "item": None}, status=404)
    history = Event.objects.filter(feedback=item).select_related("unit")
    context = {"code": item.code, "item": item, "history": history, "error": error, "stars": range(1, 6)}
    return render(request, "feedback/track.html", context, status=409 if error else 200)


@public
def rate_page(request: HttpRequest, code: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("feedback-track", code=code)
    try:
        services.rate(code=code, stars=int(request.POST.get("stars", "0") or 0))
    except (FeedbackError, ValueError) as exc:
        message = exc.message if isinstance(exc, FeedbackError) else "đánh giá từ 1 đến 5 sao"
        return track_page(request, code, error=message)
    return redirect("feedback-track", code=code)


@public
def track_lookup(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("ma", "").strip()
    return redirect("feedback-track", code=code) if code else redirect("feedback-form")


@public
def public_page(request: HttpRequest) -> HttpResponse:
    query, category = request.GET.get("q", "")[:100], request.GET.get("linh-vuc", "")[:40]
    page = Paginator(services.answered(query, category), 20).get_page(request.GET.get("trang"))
    items = list(page.object_list)
    history: dict[int, list[Event]] = {}
    for event in Event.objects.filter(feedback__in=items).select_related("unit"):
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
    }
    return render(request, "feedback/public.html", context)
