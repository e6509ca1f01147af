"""An answer computed anew over many communes (issue 18, point 1): the rollups read packed, the leaves
placed a column at a time, and rows made only for the units with a value, must give the rows a reader
expects. Expected figures are the test's own arithmetic on the counts it wrote."""

from __future__ import annotations

from datetime import date

import pytest

from dieuhanh.indicators import analytics, services
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit
from tests.indicators.test_analytics_cache import add_rollup

pytestmark = pytest.mark.django_db


def communes(world) -> list[Unit]:
    """The province's communes: more than analytics sums in the database (SUMMED_IN_DATABASE), so
    their counts are read packed and summed in Python, as a national answer's are."""
    found = list(Unit.objects.filter(parent=world.province).order_by("code"))
    assert len(found) > analytics.SUMMED_IN_DATABASE
    return found


def ask(code: str, months: str, units: list[Unit], *, empty: bool = False) -> list[dict]:
    ANSWERS.clear()  # computed anew, not served from an earlier test's answer
    dim = analytics.dimension(code)
    return analytics.rows([dim], [parse(p) for p in months.split(";")], units, empty=empty)


def test_counts_and_cung_ky_of_many_communes_have_a_row_only_where_a_count_was_written(world):
    a, b = world.commune_a, world.commune_b
    add_rollup(a, date(2021, 8, 1), 6)
    add_rollup(a, date(2020, 8, 1), 4)
    add_rollup(b, date(2021, 8, 1), 3)
    add_rollup(b, date(2021, 9, 1), 2)
    units = communes(world)

    rows = ask("ev.test.positive", "202108;202109", units)
    assert [(r["ou"], r["pe"], r["value"], r["same_period_last_year"], r["change_pct"]) for r in rows] == [
        *sorted([(a.ref, "202108", 6, 4, 50.0), (b.ref, "202108", 3, None, None)], key=lambda r: r[0]),
        (b.ref, "202109", 2, None, None),
    ]
    assert {r["ou_name"] for r in rows} == {a.name, b.name}
    assert all(r["status"] == "final" and r["carried"] is False and r["target"] is None for r in rows)


def test_a_yoy_indicator_has_a_row_only_where_cung_ky_was_counted_and_every_unit_one_with_empty(world):
    a, b = world.commune_a, world.commune_b
    services.save_indicator(
        actor=None, code="positives_yoy", name="Dương tính so cùng kỳ", formula="yoy(#{ev.test.positive})",
        unit="%", decimals=1,
    )  # fmt: skip
    add_rollup(a, date(2021, 8, 1), 7)
    add_rollup(a, date(2020, 8, 1), 4)
    add_rollup(b, date(2021, 8, 1), 3)  # no cùng kỳ: no change to show
    units = communes(world)

    rows = ask("positives_yoy", "202108", units)
    assert [(r["ou"], r["value"], r["unit"]) for r in rows] == [(a.ref, 75.0, "%")]

    everyone = ask("positives_yoy", "202108", units, empty=True)
    assert [r["ou"] for r in everyone] == [u.ref for u in units]
    assert {r["ou"]: r["value"] for r in everyone if r["value"] is not None} == {a.ref: 75.0}


def test_a_month_before_1900_is_counted(world):
    """The packed read writes a day as days since 1900; an older month is read grouped instead."""
    add_rollup(world.commune_a, date(1899, 8, 1), 5)
    rows = ask("ev.test.positive", "189908", communes(world))
    assert [(r["ou"], r["value"]) for r in rows] == [(world.commune_a.ref, 5)]


def test_a_count_indicator_with_a_target_shows_it_on_that_wards_row_only(world):
    """A target is added to the rows of counts made for many communes: on its unit's row, in its place
    among the fields, and a unit with a target but no count has no row."""
    a, b = world.commune_a, world.commune_b
    services.save_indicator(
        actor=None, code="positives", name="Ca dương tính", formula="#{ev.test.positive}", unit="ca"
    )
    services.save_target(actor=None, indicator="positives", unit=a, period="202108", value=8)
    services.save_target(actor=None, indicator="positives", unit=b, period="202109", value=5)
    add_rollup(a, date(2021, 8, 1), 6)
    add_rollup(b, date(2021, 8, 1), 3)
    rows = ask("positives", "202108;202109", communes(world))
    by_unit = {(r["ou"], r["pe"]): r for r in rows}
    assert set(by_unit) == {(a.ref, "202108"), (b.ref, "202108")}  # b's September target alone: no row
    ours = by_unit[(a.ref, "202108")]
    assert (ours["value"], ours["target"], ours["target_pct"]) == (6, 8, 75.0)
    theirs = by_unit[(b.ref, "202108")]
    assert (theirs["value"], theirs["target"], theirs["target_pct"]) == (3, None, None)
    assert list(ours) == list(theirs)  # the same fields in the same order (the API's JSON)
