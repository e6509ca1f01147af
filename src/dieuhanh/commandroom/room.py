"""What the command room shows for one unit of the caller's area: the day's figures from the
warehouse, the chosen indicators, the map of the unit's children, alerts, directives and tasks.

Every function takes a unit the caller may see (room_unit checks that) and reads only its subtree.
Figures go through indicators.analytics, so a 2021-map room counts the 2025-map events carried
through the succession, and the other way round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.directives.assignments import tasks_for
from dieuhanh.directives.models import Delivery, Directive, Task
from dieuhanh.directives.services import Rates, rates
from dieuhanh.indicators import analytics
from dieuhanh.indicators.approval.figures import unapproved
from dieuhanh.indicators.models import Target
from dieuhanh.indicators.periods import Period, parse, period_of
from dieuhanh.indicators.quality import outliers
from dieuhanh.indicators.services import unit_figures
from dieuhanh.live import BUS, HUB, Key, area_key
from dieuhanh.tracing import services as tracing
from dieuhanh.tracing.engine import Rule
from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import predecessors, successors, unit_in_area
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import Rollup

SPARK_DAYS = 14  # the tiles' sparklines: two weeks of days
MAP_DAYS = 7  # the map colours each unit by the week up to the day shown
BASELINE_DAYS = 7  # a figure's threshold compares the day with the mean of the days before
INDICATOR_TILES = 4
SPARK_PERIODS = 6  # an indicator's sparkline: its last six periods


@dataclass(frozen=True)
class RoomFigure:
    """An event count the room follows; `alert_factor`: the day crosses its threshold above this
    many times the mean of the BASELINE_DAYS before it (None: no threshold)."""

    code: str
    ref: str  # an analytics reference (ev.kind[.dim])
    label: str | Promise
    alert_factor: float | None = None


FIGURES: tuple[RoomFigure, ...] = (
    RoomFigure("positive", "ev.test.positive", _("Positive tests"), alert_factor=1.5),
    RoomFigure("test", "ev.test", _("Tests")),
    RoomFigure("checkin", "ev.checkin", _("QR check-ins")),
    RoomFigure("health", "ev.health", _("Health declarations")),
    RoomFigure("vaccination", "ev.vaccination", _("Vaccinations")),
    RoomFigure("report", "ev.report", _("Citizens' reports"), alert_factor=2.0),
)
BY_CODE = {f.code: f for f in FIGURES}
# How long an area's shared parts are kept at most; any live event concerning the area drops them sooner.
# Figures that send no live event (data values typed in) show within this.
SHARED_SECONDS = 5.0

T = TypeVar("T")


def room_keys(unit: Unit) -> set[Key]:
    """The live keys of the room on `unit`: the events that change what it shows."""
    keys: set[Key] = {area_key(unit.edition_id, unit.path)}
    if unit.level == 0:  # the nation is one place on every map: both maps' events concern it
        keys |= {area_key(code, unit.path) for code in Edition.objects.values_list("code", flat=True)}
    return keys


class _Shared:
    """What every screen of an area shows alike, computed once per change of the area and not once per
    screen: a national morning's leaders all watch the same rooms. Kept while no live event concerns
    the area (its keys' versions, bumped by the relay of every process's events) and SHARED_SECONDS at
    most. Only when events come through the broker: in one process without it, a change made by
    another process (a worker) would go unseen, so nothing is kept."""

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple[float, tuple[int, ...], Any]] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, unit: Unit, name: str, language: str, compute: Callable[[], T]) -> T:
        if BUS.mode != "nats":
            return compute()
        keys = sorted(room_keys(unit), key=repr)
        entry_key = (unit.pk, name, language)
        with self._guard:
            lock = self._locks.setdefault(entry_key, threading.Lock())
        with lock:  # one computes; the screens asking meanwhile wait for its answer
            version = HUB.version(keys)  # read before computing: an event during it voids the answer
            entry = self._entries.get(entry_key)
            if entry is not None:
                age = time.monotonic() - entry[0]
                # Within the screens' own refresh window an answer stands even after a change: a morning's
                # acknowledgements change the nation's rates a hundred times a second, and each screen
                # reloads at most once per window anyway.
                fresh = entry[1] == version or age < settings.LIVE_COALESCE_SECONDS
                if age < SHARED_SECONDS and fresh:
                    return entry[2]
            value = compute()
            self._entries[entry_key] = (time.monotonic(), version, value)
            return value

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()


shared = _Shared()


# Which unit the room shows


def room_root(user: User, edition: str) -> Unit | None:
    """The caller's highest unit on a map: the nation for a national grant, else their top grant there."""
    area = user.area()
    if area.everything:
        return Unit.objects.filter(edition_id=edition, level=0).first()
    granted = Unit.objects.filter(grants__user=user, edition_id=edition).within(area)
    return granted.order_by("level", "path").first()


def room_editions(user: User) -> list[Edition]:
    """The maps on which the caller has a room."""
    return [e for e in Edition.objects.all() if room_root(user, e.code) is not None]


def room_unit(user: User, ref: str | None, edition: str | None) -> Unit:
    """The unit asked for (EDITION:CODE) inside the caller's area, or their root on the map asked
    (their first map when it is not theirs). Unit.DoesNotExist when there is none for them; a unit
    asked for that is not theirs is refused by unit_in_area (DomainError)."""
    if ref:
        return unit_in_area(ref, user.area())
    editions = [e.code for e in room_editions(user)]
    if not editions:
        raise Unit.DoesNotExist("no unit to show")
    root = room_root(user, edition if edition in editions else editions[-1])
    if root is None:
        raise Unit.DoesNotExist("no unit to show")
    return root


def counterpart(user: User, unit: Unit, edition: str) -> Unit:
    """The same place on the other map, for the room's map toggle: the nation is the nation; a
    province or commune goes through the succession to the unit that takes most of it (a 2021
    district through its province); a 2025 province made of several 2021 provinces is the 2021 nation,
    where the page keeps the view on it. Outside the caller's area, their root on that map (or on
    their own map, when that one is not theirs)."""
    target: Unit | None = None
    if unit.edition_id == edition:
        target = unit
    elif unit.level == 0:
        target = Unit.objects.filter(edition_id=edition, level=0).first()
    else:
        place = unit.parent if unit.kind == "district" and unit.parent else unit
        newer = Edition.objects.filter(code=edition, effective_from__gt=place.edition.effective_from).exists()
        if newer:
            found = [s.new for s in successors(place) if s.new.edition_id == edition]
        else:
            found = [s.old for s in predecessors(place) if s.old.edition_id == edition]
        if place.kind == "province" and len(found) > 1:
            target = Unit.objects.filter(edition_id=edition, level=0).first()
        elif found:
            target = found[0]
    if target is not None and user.area().contains(target):
        return target
    return room_unit(user, None, edition)


# The day and its figures


def latest_day() -> date | None:
    """The last day any source has data for (each kind's newest day, read from its index)."""
    days = [Rollup.objects.filter(kind=kind).aggregate(day=Max("day"))["day"] for kind in KINDS]
    found = [d for d in days if d is not None]
    return max(found) if found else None


def days_to(day: date, n: int) -> list[Period]:
    return [period_of("daily", day - timedelta(days=back)) for back in range(n - 1, -1, -1)]


@dataclass
class Tile:
    code: str
    label: str | Promise
    value: float | None
    unit: str = ""
    period_label: str = ""
    last_year: float | None = None
    change_pct: float | None = None
    spark: list[float | None] = field(default_factory=list)
    target: float | None = None
    crossed: bool = False  # a threshold crossed (figures) or a target reached (indicators)
    threshold: float | None = None
    unapproved: bool = False  # a figure not yet approved at the unit's level: "chưa phê duyệt" (issue 19)
    outlier: str = ""  # the figure is an outlier of the unit's own series: "Bất thường: …" (issue 19)

    @property
    def spark_points(self) -> str:
        return spark_points(self.spark)

    @property
    def change_abs(self) -> float | None:
        """The change's size: the words (up, down) carry its sign."""
        return None if self.change_pct is None else abs(self.change_pct)


def figure_tiles(unit: Unit, day: date | None, language: str = "vi") -> list[Tile]:
    """One tile per followed figure: the day's count, cùng kỳ, two weeks of days, its threshold."""
    if day is None:
        return [Tile(f.code, f.label, None) for f in FIGURES]
    periods = days_to(day, SPARK_DAYS)
    dims = [analytics.dimension(f.ref) for f in FIGURES]
    found = _by_dim_and_period(analytics.rows(dims, periods, [unit], language=language, empty=True))
    tiles = []
    for figure in FIGURES:
        cells = found.get(figure.ref, {})
        today = cells.get(periods[-1].id, {})
        spark = [cells.get(p.id, {}).get("value") for p in periods]
        threshold = _threshold(figure, spark)
        value = today.get("value") or 0  # the warehouse has data for the day: no event is a count of 0
        tiles.append(
            Tile(
                figure.code,
                figure.label,
                value,
                unit=today.get("unit", ""),
                period_label=periods[-1].label(language),
                last_year=today.get("same_period_last_year"),
                change_pct=today.get("change_pct"),
                spark=spark,
                threshold=threshold,
                crossed=threshold is not None and (value or 0) > threshold,
            )
        )
    return tiles


def _by_dim_and_period(rows: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for row in rows:
        out.setdefault(row["dx"], {})[row["pe"]] = row
    return out


def _threshold(figure: RoomFigure, days: list[float | None]) -> float | None:
    """The count above which the last day is an alert: alert_factor × the mean of the days before."""
    if figure.alert_factor is None or len(days) < 2:
        return None
    before = [v or 0 for v in days[-1 - BASELINE_DAYS : -1]]
    return figure.alert_factor * sum(before) / len(before)


def spark_points(values: list[float | None], width: float = 100, height: float = 24) -> str:
    """An SVG polyline's points for the values (a missing one counts 0), scaled into the box."""
    if len(values) < 2:
        return ""
    numbers = [v or 0 for v in values]
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1
    step = width / (len(numbers) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(numbers)
    )


# Chosen indicators: those with a target for the unit, else its latest figures


def indicator_tiles(unit: Unit, language: str = "vi") -> list[Tile]:
    chosen = _targeted(unit) or _latest(unit, language)
    tiles = []
    for code, period in chosen[:INDICATOR_TILES]:
        dim = analytics.dimension(code)
        periods = _periods_to(period, SPARK_PERIODS)
        rows = analytics.rows([dim], periods, [unit], language=language, empty=True)
        by_period = {r["pe"]: r for r in rows}
        row = by_period.get(period.id, {})
        target, value = row.get("target"), row.get("value")
        tiles.append(
            Tile(
                dim.code,
                dim.name,
                value,
                unit=dim.unit,
                period_label=period.label(language),
                last_year=row.get("same_period_last_year"),
                change_pct=row.get("change_pct"),
                spark=[by_period.get(p.id, {}).get("value") for p in periods],
                target=target,
                crossed=target is not None and value is not None and value >= target,
                unapproved=value is not None and unit.pk in unapproved(code, period, [unit]),
                outlier=_outlier(unit, code, period, language) if value is not None else "",
            )
        )
    return tiles


def _outlier(unit: Unit, code: str, period: Period, language: str) -> str:
    """The flag of a stored figure (a data element or a count) that is an outlier of the unit's own
    series, as the entry form and the unit page show it; computed indicators are not judged."""
    if analytics.reference(code) is None:
        return ""
    found = outliers.flags(unit, period, [code])
    return outliers.flag_text_of(found[code], language) if code in found else ""


def _targeted(unit: Unit) -> list[tuple[str, Period]]:
    """The unit's indicators with a target, each at the latest period it has one for."""
    latest: dict[str, Period] = {}
    for code, pid in Target.objects.filter(unit=unit).values_list("indicator__code", "period"):
        period = parse(pid)
        if code not in latest or period.end > latest[code].end:
            latest[code] = period
    return sorted(latest.items())


def _latest(unit: Unit, language: str) -> list[tuple[str, Period]]:
    return [(r["dx"], parse(r["pe"])) for r in unit_figures(unit, limit=INDICATOR_TILES, language=language)]


def _periods_to(period: Period, n: int) -> list[Period]:
    periods = [period]
    while len(periods) < n:
        periods.insert(0, periods[0].previous())
    return periods


def chosen_indicators(unit: Unit, language: str = "vi") -> list[tuple[str, Period]]:
    """The indicators the room follows for the unit (its tiles, the charts' series): those with a
    target, else its latest figures; each at its latest period."""
    return _targeted(unit) or _latest(unit, language)


periods_to = _periods_to  # n periods of one type up to one (the charts' series)


# The map: the unit's children, coloured by one figure over the week up to the day


def map_data(unit: Unit, figure: RoomFigure, day: date | None, language: str = "vi") -> dict[str, Any]:
    """The unit's children with their coordinates, the figure over the MAP_DAYS up to the day, and the
    same days a year before (cùng kỳ): `previous` is None for all when no source had data then."""
    children = list(Unit.objects.filter(parent=unit).annotate(below=Count("children")).order_by("code"))
    totals: dict[str, float] = {}
    previous: dict[str, float] = {}
    periods = days_to(day, MAP_DAYS) if day else []
    if children and periods:
        dim = analytics.dimension(figure.ref)
        for row in analytics.rows([dim], periods, children, language=language, empty=True):
            totals[row["ou"]] = totals.get(row["ou"], 0) + (row["value"] or 0)
            if row["same_period_last_year"] is not None:
                previous[row["ou"]] = previous.get(row["ou"], 0) + row["same_period_last_year"]
    known = bool(previous)  # a year before, some source had data for some unit of the map
    items = []
    for c in children:
        value = totals.get(c.ref, 0)
        before = previous.get(c.ref, 0) if known else None
        change = round((value - before) / before * 100, 1) if before else None
        items.append(
            {
                "ref": c.ref,
                "name": c.name,
                "lat": c.lat,
                "lon": c.lon,
                "value": value,
                "previous": before,
                "change_pct": change,
                "drill": c.below > 0,
            }
        )
    province = unit.path.strip("/").split("/")[1:2]  # the province the unit lies in, if below the nation
    return {
        "unit": {
            "ref": unit.ref,
            "name": unit.name,
            "lat": unit.lat,
            "lon": unit.lon,
            "level": unit.level,
            "province": f"{unit.edition_id}:{province[0]}" if province else None,
        },
        "figure": {"code": figure.code, "label": str(figure.label)},
        "start": periods[0].start.isoformat() if periods else None,
        "end": periods[-1].end.isoformat() if periods else None,
        "items": items,
    }


# Alerts


@dataclass(frozen=True)
class ThresholdAlert:
    unit: Unit
    figure: RoomFigure
    value: float
    threshold: float


def threshold_alerts(unit: Unit, day: date | None, language: str = "vi") -> list[ThresholdAlert]:
    """The children (or the unit itself, at the bottom) whose day crossed a figure's threshold."""
    alerting = [f for f in FIGURES if f.alert_factor is not None]
    if day is None or not alerting:
        return []
    units = list(Unit.objects.filter(parent=unit).order_by("code")) or [unit]
    periods = days_to(day, BASELINE_DAYS + 1)
    dims = [analytics.dimension(f.ref) for f in alerting]
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for row in analytics.rows(dims, periods, units, language=language):
        cells.setdefault((row["dx"], row["ou"]), {})[row["pe"]] = row["value"] or 0
    alerts = []
    for figure in alerting:
        for u in units:
            days = [cells.get((figure.ref, u.ref), {}).get(p.id) for p in periods]
            threshold = _threshold(figure, days)
            if threshold is not None and (days[-1] or 0) > threshold:
                alerts.append(ThresholdAlert(u, figure, days[-1] or 0, threshold))
    return sorted(alerts, key=lambda a: -a.value)


def cluster_alerts(user: User, unit: Unit, days: int = 14) -> list[tracing.Cluster] | None:
    """Venues in the unit's subtree where cases gathered lately; None for a caller who is no tracer
    (clusters are read from the cases' check-ins, which only tracers may see)."""
    if not user.grants.filter(role="tracer").exists():
        return None
    now = timezone.now()
    found = tracing.clusters(actor=user, start=now - timedelta(days=days), end=now, min_cases=2, rule=Rule())
    area = Area.of(unit)
    return [c for c in found if area.contains(c.venue.commune)][:10]


# Directives and tasks


@dataclass(frozen=True)
class DirectiveRates:
    directive: Directive
    rates: Rates

    @property
    def ack_pct(self) -> float:
        return self.rates.ack_pct

    @property
    def response_pct(self) -> float:
        return self.rates.response_pct

    @property
    def overdue(self) -> int:
        return self.rates.overdue

    @property
    def total(self) -> int:
        return self.rates.total


def directive_rates(unit: Unit, now: datetime | None = None, limit: int = 10) -> list[DirectiveRates]:
    """The open directives reaching the unit's subtree, newest first, with its units' rates."""
    now = now or timezone.now()
    # The newest directives first (walking their date index, each checked for a delivery below the
    # unit), then counts over their deliveries only: counting every delivery of the area first took
    # 2.2 s for the nation at 1 M deliveries (bench/room.py).
    newest = Directive.objects.filter(cancelled_at__isnull=True).filter(
        Exists(Delivery.objects.filter(directive=OuterRef("pk")).within(Area.of(unit)))
    )
    chosen = list(newest.order_by("-issued_at", "-pk").values_list("pk", flat=True)[: limit * 3])
    counted = rates(chosen, Area.of(unit), now)
    directives = Directive.objects.select_related("issuer_unit").in_bulk(chosen)
    found = [DirectiveRates(directives[pk], r) for pk in chosen if (r := counted.get(pk))]
    return [d for d in found if not d.rates.done(d.directive)][:limit]  # finished ones are left out


def overdue_tasks(user: User, unit: Unit, limit: int = 10) -> list[Task]:
    return list(tasks_for(user, unit, overdue=True, below=True)[:limit])
