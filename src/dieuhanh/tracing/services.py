"""Tracing's use cases: register or promote a case, trace its contacts, find clusters; each audited
and cut to the tracer's area (DESIGN §5)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.errors import DomainError
from dieuhanh.tracing.engine import Edge, Rule, Stay, Trace, Window, exposures, trace
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.store import CheckinStore
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.warehouse import partitions, vault
from dieuhanh.warehouse.models import HealthDeclaration, Source, TestResult, Venue
from dieuhanh.warehouse.persons import person_key, short

DAYS_BEFORE_ONSET = 2
_IN_CHUNK = 2_000  # keys per IN (...) list


class TracingError(DomainError):
    """A request tracing cannot serve: names the field and why."""


NO_CASE = _("no case #%(case)s")
NOT_AFTER = _("is not after %(other)s")
# The engine (pure, without Django) refuses a rule in English; its reasons in the reader's language.
RULE_REASONS = {"must be positive": _("must be positive"), "must not be negative": _("must not be negative")}


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def from_epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def require_tracer(user: User) -> Area:
    area = user.area(role="tracer")
    if not area:
        raise TracingError(None, _("tracing needs a tracer grant"), 403)
    return area


# Cases


@dataclass(frozen=True)
class CaseInput:
    confirmed_at: datetime | None  # None only when promoting a test: its sampling time
    onset_at: datetime | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    commune: Unit | None = None
    note: str = ""


def register_case(*, actor: User, person_id: str, data: CaseInput) -> Case:
    """A confirmed case by the person's ID (CCCD or phone); the raw ID is pseudonymised at once and
    kept only in the identity vault."""
    area = _check_request(actor, data)
    if data.confirmed_at is None:
        raise TracingError("confirmed_at", _("is required with person_id"))
    key = person_key(person_id)
    home = _residences([key]).get(key)
    _refuse_outside(actor, area, key, home)
    with transaction.atomic():
        case = _save_case(actor, area, key, replace(data, commune=data.commune or home), test=None)
        vault.remember(person_id)
    return case


def promote_test(*, actor: User, source: str, test_event_id: str, data: CaseInput) -> Case:
    """A positive test event of the tracer's area becomes a case: confirmed when sampled, resident
    where tested. A test that is absent or outside the area is "not found" alike."""
    area = _check_request(actor, data)
    missing = TracingError(
        "test.event_id",
        _("no test '%(test)s' of source '%(source)s' in your area")
        % {"test": test_event_id, "source": source},
        status=404,
    )
    source_id = Source.objects.filter(name=source).values_list("pk", flat=True).first()
    # By the dedupe key: on PostgreSQL a filter on the pair alone would read every month's partition.
    found = partitions.by_source_event(TestResult, source_id, test_event_id) if source_id else None
    test = found.select_related("commune", "source").first() if found is not None else None
    if test is None or not area.contains(test.commune):
        raise missing
    if test.result != "positive":
        raise TracingError(
            "test.event_id", _("the test's result is '%(result)s', not positive") % {"result": test.result}
        )
    key = bytes(test.person_key)
    _refuse_outside(actor, area, key, None, missing)
    data = replace(data, confirmed_at=data.confirmed_at or test.at, commune=data.commune or test.commune)
    return _save_case(actor, area, key, data, test=test)


def _check_request(actor: User, data: CaseInput) -> Area:
    """The role, the area and the request's own fields, before anything is read: what the caller
    learns must not depend on what exists outside their area."""
    area = require_tracer(actor)
    if data.commune is not None and not area.contains(data.commune):
        raise TracingError(
            "commune", _("the case's commune %(ref)s is outside your area") % {"ref": data.commune.ref}, 403
        )
    if data.confirmed_at is not None:
        _window(data)
    return area


def _refuse_outside(
    actor: User, area: Area, key: bytes, home: Unit | None, missing: TracingError | None = None
) -> None:
    """409 for a case the tracer may see. A person of another area (their case, or their latest
    declared home, lies outside it) is "not found", the same answer whichever it is; the probe stays
    in the audit log."""
    case = Case.objects.select_related("commune").filter(person_key=key).first()
    if case is not None and (area.everything or (case.commune and area.contains(case.commune))):
        raise TracingError(None, _("this person is already case #%(case)s") % {"case": case.pk}, status=409)
    if case is not None or (home is not None and not area.contains(home)):
        audit(actor, "tracing.case.refused", "", person=short(key))
        raise missing or TracingError("person_id", _("no such person in your area"), status=404)


def _save_case(actor: User, area: Area, key: bytes, data: CaseInput, test: TestResult | None) -> Case:
    assert data.confirmed_at is not None
    start, end = _window(data)
    if data.commune is None and not area.everything:
        raise TracingError("commune", _("is unknown for this person; say where the case lives"))
    case = Case(
        person_key=key,
        confirmed_at=data.confirmed_at,
        onset_at=data.onset_at,
        window_start=start,
        window_end=end,
        commune=data.commune,
        note=data.note,
        created_by=actor,
        test_source=test.source.name if test else "",
        test_event_id=test.source_event_id if test else "",
    )
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError:
        # Registered meanwhile: answer as if the case had been there when we looked.
        _refuse_outside(actor, area, key, None)
        raise
    audit(actor, "tracing.case.create", f"case:{case.pk}", person=short(key), window=_span(start, end))
    return case


def find_case(user: User, person_id: str) -> Case | None:
    """This person's case if the tracer's area holds it; None otherwise, whether or not they are a
    case elsewhere."""
    return visible_cases(user).filter(person_key=person_key(person_id)).first()


def _window(data: CaseInput) -> tuple[datetime, datetime | None]:
    assert data.confirmed_at is not None
    return window_of(data.confirmed_at, data.onset_at, data.window_start, data.window_end)


def window_of(
    confirmed: datetime, onset: datetime | None, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime | None]:
    """The infectious window: as given, else from 2 days before onset (or confirmation); open-ended
    until isolation is entered."""
    if onset and onset > confirmed:
        raise TracingError("onset_at", _("is after %(other)s") % {"other": "confirmed_at"})
    start = start or (onset or confirmed) - timedelta(days=DAYS_BEFORE_ONSET)
    if end is not None and end <= start:
        raise TracingError("window_end", NOT_AFTER % {"other": "window_start"})
    return start, end


def visible_cases(user: User) -> Any:
    return Case.objects.within(require_tracer(user)).select_related("commune")


def list_cases(user: User, limit: int = 500) -> list[Case]:
    """The newest cases of the caller's area; audited, as every read of person-level data."""
    cases = list(visible_cases(user).order_by("-confirmed_at", "-id")[:limit])
    audit(user, "tracing.cases", "", rows=len(cases))
    return cases


def own_case(user: User, case_id: int) -> Case:
    """A case of the caller's area (404 for any other: its existence is not confirmed)."""
    case = visible_cases(user).filter(pk=case_id).first()
    if case is None:
        raise TracingError("id", _("no case #%(case)s in your area") % {"case": case_id}, status=404)
    audit(user, "tracing.case.read", f"case:{case.pk}", rows=1)
    return case


def change_case(user: User, case_id: int, changes: dict[str, Any]) -> Case:
    """Correct onset, window or note; the old and new values go to the audit log."""
    case = own_case(user, case_id)
    before = {name: _plain(getattr(case, name)) for name in changes}
    for name, value in changes.items():
        setattr(case, name, value if name != "note" else value or "")
    if "window_start" not in changes and "onset_at" in changes:
        case.window_start = (case.onset_at or case.confirmed_at) - timedelta(days=DAYS_BEFORE_ONSET)
    case.window_start, case.window_end = window_of(
        case.confirmed_at, case.onset_at, case.window_start, case.window_end
    )
    case.save()
    after = {name: _plain(getattr(case, name)) for name in changes}
    audit(user, "tracing.case.change", f"case:{case.pk}", before=before, after=after)
    return case


def withdraw_case(user: User, case_id: int) -> None:
    """Undo a case registered by mistake; the audit row keeps what it was."""
    case = own_case(user, case_id)
    audit(user, "tracing.case.withdraw", f"case:{case.pk}", person=short(bytes(case.person_key)))
    case.delete()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def case_for(user: User, case_id: int) -> Case:
    """A case any tracer may trace; only its own area's tracers see it listed (see `contacts`)."""
    require_tracer(user)
    case = Case.objects.select_related("commune").filter(pk=case_id).first()
    if case is None:
        raise TracingError("id", NO_CASE % {"case": case_id}, status=404)
    return case


# Contacts


@dataclass
class ContactView:
    person: bytes
    generation: int
    first_exposure: int
    seconds: int
    edges: list[Edge]
    residence: Unit | None
    is_case: bool


@dataclass
class TraceView:
    case: Case
    depth: int
    rule: Rule
    contacts: list[ContactView]
    edges: list[Edge]
    venues: dict[int, Venue]
    hidden: int
    millis: float
    counts: dict[int, int] = field(default_factory=dict)


def contacts(*, actor: User, case: Case, depth: int, rule: Rule, now: datetime | None = None) -> TraceView:
    """The case's contacts that the tracer may see, with the edges that reach them; audited."""
    area = require_tracer(actor)
    began = time.perf_counter()
    result = run_trace(case, depth=depth, rule=rule, now=now)
    view = _view(result, case, rule, area)
    view.millis = (time.perf_counter() - began) * 1000
    audit(
        actor,
        "tracing.contacts",
        f"case:{case.pk}",
        rows=len(view.contacts),
        depth=depth,
        rule=rule.as_dict(),
        window=_span(case.window_start, case.window_end),
    )
    if not view.contacts and not area.everything and not (case.commune and area.contains(case.commune)):
        # Nothing of this case touches the tracer's area: do not confirm that it exists (the probe
        # is in the audit log all the same).
        raise TracingError("id", NO_CASE % {"case": case.pk}, status=404)
    return view


def revealable(*, actor: User, case: Case, hex_keys: Sequence[str], depth: int, rule: Rule) -> list[bytes]:
    """The keys a tracer asks to identify, if each is the case or one of its contacts that the tracer
    may see; else TracingError, 403 (no identity leaves the vault for a stranger to the trace)."""
    try:
        keys = [bytes.fromhex(k) for k in hex_keys]
    except ValueError:
        raise TracingError("person_keys", _("each must be a person key in hex")) from None
    view = contacts(actor=actor, case=case, depth=depth, rule=rule)
    allowed = {c.person for c in view.contacts}
    area = require_tracer(actor)
    if area.everything or (case.commune is not None and area.contains(case.commune)):
        allowed.add(bytes(case.person_key))
    strangers = [k for k in keys if k not in allowed]
    if strangers:
        raise TracingError(
            "person_keys",
            _("%(n)s of these persons are not contacts of case #%(case)s you may see")
            % {"n": len(strangers), "case": case.pk},
            403,
        )
    return keys


def run_trace(case: Case, *, depth: int, rule: Rule, now: datetime | None = None) -> Trace:
    now_s = epoch(now or timezone.now())
    end = epoch(case.window_end) if case.window_end else now_s
    window = Window(bytes(case.person_key), epoch(case.window_start), end)
    return trace(CheckinStore(rule), window, depth=depth, rule=rule, now=now_s)


def _view(result: Trace, case: Case, rule: Rule, area: Area) -> TraceView:
    people = list(result.contacts)
    residences = _residences(people)
    cases = _known_cases(people)
    venues = Venue.objects.select_related("commune").in_bulk({e.venue for e in result.edges})
    shown: list[ContactView] = []
    for person, c in result.contacts.items():
        home = residences.get(person)
        exposed_here = any(area.contains(venues[e.venue].commune) for e in c.edges)
        if area.everything or exposed_here or (home is not None and area.contains(home)):
            shown.append(
                ContactView(person, c.generation, c.first_exposure, c.seconds, c.edges, home, person in cases)
            )
    shown.sort(key=lambda c: (c.generation, c.first_exposure, c.person))
    visible = {c.person for c in shown}
    edges = [e for e in result.edges if e.contact in visible]
    counts = {g: sum(1 for c in shown if c.generation == g) for g in (1, 2)}
    return TraceView(case, result.depth, rule, shown, edges, venues, len(people) - len(shown), 0.0, counts)


def _residences(people: Sequence[bytes]) -> dict[bytes, Unit]:
    """Each person's commune from their latest health declaration, when they made one."""
    latest: dict[bytes, tuple[datetime, int]] = {}
    for chunk in _chunks(people):
        rows = HealthDeclaration.objects.filter(person_key__in=chunk).values_list(
            "person_key", "at", "commune_id"
        )
        if connection.vendor == "postgresql":
            rows = rows.order_by("person_key", "-at").distinct("person_key")
        for key, at, commune in rows:
            key = bytes(key)
            if key not in latest or at > latest[key][0]:
                latest[key] = (at, commune)
    units = Unit.objects.in_bulk({commune for _, commune in latest.values()})
    return {key: units[commune] for key, (_, commune) in latest.items() if commune in units}


def _known_cases(people: Sequence[bytes]) -> set[bytes]:
    found: set[bytes] = set()
    for chunk in _chunks(people):
        keys = Case.objects.filter(person_key__in=chunk).values_list("person_key", flat=True)
        found.update(bytes(k) for k in keys)
    return found


def _chunks(items: Sequence[bytes]) -> Iterable[Sequence[bytes]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def by_commune(view: TraceView) -> dict[Unit | None, list[ContactView]]:
    """The contact list split by commune of residence (None: never declared), for each commune to
    follow up its own people."""
    groups: dict[Unit | None, list[ContactView]] = defaultdict(list)
    for contact in view.contacts:
        groups[contact.residence].append(contact)
    return dict(groups)


# Clusters


@dataclass
class Cluster:
    venue: Venue
    cases: list[Case]
    stays: int
    contacts: int
    first: int
    last: int


def clusters(*, actor: User, start: datetime, end: datetime, min_cases: int, rule: Rule) -> list[Cluster]:
    """Venues in the tracer's area where at least `min_cases` distinct cases stayed while infectious
    between start and end, with how many other people they exposed there; audited."""
    area = require_tracer(actor)
    if end <= start:
        raise TracingError("to", NOT_AFTER % {"other": "from"})
    if min_cases < 1:
        raise TracingError("min_cases", _("must be at least 1"))
    cases = {bytes(c.person_key): c for c in Case.objects.filter(window_start__lt=end)}
    windows = _case_windows(cases.values(), epoch(start), epoch(end))
    store = CheckinStore(rule)
    by_venue: dict[int, list[Stay]] = defaultdict(list)
    for stay in store.stays_of(windows):
        by_venue[stay.venue].append(stay)
    crowded = {v: s for v, s in by_venue.items() if len({x.person for x in s}) >= min_cases}
    venues = Venue.objects.select_related("commune").in_bulk(list(crowded))
    found = [
        _cluster(venues[v], stays, cases, store, rule)
        for v, stays in crowded.items()
        if v in venues and area.contains(venues[v].commune)
    ]
    found.sort(key=lambda c: (-len(c.cases), -c.contacts, c.venue.code))
    audit(
        actor,
        "tracing.clusters",
        "",
        rows=len(found),
        min_cases=min_cases,
        window=_span(start, end),
        rule=rule.as_dict(),
    )
    return found


def _case_windows(cases: Iterable[Case], start: int, end: int) -> list[Window]:
    now = epoch(timezone.now())
    windows = []
    for case in cases:
        lo = max(epoch(case.window_start), start)
        hi = min(epoch(case.window_end) if case.window_end else now, end)
        if lo < hi:
            windows.append(Window(bytes(case.person_key), lo, hi))
    return windows


def _cluster(
    venue: Venue, stays: list[Stay], cases: dict[bytes, Case], store: CheckinStore, rule: Rule
) -> Cluster:
    exposed = {e.contact for e in exposures(store, stays, rule)} - set(cases)
    people = sorted({s.person for s in stays})
    return Cluster(
        venue=venue,
        cases=[cases[p] for p in people],
        stays=len(stays),
        contacts=len(exposed),
        first=min(s.start for s in stays),
        last=max(s.end for s in stays),
    )


def _span(start: datetime, end: datetime | None) -> list[str]:
    return [start.isoformat(), end.isoformat() if end else ""]


def rule_from(**minutes: int | None) -> Rule:
    """A rule from request parameters in minutes (hours for max_stay, days for contact_days)."""
    default = Rule()
    try:
        return Rule(
            min_overlap=60 * (minutes.get("min_overlap") or default.min_overlap // 60),
            default_dwell=60 * (minutes.get("dwell") or default.default_dwell // 60),
            decay_cap=60
            * (default.decay_cap // 60 if minutes.get("decay") is None else minutes["decay"] or 0),
            max_stay=3600 * (minutes.get("max_stay_hours") or default.max_stay // 3600),
            contact_days=minutes.get("contact_days") or default.contact_days,
        )
    except ValueError as e:  # the engine's own words: "name: why"
        name, _sep, why = str(e).partition(": ")
        raise TracingError(name, RULE_REASONS.get(why, why)) from None
