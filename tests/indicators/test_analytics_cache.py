"""Analytics answers stay live under the answer cache (issue 18): every write to what an answer read,
by any path, is counted in the next answer; an unchanged question is answered from the cache.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from dieuhanh.indicators import analytics, versions
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.models import DataValue
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Succession, Unit
from tests.factories import element, store

pytestmark = pytest.mark.django_db


def positives(units: list[Unit], months: str = "202108") -> dict[tuple[str, str], float]:
    dim = analytics.dimension("ev.test.positive")
    periods = [parse(p) for p in months.split(";")]
    return {(r["ou"], r["pe"]): r["value"] for r in analytics.rows([dim], periods, units)}


def add_rollup(unit: Unit, month: date, n: int, *, daily: bool = False) -> None:
    """A count written as raw SQL, past every application verb: only the database trigger sees it. In
    the monthly rollup (`month` its first day), or with `daily` in the daily one (`month` a day)."""
    table, bucket = ("warehouse_rollup", "day") if daily else ("warehouse_rollupmonth", "month")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (commune_id, {bucket}, kind, dim1, dim2, count)"  # noqa: S608 - the test's own names
            " VALUES (%s, %s, 'test', 'positive', 'pcr', %s)"
            f" ON CONFLICT (commune_id, {bucket}, kind, dim1, dim2)"
            f" DO UPDATE SET count = {table}.count + excluded.count",
            [unit.pk, month, n],
        )


def test_every_watched_table_carries_the_version_trigger(world):
    existing = set(connection.introspection.table_names())
    watched = {t for tables in versions.WATCHED.values() for t in tables}
    assert watched <= existing, "a watched table was renamed: its answers would never be invalidated"
    assert versions.installed() == watched


def test_a_raw_write_is_counted_in_the_next_answer_and_the_same_question_is_then_served_from_memory(world):
    a, b = world.commune_a, world.commune_b
    add_rollup(a, date(2021, 8, 1), 3)
    assert positives([a, b]) == {(a.ref, "202108"): 3}

    hits, dim = ANSWERS.hits, analytics.dimension("ev.test.positive")
    with CaptureQueriesContext(connection) as queries:
        again = analytics.rows([dim], [parse("202108")], [a, b])
    assert [(r["ou"], r["value"]) for r in again] == [(a.ref, 3)]
    assert ANSWERS.hits == hits + 1
    assert len(queries) == 1, [q["sql"] for q in queries]  # the versions, nothing else

    add_rollup(b, date(2021, 8, 1), 5)
    assert positives([a, b]) == {(a.ref, "202108"): 3, (b.ref, "202108"): 5}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE warehouse_rollupmonth SET count = count + 10 WHERE commune_id = %s", [a.pk])
    assert positives([a, b]) == {(a.ref, "202108"): 13, (b.ref, "202108"): 5}
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM warehouse_rollupmonth WHERE commune_id = %s", [b.pk])
    assert positives([a, b]) == {(a.ref, "202108"): 13}


def test_a_data_value_written_or_removed_is_counted_in_the_next_answer(world):
    element("beds")
    dim = analytics.dimension("beds")
    ask = lambda: {r["ou"]: r["value"] for r in analytics.rows([dim], [parse("202108")], [world.province])}  # noqa: E731
    store("beds", [(world.commune_a.ref, "202108", 4)])
    assert ask() == {world.province.ref: 4}
    store("beds", [(world.commune_b.ref, "202108", 6)])
    assert ask() == {world.province.ref: 10}
    DataValue.objects.filter(unit=world.commune_b).update(value=1)
    assert ask() == {world.province.ref: 5}


def test_nothing_is_cached_or_served_inside_a_transaction_that_may_roll_back(world):
    a = world.commune_a
    add_rollup(a, date(2021, 8, 1), 2)
    assert positives([a]) == {(a.ref, "202108"): 2}  # cached
    hits = ANSWERS.hits
    with transaction.atomic():
        add_rollup(a, date(2021, 8, 1), 7)  # seen by this transaction only
        assert positives([a]) == {(a.ref, "202108"): 9}
        transaction.set_rollback(True)
    assert ANSWERS.hits == hits
    assert positives([a]) == {(a.ref, "202108"): 2}
    add_rollup(a, date(2021, 8, 1), 1)  # the same version number the rolled-back write had
    assert positives([a]) == {(a.ref, "202108"): 3}


def test_a_month_counts_in_every_asked_period_that_holds_it_and_each_asked_unit_above_its_commune(world):
    a, b = world.commune_a, world.commune_b
    add_rollup(a, date(2021, 7, 1), 2)
    add_rollup(a, date(2021, 8, 1), 3)
    add_rollup(b, date(2021, 8, 1), 5)
    found = positives([world.province, a], "202108;2021Q3;2021;2021YTD08")
    assert found[(world.province.ref, "202108")] == 8
    assert found[(world.province.ref, "2021Q3")] == 10
    assert found[(world.province.ref, "2021")] == 10
    assert found[(world.province.ref, "2021YTD08")] == 10
    assert found[(a.ref, "2021Q3")] == 5
    assert (a.ref, "202109") not in found  # a period nobody wrote is missing, not zero


def test_formulas_over_counts_answer_as_the_cell_by_cell_evaluator_does(world):
    """The column-wise evaluation of count formulas (the room's) gives, cell for cell, what the
    cell-by-cell evaluator gives: missing figures, a division by zero, cùng kỳ and shifts included."""
    a, b = world.commune_a, world.commune_b
    add_rollup(a, date(2021, 8, 1), 6)
    add_rollup(a, date(2020, 8, 1), 4)
    add_rollup(b, date(2021, 8, 1), 5)  # no cùng kỳ: yoy is missing
    add_rollup(b, date(2021, 7, 1), 0)  # a zero: a division by it is missing
    add_rollup(b, date(2020, 7, 1), 0)  # … and a cùng kỳ of zero
    formulas = [
        "yoy(#{ev.test.positive})",
        "#{ev.test.positive} / last_year(#{ev.test.positive}) * 100",
        "-#{ev.test.positive} + 2 * previous(#{ev.test.positive})",
        "10 / previous(#{ev.test.positive})",
        "ytd(#{ev.test.positive})",
    ]
    dims = [analytics.Dimension(str(i), "x", "", 2, f.parse(text), None) for i, text in enumerate(formulas)]
    periods, units = [parse("202108"), parse("202107")], [a, b, world.province]
    answer = analytics.compute(dims, periods, units, None)
    by_columns = {
        (r["dx"], r["ou"], r["pe"]): r["value"] for r in analytics.rows(dims, periods, units, empty=True)
    }
    by_cells = {}
    for dim in dims:
        assert analytics._column_evaluator(answer, dim, [u.pk for u in units]) is not None
        value_of = analytics._evaluator(answer, dim)
        for period in periods:
            for unit in units:
                by_cells[(dim.code, unit.ref, period.id)] = analytics._round(value_of(unit.pk, period)[0], 2)
    assert by_columns == by_cells
    assert by_columns[("0", a.ref, "202108")] == 50  # (6 - 4) / 4
    assert by_columns[("0", b.ref, "202108")] is None
    assert by_columns[("3", b.ref, "202108")] is None  # 10 / 0
    assert by_columns[("0", b.ref, "202107")] is None  # yoy over a cùng kỳ of zero
    assert by_columns[("4", world.province.ref, "202108")] == 11  # 6 + 5 + 0 since January


def test_the_database_sums_a_few_asked_units_as_python_does(world, monkeypatch):
    """Few units asked (PostgreSQL sums the leaves onto them) or many (numpy does): the same answer,
    counts carried from the 2021 map by the succession's weights included."""
    a, b = world.commune_a, world.commune_b
    old = Succession.objects.filter(new=a).select_related("old").first().old  # a 2021 commune of a's
    add_rollup(a, date(2021, 8, 1), 6)
    add_rollup(b, date(2021, 7, 1), 5)
    add_rollup(old, date(2021, 8, 1), 10)
    units = [world.nation, world.province, a]
    months = "202107;202108;2021Q3"
    few = positives(units, months)
    monkeypatch.setattr(analytics, "SUMMED_IN_DATABASE", 0)
    ANSWERS.clear()
    assert positives(units, months) == few
    weight = sum(s.weight for s in Succession.objects.filter(old=old, new__path__startswith=a.path))
    assert few[(a.ref, "202108")] == pytest.approx(6 + 10 * weight, abs=0.005)
    assert few[(world.nation.ref, "2021Q3")] == pytest.approx(21, abs=0.005)
    nation_alone = positives([world.nation], months)  # summed by bucket alone
    assert nation_alone == pytest.approx(
        {k: v for k, v in few.items() if k[0] == world.nation.ref}, abs=0.005
    )


def _many(world) -> list[Unit]:
    """More units than the database sums itself (SUMMED_IN_DATABASE): the nation, two provinces and
    all their communes, so that counts reach the answer leaf by leaf."""
    hanoi = Unit.objects.get(edition_id=world.province.edition_id, code="01", kind=world.province.kind)
    communes = Unit.objects.filter(edition_id=world.province.edition_id, kind="commune").filter(
        Q(path__startswith=world.province.path) | Q(path__startswith=hanoi.path)
    )
    units = [world.nation, world.province, hanoi, *communes.order_by("path")]
    assert len(units) > analytics.SUMMED_IN_DATABASE
    return units


def _ask(units: list[Unit]) -> list[dict]:
    dims = [
        analytics.dimension("ev.test.positive"),
        analytics.Dimension("yoy", "x", "%", 1, f.parse("yoy(#{ev.test.positive})"), None),
    ]
    return analytics.rows(dims, [parse("202107"), parse("202108"), parse("2021Q3")], units)


def _afresh(units: list[Unit]) -> list[dict]:
    ANSWERS.clear()
    return _ask(units)


def _value(found: list[dict], dx: str, unit: Unit, pe: str) -> float | None:
    return next((r["value"] for r in found if (r["dx"], r["ou"], r["pe"]) == (dx, unit.ref, pe)), None)


@pytest.fixture(
    params=[
        "areas",
        pytest.param(
            "months",
            marks=pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite does not patch"),
        ),
    ]
)
def patch_by(request, monkeypatch) -> str:
    """Which patch a kept answer takes after a write (PostgreSQL): by area, or by month."""
    if request.param == "areas":
        monkeypatch.setattr(analytics, "PATCH_MONTHS_SHARE", 0)
    else:
        monkeypatch.setattr(analytics, "LEAF_READ_COST", 1000)
    return request.param


def test_a_write_to_a_few_areas_gives_the_answer_computed_afresh(world, patch_by):
    """After a write, the kept answer is brought up to date (PostgreSQL: only the written areas' leaves,
    or the written months' rows, are read again, and only the rows they reach are made anew): row for
    row what a fresh computation gives, for an update, a new cell, a removed one and a count carried
    from the other map."""
    units, a, b = _many(world), world.commune_a, world.commune_b
    by_month = ANSWERS.month_patches
    hanoi, pg = units[2], connection.vendor == "postgresql"
    hanoi_commune = next(u for u in units if u.path.startswith(hanoi.path) and u.kind == "commune")
    add_rollup(a, date(2021, 8, 1), 3)
    add_rollup(a, date(2020, 8, 1), 2)
    add_rollup(hanoi_commune, date(2021, 8, 1), 4)
    assert _ask(units) == _afresh(units)

    patches, misses = ANSWERS.patches, ANSWERS.misses
    add_rollup(b, date(2021, 8, 1), 5)  # a new cell in Hồ Chí Minh City
    found = _ask(units)
    assert (ANSWERS.patches, ANSWERS.misses) == ((patches + 1, misses) if pg else (patches, misses + 1))
    assert _value(found, "ev.test.positive", b, "202108") == 5
    assert _value(found, "ev.test.positive", world.province, "202108") == 8
    assert _value(found, "ev.test.positive", world.nation, "2021Q3") == 12
    assert _value(found, "yoy", a, "202108") == 50  # (3 - 2) / 2
    assert found == _afresh(units)

    _ask(units)
    with connection.cursor() as cursor:  # cùng kỳ removed: yoy goes missing
        cursor.execute(
            "DELETE FROM warehouse_rollupmonth WHERE commune_id = %s AND month = %s", [a.pk, date(2020, 8, 1)]
        )
        cursor.execute("UPDATE warehouse_rollupmonth SET count = 7 WHERE commune_id = %s", [hanoi_commune.pk])
    found = _ask(units)
    assert _value(found, "yoy", a, "202108") is None
    assert _value(found, "ev.test.positive", hanoi, "202108") == 7
    assert _value(found, "ev.test.positive", world.nation, "202108") == 15
    assert found == _afresh(units)

    _ask(units)
    add_rollup(b, date(2021, 8, 1), 1)  # only counts change: the kept list of rows is patched in place
    found = _ask(units)
    assert _value(found, "ev.test.positive", b, "202108") == 6
    assert _value(found, "ev.test.positive", world.nation, "2021Q3") == 16
    assert found == _afresh(units)

    _ask(units)
    old = Succession.objects.filter(new=a).select_related("old").first().old  # a 2021 commune of a's
    add_rollup(old, date(2021, 7, 1), 10)
    found = _ask(units)
    weight = sum(s.weight for s in Succession.objects.filter(old=old, new__path__startswith=a.path))
    assert _value(found, "ev.test.positive", a, "202107") == pytest.approx(10 * weight, abs=0.005)
    assert found == _afresh(units)
    if pg:  # each of the four answers after a write above was patched the way asked
        assert ANSWERS.month_patches - by_month == (4 if patch_by == "months" else 0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="areas are counted on PostgreSQL only")
def test_a_write_outside_the_answer_areas_leaves_it_current_and_an_unplaceable_one_recomputes_it(world):
    units, a = _many(world)[1:], world.commune_a  # the nation would hold every area
    add_rollup(a, date(2021, 8, 1), 3)
    first = _ask(units)
    elsewhere = (
        Unit.objects.filter(edition_id=a.edition_id, kind="commune")
        .exclude(path__startswith=world.province.path)
        .exclude(path__startswith=units[1].path)
        .first()
    )
    unmoved, misses = ANSWERS.unmoved, ANSWERS.misses
    add_rollup(elsewhere, date(2021, 8, 1), 9)  # another province: not in this answer
    assert _ask(units) == first
    assert ANSWERS.unmoved == unmoved + 1

    with connection.cursor() as cursor:  # a leaf the units do not know: its area is unknown
        cursor.execute(
            "INSERT INTO warehouse_rollupmonth (commune_id, month, kind, dim1, dim2, count)"
            " VALUES (987654321, '2021-08-01', 'test', 'positive', 'pcr', 1)"
        )
    assert _ask(units) == first
    assert ANSWERS.misses == misses + 1

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE warehouse_rollupmonth")
    assert _ask(units) == []
    assert ANSWERS.misses == misses + 2
