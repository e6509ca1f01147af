"""Enterprise verbs: register enterprises and parks, import them and their rosters, link venues,
follow a map change. Every verb takes `actor=`, runs in a transaction and writes its audit row."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.errors import DomainError
from dieuhanh.sheets import TableError, read_table
from dieuhanh.units.models import Succession, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import unit_in_area
from dieuhanh.units.text import fold
from dieuhanh.vnformat import DateTextError, cell_date
from dieuhanh.warehouse.enterprises import rollups
from dieuhanh.warehouse.enterprises.models import (
    ENTERPRISE_LEVEL,
    KINDS,
    PARK_LEVEL,
    Profile,
    VenueLink,
    Worker,
)
from dieuhanh.warehouse.models import Venue
from dieuhanh.warehouse.persons import PersonIdError, person_key, short
from dieuhanh.warehouse.reasons import LACKS_COLUMNS, NOT_A_NUMBER, lat_lon_fault

TAX_CODE = re.compile(r"\d{10}(-\d{3})?")
ADMIN_KINDS = ("commune", "district")  # where an enterprise or a park may stand
ROSTER_WRITERS = ("admin", "operator", "enterprise")


class EnterpriseError(DomainError):
    """A refused request: `field` names the input at fault, `status` the HTTP answer."""


# Who may do what


def creating_area(user: User) -> Area:
    """Where the user may register enterprises and parks: an admin's area, a province operator's
    province (a national operator's whole country)."""
    if user.is_superuser:
        return Area(True, frozenset())
    grants = [g for g in user.held() if g.role == "admin" or (g.role == "operator" and g.unit.level <= 1)]
    if any(g.unit.kind == "nation" for g in grants):
        return Area(True, frozenset())
    return Area(False, frozenset((g.unit.edition_id, g.unit.path) for g in grants))


def roster_area(user: User) -> Area:
    """Where the user may import rosters and link venues: admins, operators and the enterprises' own
    officers, each in their area."""
    if user.is_superuser:
        return Area(True, frozenset())
    grants = [g for g in user.held() if g.role in ROSTER_WRITERS]
    if any(g.unit.kind == "nation" for g in grants):
        return Area(True, frozenset())
    return Area(False, frozenset((g.unit.edition_id, g.unit.path) for g in grants))


def enterprise_in(
    ref: str, area: Area, *, kinds: Iterable[str] = ("enterprise",), name: str = "unit"
) -> Unit:
    """The enterprise (or park) named EDITION:CODE inside the area; one outside it is as unknown as
    one that does not exist (404)."""
    unit = unit_in_area(ref, area, field=name)
    if unit.kind not in kinds:
        raise EnterpriseError(name, _("no enterprise %(ref)s in your area") % {"ref": ref}, 404)
    return unit


# Registering enterprises and parks


@dataclass
class EnterpriseInput:
    kind: str
    tax_code: str
    name: str
    address: str = ""
    commune: str = ""  # EDITION:CODE (a bare code is read on VN-2025)
    park: str = ""  # an enterprise's park, EDITION:CODE
    province: str = ""  # a park without a commune: its province
    lat: float | None = None
    lon: float | None = None


@dataclass
class _Placed:
    data: EnterpriseInput
    parent: Unit
    commune: Unit | None


def _place(data: EnterpriseInput, area: Area) -> _Placed:
    """Check the input and find where the unit goes; EnterpriseError naming the first bad field."""
    if data.kind not in KINDS:
        raise EnterpriseError("kind", _("must be enterprise or industrial_park"))
    tax = data.tax_code.strip()
    if not TAX_CODE.fullmatch(tax):
        raise EnterpriseError(
            "tax_code", _("'%(v)s' is not a tax code (10 digits, a branch's with -3 more)") % {"v": tax}
        )
    data.tax_code, data.name, data.address = tax, data.name.strip(), data.address.strip()
    if not data.name or len(data.name) > 200:
        raise EnterpriseError("name", _("a name is required, at most 200 characters"))
    if len(data.address) > 300:
        raise EnterpriseError("address", _("at most 300 characters"))
    if fault := lat_lon_fault(data.lat, data.lon):
        raise EnterpriseError(*fault)
    commune = _commune(data.commune, area) if data.commune.strip() else None
    if data.kind == "enterprise":
        if data.province.strip():
            raise EnterpriseError(
                "province", _("only an industrial park may stand directly under a province")
            )
        if commune is None:
            raise EnterpriseError("commune", _("the commune of the enterprise's seat is required"))
        park = _park(data.park, area, commune) if data.park.strip() else None
        return _Placed(data, park or commune, commune)
    if data.park.strip():
        raise EnterpriseError("park", _("an industrial park does not stand in another park"))
    if commune is not None:
        return _Placed(data, commune, commune)
    if not data.province.strip():
        raise EnterpriseError("commune", _("the commune (or province) the park stands in is required"))
    province = unit_in_area(data.province, area, field="province")
    if province.kind != "province":
        raise EnterpriseError("province", _("%(v)s is not a province") % {"v": province.ref})
    return _Placed(data, province, None)


def _commune(ref: str, area: Area) -> Unit:
    found = unit_in_area(ref, area, field="commune")
    if not Unit.objects.leaves().filter(pk=found.pk).exists():
        raise EnterpriseError("commune", _("%(v)s is not a commune") % {"v": found.ref})
    return found


def _park(ref: str, area: Area, commune: Unit) -> Unit:
    park = unit_in_area(ref, area, field="park")
    if park.kind != "industrial_park":
        raise EnterpriseError("park", _("%(v)s is not an industrial park") % {"v": park.ref})
    if park.edition_id != commune.edition_id or park.path.split("/")[2] != commune.path.split("/")[2]:
        raise EnterpriseError("park", _("the park and the commune must be in one province, on the same map"))
    return park


def _create(placed: _Placed) -> Unit:
    data, parent = placed.data, placed.parent
    if Unit.objects.filter(edition_id=parent.edition_id, code=data.tax_code).exists():
        raise EnterpriseError(
            "tax_code", _("tax code %(v)s is already registered") % {"v": data.tax_code}, 409
        )
    anchor = placed.commune or parent
    unit = Unit.objects.create(
        edition_id=parent.edition_id,
        code=data.tax_code,
        name=data.name,
        kind=data.kind,
        level=ENTERPRISE_LEVEL if data.kind == "enterprise" else PARK_LEVEL,
        parent=parent,
        path=f"{parent.path}{data.tax_code}/",
        lat=data.lat if data.lat is not None else anchor.lat,
        lon=data.lon if data.lon is not None else anchor.lon,
        search_name=fold(data.name),
    )
    Profile.objects.create(unit=unit, tax_code=data.tax_code, address=data.address, commune=placed.commune)
    return unit


@transaction.atomic
def create_enterprise(*, actor: User | None, data: EnterpriseInput, area: Area) -> Unit:
    """Register an enterprise (under its park, or its commune) or a park (under its commune or province)."""
    unit = _create(_place(data, area))
    audit(actor, f"{unit.kind}.create", unit.ref, parent=unit.parent.ref if unit.parent else "")
    return unit


COLUMNS = {
    "kind": ("kind", "loai", "loại"),
    "tax_code": ("tax_code", "ma_so_thue", "mã số thuế", "mst"),
    "name": ("name", "ten", "tên"),
    "address": ("address", "dia_chi", "địa chỉ"),
    "commune": ("commune", "xa", "xã", "xã/phường"),
    "park": ("park", "kcn", "khu công nghiệp"),
    "province": ("province", "tinh", "tỉnh"),
    "lat": ("lat",),
    "lon": ("lon",),
}


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)  # refs (enterprises) or line numbers' keys
    existing: list[int] = field(default_factory=list)  # lines already registered
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, why


def _columns(
    header: list[str], known: dict[str, tuple[str, ...]], required: tuple[str, ...], name: str
) -> dict[str, str]:
    found: dict[str, str] = {}
    for column in header:
        for key, aliases in known.items():
            if column.strip().lower() in aliases and key not in found:
                found[key] = column
    missing = [k for k in required if k not in found]
    if missing:
        raise EnterpriseError(None, LACKS_COLUMNS % {"file": name, "columns": ", ".join(missing)})
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _number(row: dict[str, Any], name: str) -> float | None:
    value = _text(row.get(name))
    try:
        return float(value.replace(",", ".")) if value else None
    except ValueError:
        raise EnterpriseError(name, NOT_A_NUMBER % {"value": value}) from None


def import_enterprises(*, actor: User | None, path: Path, area: Area) -> ImportResult:
    """Register the enterprises and parks of a CSV or XLSX file, line by line (a park may be named by
    the lines after it); bad lines are reported by line and column, the good ones kept."""
    try:
        header, rows = read_table(path)
    except TableError as e:
        raise EnterpriseError(None, str(e)) from None
    names = _columns(header, COLUMNS, ("kind", "tax_code", "name"), path.name)
    result = ImportResult()
    with transaction.atomic():
        for line, raw in rows:
            row = {key: raw.get(column) for key, column in names.items()}
            try:
                data = EnterpriseInput(
                    kind=_text(row.get("kind")).lower(),
                    tax_code=_text(row.get("tax_code")),
                    name=_text(row.get("name")),
                    address=_text(row.get("address")),
                    commune=_text(row.get("commune")),
                    park=_text(row.get("park")),
                    province=_text(row.get("province")),
                    lat=_number(row, "lat"),
                    lon=_number(row, "lon"),
                )
                placed = _place(data, area)
                with transaction.atomic():  # a savepoint: a refused line leaves nothing
                    result.created.append(_create(placed).ref)
            except DomainError as e:  # the unit look-up's refusals too
                if e.status == 409:
                    result.existing.append(line)
                else:
                    result.rejected.append((line, names.get(e.field or "", e.field or ""), str(e.message)))
        audit(
            actor,
            "enterprises.import",
            path.name,
            rows=len(result.created),
            created=result.created,
            existing=result.existing,
            rejected=[list(r) for r in result.rejected],
        )
    return result


# Rosters


@dataclass
class WorkerInput:
    person_id: str
    start: date | str | None
    end: date | str | None = None


@dataclass
class RosterResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, why

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": n, "field": f, "error": e} for n, f, e in self.rejected],
        }


ROSTER_COLUMNS = {
    "person_id": ("person_id", "cccd", "so_dinh_danh", "số định danh", "số điện thoại", "so_dien_thoai"),
    "start": ("start", "ngay_bat_dau", "ngày bắt đầu", "tu_ngay", "từ ngày"),
    "end": ("end", "ngay_ket_thuc", "ngày kết thúc", "den_ngay", "đến ngày"),
}


def _date(value: Any, name: str) -> date | None:
    try:
        return cell_date(value)
    except DateTextError as e:
        raise EnterpriseError(name, e.describe()) from None


def _worker(item: WorkerInput) -> tuple[bytes, date, date | None]:
    """The worker's key and dates; the raw ID is pseudonymised here, as ingest does, and dropped."""
    try:
        key = person_key(item.person_id or "")
    except PersonIdError as e:
        raise EnterpriseError("person_id", e.args[0]) from None
    start = _date(item.start, "start")
    if start is None:
        raise EnterpriseError("start", _("the first day of work is required"))
    end = _date(item.end, "end")
    if end is not None and end < start:
        raise EnterpriseError("end", _("is before the first day of work"))
    return key, start, end


def import_roster(
    *, actor: User | None, enterprise: Unit, workers: Iterable[tuple[int, WorkerInput | EnterpriseError]]
) -> RosterResult:
    """Add or update the enterprise's workers (by person key); bad lines are reported, the good kept.

    A worker's dates changed, or a worker added, moves their events in or out of the enterprise's
    figures at once (rollups.recount_workers)."""
    if enterprise.kind != "enterprise":
        raise EnterpriseError("unit", _("only an enterprise has a roster of workers"))
    result, ready = RosterResult(), dict[bytes, tuple[int, date, date | None]]()
    for line, item in workers:
        try:
            if isinstance(item, EnterpriseError):
                raise item
            key, start, end = _worker(item)
        except EnterpriseError as e:
            result.rejected.append((line, e.field or "", str(e.message)))
            continue
        if key in ready:
            result.rejected.append(
                (line, "person_id", _("this person is already on line %(n)s") % {"n": ready[key][0]})
            )
            continue
        ready[key] = (line, start, end)
    with transaction.atomic():
        stored = {
            bytes(w.person_key): w
            for w in _in_chunks(
                list(ready), lambda keys: Worker.objects.filter(enterprise=enterprise, person_key__in=keys)
            )
        }
        changes: list[rollups.Change] = []
        new, changed = [], []
        for key, (_line, start, end) in ready.items():
            old = stored.get(key)
            if old is None:
                new.append(Worker(enterprise=enterprise, person_key=key, start=start, end=end))
                changes.append((key, None, (start, end)))
            elif (old.start, old.end) != (start, end):
                changes.append((key, (old.start, old.end), (start, end)))
                old.start, old.end = start, end
                changed.append(old)
            else:
                result.unchanged += 1
        Worker.objects.bulk_create(new, batch_size=2000)
        Worker.objects.bulk_update(changed, ["start", "end"], batch_size=2000)
        result.added, result.updated = len(new), len(changed)
        rollups.recount_workers(enterprise.pk, changes)
        rollups.refresh_doses([k for k, _old, _new in changes])
        audit(
            actor,
            "enterprise.roster",
            enterprise.ref,
            rows=len(new) + len(changed),
            added=len(new),
            updated=len(changed),
            rejected=len(result.rejected),
            keys=[short(k) for k in list(ready)[:5]],
        )
    return result


def roster_rows(path: Path) -> Iterator[tuple[int, WorkerInput | EnterpriseError]]:
    """(line, worker or why not) of a roster file (CSV or XLSX: person_id, start, end)."""
    try:
        header, rows = read_table(path)
    except TableError as e:
        raise EnterpriseError(None, str(e)) from None
    names = _columns(header, ROSTER_COLUMNS, ("person_id", "start"), path.name)
    for line, raw in rows:
        value = raw.get(names["person_id"])
        yield (
            line,
            WorkerInput(
                person_id=_text(value),
                start=raw.get(names["start"]),
                end=raw.get(names["end"]) if "end" in names else None,
            ),
        )


def _in_chunks(keys: list[bytes], query, size: int = 900) -> Iterator[Any]:
    for at in range(0, len(keys), size):
        yield from query(keys[at : at + size])


# Venues


@transaction.atomic
def link_venue(*, actor: User | None, venue: Venue, enterprise: Unit | None) -> None:
    """Make the venue one of the enterprise's (or of none): its check-ins count for it from now on,
    those already stored included."""
    if enterprise is not None and enterprise.kind != "enterprise":
        raise EnterpriseError("enterprise", _("only an enterprise has venues of its own"))
    old = VenueLink.objects.filter(venue=venue).values_list("enterprise_id", flat=True).first()
    new = enterprise.pk if enterprise is not None else None
    if old == new:
        return
    if new is None:
        VenueLink.objects.filter(venue=venue).delete()
    else:
        VenueLink.objects.update_or_create(venue=venue, defaults={"enterprise_id": new})
    rollups.recount_venue(venue.pk, old, new)
    audit(actor, "enterprise.venue", venue.code, enterprise=enterprise.ref if enterprise else "")


# A map change: enterprises move with their communes


@dataclass
class Moved:
    moved: list[str] = field(default_factory=list)  # "old ref → new ref"
    repathed: int = 0
    skipped: list[str] = field(default_factory=list)


@transaction.atomic
def follow_succession(*, actor: User | None = None) -> Moved:
    """After a map is loaded: enterprises and parks standing in a commune that has a successor on the
    newer map move there (the successor with the largest share; a park with its enterprises), and
    every enterprise's path is made its parent's again (a commune moved in a reload takes them along).
    The units keep their rows, so their grants, rosters, venues and figures stay theirs."""
    report = Moved()
    successor = _successors()
    parks = list(Unit.objects.filter(kind="industrial_park").select_related("enterprise", "parent"))
    enterprises = list(Unit.objects.filter(kind="enterprise").select_related("enterprise", "parent"))
    moved_parks: dict[int, Unit] = {}
    for unit in parks + enterprises:
        profile = getattr(unit, "enterprise", None)
        parent = unit.parent
        if parent is None or profile is None:
            continue
        if parent.kind == "industrial_park":
            new_parent = moved_parks.get(parent.pk)
        else:
            new_parent = successor(profile.commune or parent)
        if new_parent is None:
            continue
        if profile.commune is not None and profile.commune.edition_id != new_parent.edition_id:
            profile.commune = successor(profile.commune) or profile.commune
        if Unit.objects.filter(edition_id=new_parent.edition_id, code=unit.code).exclude(pk=unit.pk).exists():
            report.skipped.append(unit.ref)
            continue
        old_ref = unit.ref
        unit.edition_id, unit.parent = new_parent.edition_id, new_parent
        unit.path = f"{new_parent.path}{unit.code}/"
        unit.save(update_fields=["edition", "parent", "path"])
        profile.save(update_fields=["commune", "updated_at"])
        if unit.kind == "industrial_park":
            moved_parks[unit.pk] = unit
        report.moved.append(f"{old_ref} → {unit.ref}")
    report.repathed = _repath()
    if report.moved or report.repathed:
        audit(
            actor,
            "enterprises.follow_succession",
            rows=len(report.moved),
            moved=report.moved,
            repathed=report.repathed,
            skipped=report.skipped,
        )
    return report


def _successors():
    """unit → its successor on the newer map (largest share, then code), or None; a province (which the
    conversion data does not name) → the new province most of its communes went to."""
    by_old: dict[int, list[tuple[float, str, int]]] = defaultdict(list)
    for old, new, code, weight in Succession.objects.values_list("old_id", "new_id", "new__code", "weight"):
        by_old[old].append((-weight, code, new))

    def successor(unit: Unit) -> Unit | None:
        if unit.pk in by_old:
            return Unit.objects.get(pk=min(by_old[unit.pk])[2])
        if unit.kind != "province":
            return None
        communes = Unit.objects.under(unit).leaves().values_list("id", flat=True)
        votes: dict[int, float] = defaultdict(float)
        news = Unit.objects.filter(pk__in=[min(by_old[c])[2] for c in communes if c in by_old])
        for new in news.only("path", "edition"):
            province = Unit.objects.filter(
                edition_id=new.edition_id, path=f"/{new.path.split('/')[1]}/{new.path.split('/')[2]}/"
            ).first()
            if province is not None:
                votes[province.pk] += 1
        return Unit.objects.get(pk=max(votes, key=votes.__getitem__)) if votes else None

    return successor


def _repath() -> int:
    """Parks, then enterprises: a path that is not its parent's path and its own code is made so."""
    fixed = 0
    for kind in ("industrial_park", "enterprise"):
        stale = []
        for unit in Unit.objects.filter(kind=kind).select_related("parent"):
            parent = unit.parent
            if parent is None:
                continue
            wanted = f"{parent.path}{unit.code}/"
            if unit.path != wanted or unit.edition_id != parent.edition_id:
                unit.path, unit.edition_id = wanted, parent.edition_id
                stale.append(unit)
        Unit.objects.bulk_update(stale, ["path", "edition"], batch_size=500)
        fixed += len(stale)
    return fixed


# Listing


def enterprises_under(unit: Unit) -> list[int]:
    """The enterprises counted for a unit: itself, or every enterprise of a park (or below any unit)."""
    if unit.kind == "enterprise":
        return [unit.pk]
    return list(Unit.objects.under(unit).filter(kind="enterprise").values_list("pk", flat=True))


def roster_sizes(ids: list[int], on: date) -> dict[int, dict[str, int]]:
    """Per enterprise, its workers on the day and how many of them had one dose, and two (coverage)."""
    active = Worker.objects.filter(enterprise_id__in=ids, start__lte=on).filter(
        Q(end__isnull=True) | Q(end__gte=on)
    )
    rows = active.values("enterprise_id").annotate(
        workers=Count("pk"),
        dose1=Count("pk", filter=Q(max_dose__gte=1)),
        dose2=Count("pk", filter=Q(max_dose__gte=2)),
    )
    return {r["enterprise_id"]: {k: r[k] for k in ("workers", "dose1", "dose2")} for r in rows}
