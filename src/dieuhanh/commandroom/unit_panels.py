"""The unit page's panels beyond its own figures: its children with the same figures, the directives
reaching its area, and its reporting completeness. The unit is already inside the caller's area, so
its subtree is too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import QuerySet

from dieuhanh.accounts.models import User
from dieuhanh.commandroom.entry_views import default_period
from dieuhanh.directives import services as directives
from dieuhanh.directives.models import Delivery, Directive
from dieuhanh.indicators.approval.models import DataSetApproval
from dieuhanh.indicators.approval.services import approved_units
from dieuhanh.indicators.models import DataSet, DataValue
from dieuhanh.indicators.periods import PeriodError, parse
from dieuhanh.indicators.services import completeness, data_set_q, due_date
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.warehouse.services import CountQuery, Figure, counts

DIRECTIVES_SHOWN = 10
MISSING_SHOWN = 50


@dataclass
class ChildRow:
    unit: Any  # a Unit annotated with children_count
    counts: list[float | int]  # one per figure of the parent, in the same order


def children_figures(unit: Unit, children: list[Any], figures: list[Figure]) -> list[ChildRow]:
    """Each child's count of every event kind the parent shows, over the same days."""
    by_kind = [
        {
            row["unit"]: row["count"]
            for row in counts(CountQuery(f.kind, unit, f.start, f.end, "unit", {}))["rows"]
        }
        for f in figures
    ]
    # An enterprise or park below a commune counts its workers and gates, which the commune's own
    # figures by unit do not split out: each asks for its own.
    firms = ("enterprise", "industrial_park")
    for child in children:
        if child.kind in firms and unit.kind not in firms:
            for found, f in zip(by_kind, figures, strict=True):
                found[child.ref] = counts(CountQuery(f.kind, child, f.start, f.end, "none", {}))["total"]
    return [ChildRow(child, [found.get(child.ref, 0) for found in by_kind]) for child in children]


def unit_directives(user: User, unit: Unit) -> list[tuple[Directive, directives.Rates]]:
    """The latest directives reaching the unit's area, each with its rates counted inside that area
    (the room's count: a response is also an acknowledgement)."""
    area = Area.of(unit)
    reaching: QuerySet[Delivery, int] = Delivery.objects.within(area).values_list("directive_id", flat=True)
    found = directives.visible_directives(user).filter(pk__in=reaching).select_related("issuer_unit")
    latest = list(found.order_by("-issued_at", "-id")[:DIRECTIVES_SHOWN])
    counted = directives.rates([d.pk for d in latest], area)
    return [(d, counted.get(d.pk, directives.Rates())) for d in latest]


@dataclass
class Completeness:
    data_set: DataSet
    period: str
    period_label: str
    due: date
    expected: int
    reported: int
    on_time: int
    missing: list[Unit]
    approved: int | None = None  # units that approved the period, when the set uses approval (issue 19)


def completeness_panels(unit: Unit, asked: str, language: str = "vi") -> list[Completeness]:
    """For each data set reported by units of the subtree: who reported for the period asked, or else
    for the latest period with values here, or else for the period just ended."""
    panels = []
    approving = set(DataSetApproval.objects.values_list("data_set_id", flat=True))
    for data_set in DataSet.objects.order_by("name"):
        units = list(Unit.objects.under(unit).filter(kind=data_set.unit_kind).order_by("path")[:20_000])
        if not units:
            continue
        period = _period(data_set, unit, asked)
        reports = completeness(data_set, period, units)
        done = [r for r in reports if r.reported_at]
        panels.append(
            Completeness(
                data_set,
                period,
                parse(period).label(language),
                due_date(data_set, period),
                len(reports),
                len(done),
                sum(r.on_time for r in done),
                [r.unit for r in reports if not r.reported_at][:MISSING_SHOWN],
                len(approved_units(data_set, period, units)) if data_set.pk in approving else None,
            )
        )
    return panels


def _period(data_set: DataSet, unit: Unit, asked: str) -> str:
    try:
        return parse(asked).id
    except PeriodError:
        pass
    here = DataValue.objects.filter(data_set_q(data_set), unit__in=Unit.objects.under(unit))
    latest = here.order_by("-period").values_list("period", flat=True).first()
    return latest or default_period(data_set)
