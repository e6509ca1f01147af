"""The command room's charts (issue 17, point 4): each one a table first — columns and rows, the rows'
numbers as numbers and as Vietnamese text — from which the page draws an ECharts chart, shows the table
itself (for screen readers and keyboards) and writes the CSV download. The figures come from the room's
own reads (commandroom.room, over indicators.analytics): no second aggregation.

- `curve`: the epidemic curve — tests and positives per day, with their 7-day averages;
- `series`: an indicator (or an event count) period by period, beside the same period a year before;
- `rank`: the 10 units below with the highest and the 10 with the lowest figure over the map's week;
- `targets`: the room's indicators against their targets (bullet charts).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.translation import gettext as _

from dieuhanh import vnformat
from dieuhanh.commandroom import room
from dieuhanh.indicators import analytics
from dieuhanh.indicators.periods import Period, period_of
from dieuhanh.sheets import csv_row
from dieuhanh.units.models import Unit

CHARTS = ("curve", "series", "rank", "targets")
CURVE_DAYS = 60  # the epidemic curve: two months of days
AVERAGE_DAYS = 7
SERIES_PERIODS = 12
RANK_SIZE = 10


@dataclass
class Column:
    key: str
    label: str
    type: str = "number"  # "number", "text" or "date"
    decimals: int = 0


@dataclass
class Chart:
    id: str
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self, language: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "note": self.note,
            "columns": [c.__dict__ for c in self.columns],
            "rows": self.rows,
            "text": [
                [_text(c, v, language) for c, v in zip(self.columns, row, strict=True)] for row in self.rows
            ],
            **self.extra,
        }

    def as_csv(self) -> bytes:
        """The table as CSV: a header of the columns' labels, numbers as numbers, every text cell through
        dieuhanh.sheets (a unit's or an indicator's name never becomes a formula)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(csv_row(c.label for c in self.columns))
        for row in self.rows:
            writer.writerow(csv_row("" if v is None else v for v in row))
        return out.getvalue().encode("utf-8-sig")  # the BOM: Excel reads the Vietnamese text as UTF-8


def _text(column: Column, value: Any, language: str) -> str:
    if value is None:
        return "—"
    if column.type == "number":
        return vnformat.number(value, language, column.decimals)
    if column.type == "date":
        return vnformat.short_date(date.fromisoformat(value), language)
    return str(value)


def build(name: str, unit: Unit, *, figure: room.RoomFigure, language: str, dx: str = "") -> Chart:
    """The chart `name` for a unit of the caller's area (room.room_unit checked it)."""
    day = room.latest_day()
    if name == "curve":
        return curve(unit, day, language)
    if name == "series":
        return series(unit, day, language, dx)
    if name == "rank":
        return rank(unit, figure, day, language)
    if name == "targets":
        return targets(unit, language)
    raise ValueError(name)


def curve(unit: Unit, day: date | None, language: str) -> Chart:
    tests, positives = room.BY_CODE["test"], room.BY_CODE["positive"]
    chart = Chart(
        "curve",
        _("Epidemic curve: tests and positives per day"),
        [
            Column("day", _("Day"), "date"),
            Column("test", str(tests.label)),
            Column("positive", str(positives.label)),
            Column("test_avg", _("Tests, 7-day average"), decimals=1),
            Column("positive_avg", _("Positives, 7-day average"), decimals=1),
        ],
        note=_("The 7-day average of a day is the mean of that day and the 6 before it."),
    )
    if day is None:
        return chart
    periods = room.days_to(day, CURVE_DAYS + AVERAGE_DAYS - 1)
    dims = [analytics.dimension(tests.ref), analytics.dimension(positives.ref)]
    found: dict[tuple[str, str], float] = {}
    for row in analytics.rows(dims, periods, [unit], language=language, last_year=False):
        found[(row["dx"], row["pe"])] = row["value"] or 0
    daily = {ref: [found.get((ref, p.id), 0) for p in periods] for ref in (tests.ref, positives.ref)}
    for i in range(AVERAGE_DAYS - 1, len(periods)):
        window = slice(i - AVERAGE_DAYS + 1, i + 1)
        chart.rows.append(
            [
                periods[i].start.isoformat(),
                daily[tests.ref][i],
                daily[positives.ref][i],
                _mean(daily[tests.ref][window]),
                _mean(daily[positives.ref][window]),
            ]
        )
    return chart


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 1)


def series_choices(unit: Unit, language: str) -> list[tuple[str, str, Period | None]]:
    """What the series chart may show: the room's indicators (those with a target, else the latest
    figures), each at its latest period, then the room's event counts (by month)."""
    chosen = [(code, analytics.dimension(code).name, p) for code, p in room.chosen_indicators(unit, language)]
    return chosen + [(f.code, str(f.label), None) for f in room.FIGURES]


def series(unit: Unit, day: date | None, language: str, dx: str = "") -> Chart:
    choices = series_choices(unit, language)
    code, name, last = next((c for c in choices if c[0] == dx), choices[0])
    figure = room.BY_CODE.get(code)
    dim = analytics.dimension(figure.ref if figure else code)
    if last is None:
        last = period_of("monthly", day) if day else None
    chart = Chart(
        "series",
        _("%(name)s beside the same period last year") % {"name": name},
        [
            Column("period", _("Period"), "text"),
            Column("value", _("This period"), decimals=dim.decimals),
            Column("last_year", _("Same period last year"), decimals=dim.decimals),
            Column("change_pct", _("Change (%)"), decimals=2),
        ],
        note=dim.unit,
        extra={"choice": code, "choices": [{"code": c, "name": n} for c, n, _p in choices]},
    )
    if last is None:
        return chart
    periods = room.periods_to(last, SERIES_PERIODS)
    rows = {r["pe"]: r for r in analytics.rows([dim], periods, [unit], language=language, empty=True)}
    for p in periods:
        r = rows.get(p.id, {})
        value, before = r.get("value"), r.get("same_period_last_year")
        if figure is not None:  # an event count: no event is a count of 0
            value, before = value or 0, before or 0
        chart.rows.append([p.label(language), value, before, r.get("change_pct")])
    return chart


def rank(unit: Unit, figure: room.RoomFigure, day: date | None, language: str) -> Chart:
    """The units directly below, by the map's figure over its week: the 10 highest, then the 10 lowest
    of the others (fewer than 20 units: each appears once)."""
    data = room.shared(
        unit, f"map:{figure.code}", language, lambda: room.map_data(unit, figure, day, language)
    )
    items = sorted(data["items"], key=lambda i: (-i["value"], i["name"]))
    top = items[:RANK_SIZE]
    bottom = sorted(items[RANK_SIZE:], key=lambda i: (i["value"], i["name"]))[:RANK_SIZE]
    chart = Chart(
        "rank",
        _("%(figure)s: the 10 highest and the 10 lowest units below") % {"figure": figure.label},
        [
            Column("group", _("Group"), "text"),
            Column("rank", _("Rank"), decimals=0),
            Column("unit", _("Unit"), "text"),
            Column("value", str(figure.label)),
        ],
        extra={"figure": figure.code, "refs": [i["ref"] for i in top + bottom]},
    )
    if data["start"]:
        start, end = date.fromisoformat(data["start"]), date.fromisoformat(data["end"])
        chart.note = _("From %(start)s to %(end)s") % {
            "start": vnformat.short_date(start, language),
            "end": vnformat.short_date(end, language),
        }
    chart.rows += [[_("Highest"), n, i["name"], i["value"]] for n, i in enumerate(top, start=1)]
    total = len(items)
    chart.rows += [[_("Lowest"), total - n, i["name"], i["value"]] for n, i in enumerate(bottom)]
    return chart


def targets(unit: Unit, language: str) -> Chart:
    tiles = [t for t in room.indicator_tiles(unit, language) if t.target is not None]
    chart = Chart(
        "targets",
        _("Indicators against their targets"),
        [
            Column("indicator", _("Indicator"), "text"),
            Column("period", _("Period"), "text"),
            Column("value", _("Value"), decimals=2),
            Column("target", _("Planned target"), decimals=2),
            Column("pct", _("Share of the target (%)"), decimals=1),
        ],
    )
    for t in tiles:
        pct = None if t.value is None or not t.target else round(t.value / t.target * 100, 1)
        chart.rows.append([str(t.label), t.period_label, t.value, t.target, pct])
    return chart
