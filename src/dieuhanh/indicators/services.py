"""Indicators: the verbs that change metadata (each audited), who may write values, completeness,
and the units an analytics question names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min, Q

from dieuhanh.accounts.models import Role, User
from dieuhanh.accounts.services import audit
from dieuhanh.indicators import analytics
from dieuhanh.indicators.analytics import AnalyticsError, check_formula
from dieuhanh.indicators.formula import FormulaError
from dieuhanh.indicators.models import (
    Aggregation,
    DataElement,
    DataSet,
    DataValue,
    Indicator,
    Target,
    ValueType,
)
from dieuhanh.indicators.periods import Period, PeriodError, parse
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import VN_TZ


class IndicatorError(ValueError):
    """A refused change; `field` names the input at fault, `status` the HTTP status to answer."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


def _code(code: str) -> str:
    code = code.strip().lower()
    if not code or not all(c.isascii() and (c.isalnum() or c == "_") for c in code):
        raise IndicatorError("code", f"'{code}' is not a code: use lower-case letters, digits and _")
    return code


def _choice(field: str, value: str, choices: list[str]) -> str:
    if value not in choices:
        raise IndicatorError(field, f"'{value}' is not one of: {', '.join(choices)}")
    return value


@transaction.atomic
def save_data_element(*, actor: User | None, code: str, name: str, **fields: Any) -> DataElement:
    """Create or update a data element by code."""
    code = _code(code)
    if "aggregation" in fields:
        _choice("aggregation", fields["aggregation"], Aggregation.values)
    if "value_type" in fields:
        _choice("value_type", fields["value_type"], ValueType.values)
    for option in fields.get("options") or []:
        _code(option.get("code", ""))
    element, created = DataElement.objects.update_or_create(code=code, defaults={"name": name, **fields})
    audit(actor, "dataelement.create" if created else "dataelement.update", code, **_plain(fields))
    return element


@transaction.atomic
def save_indicator(*, actor: User | None, code: str, name: str, formula: str, **fields: Any) -> Indicator:
    """Create or update an indicator by code; a formula that cannot be read or names an unknown
    figure is refused with the position (IndicatorError on field 'formula')."""
    code = _code(code)
    try:
        check_formula(formula)
    except FormulaError as exc:
        raise IndicatorError("formula", f"{exc}\n{exc.pointer(formula)}") from None
    indicator, created = Indicator.objects.update_or_create(
        code=code, defaults={"name": name, "formula": formula, **fields}
    )
    audit(actor, "indicator.create" if created else "indicator.update", code, formula=formula)
    return indicator


@transaction.atomic
def save_target(
    *, actor: User | None, indicator: str, unit: Unit, period: str, value: float, comment: str = ""
) -> Target:
    found = Indicator.objects.filter(code=indicator).first()
    if found is None:
        raise IndicatorError("indicator", f"no indicator '{indicator}'", 404)
    try:
        pid = parse(period).id
    except PeriodError as exc:
        raise IndicatorError("period", str(exc)) from None
    target, created = Target.objects.update_or_create(
        indicator=found, unit=unit, period=pid, defaults={"value": value, "comment": comment}
    )
    audit(
        actor, "target.create" if created else "target.update", f"{indicator}@{unit.ref}/{pid}", value=value
    )
    return target


@transaction.atomic
def save_data_set(*, actor: User | None, code: str, name: str, elements: list[str], **fields: Any) -> DataSet:
    code = _code(code)
    found = {e.code: e for e in DataElement.objects.filter(code__in=elements)}
    unknown = [c for c in elements if c not in found]
    if unknown:
        raise IndicatorError("elements", f"no data element {', '.join(unknown)}")
    data_set, created = DataSet.objects.update_or_create(code=code, defaults={"name": name, **fields})
    data_set.elements.set([found[c] for c in elements])
    audit(actor, "dataset.create" if created else "dataset.update", code, elements=elements)
    return data_set


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if isinstance(v, str | int | float | list)}


# Who may write values


WRITER_ROLES = (Role.OPERATOR, Role.ADMIN)


def writable_area(user: User) -> Area:
    """Where the user may enter data values: their operator and admin grants."""
    areas = [user.area(role) for role in WRITER_ROLES]
    if any(a.everything for a in areas):
        return Area(True, frozenset())
    return Area(False, frozenset().union(*(a.prefixes for a in areas)))


# Completeness


@dataclass(frozen=True)
class Report:
    unit: Unit
    reported_at: datetime | None
    on_time: bool


def due_date(data_set: DataSet, period: str) -> date:
    return parse(period).end + timedelta(days=data_set.due_day)


def completeness(data_set: DataSet, period: str, units: list[Unit]) -> list[Report]:
    """Per unit expected to report: when it first sent a value of the set for the period, on time or late."""
    due = due_date(data_set, period)
    first = dict(
        DataValue.objects.filter(data_set_q(data_set), period=period, unit__in=units)
        .values_list("unit_id")
        .annotate(at=Min("created_at"))
        .order_by()
    )
    return [
        Report(u, first.get(u.pk), u.pk in first and first[u.pk].astimezone(VN_TZ).date() <= due)
        for u in units
    ]


def data_set_q(data_set: DataSet) -> Q:
    return Q(element__in=data_set.elements.all())


# The units a question names


def units_named(items: list[str], *, edition: str, area: Area, roots: list[Unit]) -> list[Unit]:
    """DHIS2's ou: unit refs or codes, LEVEL-n (the units of that level inside the named ones, or inside
    the caller's area), USER_ORGUNIT and USER_ORGUNIT_CHILDREN; every unit inside the caller's area."""
    named, levels = [], []
    for item in items:
        if item.upper().startswith("LEVEL-"):
            levels.append(_level(item))
        elif item.upper() == "USER_ORGUNIT":
            named += roots
        elif item.upper() == "USER_ORGUNIT_CHILDREN":
            named += list(Unit.objects.filter(parent__in=roots).order_by("code"))
        else:
            named.append(_unit(item, edition))
    for unit in named:
        if not area.contains(unit):
            raise AnalyticsError("ou", f"{unit.ref} is outside your area")
    if levels:
        bounds = [u for u in named] or roots
        named = _at_levels(bounds, levels, edition, area)
    return list(dict.fromkeys(named))


def _level(item: str) -> int:
    try:
        return int(item[6:])
    except ValueError:
        raise AnalyticsError(
            "ou", f"'{item}' is not LEVEL-n (e.g. LEVEL-2 for communes on VN-2025)"
        ) from None


def _unit(item: str, edition: str) -> Unit:
    ed, _, code = item.rpartition(":")
    unit = Unit.objects.filter(edition_id=ed or edition, code=code).select_related("parent").first()
    if unit is None:
        raise AnalyticsError("ou", f"no unit '{item}' on {ed or edition}")
    return unit


def _at_levels(bounds: list[Unit], levels: list[int], edition: str, area: Area) -> list[Unit]:
    out: list[Unit] = []
    for bound in bounds:
        subtree = Unit.objects.filter(edition_id=edition, level__in=levels).within(area)
        if bound.kind != "nation" or bound.edition_id == edition:
            subtree = subtree.filter(path__under=bound.path, edition_id=bound.edition_id)
        out += subtree.order_by("path")
    return out


# A unit's latest figures (the unit page)


def unit_figures(unit: Unit, *, limit: int = 20, language: str = "vi") -> list[dict[str, Any]]:
    """The data elements with values in the unit's area (either map), each at its latest period,
    latest first."""
    here = DataValue.objects.filter(unit__edition_id=unit.edition_id, unit__path__under=unit.path)
    elsewhere = DataValue.objects.exclude(unit__edition_id=unit.edition_id)
    if unit.kind != "nation":  # the other map's national figures do not carry down to a part of it
        elsewhere = elsewhere.exclude(unit__kind="nation")
    latest: dict[str, Period] = {}
    for code, pid in (here | elsewhere).values_list("element__code", "period").distinct():
        period = parse(pid)
        if code not in latest or _recency(period) > _recency(latest[code]):
            latest[code] = period
    by_period: dict[Period, list[str]] = {}
    for code, period in latest.items():
        by_period.setdefault(period, []).append(code)
    rows = []
    for period in sorted(by_period, key=_recency, reverse=True):
        dims = [analytics.dimension(code) for code in sorted(by_period[period])]
        rows += [
            {**r, "name": d.name}
            for d in dims
            for r in analytics.rows([d], [period], [unit], language=language)
        ]
        if len(rows) >= limit:
            break
    return rows[:limit]


def _recency(period: Period) -> tuple[date, int]:
    """Later first; of two ending the same day, the longer (8 months to date before August)."""
    return (period.end, (period.end - period.start).days)
