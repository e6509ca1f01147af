"""The enterprise rollups: counts per enterprise × day × kind × dimensions, kept up to date

- at ingest, in the batch's own transaction (`on_ingest`): a worker's event counts for every
  enterprise whose roster holds them on the event's day, wherever the event happened; a check-in at
  an enterprise's venue counts for that enterprise (and, as before, for the venue's commune);
- when a roster changes (`recount_workers`): only the workers added or whose dates changed are read
  back from the events, their old interval taken out and the new one put in;
- when a venue is linked to an enterprise (`recount_venue`).

So figures are answered from the rollups (a few hundred rows for a park), never from the events.
Events already removed by retention (`dieuhanh purge`) can no longer be counted by a later roster
change; the figures counted while they were there stay.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from django.db import connection

from dieuhanh.live import BUS, area_keys, publish_on_commit
from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.enterprises.models import EnterpriseRollup, EnterpriseRollupMonth, VenueLink, Worker
from dieuhanh.warehouse.models import (
    CheckIn,
    HealthDeclaration,
    Quarantine,
    TestResult,
    TravelDeclaration,
    Vaccination,
)

# The person kinds an enterprise counts by its roster, with the columns their dimensions come from.
PERSON_KINDS: dict[str, tuple[Any, tuple[str, ...], Callable[..., tuple[str, str]]]] = {
    "health": (HealthDeclaration, ("symptoms",), lambda s: ("yes" if s else "no", "")),
    "travel": (TravelDeclaration, ("mode",), lambda m: (m, "")),
    "test": (TestResult, ("result", "method"), lambda r, m: (r, m)),
    "vaccination": (Vaccination, ("dose",), lambda d: (str(d), "")),
    "quarantine": (Quarantine, ("place",), lambda p: (p, "")),
}
COUNTED_KINDS = ("checkin", *PERSON_KINDS)

Interval = tuple[date, date | None]
Change = tuple[bytes, Interval | None, Interval | None]  # person key, old interval, new interval
Cells = Counter  # (enterprise id, day, dim1, dim2) → n
_PERSON, _VENUE, _DOSE = 4, 5, 5  # places in an ingest row (source, seid, commune, at, key, *extra)


def _within(interval: Interval | None, day: date) -> bool:
    return interval is not None and interval[0] <= day and (interval[1] is None or day <= interval[1])


def on_ingest(kind: str, prepared: list[tuple], to_db_day: Callable[[date], Any]) -> None:
    """Add an ingest batch's events to the rollups of the enterprises they count for (ingest._write)."""
    cells: Cells = Counter()
    if kind == "checkin":
        owner = _owners(prepared)
        if not owner:
            return
        for row, (_commune, day, d1, d2) in prepared:
            enterprise = owner.get(row[_VENUE])
            if enterprise is not None:
                cells[(enterprise, day, d1, d2)] += 1
    elif kind in PERSON_KINDS:
        keys = list({row[_PERSON] for row, _cell in prepared if row[_PERSON] is not None})
        rosters = _rosters(keys)
        if not rosters:
            return
        doses: dict[bytes, int] = {}
        for row, (_commune, day, d1, d2) in prepared:
            for enterprise, interval in rosters.get(row[_PERSON], ()):
                if _within(interval, day):
                    cells[(enterprise, day, d1, d2)] += 1
            if kind == "vaccination" and row[_PERSON] in rosters:
                doses[row[_PERSON]] = max(doses.get(row[_PERSON], 0), int(row[_DOSE]))
        for key, dose in doses.items():
            Worker.objects.filter(person_key=key, max_dose__lt=dose).update(max_dose=dose)
    else:
        return
    add(kind, cells, to_db_day)
    announce(kind, {cell[0] for cell in cells})


def announce(kind: str, enterprises: set[int]) -> None:
    """In the writer's transaction: a `figures` event to the rooms of these enterprises and of their
    parks (whose keys a commune's events never reach), sent when it commits; it also ends their rooms'
    cached figures."""
    if not enterprises or not BUS.listening_to_areas():
        return
    places = Unit.objects.filter(pk__in=enterprises).values_list("edition_id", "path")
    keys = set().union(*(area_keys(edition, path) for edition, path in places))
    publish_on_commit(keys, "figures", {"kind": kind, "enterprises": len(enterprises)})


def _owners(prepared: list[tuple]) -> dict[int, int]:
    """The enterprise of each of a check-in batch's venues that one owns (a gate). Asked once per
    batch: a batch of 100,000 check-ins names thousands of venues, and building their list and its
    query cost about 0.5 µs of CPU per check-in, in the batch's tail, while the server waited."""
    if not VenueLink.objects.exists():  # no enterprise has a gate: nothing to look up
        return {}
    venues = list({row[_VENUE] for row, _cell in prepared})
    if connection.vendor == "postgresql":  # one array parameter, as _rosters
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT venue_id, enterprise_id FROM {VenueLink._meta.db_table} WHERE venue_id = ANY(%s)",  # noqa: S608
                [venues],
            )
            return dict(cursor.fetchall())
    return dict(VenueLink.objects.filter(venue_id__in=venues).values_list("venue_id", "enterprise_id"))


def _rosters(keys: list[bytes]) -> dict[bytes, list[tuple[int, Interval]]]:
    found: dict[bytes, list[tuple[int, Interval]]] = defaultdict(list)
    if not keys or not Worker.objects.exists():  # no roster at all: nothing to look up
        return found
    if connection.vendor == "postgresql":  # one array parameter: a batch's keys in one round trip
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT person_key, enterprise_id, start, "end" FROM {Worker._meta.db_table} '  # noqa: S608
                "WHERE person_key = ANY(%s)",
                [keys],
            )
            rows: Iterable[tuple] = cursor.fetchall()
    else:
        rows = (
            row
            for at in range(0, len(keys), 900)  # SQLite's bound parameters are few
            for row in Worker.objects.filter(person_key__in=keys[at : at + 900]).values_list(
                "person_key", "enterprise_id", "start", "end"
            )
        )
    for key, enterprise, start, end in rows:
        found[bytes(key)].append((enterprise, (start, end)))
    return found


def add(kind: str, cells: Cells, to_db_day: Callable[[date], Any] | None = None) -> None:
    """Add (or, with negative counts, take) cells to the rollups in one statement; empty cells go."""
    from dieuhanh.warehouse.ingest import upsert_counts  # ingest calls on_ingest: imported when used

    cells = Counter({cell: n for cell, n in cells.items() if n})
    if not cells:
        return
    day_of = to_db_day or _db_day
    months: Counter = Counter()
    for (e, day, d1, d2), n in cells.items():
        months[(e, day.replace(day=1), d1, d2)] += n
    for model, column, found in [(EnterpriseRollup, "day", cells), (EnterpriseRollupMonth, "month", months)]:
        rows = [(e, day_of(when), kind, d1, d2, n) for (e, when, d1, d2), n in found.items() if n]
        if rows:
            upsert_counts(model._meta.db_table, f"enterprise_id, {column}, kind, dim1, dim2", rows)
    if any(n < 0 for n in cells.values()):
        for model in (EnterpriseRollup, EnterpriseRollupMonth):
            model.objects.filter(enterprise_id__in={c[0] for c in cells}, count__lte=0).delete()


def _db_day(day: date) -> Any:
    """A day as the backend stores it (SQLite: ISO text, as Django writes it)."""
    return day.isoformat() if connection.vendor == "sqlite" else day


def recount_workers(enterprise: int, changes: Iterable[Change]) -> None:
    """Move the changed workers' events in or out of the enterprise's rollups."""
    by_key = {key: (old, new) for key, old, new in changes if old != new}
    if not by_key:
        return
    keys = list(by_key)
    for kind, (model, columns, dims) in PERSON_KINDS.items():
        cells: Cells = Counter()
        for at in range(0, len(keys), 900):
            events = model.objects.filter(person_key__in=keys[at : at + 900]).values_list(
                "person_key", "at", *columns
            )
            for key, when, *values in events:
                day = when.astimezone(VN_TZ).date()
                old, new = by_key[bytes(key)]
                n = int(_within(new, day)) - int(_within(old, day))
                if n:
                    d1, d2 = dims(*values)
                    cells[(enterprise, day, d1, d2)] += n
        add(kind, cells)
        announce(kind, {enterprise} if cells else set())


def refresh_doses(keys: list[bytes]) -> None:
    """Set the workers' highest dose from their vaccinations (a worker added after being vaccinated)."""
    for at in range(0, len(keys), 900):
        chunk = keys[at : at + 900]
        highest: dict[bytes, int] = {}
        for key, dose in Vaccination.objects.filter(person_key__in=chunk).values_list("person_key", "dose"):
            highest[bytes(key)] = max(highest.get(bytes(key), 0), dose)
        for key, dose in highest.items():
            Worker.objects.filter(person_key=key, max_dose__lt=dose).update(max_dose=dose)


def recount_venue(venue: int, old: int | None, new: int | None) -> None:
    """Move a venue's stored check-ins from its old enterprise's rollups to its new one's."""
    counted: Counter = Counter()
    for when, kind in CheckIn.objects.filter(venue_id=venue).values_list("at", "venue__kind"):
        counted[(when.astimezone(VN_TZ).date(), kind)] += 1
    cells: Cells = Counter()
    for (day, venue_kind), n in counted.items():
        if old is not None:
            cells[(old, day, venue_kind, "")] -= n
        if new is not None:
            cells[(new, day, venue_kind, "")] += n
    add("checkin", cells)
    announce("checkin", {e for e in (old, new) if e is not None} if cells else set())
