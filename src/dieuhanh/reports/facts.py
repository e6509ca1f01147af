"""The figures a report reads, from the live data or from the snapshot an earlier report kept.

Every read is keyed ('fig|postal_revenue|2021YTD08|VN-2025:VN') and recorded; the record is stored with
the generated report. Replaying a report reads only that record, so the same definition and record give
the same document however the data changed since (a key the record lacks is an error, never a guess).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.directives.assignments import shown_status, tasks_for, vn_today
from dieuhanh.directives.models import Directive, TaskStatus
from dieuhanh.directives.services import Rates, rates
from dieuhanh.indicators import analytics
from dieuhanh.indicators.approval.figures import unapproved
from dieuhanh.indicators.periods import Period
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area


class SnapshotError(LookupError):
    """A replayed report asked for a figure that its snapshot does not hold."""


@dataclass
class Facts:
    """Reads as `actor` (whose area bounds every read), recording each answer; replays a record when given."""

    actor: User
    language: str = "vi"
    recorded: dict[str, Any] = field(default_factory=dict)
    replay: bool = False

    @property
    def area(self) -> Area:
        return self.actor.area()

    def _remember(self, key: str, compute) -> Any:
        if key not in self.recorded:
            if self.replay:
                raise SnapshotError(_("the snapshot holds no '%(key)s'") % {"key": key})
            self.recorded[key] = compute()
        return self.recorded[key]

    def figures(self, code: str, period: Period, units: list[Unit]) -> list[dict | None]:
        """Each unit's row for the indicator (value, status, change_pct, target_pct …), None where missing."""
        keys = [f"fig|{code}|{period.id}|{u.ref}" for u in units]
        todo = [u for u, k in zip(units, keys, strict=True) if k not in self.recorded]
        if todo and not self.replay:
            self._read(code, period, todo)
        return [self._remember(k, lambda: None) for k in keys]

    def _read(self, code: str, period: Period, units: list[Unit]) -> None:
        found = {
            row["ou"]: _kept(row)
            for row in analytics.rows([analytics.dimension(code)], [period], units, area=self.area)
        }
        pending = unapproved(code, period, units) if found else set()
        for unit in units:  # not approved at the unit's level: the report says "chưa phê duyệt" (issue 19)
            if unit.ref in found:
                found[unit.ref]["approved"] = unit.pk not in pending
        for unit in units:
            self.recorded[f"fig|{code}|{period.id}|{unit.ref}"] = found.get(unit.ref)

    def tasks(self, unit: Unit) -> dict[str, Any]:
        """Counts of the unit's tasks (and those below it) by the status people see, and the overdue ones."""
        return self._remember(f"tasks|{unit.ref}", lambda: _tasks(self.actor, unit))

    def directives(self, unit: Unit, period: Period) -> list[dict[str, Any]]:
        """Directives issued within the unit in the period, with how many units acknowledged and answered."""
        return self._remember(
            f"directives|{unit.ref}|{period.id}", lambda: _directives(unit, period, self.area)
        )


_KEPT = ("value", "status", "change_pct", "target", "target_pct", "same_period_last_year", "carried", "unit")


def _kept(row: dict) -> dict:
    return {k: row[k] for k in _KEPT}


def _tasks(actor: User, unit: Unit) -> dict[str, Any]:
    today = vn_today()
    counts: dict[str, int] = {}
    overdue = []
    for task in tasks_for(actor, unit, below=True):
        status = shown_status(task, today)
        counts[status] = counts.get(status, 0) + 1
        if status == TaskStatus.OVERDUE:
            overdue.append({"title": task.title, "owner": task.owner.name, "due": str(task.due)})
    return {"counts": counts, "overdue": overdue, "today": today.isoformat()}


def _directives(unit: Unit, period: Period, area: Area) -> list[dict[str, Any]]:
    issued = (
        Directive.objects.filter(
            issuer_unit__edition_id=unit.edition_id,
            issuer_unit__path__under=unit.path,
            issued_at__date__gte=period.start,
            issued_at__date__lte=period.end,
        )
        .within(area)
        .order_by("issued_at", "id")
    )
    directives = list(issued)
    # Over every delivery of the directives the area issued (None: not only those inside the area).
    counted = rates([d.pk for d in directives], None)
    none = Rates()
    return [
        {
            "number": d.number, "title": d.title, "issued": d.issued_at.date().isoformat(),
            "total": (r := counted.get(d.pk, none)).total, "acknowledged": r.acknowledged,
            "responded": r.responded, "cancelled": d.cancelled_at is not None,
        }
        for d in directives
    ]  # fmt: skip
