"""An enterprise's or a park's figures, from the enterprise rollups (warehouse.enterprises.rollups):
counts like the warehouse's (by day, by unit, or one total), the roster's vaccination coverage, and a
park's enterprises ranked."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.enterprises.models import KINDS, EnterpriseRollup
from dieuhanh.warehouse.enterprises.services import enterprises_under, roster_sizes
from dieuhanh.warehouse.models import Rollup


def is_enterprise(unit: Unit) -> bool:
    return unit.kind in KINDS


def counts(
    kind: str, unit: Unit, start: date, end: date, by: str, dims: dict[str, str], dim_names: tuple[str, str]
) -> dict[str, Any]:
    """The warehouse's counts answer (`{"total", "rows"}`) for an enterprise or a park: its workers'
    events and its venues' check-ins; `by=unit` gives a park's enterprises one row each."""
    ids = enterprises_under(unit)
    rows = EnterpriseRollup.objects.filter(enterprise_id__in=ids, kind=kind, day__gte=start, day__lte=end)
    for name, value in dims.items():
        rows = rows.filter(**{"dim1" if dim_names[0] == name else "dim2": value})
    group = ["enterprise_id", "day"] if by == "day" else ["enterprise_id"]
    refs = dict(Unit.objects.filter(pk__in=ids).values_list("pk", "code"))
    totals: dict[tuple[str, date | None], int] = defaultdict(int)
    for r in rows.values(*group).annotate(n=Sum("count")).order_by():
        output = f"{unit.edition_id}:{refs[r['enterprise_id']]}" if by == "unit" else unit.ref
        totals[(output, r.get("day"))] += int(r["n"])
    total = sum(totals.values())
    if by == "none":
        return {"total": total, "rows": [{"unit": unit.ref, "day": None, "count": total}]}
    ordered = sorted(totals.items(), key=lambda item: (item[0][1] or date.min, item[0][0]))
    return {"total": total, "rows": [{"unit": ref, "day": day, "count": n} for (ref, day), n in ordered]}


def cells(
    kind: str, dims: tuple[str, ...], asked: list[Unit], start: date, end: date
) -> dict[tuple[int, date], float]:
    """(asked enterprise or park id, day) → count: what analytics adds for such units."""
    out: dict[tuple[int, date], float] = defaultdict(float)
    for unit in asked:
        rows = EnterpriseRollup.objects.filter(
            enterprise_id__in=enterprises_under(unit), kind=kind, day__gte=start, day__lte=end
        )
        for column, value in zip(("dim1", "dim2"), dims, strict=False):
            rows = rows.filter(**{column: value})
        for day, n in rows.values_list("day", "count"):
            out[(unit.pk, day if isinstance(day, date) else date.fromisoformat(day))] += n
    return out


@dataclass(frozen=True)
class Standing:
    unit: Unit
    workers: int
    dose1: int
    dose2: int
    positives: int

    @property
    def coverage(self) -> float | None:
        """Share of the roster with two doses, in percent."""
        return round(100 * self.dose2 / self.workers, 2) if self.workers else None

    @property
    def coverage1(self) -> float | None:
        return round(100 * self.dose1 / self.workers, 2) if self.workers else None


def standings(unit: Unit, on: date, days: int = 30) -> list[Standing]:
    """The enterprises counted for the unit (a park's, a commune's, or the one), each with its roster
    on the day, its coverage, and its positive tests over the `days` days up to the day."""
    enterprises = list(Unit.objects.filter(pk__in=enterprises_under(unit)).order_by("name"))
    ids = [e.pk for e in enterprises]
    sizes = roster_sizes(ids, on)
    positives = dict(
        EnterpriseRollup.objects.filter(
            enterprise_id__in=ids,
            kind="test",
            dim1="positive",
            day__gt=on - timedelta(days=days),
            day__lte=on,
        )
        .values_list("enterprise_id")
        .annotate(n=Sum("count"))
        .order_by()
    )
    empty = {"workers": 0, "dose1": 0, "dose2": 0}
    return [
        Standing(e, **sizes.get(e.pk, empty), positives=int(positives.get(e.pk) or 0)) for e in enterprises
    ]


def ranked(found: list[Standing]) -> dict[str, list[Standing]]:
    """The same enterprises twice: lowest coverage first, and most positives first."""
    return {
        "coverage": sorted(found, key=lambda s: (s.coverage if s.coverage is not None else 101, s.unit.name)),
        "positives": sorted(found, key=lambda s: (-s.positives, s.unit.name)),
    }


def data_day() -> date:
    """The latest day with data (as the unit page's figures read), else today (Vietnam time)."""
    latest = Rollup.objects.order_by("-day").values_list("day", flat=True).first()
    return latest or timezone.now().astimezone(VN_TZ).date()


def enterprise_ranking(unit: Unit, on: date | None = None) -> dict[str, Any] | None:
    """What a unit page shows of enterprises: a park's (or a commune's) ranked by coverage and by
    positives, an enterprise's own line; None where there is none."""
    if unit.kind not in (*KINDS, "commune"):
        return None
    day = on or data_day()
    found = standings(unit, day)
    if not found:
        return None
    if unit.kind == "enterprise":
        return {"on": day, "tables": [("", found)]}
    order = ranked(found)
    return {
        "on": day,
        "tables": [
            (_("Lowest coverage first"), order["coverage"]),
            (_("Most positive tests first"), order["positives"]),
        ],
    }
