"""Which cells may not be written: approved figures, and periods past their data set's expiry days.

`locked(cells)` is called once per write batch by indicators.datavalues (every write of a data value
goes through it): a few queries for the whole batch, none at all while no data set uses approval.

- A value of a data element that belongs to a data set with approval is locked when the set is
  approved for the value's period at the value's unit or at any unit above it (DHIS2's error E7642).
- It is also locked when the set has expiry days and more than that many days have passed since the
  period's end (E7640), unless the unit holds a granted lock exception for the set and period whose
  end date has not passed. As in DHIS2, an exception lifts the expiry only: approved figures are
  changed by unapproving them first.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from dieuhanh.indicators.approval import services
from dieuhanh.indicators.approval.models import Approval, DataSetApproval, LockException
from dieuhanh.indicators.models import DataSet
from dieuhanh.indicators.periods import PeriodError, parse
from dieuhanh.units.models import Unit

APPROVED = "E7642"
EXPIRED = "E7640"


@dataclass(frozen=True)
class Lock:
    code: str
    reason: str


K = TypeVar("K", bound=Hashable)


def today() -> date:
    """Today in Vietnam (a function of its own, so that a test can move the clock)."""
    return services.vn_today()


def locked(cells: Iterable[tuple[K, int, Unit, str]]) -> dict[K, Lock]:
    """Of the cells (key, data element id, unit, period id) to be written, those that are locked."""
    cells = list(cells)
    if not cells:
        return {}
    element_ids = {c[1] for c in cells}
    sets = {
        s.data_set_id: s
        for s in DataSetApproval.objects.filter(data_set__elements__in=element_ids).select_related("data_set")
    }
    if not sets:
        return {}
    by_element: dict[int, list[DataSetApproval]] = {}
    for element_id, set_id in DataSet.elements.through.objects.filter(
        dataelement_id__in=element_ids, dataset_id__in=list(sets)
    ).values_list("dataelement_id", "dataset_id"):
        by_element.setdefault(element_id, []).append(sets[set_id])
    periods = {c[3] for c in cells}
    approved = _approved(list(sets), periods, [c[2] for c in cells])
    expired = _expired(cells, by_element)
    out: dict[K, Lock] = {}
    for key, element_id, unit, pid in cells:
        for settings in by_element.get(element_id, []):
            above = _approved_at(approved, settings.data_set_id, pid, unit)
            if above is not None:
                out[key] = Lock(
                    APPROVED,
                    _(
                        "the figures are locked: data set '%(set)s' for %(period)s was approved by %(unit)s; "
                        "unapprove it first to change them"
                    )
                    % {"set": settings.data_set.name, "period": _label(pid), "unit": above},
                )
                break
            if (settings.data_set_id, pid, unit.pk) in expired:
                out[key] = Lock(
                    EXPIRED,
                    _(
                        "the figures are locked: more than %(days)s days have passed since %(period)s "
                        "(the entry deadline of data set '%(set)s'); the unit may request a lock exception"
                    )
                    % {"days": settings.expiry_days, "period": _label(pid), "set": settings.data_set.name},
                )
                break
    return out


def _label(pid: str) -> str:
    try:
        return parse(pid).label("en" if get_language() == "en" else "vi")
    except PeriodError:
        return pid


def _approved(
    set_ids: list[int], periods: set[str], units: list[Unit]
) -> dict[tuple[int, str, str, str], str]:
    """(data set, period, edition, unit code) → the approving unit's name, for the cells' units and
    every unit above them."""
    codes: dict[str, set[str]] = {}
    for unit in units:
        codes.setdefault(unit.edition_id, set()).update(unit.path.strip("/").split("/"))
    q = Q()
    for edition, found in codes.items():
        q |= Q(unit__edition_id=edition, unit__code__in=sorted(found))
    rows = Approval.objects.filter(q, data_set_id__in=set_ids, period__in=periods).values_list(
        "data_set_id", "period", "unit__edition_id", "unit__code", "unit__name"
    )
    return {(s, p, e, c): name for s, p, e, c, name in rows}


def _approved_at(approved: dict, set_id: int, pid: str, unit: Unit) -> str | None:
    if not approved:
        return None
    for code in unit.path.strip("/").split("/"):
        name = approved.get((set_id, pid, unit.edition_id, code))
        if name is not None:
            return name
    return None


def _expired(
    cells: list[tuple[Any, int, Unit, str]], by_element: dict[int, list[DataSetApproval]]
) -> set[tuple[int, str, int]]:
    """(data set, period, unit id) past the set's expiry days and without a running exception."""
    now = today()
    late: set[tuple[int, str, int]] = set()
    for _key, element_id, unit, pid in cells:
        for settings in by_element.get(element_id, []):
            if not settings.expiry_days:
                continue
            try:
                end = parse(pid).end
            except PeriodError:
                continue
            if now > end + timedelta(days=settings.expiry_days):
                late.add((settings.data_set_id, pid, unit.pk))
    if not late:
        return late
    open_ = set(
        LockException.objects.filter(
            state=LockException.State.GRANTED,
            ends_on__gte=now,
            data_set_id__in={s for s, _p, _u in late},
            period__in={p for _s, p, _u in late},
            unit_id__in={u for _s, _p, u in late},
        ).values_list("data_set_id", "period", "unit_id")
    )
    return late - open_
