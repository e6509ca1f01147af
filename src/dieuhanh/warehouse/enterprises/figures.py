"""An enterprise's or a park's figures, from the enterprise rollups (warehouse.enterprises.rollups):
counts like the warehouse's (by day, by unit, or one total), the roster's vaccination coverage, and a
park's enterprises ranked."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse.enterprises.models import KINDS, EnterpriseRollup, EnterpriseRollupMonth
from dieuhanh.warehouse.enterprises.services import enterprises_under, roster_sizes
from dieuhanh.warehouse.models import Rollup


def is_enterprise(unit: Unit) -> bool:
    return unit.kind in KINDS


def counts(
    kind: str, unit: Unit, start: date, end: date, by: str, dims: dict[str, str], dim_names: tuple[str, str]
) -> dict[str, Any]:
    """The warehouse's counts answer (`{"total", "rows"}`) for an enterprise or a park: its workers'
    events and its venues' check-ins; `by=unit` gives a park's enterprises one row each."""
    ids = (
        [unit.pk]
        if unit.kind == "enterprise"
        else Unit.objects.under(unit).filter(kind="enterprise").values("pk")
    )
    if by == "day":  # the unit's own days: the database sums the enterprises of each day
        rows = _filtered(
            EnterpriseRollup.objects.filter(day__gte=start, day__lte=end), ids, kind, dims, dim_names
        )
        days = [(r["day"], int(r["n"])) for r in rows.values("day").annotate(n=Sum("count")).order_by("day")]
        return {
            "total": sum(n for _, n in days),
            "rows": [{"unit": unit.ref, "day": day, "count": n} for day, n in days],
        }
    # Whole months from the monthly rollups, the days at either end from the daily ones.
    months, edges = _split(start, end)
    parts = [_filtered(EnterpriseRollupMonth.objects.filter(month__in=months), ids, kind, dims, dim_names)]
    if edges:
        in_edges = Q()
        for first, last in edges:
            in_edges |= Q(day__gte=first, day__lte=last)
        parts.append(_filtered(EnterpriseRollup.objects.filter(in_edges), ids, kind, dims, dim_names))
    if by == "none":  # one sum in the database: a park's total is one row, not one per enterprise
        total = sum(int(part.aggregate(n=Sum("count"))["n"] or 0) for part in parts)
        return {"total": total, "rows": [{"unit": unit.ref, "day": None, "count": total}]}
    per: dict[int, int] = defaultdict(int)
    for part in parts:
        for enterprise, n in part.values_list("enterprise_id").annotate(n=Sum("count")).order_by():
            per[enterprise] += int(n)
    refs = dict(Unit.objects.filter(pk__in=list(per)).values_list("pk", "code"))
    found = sorted((f"{unit.edition_id}:{refs[e]}", n) for e, n in per.items())
    return {
        "total": sum(n for _, n in found),
        "rows": [{"unit": ref, "day": None, "count": n} for ref, n in found],
    }


def _filtered(
    rows: QuerySet, ids: Any, kind: str, dims: dict[str, str], dim_names: tuple[str, str]
) -> QuerySet:
    rows = rows.filter(enterprise_id__in=ids, kind=kind)
    for name, value in dims.items():
        rows = rows.filter(**{"dim1" if dim_names[0] == name else "dim2": value})
    return rows


def _split(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """The whole months inside [start, end] (their first days), and the day ranges left at either end."""
    first = start if start.day == 1 else _next_month(start)
    months = []
    while _next_month(first) - timedelta(days=1) <= end:
        months.append(first)
        first = _next_month(first)
    if not months:
        return [], [(start, end)]
    edges = []
    if start < months[0]:
        edges.append((start, months[0] - timedelta(days=1)))
    after = _next_month(months[-1])
    if after <= end:
        edges.append((after, end))
    return months, edges


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


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
