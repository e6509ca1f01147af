from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from dieuhanh.replica import replica_reads
from dieuhanh.units import services
from dieuhanh.units.models import Kind, Unit
from dieuhanh.units.scoping import area_aware, area_of

router = Router(tags=["units"])

EditionCode = Literal["VN-2021", "VN-2025"]


class UnitBaseOut(Schema):
    """What every answer about a unit starts with (a unit, an enterprise): its place in the tree."""

    ref: str
    code: str
    name: str
    kind: str
    level: int
    parent: str | None

    @staticmethod
    def base(unit: Unit, parent: str | None) -> dict[str, Any]:
        fields = ("ref", "code", "name", "kind", "level")
        return {**{name: getattr(unit, name) for name in fields}, "parent": parent}


class UnitOut(UnitBaseOut):
    lat: float | None
    lon: float | None

    @staticmethod
    def of(unit: Unit, parent_code: str | None) -> dict:
        parent = f"{unit.edition_id}:{parent_code}" if parent_code else None
        return {**UnitBaseOut.base(unit, parent), "lat": unit.lat, "lon": unit.lon}


class UnitPage(Schema):
    count: int
    items: list[UnitOut]


class UnitDetail(UnitOut):
    edition: str
    path: str
    area_km2: float | None
    ancestors: list[UnitOut]
    children_count: int


class ShareOut(Schema):
    ref: str
    name: str
    weight: float


class UnitFilter(Schema):
    edition: EditionCode | None = None
    level: int | None = Field(None, ge=0, le=3)
    kind: Kind | None = None
    parent: str | None = Field(None, description="EDITION:CODE of the parent unit")
    q: str | None = Field(None, max_length=100, description="name, with or without diacritics")
    page: int = Field(1, ge=1, le=100_000)  # an offset past 2^63 overflows SQLite
    page_size: int = Field(50, ge=1, le=500)


def _visible(request: HttpRequest):
    return Unit.objects.visible_to(request.user)


def _get(request: HttpRequest, edition: str, code: str) -> Unit:
    return services.unit_in_area(f"{edition}:{code}", area_of(request.user), field="code")


@router.get("/units", response=UnitPage, summary="Units of the caller's area, filtered and paged")
@area_aware
@replica_reads
def list_units(request: HttpRequest, filters: Query[UnitFilter]):
    units = _visible(request)
    parent = None
    if filters.parent:
        parent = services.unit_in_area(filters.parent, area_of(request.user), field="parent")
    units = services.filter_units(
        units, edition=filters.edition, level=filters.level, kind=filters.kind, parent=parent
    )
    if filters.q:
        units = services.search(units, filters.q).order_by("level", "name", "edition", "code")
    else:
        units = units.order_by("edition", "path")
    start = (filters.page - 1) * filters.page_size
    page = list(
        units.values("id", "edition_id", "code", "name", "kind", "level", "lat", "lon", "parent__code")[
            start : start + filters.page_size
        ]
    )
    return {"count": units.count(), "items": [_row(r) for r in page]}


def _row(r: dict) -> dict:
    parent = f"{r['edition_id']}:{r['parent__code']}" if r["parent__code"] else None
    return {
        "ref": f"{r['edition_id']}:{r['code']}",
        "code": r["code"],
        "name": r["name"],
        "kind": r["kind"],
        "level": r["level"],
        "parent": parent,
        "lat": r["lat"],
        "lon": r["lon"],
    }


@router.get(
    "/units/{edition}/{code}", response=UnitDetail, summary="One unit, its ancestors and children count"
)
@area_aware
@replica_reads
def get_unit(request: HttpRequest, edition: EditionCode, code: str):
    unit = _get(request, edition, code)
    parent_code = unit.parent.code if unit.parent else None
    ancestors = services.ancestors(unit)
    codes = {a.pk: a.code for a in ancestors}
    return {
        **UnitOut.of(unit, parent_code),
        "edition": unit.edition_id,
        "path": unit.path,
        "area_km2": unit.area_km2,
        "ancestors": [UnitOut.of(a, codes[a.parent_id] if a.parent_id else None) for a in ancestors],
        "children_count": unit.children.count(),
    }


@router.get(
    "/units/{edition}/{code}/successors",
    response=list[ShareOut],
    summary="The units this one became on the newer map, with weights summing to 1",
)
@area_aware
@replica_reads
def unit_successors(request: HttpRequest, edition: EditionCode, code: str):
    unit = _get(request, edition, code)
    return [ShareOut(ref=s.new.ref, name=s.new.name, weight=s.weight) for s in services.successors(unit)]


@router.get(
    "/units/{edition}/{code}/predecessors",
    response=list[ShareOut],
    summary="The older units whose shares make up this one",
)
@area_aware
@replica_reads
def unit_predecessors(request: HttpRequest, edition: EditionCode, code: str):
    unit = _get(request, edition, code)
    return [ShareOut(ref=s.old.ref, name=s.old.name, weight=s.weight) for s in services.predecessors(unit)]
