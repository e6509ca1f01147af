"""Directives' verbs: issue, update, cancel; read, acknowledge, respond; and what the room reads back.

Every write is one function here, keyword-only `actor=`, atomic, audited (DESIGN §3). Each verb
publishes its live events inside its transaction (`live.directive_changed`): they leave when it
commits, and never if it rolls back. Its messages are queued after the commit (`followup`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import PurePath
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import Grant, User
from dieuhanh.accounts.services import audit
from dieuhanh.db import db_datetime, insert_rows
from dieuhanh.directives import followup, live
from dieuhanh.directives.models import (
    RECIPIENT_ROLES,
    Attachment,
    Delivery,
    DeliveryState,
    Directive,
    DirectiveKind,
    Priority,
    Response,
    Revision,
    Task,
    TaskStatus,
    UnitGroup,
    current_code,
)
from dieuhanh.errors import DomainError
from dieuhanh.files import content_type
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import VN_TZ, whole_number

ISSUER_ROLES = ("leader", "analyst")
LEVELS = ("commune", "district", "province", "industrial_park", "enterprise")
FORM_TYPES = ("text", "number", "datetime")  # a datetime answer is read by vnformat, kept in the text


def _changed(event: str, directive: Directive, changed: Iterable[Delivery] = ()) -> None:
    """Inside the verb's transaction, after its writes: its live events, sent when it commits, and its
    messages, queued then. `changed`: the delivery a unit's verb changed, already holding what it wrote
    (its events are made from it without reading it back)."""
    live.directive_changed(event, directive, list(changed))
    transaction.on_commit(partial(followup.directive_changed, event, directive))


class DirectiveError(DomainError):
    """A request that cannot be carried out: names the field (when one is to blame) and why."""


ONE_OF = _("must be one of %(codes)s")
CANCELLED = _("the directive is cancelled")
IN_THE_PAST = _("is in the past")
EMPTY = _("is empty")
NO_DIRECTIVE = _("no directive #%(id)s for you")


# Who may issue, and to whom


def issuing_area(user: User) -> Area:
    return Area.union(user.area(role=role) for role in ISSUER_ROLES)


@dataclass(frozen=True)
class Targets:
    units: tuple[str, ...] = ()
    level: str | None = None  # every unit of this kind under `units`; None: the units themselves
    group: str | None = None


def resolve_targets(targets: Targets, area: Area) -> list[Unit]:
    """The target units, each inside the issuer's area and all on one map; errors name the culprit."""
    if targets.level is not None and targets.level not in LEVELS:
        raise DirectiveError(
            "targets.level", _("must be one of %(codes)s or null") % {"codes": ", ".join(LEVELS)}
        )
    chosen: dict[int, Unit] = {}
    for unit in _named_units(targets, area):
        for target in _expand(unit, targets.level):
            chosen[target.pk] = target
    if not chosen:
        raise DirectiveError("targets", _("reach no unit"))
    editions = {u.edition_id for u in chosen.values()}
    if len(editions) > 1:
        raise DirectiveError(
            "targets", _("mix the maps %(maps)s: choose one") % {"maps": ", ".join(sorted(editions))}
        )
    return list(chosen.values())


def _named_units(targets: Targets, area: Area) -> list[Unit]:
    units = [unit_in_area(ref, area, field="targets.units") for ref in targets.units]
    if targets.group:
        group = groups_within(area).filter(code=targets.group).first()
        if group is None:
            raise DirectiveError("targets.group", _("no group '%(code)s'") % {"code": targets.group})
        units += list(group.units.all())
    return units


def _expand(unit: Unit, level: str | None) -> Iterable[Unit]:
    if level is None:
        return [unit]
    below = Unit.objects.under(unit)
    # Island districts without communes take the communes' place on the 2021 map.
    found = below.leaves() if level == "commune" else below.filter(kind=level)
    return found.only("id", "edition_id", "code", "path", "kind", "level", "name")


def _issuer_unit(user: User, targets: list[Unit]) -> Unit:
    """The lowest of the caller's issuing grants whose subtree holds every target."""
    grants = (
        Grant.objects.filter(user=user, role__in=ISSUER_ROLES).select_related("unit").order_by("-unit__level")
    )
    for grant in grants:
        unit = grant.unit
        if unit.kind == "nation" or all(
            t.edition_id == unit.edition_id and t.path.startswith(unit.path) for t in targets
        ):
            return unit
    raise DirectiveError(None, _("issuing needs a leader or analyst grant over every target"), status=403)


# Issue, update, cancel


@dataclass(frozen=True)
class DirectiveInput:
    title: str
    body: str
    targets: Targets
    priority: str = Priority.NORMAL
    kind: str = DirectiveKind.DIRECTIVE
    requires_ack: bool = True
    deadline: datetime | None = None
    form: list[dict[str, Any]] = field(default_factory=list)
    number: str = ""
    late_answers: bool = True


def issue_directive(*, actor: User, data: DirectiveInput, now: datetime | None = None) -> Directive:
    area = issuing_area(actor)
    if not area:
        raise DirectiveError(None, _("issuing needs a leader or analyst grant"), status=403)
    now = now or timezone.now()
    _check_input(data, now)
    units = resolve_targets(data.targets, area)
    return issue_to(actor=actor, data=data, units=units, issuer=_issuer_unit(actor, units), now=now)


def issue_to(
    *,
    actor: User,
    data: DirectiveInput,
    units: list[Unit],
    issuer: Unit,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> Directive:
    """Create a directive for units already resolved and authorised by the caller (`issue_directive`,
    or another app's verb with its own rule, e.g. tracing's lists to communes)."""
    targets = {"units": list(data.targets.units), "level": data.targets.level, "group": data.targets.group}
    with transaction.atomic():
        directive = Directive.objects.create(
            number=data.number,
            title=data.title.strip(),
            body=data.body,
            kind=data.kind,
            priority=current_code(data.priority),
            issuer_unit=issuer,
            issued_by=actor,
            issued_at=now,
            requires_ack=data.requires_ack,
            form=data.form,
            deadline=data.deadline,
            late_answers=data.late_answers,
            targets={**targets, **(extra or {})},
            edition_id=units[0].edition_id,
        )
        Revision.objects.create(
            directive=directive, version=1, action=Revision.Action.ISSUE, by=actor, at=now
        )
        _fan_out(directive, units, now)
        audit(actor, "directives.issue", f"directive:{directive.pk}", rows=len(units), title=directive.title)
        _changed("issue", directive)
    return directive


def _check_input(data: DirectiveInput, now: datetime) -> None:
    if not data.title.strip():
        raise DirectiveError("title", EMPTY)
    if current_code(data.priority) not in Priority.values:
        raise DirectiveError("priority", ONE_OF % {"codes": ", ".join(Priority.values)})
    if data.kind not in DirectiveKind.values:
        raise DirectiveError("kind", ONE_OF % {"codes": ", ".join(DirectiveKind.values)})
    if data.deadline is not None and data.deadline <= now:
        raise DirectiveError("deadline", IN_THE_PAST)
    check_form(data.form)


def check_form(form: list[dict[str, Any]]) -> None:
    keys = set()
    for i, question in enumerate(form):
        key, label, kind = question.get("key"), question.get("label"), question.get("type", "text")
        if not key or not isinstance(key, str) or not label:
            raise DirectiveError(f"form[{i}]", _("needs a key and a label"))
        if kind not in FORM_TYPES:
            raise DirectiveError(f"form[{i}].type", ONE_OF % {"codes": ", ".join(FORM_TYPES)})
        if key in keys:
            raise DirectiveError(f"form[{i}].key", _("'%(key)s' is used twice") % {"key": key})
        keys.add(key)


def _fan_out(directive: Directive, units: list[Unit], now: datetime) -> None:
    """One delivery per unit in one bulk write (COPY on PostgreSQL): 10,000 communes in a blink."""
    province_codes = {u.path.split("/")[2] for u in units if u.level >= 1}
    provinces = dict(
        Unit.objects.filter(edition_id=directive.edition_id, level=1, code__in=province_codes).values_list(
            "code", "id"
        )
    )
    sent_at = db_datetime(now)
    rows = [
        (
            directive.pk,
            u.pk,
            provinces.get(u.path.split("/")[2], u.pk) if u.level >= 1 else u.pk,
            "sent",
            sent_at,
            0,
            "",
        )
        for u in units
    ]
    fields = ["directive_id", "unit_id", "province_id", "state", "sent_at", "reminders", "last_error"]
    insert_rows(Delivery, fields, rows)


EDITABLE = ("title", "body", "priority", "deadline", "requires_ack", "late_answers", "number")


def update_directive(
    *, actor: User, directive: Directive, changes: dict[str, Any], note: str = ""
) -> Directive:
    """Change a directive in place (CAP Update): recipients see the new text and its history."""
    _check_issuer(actor, directive)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise DirectiveError(
            sorted(unknown)[0],
            _("cannot be changed; these can: %(fields)s") % {"fields": ", ".join(EDITABLE)},
        )
    if changes.get("deadline") is not None and changes["deadline"] <= timezone.now():
        raise DirectiveError("deadline", IN_THE_PAST)
    if "priority" in changes:
        changes = {**changes, "priority": current_code(changes["priority"])}
    if changes.get("priority") is not None and changes["priority"] not in Priority.values:
        raise DirectiveError("priority", ONE_OF % {"codes": ", ".join(Priority.values)})
    diff = {
        k: [_plain(getattr(directive, k)), _plain(v)]
        for k, v in changes.items()
        if getattr(directive, k) != v
    }
    if not diff:
        return directive
    with transaction.atomic():
        for name, value in changes.items():
            setattr(directive, name, value)
        _revise(actor, directive, Revision.Action.UPDATE, timezone.now(), note, diff)
    return directive


def cancel_directive(*, actor: User, directive: Directive, note: str = "") -> Directive:
    """Withdraw a directive (CAP Cancel): it stays visible, marked cancelled; its reminders stop."""
    _check_issuer(actor, directive)
    with transaction.atomic():
        directive.cancelled_at = timezone.now()
        _revise(actor, directive, Revision.Action.CANCEL, directive.cancelled_at, note)
    return directive


def _revise(
    actor: User, directive: Directive, action: str, at: datetime, note: str, changes: dict | None = None
) -> None:
    """Save a changed directive as its next version, with the revision recipients see; audited."""
    directive.version += 1
    directive.save()
    Revision.objects.create(
        directive=directive,
        version=directive.version,
        action=action,
        changes=changes or {},
        note=note,
        by=actor,
        at=at,
    )
    audit(actor, f"directives.{action}", f"directive:{directive.pk}", changes=changes or {}, note=note)
    _changed(action, directive)


def _check_issuer(actor: User, directive: Directive) -> None:
    if not issuing_area(actor).contains(directive.issuer_unit):
        raise DirectiveError(
            None, _("only a leader or analyst over the issuing unit may change it"), status=403
        )
    if directive.cancelled_at is not None:
        raise DirectiveError(None, CANCELLED, status=409)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# A unit's side: inbox, read, acknowledge, respond


def own_units(user: User) -> list[int]:
    """The units the user acts for: those they hold a recipient grant on (not the units below)."""
    return [g.unit_id for g in user.held() if g.role in RECIPIENT_ROLES]


def inbox(user: User) -> QuerySet[Delivery]:
    """The user's units' deliveries, and those escalated to them from the units below: urgent, then newest."""
    units = own_units(user)
    # The units below as a list, not a join: both branches of the OR then use the unit_id index
    # (a join made it a scan of every delivery: bench/directives.py, 1M rows, ~100 ms → ~5 ms).
    below = list(Unit.objects.filter(parent_id__in=units).values_list("id", flat=True))
    return (
        Delivery.objects.filter(Q(unit_id__in=units) | Q(escalated_at__isnull=False, unit_id__in=below))
        .select_related("directive", "unit")
        .order_by("-directive__priority", "-sent_at", "-id")  # 'urgent' sorts after 'normal'
    )


def unread_count(user: User) -> int:
    """Deliveries to the user's own units not opened yet (the inbox's bold ones), for the menu's badge."""
    return Delivery.objects.filter(unit_id__in=own_units(user), state=DeliveryState.SENT).count()


def delivery_for(user: User, delivery_id: int) -> Delivery:
    """A delivery the user may see: one of their units', or one below their area (read-only)."""
    # Its directive and unit; what else answering shows of the directive (its issuer, its history) is the
    # same for every recipient, and cached (present.histories).
    found = next(iter(Delivery.objects.select_related("directive", "unit").filter(pk=delivery_id)[:1]), None)
    if found is None or not (found.unit_id in own_units(user) or user.area().contains(found.unit)):
        raise DirectiveError("id", _("no delivery #%(id)s for you") % {"id": delivery_id}, status=404)
    return found


def _acting_for(actor: User, delivery: Delivery) -> None:
    if delivery.unit_id not in own_units(actor):
        raise DirectiveError(
            None, _("only someone of %(unit)s may answer this") % {"unit": delivery.unit.name}, status=403
        )


def read_delivery(*, actor: User, delivery: Delivery) -> Delivery:
    """Opened by someone of the unit: the first time is recorded; later openings change nothing."""
    if delivery.unit_id not in own_units(actor) or delivery.state != DeliveryState.SENT:
        return delivery
    with transaction.atomic():
        now = timezone.now()
        updated = Delivery.objects.filter(pk=delivery.pk, state=DeliveryState.SENT).update(
            state=DeliveryState.READ, read_at=now, read_by=actor
        )
        if updated:
            # What the UPDATE wrote, without reading the row back: its events are made from it.
            delivery.state, delivery.read_at, delivery.read_by = DeliveryState.READ, now, actor
            audit(actor, "directives.read", f"delivery:{delivery.pk}")
            _changed("read", delivery.directive, [delivery])
    if not updated:  # another opening came first: read what it wrote
        delivery.refresh_from_db()
    return delivery


def acknowledge_delivery(*, actor: User, delivery: Delivery) -> Delivery:
    """ "Đã nhận", by a named person of the unit. Once: a second acknowledgement is refused."""
    _acting_for(actor, delivery)
    if delivery.directive.cancelled_at is not None:
        raise DirectiveError(None, CANCELLED, status=409)
    if delivery.acknowledged_at is not None:
        raise _acknowledged(delivery)
    now = timezone.now()
    state = delivery.state
    if STATE_RANK[state] < STATE_RANK[DeliveryState.ACKNOWLEDGED]:
        state = DeliveryState.ACKNOWLEDGED
    read_by_id = delivery.read_by_id or actor.pk
    with transaction.atomic():
        # Guarded, as reading is: of two acknowledgements at once, one wins and the other is told who.
        updated = Delivery.objects.filter(pk=delivery.pk, acknowledged_at__isnull=True).update(
            state=state,
            read_at=Coalesce("read_at", Value(now)),
            read_by_id=Coalesce("read_by_id", Value(actor.pk)),
            acknowledged_at=now,
            acknowledged_by=actor,
        )
        if updated:
            delivery.state, delivery.read_at = state, delivery.read_at or now
            delivery.read_by_id, delivery.acknowledged_at, delivery.acknowledged_by = read_by_id, now, actor
            audit(actor, "directives.acknowledge", f"delivery:{delivery.pk}")
            _changed("acknowledge", delivery.directive, [delivery])
    if not updated:
        delivery.refresh_from_db()
        raise _acknowledged(delivery)
    return delivery


def _acknowledged(delivery: Delivery) -> DirectiveError:
    by = delivery.acknowledged_by.get_full_name() or delivery.acknowledged_by.username  # type: ignore[union-attr]
    return DirectiveError(None, _("already acknowledged by %(by)s") % {"by": by}, status=409)


STATE_RANK = {state: rank for rank, state in enumerate(DeliveryState.values)}


def respond_delivery(
    *, actor: User, delivery: Delivery, text: str = "", figures: dict[str, Any] | None = None
) -> Response:
    """A response, or a new version of it; acknowledges on the way. Figures are checked against the form."""
    _acting_for(actor, delivery)
    directive = delivery.directive
    if directive.cancelled_at is not None:
        raise DirectiveError(None, CANCELLED, status=409)
    now = timezone.now()
    if directive.deadline and now > directive.deadline and not directive.late_answers:
        raise DirectiveError(None, _("the deadline has passed and late answers are closed"), status=409)
    clean = _check_figures(directive.form, figures or {})
    if not text.strip() and not clean:
        raise DirectiveError("text", _("a response needs text or figures"))
    with transaction.atomic():
        version = delivery.responses.count() + 1
        response = Response.objects.create(
            delivery=delivery, version=version, text=text, figures=clean, by=actor, at=now
        )
        delivery.read_at = delivery.read_at or now
        delivery.read_by = delivery.read_by or actor
        if delivery.acknowledged_at is None:
            delivery.acknowledged_at, delivery.acknowledged_by = now, actor
        delivery.responded_at = now
        delivery.state = DeliveryState.RESPONDED
        delivery.save()
        audit(actor, "directives.respond", f"delivery:{delivery.pk}", version=version)
        _changed("respond", directive, [delivery])
    return response


def _check_figures(form: list[dict[str, Any]], figures: dict[str, Any]) -> dict[str, float]:
    numbers = {q["key"]: q for q in form if q.get("type") == "number"}
    clean: dict[str, float] = {}
    for key, value in figures.items():
        if key not in numbers:
            raise DirectiveError(f"figures.{key}", _("is not a number question of this directive's form"))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DirectiveError(f"figures.{key}", _("must be a number"))
        clean[key] = value
    return clean


# What the room reads back

# How far a delivery got, one rule for every count (the room, the reports, the status, the unit page,
# what is overdue or pending): a response counts as an acknowledgement, and an acknowledgement or a
# response as a reading, whatever the row's own columns say.
ANSWERED = Q(responded_at__isnull=False)
ACKNOWLEDGED = Q(acknowledged_at__isnull=False) | ANSWERED
READ = Q(read_at__isnull=False) | ACKNOWLEDGED


def overdue_q(now: datetime, of: type[Delivery] | type[Task] = Delivery) -> Q:
    """What is late at `now`, one rule for both things that fall due here: a delivery past its
    directive's deadline without what the directive required (never one of a cancelled directive); a
    task past its due day by the calendar in Vietnam (a task due today is not late yet) and not done."""
    if of is Task:
        return Q(due__lt=now.astimezone(VN_TZ).date()) & ~Q(status=TaskStatus.DONE)
    late = Q(directive__deadline__lt=now, directive__cancelled_at__isnull=True)
    missing_ack = Q(directive__requires_ack=True) & ~ACKNOWLEDGED
    missing_answer = ~Q(directive__form=[]) & ~ANSWERED
    report = Q(directive__kind=DirectiveKind.REPORT_REQUEST) & ~ANSWERED
    return late & (missing_ack | missing_answer | report)


def is_overdue(delivery: Delivery, now: datetime) -> bool:
    """`overdue_q` for one delivery in hand with its directive: the inbox's and an opened delivery's flag
    without a query (tests/directives keeps the two in step)."""
    directive = delivery.directive
    if directive.deadline is None or directive.deadline >= now or directive.cancelled_at is not None:
        return False
    unanswered = delivery.responded_at is None
    return (
        (directive.requires_ack and delivery.acknowledged_at is None and unanswered)
        or (directive.form != [] and unanswered)
        or (directive.kind == DirectiveKind.REPORT_REQUEST and unanswered)
    )


def status(directive: Directive, area: Area, now: datetime | None = None) -> dict[str, Any]:
    """Counts by furthest state, overall and per province, of the deliveries inside the area."""
    deliveries = Delivery.objects.filter(directive=directive).within(area)
    by_province = _counted(deliveries, "province_id", now or timezone.now())
    sums = _figure_sums(directive, deliveries)
    names = Unit.objects.in_bulk(list(by_province))
    provinces = [
        {"unit": names[p].ref, "name": names[p].name, **_counts(r), "figures": sums.get(p, {})}
        for p, r in sorted(by_province.items(), key=lambda item: names[item[0]].code)
    ]
    total = sum(by_province.values(), Rates())
    overall: Counter = sum((Counter(f) for f in sums.values()), Counter())
    return {**_counts(total), "figures": dict(overall), "provinces": provinces}


def _figure_sums(directive: Directive, deliveries: QuerySet[Delivery]) -> dict[int, dict[str, float]]:
    """Each responding unit's latest figures, summed per province (the tree's level the room reads)."""
    if not any(q.get("type") == "number" for q in directive.form):
        return {}
    latest: dict[int, tuple[int, dict[str, float]]] = {}
    rows = Response.objects.filter(delivery__in=deliveries.filter(responded_at__isnull=False))
    for delivery_id, province, figures in rows.order_by("delivery_id", "version").values_list(
        "delivery_id", "delivery__province_id", "figures"
    ):
        latest[delivery_id] = (province, figures)
    sums: dict[int, Counter] = {}
    for province, figures in latest.values():
        sums.setdefault(province, Counter()).update(figures)
    return {p: dict(c) for p, c in sums.items()}


def _counts(rates: Rates) -> dict[str, int]:
    return {"total": rates.total, **rates.states(), "overdue": rates.overdue}


@dataclass(frozen=True)
class Rates:
    """Deliveries counted by the rule above (ACKNOWLEDGED, READ): how many, how many got at least as far
    as read, acknowledged and answered, and how many are overdue."""

    total: int = 0
    read: int = 0
    acknowledged: int = 0
    responded: int = 0
    overdue: int = 0

    def __add__(self, other: Rates) -> Rates:
        return Rates(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def ack_pct(self) -> float:
        return 100 * self.acknowledged / self.total if self.total else 0

    @property
    def response_pct(self) -> float:
        return 100 * self.responded / self.total if self.total else 0

    def states(self) -> dict[str, int]:
        """How many deliveries are in each furthest state (they add up to the total)."""
        return {
            DeliveryState.SENT.value: self.total - self.read,
            DeliveryState.READ.value: self.read - self.acknowledged,
            DeliveryState.ACKNOWLEDGED.value: self.acknowledged - self.responded,
            DeliveryState.RESPONDED.value: self.responded,
        }

    def done(self, directive: Directive) -> bool:
        """Every unit has given what the directive asks: its response, or else its acknowledgement."""
        return (self.responded if directive.needs_response else self.acknowledged) >= self.total


def rates(directive_ids: Iterable[int], area: Area | None, now: datetime | None = None) -> dict[int, Rates]:
    """The one count of acknowledgement and response rates (the room, the reports, the unit page), per
    directive with a delivery inside the area (None: every delivery), in one grouped query."""
    deliveries = Delivery.objects.filter(directive_id__in=list(directive_ids)).within(area)
    return _counted(deliveries, "directive_id", now or timezone.now())


def _counted(deliveries: QuerySet[Delivery], key: str, now: datetime) -> dict[int, Rates]:
    """Rates per value of `key` (a directive, a province), in one grouped query: what `rates` and
    `status` both read, so that they cannot count differently."""
    rows = (
        deliveries.values(key)
        .annotate(
            total=Count("id"),
            read=Count("id", filter=READ),
            acknowledged=Count("id", filter=ACKNOWLEDGED),
            responded=Count("id", filter=ANSWERED),
            overdue=Count("id", filter=overdue_q(now)),
        )
        .order_by()
    )
    return {
        r[key]: Rates(r["total"], r["read"], r["acknowledged"], r["responded"], r["overdue"]) for r in rows
    }


def pending(directive: Directive, area: Area, now: datetime | None = None) -> QuerySet[Delivery]:
    """The units inside the area that still owe what the directive asks (acknowledgement or response)."""
    missing = ~ANSWERED if directive.needs_response else ~ACKNOWLEDGED
    return Delivery.objects.filter(directive=directive).within(area).filter(missing).select_related("unit")


def visible_directives(user: User) -> QuerySet[Directive]:
    """Directives issued within the user's area, or reaching units in it."""
    area = user.area()
    if area.everything:
        return Directive.objects.all()
    reaching = Q(pk__in=Delivery.objects.within(area).values("directive_id"))
    return Directive.objects.filter(reaching | area.q("issuer_unit")).distinct()


# Attachments and saved groups

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


def too_large(size: int | None = None) -> str:
    """Why a file is refused for its size, in the reader's language (its size when known)."""
    limit = whole_number(MAX_ATTACHMENT_BYTES)
    if size is None:
        return _("is over %(limit)s bytes") % {"limit": limit}
    return _("is %(size)s bytes; the limit is %(limit)s") % {"size": whole_number(size), "limit": limit}


def attach(*, actor: User, directive: Directive, name: str, content: bytes) -> Attachment:
    """Store a file with a directive: at most 10 MB, PDF, image, DOCX or XLSX by its content."""
    _check_issuer(actor, directive)
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise DirectiveError("file", too_large(len(content)), status=413)
    kind = content_type(content, name)
    if kind is None:
        raise DirectiveError("file", _("must be a PDF, PNG, JPEG, DOCX or XLSX file"), status=415)
    digest = hashlib.sha256(content).hexdigest()
    safe_name = PurePath(name).name[:200] or "tep-dinh-kem"
    with transaction.atomic():
        attachment = Attachment(
            directive=directive, name=safe_name, content_type=kind, size=len(content), sha256=digest
        )
        attachment.file.save(digest, ContentFile(content), save=False)
        attachment.save()
        # A new file is a changed history: the recipients' cached view of it is keyed by updated_at.
        Directive.objects.filter(pk=directive.pk).update(updated_at=timezone.now())
        audit(actor, "directives.attach", f"directive:{directive.pk}", name=safe_name, size=len(content))
    return attachment


def attachment_for(user: User, attachment_id: int) -> Attachment:
    found = Attachment.objects.select_related("directive").filter(pk=attachment_id).first()
    if found is None or not visible_directives(user).filter(pk=found.directive_id).exists():
        raise DirectiveError("id", _("no attachment #%(id)s for you") % {"id": attachment_id}, status=404)
    return found


def groups_within(area: Area) -> QuerySet[UnitGroup]:
    """Saved groups whose every unit lies in the area. A group reaching beyond it is another area's:
    neither listed nor usable, as if it did not exist (its name, size and units are not the caller's)."""
    if area.everything:
        return UnitGroup.objects.all()
    members = UnitGroup.units.through.objects.filter(unitgroup_id=OuterRef("pk"))
    return UnitGroup.objects.filter(Exists(members)).exclude(Exists(members.exclude(area.q("unit"))))


def create_group(*, actor: User, code: str, name: str, targets: Targets) -> UnitGroup:
    """Save a set of units to address again, e.g. the southern communes."""
    area = issuing_area(actor)
    if not area:
        raise DirectiveError(None, _("saving a group needs a leader or analyst grant"), status=403)
    if UnitGroup.objects.filter(code=code).exists():
        raise DirectiveError("code", _("'%(code)s' is taken") % {"code": code}, status=409)
    units = resolve_targets(targets, area)
    with transaction.atomic():
        group = UnitGroup.objects.create(
            code=code, name=name, edition_id=units[0].edition_id, created_by=actor
        )
        group.units.set(units)
        audit(actor, "directives.group", code, rows=len(units))
    return group
