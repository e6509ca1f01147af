"""Enterprises and industrial parks over HTTP: register one (POST /units), its roster, its venues, and
the standings of the enterprises of a unit (counts only: no route here ever shows a person)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.units.api import UnitBaseOut
from dieuhanh.units.api import router as units_router
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import unit_in_area
from dieuhanh.warehouse.enterprises import figures, services
from dieuhanh.warehouse.enterprises.services import EnterpriseError
from dieuhanh.warehouse.models import Venue

router = Router(tags=["enterprises"])


class EnterpriseIn(Schema):
    kind: Literal["enterprise", "industrial_park"]
    tax_code: str = Field(max_length=14, description="mã số thuế: 10 digits, a branch's with -3 more")
    name: str = Field(max_length=200)
    address: str = Field("", max_length=300)
    commune: str = Field("", max_length=40, description="EDITION:CODE of the commune it stands in (VN-2025)")
    park: str = Field("", max_length=40, description="an enterprise's industrial park, EDITION:CODE")
    province: str = Field("", max_length=40, description="a park standing in no one commune: its province")
    lat: float | None = None
    lon: float | None = None


class EnterpriseOut(UnitBaseOut):
    path: str
    tax_code: str
    address: str
    commune: str | None
    lat: float | None
    lon: float | None


def _out(unit: Unit) -> dict[str, Any]:
    profile = unit.enterprise
    return {
        **UnitBaseOut.base(unit, unit.parent.ref if unit.parent else None),
        "path": unit.path,
        "tax_code": profile.tax_code,
        "address": profile.address,
        "commune": profile.commune.ref if profile.commune else None,
        "lat": unit.lat,
        "lon": unit.lon,
    }


# POST /units lives on the units router (its GET is there, and one path is served by one router),
# registered from here: registering an enterprise is this app's verb.
@units_router.post(
    "/units",
    response={201: EnterpriseOut},
    summary="Register an enterprise or industrial park (admins and the province's operators, in their area)",
)
@area_aware
def post_unit(request: HttpRequest, body: EnterpriseIn):
    user = caller(request)
    area = services.creating_area(user)
    if not area:
        raise EnterpriseError(
            None,
            _("Only administrators and province operators may register enterprises and industrial parks."),
            403,
        )
    unit = services.create_enterprise(actor=user, data=services.EnterpriseInput(**body.dict()), area=area)
    return Status(201, _out(Unit.objects.select_related("parent", "enterprise__commune").get(pk=unit.pk)))


def _visible_enterprise(request: HttpRequest, edition: str, code: str, kinds=("enterprise",)) -> Unit:
    return services.enterprise_in(f"{edition}:{code}", caller(request).area(), kinds=kinds)


def _writable_enterprise(request: HttpRequest, edition: str, code: str) -> Unit:
    user = caller(request)
    unit = _visible_enterprise(request, edition, code)
    if not services.roster_area(user).contains(unit):
        raise EnterpriseError(
            None, _("This needs an admin, operator or enterprise officer grant on this enterprise."), 403
        )
    return unit


class StandingOut(Schema):
    ref: str
    name: str
    kind: str
    parent: str | None
    workers: int = Field(description="on the roster on the day asked")
    dose1: int = Field(description="of them, with at least one dose")
    dose2: int = Field(description="of them, with at least two doses")
    coverage_pct: float | None = Field(description="dose2 / workers, in percent")
    positives: int = Field(description="positive tests of the workers in the 30 days up to the day")


def _standing(s: figures.Standing, parents: dict[int, str]) -> dict[str, Any]:
    return {
        "ref": s.unit.ref,
        "name": s.unit.name,
        "kind": s.unit.kind,
        "parent": parents.get(s.unit.parent_id or 0),
        "workers": s.workers,
        "dose1": s.dose1,
        "dose2": s.dose2,
        "coverage_pct": s.coverage,
        "positives": s.positives,
    }


class StandingsQuery(Schema):
    unit: str = Field(description="EDITION:CODE: an enterprise, a park, a commune or any unit of your area")
    on: date | None = Field(None, description="the day (default: the latest day with data, else today)")
    order: Literal["name", "coverage", "positives"] = "name"


@router.get(
    "/enterprises",
    response=list[StandingOut],
    summary="The enterprises of a unit with their roster, coverage and positives (counts only)",
)
@area_aware
def list_enterprises(request: HttpRequest, q: Query[StandingsQuery]):
    unit = unit_in_area(q.unit, caller(request).area())
    found = figures.standings(unit, q.on or figures.data_day())
    if q.order != "name":
        found = figures.ranked(found)[q.order]
    parents = dict(Unit.objects.filter(pk__in={s.unit.parent_id for s in found}).values_list("pk", "code"))
    refs = {pk: f"{unit.edition_id}:{c}" for pk, c in parents.items()}
    return [_standing(s, refs) for s in found]


class WorkerIn(Schema):
    person_id: str = Field(
        max_length=40, description="CCCD or mobile number: pseudonymised at once, never kept"
    )
    start: date
    end: date | None = None


class RosterIn(Schema):
    workers: list[WorkerIn] = Field(max_length=100_000)


class RejectedOut(Schema):
    line: int
    field: str
    error: str


class RosterOut(Schema):
    added: int
    updated: int
    unchanged: int
    rejected: list[RejectedOut]


@router.post(
    "/enterprises/{edition}/{code}/workers",
    response=RosterOut,
    summary="Add or update workers of an enterprise's roster (JSON; line = place in the list, from 1)",
)
@area_aware
def post_workers(request: HttpRequest, edition: str, code: str, body: RosterIn):
    unit = _writable_enterprise(request, edition, code)
    items = [
        (n, services.WorkerInput(w.person_id, w.start, w.end)) for n, w in enumerate(body.workers, start=1)
    ]
    return services.import_roster(actor=caller(request), enterprise=unit, workers=items).as_dict()


@router.post(
    "/enterprises/{edition}/{code}/workers/file",
    response=RosterOut,
    summary="Import an enterprise's roster from a CSV or XLSX file (person_id, start, end)",
)
@area_aware
def post_workers_file(request: HttpRequest, edition: str, code: str, file: File[UploadedFile]):
    unit = _writable_enterprise(request, edition, code)
    suffix = Path(file.name or "").suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise EnterpriseError("file", _("a .csv or .xlsx file is required"))
    with tempfile.NamedTemporaryFile(suffix=suffix) as saved:
        for chunk in file.chunks():
            saved.write(chunk)
        saved.flush()
        rows = list(services.roster_rows(Path(saved.name)))
    return services.import_roster(actor=caller(request), enterprise=unit, workers=rows).as_dict()


class VenueLinkOut(Schema):
    venue: str
    enterprise: str | None


@router.put(
    "/enterprises/{edition}/{code}/venues/{venue}",
    response=VenueLinkOut,
    summary="Make a venue (a gate, a canteen) the enterprise's: its check-ins count for it",
)
@area_aware
def put_venue(request: HttpRequest, edition: str, code: str, venue: str):
    return _link(request, edition, code, venue, linked=True)


@router.delete(
    "/enterprises/{edition}/{code}/venues/{venue}",
    response=VenueLinkOut,
    summary="The venue no longer belongs to the enterprise",
)
@area_aware
def delete_venue(request: HttpRequest, edition: str, code: str, venue: str):
    return _link(request, edition, code, venue, linked=False)


def _link(request: HttpRequest, edition: str, code: str, venue: str, *, linked: bool) -> dict[str, Any]:
    """Both routes: the venue becomes the enterprise's (`linked`) or no one's."""
    unit = _writable_enterprise(request, edition, code)
    found = _venue(request, unit, venue)
    enterprise = unit if linked else None
    services.link_venue(actor=caller(request), venue=found, enterprise=enterprise)
    return {"venue": found.code, "enterprise": enterprise.ref if enterprise else None}


def _venue(request: HttpRequest, enterprise: Unit, code: str) -> Venue:
    """A venue of the caller's area or of the enterprise's own commune (where its gates stand), not
    already another enterprise's that the caller may not change."""
    area = services.roster_area(caller(request))
    found = Venue.objects.filter(code=code).select_related("commune").first()
    commune = enterprise.enterprise.commune_id
    if found is None or not (area.contains(found.commune) or found.commune_id == commune):
        raise EnterpriseError("venue", _("no venue '%(code)s' in your area") % {"code": code}, 404)
    owner = Unit.objects.filter(enterprise_venues__venue=found).first()
    if owner is not None and owner.pk != enterprise.pk and not area.contains(owner):
        raise EnterpriseError(
            "venue", _("venue '%(code)s' already belongs to another enterprise") % {"code": code}, 409
        )
    return found
