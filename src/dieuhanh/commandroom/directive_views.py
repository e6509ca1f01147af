"""The inbox of a unit (mobile-first: commune officials read it on a phone) and a directive's status
page for the room. Pages call the directives' service verbs; they never save models themselves."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from markdown_it import MarkdownIt

from dieuhanh.accounts.guards import caller
from dieuhanh.commandroom.date_views import END_OF_DAY, FieldError, moment_field
from dieuhanh.directives import services
from dieuhanh.directives.contact_lists import send_contact_lists
from dieuhanh.directives.models import Priority
from dieuhanh.directives.services import DirectiveError
from dieuhanh.errors import DomainError, not_found
from dieuhanh.tracing import services as tracing_services
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area, area_aware
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import input_datetime, number

# Raw HTML in a directive's Markdown is shown as text, never run: "html": False escapes it.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    return mark_safe(_markdown.render(text))  # noqa: S308  (escaped by markdown-it: html disabled)


@login_required
@area_aware
def inbox_page(request: HttpRequest) -> HttpResponse:
    user = caller(request)
    items = list(services.inbox(user).select_related("directive__issuer_unit")[:100])
    own = set(services.own_units(user))
    unread = sum(1 for d in items if d.state == "sent" and d.unit_id in own)
    now = timezone.now()
    overdue = set(services.inbox(user).filter(services.overdue_q(now)).values_list("id", flat=True))
    return render(
        request, "commandroom/inbox.html", {"items": items, "unread": unread, "overdue": overdue, "own": own}
    )


def _delivery(request: HttpRequest, delivery_id: int):
    with not_found(DomainError):
        return services.delivery_for(caller(request), delivery_id)


@login_required
@area_aware
def delivery_page(request: HttpRequest, delivery_id: int) -> HttpResponse:
    user = caller(request)
    delivery = services.read_delivery(actor=user, delivery=_delivery(request, delivery_id))
    return _render_delivery(request, delivery)


def _render_delivery(
    request: HttpRequest, delivery, *, posted=None, error: str = "", status: int = 200
) -> HttpResponse:
    """The delivery's page; after a refused response, with what was typed and why it was refused."""
    user = caller(request)
    directive = delivery.directive
    latest = delivery.responses.order_by("-version").first()
    questions = []
    for q in directive.form:
        if posted is not None:
            value = posted.get(f"q_{q['key']}", "")
        elif latest and q.get("type") == "number" and q["key"] in latest.figures:
            value = number(latest.figures[q["key"]], (get_language() or "vi")[:2])
        else:
            value = ""
        questions.append({**q, "value": value})
    return render(
        request,
        "commandroom/delivery.html",
        {
            "d": delivery,
            "directive": directive,
            "body": render_markdown(directive.body),
            "revisions": directive.revisions.select_related("by").order_by("version"),
            "responses": delivery.responses.select_related("by").order_by("-version"),
            "latest": latest,
            "can_act": delivery.unit_id in services.own_units(user) and directive.cancelled_at is None,
            "has_form": bool(directive.form) or directive.kind == "report_request",
            "labels": {q["key"]: q["label"] for q in directive.form},
            "questions": questions,
            "text": posted.get("text", "") if posted is not None else "",
            "error": error,
        },
        status=status,
    )


@login_required
@area_aware
@require_POST
def acknowledge(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        services.acknowledge_delivery(actor=caller(request), delivery=_delivery(request, delivery_id))
        messages.success(request, _("Acknowledged."))
    except DomainError as e:
        messages.error(request, str(e))
    return redirect("delivery", delivery_id=delivery_id)


@login_required
@area_aware
@require_POST
def respond(request: HttpRequest, delivery_id: int) -> HttpResponse:
    """A response; a refused one comes back on the page with what was typed and the reason, so that
    nothing typed on a phone is lost."""
    delivery = _delivery(request, delivery_id)
    figures, text_answers = {}, []
    try:
        for question in delivery.directive.form:
            value = request.POST.get(f"q_{question['key']}", "").strip()
            if not value:
                continue
            if question.get("type") == "number":
                figures[question["key"]] = _number(value, question["label"])
            elif question.get("type") == "datetime":
                moment = moment_field(question["label"], value)
                text_answers.append(f"{question['label']}: {input_datetime(moment)}")
            else:
                text_answers.append(f"{question['label']}: {value}")
        text = "\n".join([request.POST.get("text", "").strip(), *text_answers]).strip()
        services.respond_delivery(actor=caller(request), delivery=delivery, text=text, figures=figures)
    except (DomainError, FieldError) as e:
        return _render_delivery(request, delivery, posted=request.POST, error=str(e), status=422)
    messages.success(request, _("Your response was sent."))
    return redirect("delivery", delivery_id=delivery_id)


def _number(value: str, label: str) -> float:
    """A number as Vietnamese officials type it: '1.200' or '1200', '3,5' for a decimal."""
    try:
        return float(value.replace(".", "").replace(",", "."))
    except ValueError:
        raise DirectiveError(
            None, _("%(label)s: not a number (%(value)s)") % {"label": label, "value": value}
        ) from None


def _visible_directive(user, directive_id: int):
    directive = services.visible_directives(user).filter(pk=directive_id).first()
    if directive is None:
        raise Http404(_("No such directive in your area."))
    return directive


@login_required
@area_aware
def directive_page(request: HttpRequest, directive_id: int) -> HttpResponse:
    user = caller(request)
    directive = _visible_directive(user, directive_id)
    area = user.area()
    return render(
        request,
        "commandroom/directive.html",
        {
            "directive": directive,
            "body": render_markdown(directive.body),
            "status": services.status(directive, area),
            "pending": services.pending(directive, area).order_by("unit__path")[:200],
        },
    )


@login_required
@area_aware
@require_POST
def send_lists(request: HttpRequest, pk: int) -> HttpResponse:
    """The tracing workspace's "send to communes" button."""
    user = caller(request)
    with not_found(tracing_services.TracingError, PermissionError):
        case = tracing_services.own_case(user, pk)
        report = send_contact_lists(actor=user, case=case, depth=2)
    messages.success(
        request,
        _("Sent to %(sent)d communes; %(already)d had it already; %(outside)d outside your area.")
        % {"sent": len(report.sent), "already": len(report.already), "outside": len(report.outside)},
    )
    return redirect(f"/tracing/cases/{pk}/?depth=2")


@login_required
@area_aware
def compose(request: HttpRequest) -> HttpResponse:
    """Write a directive, choose its targets (with a live count), preview, issue."""
    user = caller(request)
    if not services.issuing_area(user):
        raise PermissionDenied(_("Issuing needs a leader or analyst grant."))
    form = request.POST if request.method == "POST" else {}
    groups = services.groups_within(services.issuing_area(user)).order_by("name")
    context: dict = {"form": form, "groups": groups, "error": "", "preview": None}
    if request.method == "POST":
        try:
            data = _directive_input(request.POST)
            if "issue" in request.POST:
                directive = services.issue_directive(actor=user, data=data)
                messages.success(request, _("Issued to %(n)d units.") % {"n": directive.deliveries.count()})
                return redirect("directive", directive_id=directive.pk)
            units = services.resolve_targets(data.targets, services.issuing_area(user))
            context["preview"] = {"data": data, "body": render_markdown(data.body), "count": len(units)}
        except DomainError as e:
            context["error"] = str(e)
    return render(request, "commandroom/compose.html", context)


def _directive_input(post) -> services.DirectiveInput:
    refs = tuple(r.strip() for r in post.get("units", "").replace("\n", ",").split(",") if r.strip())
    deadline = post.get("deadline", "").strip()
    form = []
    if post.get("question", "").strip():
        form = [{"key": "q1", "label": post["question"].strip(), "type": post.get("question_type", "text")}]
    return services.DirectiveInput(
        title=post.get("title", ""),
        body=post.get("body", ""),
        number=post.get("number", "").strip(),
        priority=post.get("priority", Priority.NORMAL),
        kind=post.get("kind", "directive"),
        requires_ack=post.get("requires_ack") == "on",
        deadline=_local_deadline(deadline) if deadline else None,
        form=form,
        targets=services.Targets(refs, post.get("level") or None, post.get("group") or None),
    )


def _local_deadline(value: str) -> datetime:
    """The composer's deadline: a day alone means the end of that day."""
    try:
        return moment_field(_("Deadline"), value, default_time=END_OF_DAY)
    except FieldError as e:
        raise DirectiveError(None, str(e)) from None


def _issuing(request: HttpRequest) -> Area:
    area = services.issuing_area(caller(request))
    if not area:
        raise PermissionDenied(_("Issuing needs a leader or analyst grant."))
    return area


@login_required
@area_aware
def compose_tree(request: HttpRequest) -> JsonResponse:
    """The composer's unit tree, one level at a time: the caller's issuing units, or a unit's children."""
    area = _issuing(request)
    parent_ref = request.GET.get("parent", "").strip()
    if parent_ref:
        parent = unit_in_area(parent_ref, area, field="parent")
        units = Unit.objects.filter(parent=parent).order_by("name")
    elif area.everything:
        units = Unit.objects.filter(kind="nation").order_by("-edition_id")
    else:
        units = Unit.objects.filter(area.q(), path__in=[path for _e, path in area.prefixes]).order_by("name")
    units = units.annotate(below=Count("children"))
    items = [{"ref": u.ref, "name": u.name, "kind": u.kind, "children": u.below} for u in units]
    return JsonResponse({"items": items})


@login_required
@area_aware
def directive_status(request: HttpRequest, directive_id: int) -> JsonResponse:
    """The status page's figures, for it to poll: counts overall and per province, in the caller's area."""
    user = caller(request)
    directive = _visible_directive(user, directive_id)
    status = services.status(directive, user.area())
    pending = services.pending(directive, user.area()).values_list("unit__edition_id", "unit__code")[:200]
    return JsonResponse({**status, "pending": [f"{edition}:{code}" for edition, code in pending]})
