"""Units: loading editions and their succession, looking units up, searching by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q
from django.dispatch import Signal

from dieuhanh.db import insert_rows
from dieuhanh.errors import FORBIDDEN, NOT_A_REF, NOT_IN_AREA, DomainError
from dieuhanh.units import packaged
from dieuhanh.units.models import Edition, Kind, Succession, Unit, UnitQuerySet, split_ref
from dieuhanh.units.scoping import Area
from dieuhanh.units.text import fold

units_loaded = Signal()
"""Sent (with `report`) inside load_units' transaction once the maps and their succession are stored:
what hangs below the map's units (enterprises, parks) follows their changes there."""

Progress = Callable[[str, int, int], None]
"""progress(step, done, total): called as loading goes, for a progress bar."""

_UNIT_FIELDS = (
    "name",
    "short_name",
    "kind",
    "level",
    "parent_id",
    "path",
    "lat",
    "lon",
    "area_km2",
    "search_name",
)


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    successions_created: int = 0
    successions_updated: int = 0
    successions_removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            sum(self.created.values())
            + sum(self.updated.values())
            + self.successions_created
            + self.successions_updated
            + self.successions_removed
        )

    def as_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "created",
                "updated",
                "unchanged",
                "successions_created",
                "successions_updated",
                "successions_removed",
            )
        }


def load_units(*, progress: Progress | None = None) -> LoadReport:
    """Load VN-2021, VN-2025 and the succession between them; a second run changes nothing.

    Units are never deleted here: later data refers to them. One transaction, so a failure
    leaves the previous load as it was.
    """
    tick = progress or (lambda step, done, total: None)
    tick("Đọc dữ liệu từ các gói", 0, 1)
    editions = [packaged.read_2021()]
    vn2025, new_keys = packaged.read_2025()
    editions.append(vn2025)
    succession = packaged.read_succession(new_keys)
    tick("Đọc dữ liệu từ các gói", 1, 1)

    report = LoadReport()
    with transaction.atomic():
        for data in editions:
            _load_edition(data, report, tick)
        _load_succession(succession, report, tick)
        units_loaded.send(sender=load_units, report=report)
    return report


def _load_edition(data: packaged.EditionData, report: LoadReport, tick: Progress) -> None:
    Edition.objects.update_or_create(
        code=data.code,
        defaults={
            "name": data.name,
            "effective_from": data.effective_from,
            "levels": data.levels,
            "source": data.source,
        },
    )
    stored = {
        r[0]: (r[1], r[2:])
        for r in Unit.objects.filter(edition_id=data.code).values_list("code", "id", *_UNIT_FIELDS)
    }
    placed: dict[str, tuple[int, str]] = {code: (pk, values[5]) for code, (pk, values) in stored.items()}
    by_level: dict[int, list[packaged.UnitRow]] = {}
    for row in data.units:
        by_level.setdefault(row.level, []).append(row)
    created = updated = unchanged = done = 0
    for level in sorted(by_level):  # parents before children, so their ids and paths are known
        new_rows, changed = [], []
        for row in by_level[level]:
            values = _values(row, placed.get(row.parent_code) if row.parent_code else None)
            old = stored.get(row.code)
            if old is None:
                new_rows.append((data.code, row.code, *values))
            elif old[1] != values:
                changed.append(Unit(pk=old[0], **dict(zip(_UNIT_FIELDS, values, strict=True))))
            else:
                unchanged += 1
        insert_rows(Unit, ("edition_id", "code", *_UNIT_FIELDS), new_rows)
        Unit.objects.bulk_update(changed, _UNIT_FIELDS, batch_size=2000)
        if new_rows:
            placed.update(
                (code, (pk, path))
                for code, pk, path in Unit.objects.filter(edition_id=data.code, level=level).values_list(
                    "code", "id", "path"
                )
            )
        created, updated, done = created + len(new_rows), updated + len(changed), done + len(by_level[level])
        tick(f"Nạp {data.code}", done, len(data.units))
    report.created[data.code], report.updated[data.code], report.unchanged[data.code] = (
        created,
        updated,
        unchanged,
    )


def _values(row: packaged.UnitRow, parent: tuple[int, str] | None) -> tuple:
    """The row's stored values, in _UNIT_FIELDS order."""
    parent_id, path = (parent[0], f"{parent[1]}{row.code}/") if parent else (None, f"/{row.code}/")
    return (
        row.name,
        row.short_name,
        row.kind,
        row.level,
        parent_id,
        path,
        row.lat,
        row.lon,
        row.area_km2,
        fold(row.name),
    )


def _load_succession(rows: list[packaged.SuccessionRow], report: LoadReport, tick: Progress) -> None:
    old_ids = dict(Unit.objects.filter(edition_id="VN-2021").values_list("code", "id"))
    new_ids = dict(Unit.objects.filter(edition_id="VN-2025").values_list("code", "id"))
    wanted = {(old_ids[r.old_code], new_ids[r.new_code]): r.weight for r in rows}
    existing = {(s.old_id, s.new_id): s for s in Succession.objects.filter(old__edition_id="VN-2021")}
    stale = [s.pk for key, s in existing.items() if key not in wanted]
    changed = []
    for key, weight in wanted.items():
        s = existing.get(key)
        if s is not None and abs(s.weight - weight) > 1e-12:
            s.weight = weight
            changed.append(s)
    new = [(o, n, w) for (o, n), w in wanted.items() if (o, n) not in existing]
    Succession.objects.filter(pk__in=stale).delete()
    insert_rows(Succession, ("old_id", "new_id", "weight"), new)
    Succession.objects.bulk_update(changed, ["weight"], batch_size=2000)
    report.successions_created, report.successions_updated = len(new), len(changed)
    report.successions_removed = len(stale)
    tick("Nạp quan hệ kế thừa 2021 → 2025", len(rows), len(rows))


def get_unit(ref: str, within: UnitQuerySet | None = None) -> Unit:
    """The unit named 'EDITION:CODE' among `within` (all units by default); Unit.DoesNotExist if none."""
    return (within if within is not None else Unit.objects.all()).select_related("parent").ref(ref)


CURRENT_EDITION = "VN-2025"


def unit_in_area(
    ref: str,
    area: Area | None,
    *,
    field: str = "unit",
    may_act: Area | None = None,
    edition: str = CURRENT_EDITION,
) -> Unit:
    """The unit `ref` names inside the caller's `area` (None: a system caller, any unit): the one
    look-up through which every route and verb takes a unit reference. The answers follow the rule in
    docs/decisions.md ("Errors"): what is not a reference is 422 on `field`; no such unit and a unit
    outside the area are the same 404, so that nothing tells what exists outside it; a unit inside
    the area but outside `may_act` (the area of the role that may do this) is 403. A bare code is
    of `edition` (the current map unless the request names another)."""
    text = (ref or "").strip()
    full = text if ":" in text else f"{edition}:{text}"
    try:
        edition, code = _split(full)
    except ValueError:
        raise DomainError(field, NOT_A_REF % {"ref": (ref or "")[:40]}, code="invalid_unit") from None
    unit = Unit.objects.select_related("parent").filter(edition_id=edition, code=code).first()
    if unit is None or (area is not None and not area.contains(unit)):
        raise DomainError(field, NOT_IN_AREA % {"ref": text}, status=404, code="unit_not_found")
    if may_act is not None and not may_act.contains(unit):
        raise DomainError(field, FORBIDDEN, status=403)
    return unit


def _split(ref: str) -> tuple[str, str]:
    """EDITION:CODE of printable characters that could name a unit (a NUL cannot reach PostgreSQL)."""
    edition, code = split_ref(ref)
    if len(ref) > 60 or not all(c.isprintable() and not c.isspace() for c in ref):
        raise ValueError(ref)
    return edition, code


def ancestors(unit: Unit) -> list[Unit]:
    """From the nation down to the unit's parent, in one query through the path."""
    codes = unit.path.strip("/").split("/")[:-1]
    found = {u.code: u for u in Unit.objects.filter(edition_id=unit.edition_id, code__in=codes)}
    return [found[c] for c in codes if c in found]


def search(units: UnitQuerySet, query: str) -> UnitQuerySet:
    """Units whose name holds the query, with or without diacritics ('ben thanh' → Phường Bến Thành)."""
    folded = fold(query)
    if not folded:
        return units
    return units.filter(search_name__contains=folded)


def with_children_count(units: UnitQuerySet) -> UnitQuerySet:
    return units.annotate(children_count=Count("children"))


def successors(unit: Unit) -> Iterable[Succession]:
    return unit.successions.select_related("new", "new__edition").order_by("-weight", "new__code")


def predecessors(unit: Unit) -> Iterable[Succession]:
    return unit.precessions.select_related("old", "old__edition").order_by("-weight", "old__code")


def counts(edition: str) -> dict[str, int]:
    """How many units of each kind an edition has."""
    rows = Unit.objects.filter(edition_id=edition).values("kind").annotate(n=Count("id"))
    return {r["kind"]: r["n"] for r in rows}


def filter_units(
    units: UnitQuerySet,
    *,
    edition: str | None = None,
    level: int | None = None,
    kind: Kind | str | None = None,
    parent: Unit | None = None,
) -> UnitQuerySet:
    q = Q()
    if edition:
        q &= Q(edition_id=edition)
    if level is not None:
        q &= Q(level=level)
    if kind:
        q &= Q(kind=kind)
    if parent is not None:
        q &= Q(parent=parent)
    return units.filter(q)
