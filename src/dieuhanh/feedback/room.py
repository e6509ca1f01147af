"""The command room's panel of citizens' reports: per province, received, handled, overdue and
satisfaction (the share of ratings of 4 or 5 stars, as Huế-S counts its 92%).

The room includes the partial `feedback/_room_panel.html` with `feedback_panel` from `panel(unit)`.
Reports live on the 2025 map: a room on the 2021 map other than the nation's shows no panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Avg, Count, Q
from django.utils import timezone
from django.utils.translation import gettext

from dieuhanh.feedback.models import Feedback, Status
from dieuhanh.feedback.services import EDITION, overdue_q
from dieuhanh.units.models import Unit


@dataclass(frozen=True)
class ProvinceFigures:
    ref: str
    name: str
    received: int
    handled: int
    overdue: int
    rated: int
    satisfied: int
    stars: float | None

    @property
    def handled_pct(self) -> float | None:
        return 100.0 * self.handled / self.received if self.received else None

    @property
    def satisfied_pct(self) -> float | None:
        return 100.0 * self.satisfied / self.rated if self.rated else None


def province_figures(unit: Unit, now: datetime | None = None) -> list[ProvinceFigures] | None:
    """One row per province under (or above) the room's unit, most received first; None off the map."""
    now = now or timezone.now()
    if unit.kind == "nation":
        items = Feedback.objects.filter(place_unit__edition_id=EDITION)
    elif unit.edition_id == EDITION:
        items = Feedback.objects.filter(place_unit__edition_id=EDITION, place_unit__path__under=unit.path)
    else:
        return None
    # Every citizen's report counts as received (duplicates too); a duplicate is handled when the
    # item it follows is answered; overdue counts the items a unit holds (not their duplicates).
    handled = Q(status=Status.ANSWERED) | Q(status=Status.MERGED, merged_into__status=Status.ANSWERED)
    rows = (
        items.values("place_unit__parent_id")
        .annotate(
            received=Count("id"),
            handled=Count("id", filter=handled),
            overdue=Count("id", filter=overdue_q(now)),
            rated=Count("id", filter=Q(rating__isnull=False)),
            satisfied=Count("id", filter=Q(rating__gte=4)),
            stars=Avg("rating"),
        )
        .order_by()
    )
    by_province = {r["place_unit__parent_id"]: r for r in rows}
    names = Unit.objects.in_bulk(list(by_province))
    found = [
        ProvinceFigures(
            names[pk].ref,
            names[pk].name,
            r["received"],
            r["handled"],
            r["overdue"],
            r["rated"],
            r["satisfied"],
            r["stars"],
        )
        for pk, r in by_province.items()
        if pk in names
    ]
    return sorted(found, key=lambda f: (-f.received, f.name))


def panel(unit: Unit) -> dict:
    """The template context of the room's panel."""
    rows = province_figures(unit)
    total = None
    if rows:
        total = ProvinceFigures(
            unit.ref,
            gettext("Total"),
            sum(r.received for r in rows),
            sum(r.handled for r in rows),
            sum(r.overdue for r in rows),
            sum(r.rated for r in rows),
            sum(r.satisfied for r in rows),
            None,
        )
    return {"rows": rows, "total": total, "shown": rows is not None}
