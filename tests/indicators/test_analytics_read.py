"""Analytics' fast read of the rollups (issue 18): on PostgreSQL the rollup rows come packed in one
bytea that numpy reads, and rows are rounded a column at a time. Both must give, cell for cell, what
the plain read and the per-value rounding give: several rows of one cell added up, a month nobody
wrote and a commune with no events missing (not zero), a written zero present, and a write counted in
the next answer.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

import math
import random
from datetime import date

import numpy as np
import pytest
from django.db import connection

from dieuhanh.indicators import analytics
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit

pytestmark = pytest.mark.django_db


def write(unit: Unit, month: date, n: int, method: str = "pcr") -> None:
    """A count written as raw SQL, as the ingest's batch would leave it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO warehouse_rollupmonth (commune_id, month, kind, dim1, dim2, count)"
            " VALUES (%s, %s, 'test', 'positive', %s, %s)"
            " ON CONFLICT (commune_id, month, kind, dim1, dim2)"
            " DO UPDATE SET count = warehouse_rollupmonth.count + excluded.count",
            [unit.pk, month, method, n],
        )


def communes(world) -> list[Unit]:
    """The province's communes: more units than the database sums itself, so counts are read leaf by
    leaf (the national question's path)."""
    found = list(
        Unit.objects.filter(
            edition_id=world.province.edition_id, kind="commune", path__startswith=world.province.path
        ).order_by("path")
    )
    assert len(found) > analytics.SUMMED_IN_DATABASE
    return found


MONTHS = "202107;202108;202109"


def ask(units: list[Unit]) -> dict[tuple[str, str, str], tuple]:
    dims = [
        analytics.dimension("ev.test.positive"),
        analytics.Dimension("yoy", "x", "%", 1, f.parse("yoy(#{ev.test.positive})"), None),
    ]
    periods = [parse(p) for p in MONTHS.split(";")]
    return {
        (r["dx"], r["ou"], r["pe"]): (r["value"], r["same_period_last_year"], r["change_pct"])
        for r in analytics.rows(dims, periods, units)
    }


def _plain_read(rows, column, spread):
    """The read before the packed one: grouped in the database, fetched as tuples."""
    grouped = rows.values_list("commune_id", column).annotate(n=analytics._SUM).order_by()
    return spread.arrays(analytics._fetch(grouped))


def test_the_read_counts_each_cell_once_and_leaves_unwritten_cells_missing(world, monkeypatch):
    units = communes(world)
    a, b = world.commune_a, world.commune_b
    others = [u for u in units if u.pk not in (a.pk, b.pk)]
    c, quiet = others[0], others[-1]
    write(a, date(2021, 8, 1), 6, "pcr")
    write(a, date(2021, 8, 1), 3, "rapid")  # two rows of one cell: 9
    write(a, date(2020, 8, 1), 4)  # cùng kỳ
    write(b, date(2021, 7, 1), 0)  # a written zero is a figure
    write(c, date(2021, 9, 1), 5)  # no cùng kỳ: yoy missing
    write(c, date(2019, 9, 1), 7)  # outside what is asked: not counted
    ANSWERS.clear()
    found = ask(units)

    assert found[("ev.test.positive", a.ref, "202108")] == (9, 4, 125)  # (9 - 4) / 4
    assert found[("yoy", a.ref, "202108")][0] == 125
    assert ("ev.test.positive", a.ref, "202107") not in found  # a month nobody wrote
    assert found[("ev.test.positive", c.ref, "202109")] == (5, None, None)
    assert ("yoy", c.ref, "202109") not in found
    assert not [k for k in found if k[1] == quiet.ref]  # a commune with no events
    assert found[("ev.test.positive", b.ref, "202107")] == (0, None, None)

    monkeypatch.setattr(analytics, "_read_rows", _plain_read)
    ANSWERS.clear()
    assert ask(units) == found


def test_a_write_is_counted_in_the_next_answer_read_afresh_or_patched(world, monkeypatch):
    units = communes(world)
    c = units[1]
    write(c, date(2021, 8, 1), 2)
    ANSWERS.clear()
    assert ask(units)[("ev.test.positive", c.ref, "202108")][0] == 2
    write(c, date(2021, 8, 1), 3, "rapid")
    assert ask(units)[("ev.test.positive", c.ref, "202108")][0] == 5  # the kept answer brought up to date
    write(c, date(2020, 8, 1), 4)
    ANSWERS.clear()
    assert ask(units)[("ev.test.positive", c.ref, "202108")] == (5, 4, 25)  # read afresh
    monkeypatch.setattr(analytics, "PATCH_AREAS", 0)  # a write the answer cannot patch
    write(c, date(2021, 8, 1), 1)
    assert ask(units)[("ev.test.positive", c.ref, "202108")] == (6, 4, 50)


def test_rounding_a_column_gives_what_rounding_each_value_gives():
    rng = random.Random(18)
    values = [
        *(2.675, -2.675, 0.125, -0.125, 1.005, 2.5, -2.5, 0.5, 1.45, 12.345, 1e-12, -0.0, 0.0),
        *(7.0, -3.0, 1e15 + 0.5, 2.0**53, 1e20, -1e20, 123456789.125, 1 / 3, -2 / 3),
        *(rng.uniform(-1000, 1000) for _ in range(2000)),
        *(round(rng.uniform(-100, 100), 3) for _ in range(2000)),  # many ties at 2 decimals
        *(rng.randint(-(10**6), 10**6) / 8 for _ in range(500)),  # exact binary ties
    ]
    for decimals in (0, 1, 2, 3, 16, 20):
        # _round's exact path holds 28 digits: more decimals are asked of small numbers only.
        chosen = values if decimals < 16 else [v for v in values if abs(v) < 1e6]
        expected = [analytics._round(v, decimals) for v in chosen] + [None]
        found = analytics._shown(np.array([*chosen, math.nan]), decimals)
        assert found == expected, decimals
        assert [type(v) for v in found] == [type(v) for v in expected], decimals


def test_days_and_weeks_are_read_from_the_daily_rollups_the_same_way(world, monkeypatch):
    units = communes(world)
    a, c = world.commune_a, units[-1]
    with connection.cursor() as cursor:
        for unit, day, method, n in (
            (a, date(2021, 8, 2), "pcr", 2),
            (a, date(2021, 8, 2), "rapid", 1),  # one cell, two rows: 3
            (a, date(2021, 8, 4), "pcr", 4),
            (c, date(2021, 8, 8), "pcr", 5),  # Sunday: the week's last day
            (c, date(2021, 8, 9), "pcr", 6),  # the next week
        ):
            cursor.execute(
                "INSERT INTO warehouse_rollup (commune_id, day, kind, dim1, dim2, count)"
                " VALUES (%s, %s, 'test', 'positive', %s, %s)",
                [unit.pk, day, method, n],
            )
    dim = analytics.dimension("ev.test.positive")
    periods = [parse("20210802"), parse("20210803"), parse("2021W31")]

    def ask_days() -> dict[tuple[str, str], float]:
        ANSWERS.clear()
        return {(r["ou"], r["pe"]): r["value"] for r in analytics.rows([dim], periods, units)}

    found = ask_days()
    assert found == {(a.ref, "20210802"): 3, (a.ref, "2021W31"): 7, (c.ref, "2021W31"): 5}
    monkeypatch.setattr(analytics, "_read_rows", _plain_read)
    assert ask_days() == found
