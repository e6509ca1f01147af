"""Warehouse verbs: register sources and venues, ingest, read counts and a person's events, purge."""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit, create_token, create_user
from dieuhanh.errors import DomainError
from dieuhanh.units.models import Succession, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.warehouse import partitions
from dieuhanh.warehouse.enterprises import figures as enterprise_figures
from dieuhanh.warehouse.ingest import BATCH_SIZE, VN_TZ, BatchesAhead, Pipeline, Record, Summary, batches
from dieuhanh.warehouse.kinds import KINDS, FieldError, symptom_codes
from dieuhanh.warehouse.models import Rollup, Source, Venue, VenueKind
from dieuhanh.warehouse.persons import person_key, short
from dieuhanh.warehouse.reasons import LACKS_COLUMNS, NOT_A_NUMBER, lat_lon_fault


class WarehouseError(DomainError):
    """A request the warehouse cannot carry out: the input at fault and why."""


# Sources

UNKNOWN_KIND = _("unknown event kind '%(kind)s'; kinds are: %(kinds)s")
ONLY_SOURCES = _("only a source platform's token may send events")


@transaction.atomic
def create_source(*, actor: User | None, name: str, kinds: Iterable[str], edition: str) -> tuple[Source, str]:
    """Register a source platform with its own service user; returns it and its token (shown once)."""
    kinds = sorted(set(kinds))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise WarehouseError(
            "kinds",
            _("unknown kind(s) %(unknown)s; kinds are: %(kinds)s")
            % {"unknown": ", ".join(unknown) or "-", "kinds": ", ".join(KINDS)},
        )
    if edition not in ("VN-2021", "VN-2025"):
        raise WarehouseError(
            "edition", _("unknown edition '%(edition)s': use VN-2021 or VN-2025") % {"edition": edition}
        )
    if Source.objects.filter(name=name).exists():
        raise WarehouseError("name", _("source '%(name)s' already exists") % {"name": name}, 409)
    user = create_user(actor=actor, username=f"source:{name}", password=None, kind=User.Kind.SOURCE)
    source = Source.objects.create(name=name, user=user, kinds=kinds, edition_id=edition)
    _token, raw = create_token(actor=actor, user=user, name=f"source {name}")
    audit(actor, "source.create", name, kinds=kinds, edition=edition)
    return source, raw


def source_of(user: Any) -> Source | None:
    return Source.objects.select_related("user").filter(user=user).first() if user.is_authenticated else None


def check_may_send(source: Source, kind: str) -> None:
    """WarehouseError (403) unless the source was registered for this kind of event."""
    if kind not in source.kinds:
        raise WarehouseError(
            "kind",
            _("source '%(source)s' may not send '%(kind)s' events (it may send: %(kinds)s)")
            % {"source": source.name, "kind": kind, "kinds": ", ".join(source.kinds)},
            403,
        )


# Ingest


def ingest(
    source: Source,
    kind: str,
    records: Iterable[tuple[int, Record]],
    *,
    atomic: bool = False,
    progress: Callable[[int, Summary], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Summary:
    """Ingest records of one kind in batches of `batch_size` and sum up what happened.

    With `atomic` (a request over HTTP or NATS) every batch is written in one transaction: all of
    them or none, whatever stops the process. Without it (files) each batch commits on its own, and
    `progress(line, summary)` tells, after each commit, the batch's last line and what became of it:
    the line after it is where to resume.
    """
    check_may_send(source, kind)
    pipeline, total = Pipeline(source, kind), Summary()
    to_open = atomic
    # PostgreSQL reads the next batch while the server ends the current one's COPY (Pipeline.stream).
    pending = BatchesAhead(batches(records, batch_size))
    with contextlib.ExitStack() as stack:
        for batch in pending:
            # PostgreSQL validates a batch as it copies it in (Pipeline.stream); SQLite first validates.
            prepared = None if pipeline.streams else pipeline.prepare(batch)
            # Opened once the first batch is validated: on SQLite the transaction holds the one write
            # lock, which a request of one batch then holds no longer than before.
            if to_open:
                stack.enter_context(transaction.atomic())
                to_open = False
            done = pipeline.stream(batch, pending.fill) if prepared is None else pipeline.write(*prepared)
            total.add(done)
            if progress:
                progress(batch[-1][0], done)
    return total


# Venues


@dataclass
class VenueInput:
    code: str
    name: str
    kind: str
    commune: str
    lat: float | None = None
    lon: float | None = None
    dwell_minutes: int | None = None


Resolve = Callable[[str], "Unit | None"]
_VENUE_FIELDS = ("name", "kind", "commune", "lat", "lon", "dwell_minutes")


def _venue_values(v: VenueInput, edition: str, resolve: Resolve) -> dict[str, Any]:
    """The venue's stored values, or FieldError naming the first bad field."""
    code, name = v.code.strip(), v.name.strip()
    if not code or len(code) > 40 or ":" in code:
        raise FieldError("code", _("must be 1–40 characters without ':'"))
    if not name:
        raise FieldError("name", _("is required"))
    if v.kind not in VenueKind.values:
        raise FieldError("kind", _("must be one of %(codes)s") % {"codes": ", ".join(VenueKind.values)})
    ref = v.commune.strip() if ":" in v.commune else f"{edition}:{v.commune.strip()}"
    commune = resolve(ref)
    if commune is None:
        raise FieldError("commune", _("'%(ref)s' is not a commune of your area") % {"ref": v.commune})
    if fault := lat_lon_fault(v.lat, v.lon):
        raise FieldError(*fault)
    if v.dwell_minutes is not None and not 1 <= v.dwell_minutes <= 24 * 60:
        raise FieldError("dwell_minutes", _("must be between 1 and 1440"))
    return {
        "code": code,
        "name": name,
        "kind": v.kind,
        "commune": commune,
        "lat": v.lat,
        "lon": v.lon,
        "dwell_minutes": v.dwell_minutes,
    }


def _commune_in(area: Area | None) -> Resolve:
    def resolve(ref: str) -> Unit | None:
        edition, _, code = ref.partition(":")
        return Unit.objects.leaves().within(area).filter(edition_id=edition, code=code).first()

    return resolve


@transaction.atomic
def save_venue(
    *, actor: User | None, venue: VenueInput, edition: str = "VN-2025", area: Area | None = None
) -> Venue:
    """Create or update a venue by code; within `area` when given (an API caller's)."""
    values = _venue_values(venue, edition, _commune_in(area))
    existing = Venue.objects.filter(code=values["code"]).select_related("commune").first()
    if existing is not None and area is not None and not area.contains(existing.commune):
        raise FieldError("code", _("venue '%(code)s' belongs to another area") % {"code": values["code"]})
    saved, created = Venue.objects.update_or_create(code=values.pop("code"), defaults=values)
    audit(actor, "venue.create" if created else "venue.update", saved.code, commune=saved.commune.ref)
    return saved


@dataclass
class VenueImport:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def import_venues(*, actor: User | None, path: Path, edition: str = "VN-2025") -> VenueImport:
    """Import venues from CSV (code,name,kind,commune,lat,lon,dwell_minutes); bad lines are reported.

    Good lines are written together in one transaction, whatever the bad ones.
    """
    result, rows = VenueImport(), _read_venue_rows(path, edition)
    accepted: dict[str, dict[str, Any]] = {}
    for line, values in rows:
        if isinstance(values, FieldError):
            result.rejected.append((line, values.field or "", str(values)))
        elif values["code"] in accepted:
            result.rejected.append(
                (line, "code", _("'%(code)s' appears twice in the file") % {"code": values["code"]})
            )
        else:
            accepted[values["code"]] = values
    with transaction.atomic():
        existing = Venue.objects.in_bulk(list(accepted), field_name="code")
        new = [Venue(**v) for code, v in accepted.items() if code not in existing]
        changed = [_apply(existing[code], v) for code, v in accepted.items() if code in existing]
        Venue.objects.bulk_create(new, batch_size=2000)
        Venue.objects.bulk_update(changed, _VENUE_FIELDS, batch_size=2000)
        result.created, result.updated = len(new), len(changed)
        audit(
            actor,
            "venues.import",
            path.name,
            rows=len(accepted),
            created=len(new),
            updated=len(changed),
            rejected=len(result.rejected),
        )
    return result


def _apply(venue: Venue, values: dict[str, Any]) -> Venue:
    for name in _VENUE_FIELDS:
        setattr(venue, name, values[name])
    return venue


def _read_venue_rows(path: Path, edition: str) -> list[tuple[int, dict[str, Any] | FieldError]]:
    communes = {f"{e}:{c}": u for u in Unit.objects.leaves() for e, c in [(u.edition_id, u.code)]}
    rows: list[tuple[int, dict[str, Any] | FieldError]] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("code", "name", "kind", "commune") if c not in (reader.fieldnames or [])]
        if missing:
            raise WarehouseError(
                None,
                LACKS_COLUMNS % {"file": path, "columns": ", ".join(missing)},
            )
        for row in reader:
            try:
                rows.append((reader.line_num, _venue_values(_venue_input(row), edition, communes.get)))
            except FieldError as e:
                rows.append((reader.line_num, e))
    return rows


def _venue_input(row: dict[str, str]) -> VenueInput:
    def number(name: str, cast):
        value = (row.get(name) or "").strip()
        try:
            return cast(value) if value else None
        except ValueError:
            raise FieldError(name, NOT_A_NUMBER % {"value": value}) from None

    return VenueInput(
        code=row.get("code") or "",
        name=row.get("name") or "",
        kind=(row.get("kind") or "").strip(),
        commune=row.get("commune") or "",
        lat=number("lat", float),
        lon=number("lon", float),
        dwell_minutes=number("dwell_minutes", int),
    )


# Counts from rollups


Targets = dict[int, list[tuple[str, float]]]


@dataclass(frozen=True)
class CountQuery:
    kind: str
    unit: Unit
    start: date
    end: date
    by: str  # day | unit | none
    dims: dict[str, str]


def counts(query: CountQuery, targets: tuple[Targets, Targets] | None = None) -> dict[str, Any]:
    """Counts of one kind for a unit of either map, from rollups, re-aggregated across map editions.

    Rollups are kept per commune of the map the source used. Communes of the unit's own map count
    whole; communes of the other map count by their succession weights (2021 → 2025 as the
    conversion data gives them; 2025 → 2021 by the same weights, normalised over the new commune's
    predecessors), so totals are conserved.
    """
    kind = KINDS[query.kind]
    if enterprise_figures.is_enterprise(query.unit):  # its workers' events and its gates' check-ins
        return enterprise_figures.counts(
            query.kind, query.unit, query.start, query.end, query.by, query.dims, kind.dims
        )
    rows = Rollup.objects.filter(kind=query.kind, day__gte=query.start, day__lte=query.end)
    for name, value in query.dims.items():
        rows = rows.filter(**{"dim1" if kind.dims[0] == name else "dim2": value})
    group = ("commune_id", "day") if query.by == "day" else ("commune_id",)
    same, other = targets or _target_of(query.unit, by_unit=query.by == "unit")
    in_subtree = rows.filter(commune__edition_id=query.unit.edition_id, commune__path__under=query.unit.path)
    totals: dict[tuple, float] = defaultdict(float)
    for part, weights in [(in_subtree, same), (_other_map_rows(rows, query.unit, other), other)]:
        for r in part.values(*group).annotate(n=Sum("count")):
            for output, weight in weights.get(r["commune_id"], ()):
                totals[(output, r.get("day"))] += r["n"] * weight
    return _count_rows(totals, query)


def _other_map_rows(rows: QuerySet[Rollup], unit: Unit, other: dict[int, Any]) -> QuerySet[Rollup]:
    """Rollups of the other map's communes that count into the unit (all of that map, for the nation)."""
    if unit.kind == "nation":
        return rows.exclude(commune__edition_id=unit.edition_id)
    return rows.filter(commune_id__in=list(other))


def _target_of(unit: Unit, *, by_unit: bool) -> tuple[Targets, Targets]:
    """Commune id → [(output ref, weight)] for the communes counting into `unit`: of its map, of the other."""
    outputs = _output_units(unit, by_unit)
    same = {c_id: [(out, 1.0)] for c_id, out in outputs.items()}
    other: dict[int, list[tuple[str, float]]] = defaultdict(list)
    if unit.edition_id == "VN-2025":
        for s in Succession.objects.filter(new_id__in=list(outputs)).values("old_id", "new_id", "weight"):
            other[s["old_id"]].append((outputs[s["new_id"]], s["weight"]))
    else:
        links = list(Succession.objects.filter(old_id__in=list(outputs)).values("old_id", "new_id", "weight"))
        share: dict[int, float] = defaultdict(float)
        new_ids = {s["new_id"] for s in links}
        for new_id, weight in Succession.objects.filter(new_id__in=new_ids).values_list("new_id", "weight"):
            share[new_id] += weight
        for s in links:
            other[s["new_id"]].append((outputs[s["old_id"]], s["weight"] / share[s["new_id"]]))
    return same, dict(other)


def _output_units(unit: Unit, by_unit: bool) -> dict[int, str]:
    """Commune id → the ref it counts under: the unit itself, or (by unit) its child holding the commune."""
    communes = Unit.objects.under(unit).leaves().values_list("id", "path")
    if not by_unit or unit.kind == "commune":
        return {pk: unit.ref for pk, _ in communes}
    depth = unit.path.count("/")  # the child's code is the path element right after the unit's
    return {pk: f"{unit.edition_id}:{path.split('/')[depth]}" for pk, path in communes}


def _count_rows(totals: dict[tuple, float], query: CountQuery) -> dict[str, Any]:
    def shown(n: float) -> float | int:
        return round(n) if abs(n - round(n)) < 1e-6 else round(n, 2)

    rows = [
        {"unit": ref, "day": day, "count": shown(n)}
        for (ref, day), n in sorted(totals.items(), key=lambda item: (item[0][1] or date.min, item[0][0]))
    ]
    if query.by == "none":
        rows = [{"unit": query.unit.ref, "day": None, "count": shown(sum(totals.values()))}]
    return {"total": shown(sum(totals.values())), "rows": rows}


# A person's events (tracers)


def person_events(
    *,
    actor: User,
    person_id: str,
    area: Area,
    start: datetime | None,
    end: datetime | None,
) -> list[dict[str, Any]]:
    """Every event of one person within the tracer's area and the time window; audited."""
    key = person_key(person_id)
    found: list[dict[str, Any]] = []
    for kind in KINDS.values():
        events = kind.model.objects.filter(person_key=key).filter(area.q("commune"))
        if start:
            events = events.filter(at__gte=start)
        if end:
            events = events.filter(at__lte=end)
        related = [f.removesuffix("_id") for f in kind.fields if f.endswith("_id")]
        for event in events.select_related("commune", "source", *related):
            found.append(_event_out(kind.name, event))
    found.sort(key=lambda e: e["time"])
    audit(actor, "persons.events", short(key), rows=len(found), start=str(start or ""), end=str(end or ""))
    return found


def _event_out(kind: str, event: Any) -> dict[str, Any]:
    spec = KINDS[kind]
    details: dict[str, Any] = {}
    for attname, name in zip(spec.fields, spec.json_fields, strict=True):
        value = getattr(event, attname)
        if attname == "venue_id":
            value = event.venue.code
        elif attname == "from_commune_id":
            value = event.from_commune.ref
        elif attname == "symptoms":
            value = symptom_codes(value)
        details[name] = value
    return {
        "kind": kind,
        "time": event.at.astimezone(VN_TZ),
        "commune": event.commune.ref,
        "commune_name": event.commune.name,
        "source": event.source.name,
        "source_event_id": event.source_event_id,
        "details": details,
    }


# Retention


@dataclass
class PurgeReport:
    deleted: dict[str, int]
    cutoffs: dict[str, datetime]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # partitions dropped whole (PostgreSQL)


def purge(
    *, actor: User | None, now: datetime | None = None, retention: dict[str, int] | None = None
) -> PurgeReport:
    """Remove person-level events older than their kind's retention; rollups stay as they are.

    SQLite deletes the rows. PostgreSQL (warehouse.partitions) drops the partitions wholly older than
    the cut-off and deletes row by row only the older rows of the partition straddling it and of the
    default partition, all in one transaction with the audit row; the dedupe keys of the events gone
    follow in a transaction per kind, so that the event tables stay locked only for the drops.
    """
    now = now or timezone.now()
    retention = settings.RETENTION_DAYS if retention is None else retention
    unknown = [k for k in retention if k not in KINDS]
    if unknown:
        raise WarehouseError("retention", _("retention names unknown kind '%(kind)s'") % {"kind": unknown[0]})
    cutoffs = {kind: now - timedelta(days=days) for kind, days in retention.items()}
    tables = {kind: KINDS[kind].model._meta.db_table for kind in cutoffs}
    split = {kind: partitions.is_partitioned(table) for kind, table in tables.items()}
    report = PurgeReport({}, cutoffs)
    with transaction.atomic():
        # Rows first, then the partitions' counts, then the drops: a drop locks its table until the
        # commit, the rest need not.
        for kind, cutoff in cutoffs.items():
            if split[kind]:
                report.deleted[kind] = partitions.purge_straddling(tables[kind], cutoff)
            else:
                report.deleted[kind], _by_model = KINDS[kind].model.objects.filter(at__lt=cutoff).delete()
        expired = {
            kind: partitions.expired_partitions(tables[kind], cutoff)
            for kind, cutoff in cutoffs.items()
            if split[kind]
        }
        for kind, counted in expired.items():
            partitions.drop_partitions(tables[kind], counted)
            report.deleted[kind] += sum(counted.values())
            report.dropped[kind] = list(counted)
        audit(
            actor,
            "events.purge",
            rows=sum(report.deleted.values()),
            deleted=report.deleted,
            before={k: cutoff.isoformat() for k, cutoff in report.cutoffs.items()},
            dropped=report.dropped,
        )
    for kind, cutoff in cutoffs.items():
        if split[kind]:
            partitions.purge_keys(tables[kind], cutoff)
    return report


@dataclass(frozen=True)
class Figure:
    kind: str
    label: str
    total: float | int
    start: date
    end: date


def recent_figures(unit: Unit, days: int = 30) -> list[Figure]:
    """Each kind's count for the unit over the last `days` days that have data (empty without data)."""
    latest = Rollup.objects.order_by("-day").values_list("day", flat=True).first()
    if latest is None:
        return []
    start = latest - timedelta(days=days - 1)
    targets = _target_of(unit, by_unit=False)
    return [
        Figure(
            kind.name,
            kind.label,
            counts(CountQuery(kind.name, unit, start, latest, "none", {}), targets)["total"],
            start,
            latest,
        )
        for kind in KINDS.values()
    ]
