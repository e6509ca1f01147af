"""The officials' pages: a unit's queue of citizens' reports (/phan-anh/xu-ly/) and one report, where
they take it, answer it in public, pass it on with a reason, or undo a wrong merge. The pages call
the same verbs as the API (services); a refused action comes back with what was typed and why."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.errors import not_found
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Event, Feedback, Status
from dieuhanh.feedback.services import FeedbackError
from dieuhanh.feedback.views import CappedPaginator, with_photos
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware

PAGE_SIZE = 50
# The page's filters (?loc=): what each shows, as queue() takes it. "Open" is the default: what is
# left to do, oldest answer deadline first.
FILTERS = {
    "mo": (_("Open reports"), {"status": "open"}),
    "qua-han": (_("Overdue"), {"overdue": True}),
    "bao-cap-tinh": (_("Raised to the province"), {"escalated": True}),
    "cho-nhan": (_("Waiting to be taken on"), {"status": Status.RECEIVED}),
    "da-tra-loi": (_("Answered"), {"status": Status.ANSWERED}),
    "da-gop": (_("Merged"), {"status": Status.MERGED}),
}
DONE = {
    "accept": _("Your unit has taken on report %(code)s."),
    "answer": _("Report %(code)s is answered; the answer is on the public page."),
    "progress": _("The progress update of report %(code)s is posted; citizens read it on the tracking page."),
    "forward": _("Report %(code)s is passed on to %(unit)s."),
    "unmerge": _("Report %(code)s is parted from the one it was merged into, to be handled on its own."),
}
FIELDS = {
    "text": _("Text of the answer"),
    "to": _("Receiving unit"),
    "reason": _("Reason"),
    "status": _("State"),
    "photos": _("Photos"),
}


def _handler(request: HttpRequest) -> User:
    user = caller(request)
    if not services.handling_area(user):
        raise PermissionDenied(
            _("Handling citizens' reports needs a leader, analyst, operator or administrator grant.")
        )
    return user


def _own_units(user: User) -> list[Unit]:
    """The units of the caller's handling grants, the unit picker's choices."""
    held = [g.unit for g in user.held() if g.role in services.HANDLER_ROLES]
    return sorted({u.pk: u for u in held}.values(), key=lambda u: (u.level, u.name))


@login_required
@area_aware
def queue_page(request: HttpRequest) -> HttpResponse:
    user = _handler(request)
    units = _own_units(user)
    # A caller whose area is not held through grants (a superuser) starts at the nation.
    ref = request.GET.get("unit", "")[:60] or (units[0].ref if units else f"{services.EDITION}:VN")
    shown = request.GET.get("loc", "mo") if request.GET.get("loc") in FILTERS else "mo"
    # A unit outside the area is refused by unit_in_area's own DomainError: the site's 404 page.
    unit = services.queue_unit(user, ref)
    items = services.queue(user, unit.ref, **FILTERS[shown][1])  # type: ignore[arg-type]
    # The paginator counts (up to the cap: a province holds tens of thousands); the page's rows come
    # by their ids (queue_page), never by slicing the rows.
    page = CappedPaginator(items, PAGE_SIZE).get_page(request.GET.get("trang"))
    rows = services.queue_page(items, PAGE_SIZE, (page.number - 1) * PAGE_SIZE)
    now = timezone.now()
    context = {
        "unit": unit,
        "units": units if unit in units else [unit, *units],
        "filters": [(key, label) for key, (label, _how) in FILTERS.items()],
        "shown": shown,
        "page": page,
        "rows": [
            {"item": i, "text": services.public_text(i.text), "overdue": services.is_overdue(i, now)}
            for i in rows
        ],
    }
    return render(request, "feedback/queue.html", context)


@login_required
@area_aware
def item_page(request: HttpRequest, code: str) -> HttpResponse:
    user = _handler(request)
    with not_found(FeedbackError, message=_("No report with this code in your area.")):
        item = services.item_for(user, code)
    error, status = "", 200
    if request.method == "POST":
        action, post, was = request.POST.get("action", ""), request.POST, item.unit
        try:
            done = _act(user, item, action, post, request.FILES.getlist("photos"))
        except FeedbackError as exc:
            labels = {**FIELDS, "text": _("Text of the update")} if action == "progress" else FIELDS
            error, status = exc.labelled(labels), exc.status
        else:
            messages.success(request, DONE[action] % {"code": done.code, "unit": done.unit.name})
            if action == "forward":  # passed on, often out of the caller's area: back to the queue
                return redirect(f"{reverse('feedback-queue')}?{urlencode({'unit': was.ref})}")
            return redirect("feedback-item", code=done.code)
    return _render_item(request, services.item_for(user, item.code), error=error, status=status)


def _act(user: User, item: Feedback, action: str, post, files: list) -> Feedback:
    if action == "accept":
        return services.accept(actor=user, item=item)
    if action in ("answer", "progress"):
        verb = services.answer if action == "answer" else services.post_progress
        return verb(actor=user, item=item, text=post.get("text", ""), photos=services.read_uploads(files))
    if action == "forward":
        return services.forward(actor=user, item=item, to=post.get("to", ""), reason=post.get("reason", ""))
    if action == "unmerge":
        return services.unmerge(actor=user, item=item, reason=post.get("reason", ""))
    raise FeedbackError("action", _("unknown action: choose one of the page's buttons"))


def _render_item(request: HttpRequest, item: Feedback, *, error: str, status: int) -> HttpResponse:
    now = timezone.now()
    context = {
        "item": item,
        "text": services.public_text(item.text),
        "overdue": services.is_overdue(item, now),
        "history": with_photos(
            list(Event.objects.filter(feedback=item).select_related("unit")), {item.pk: item.code}
        ),
        "photos": range(1, item.photos.count() + 1),
        "duplicates": list(item.duplicates.order_by("received_at").values_list("code", flat=True)[:50]),
        "open": item.status in services.OPEN,
        "max_photos": services.MAX_PHOTOS,
        "error": error,
        "posted": request.POST if error else {},
    }
    return render(request, "feedback/item.html", context, status=status)
