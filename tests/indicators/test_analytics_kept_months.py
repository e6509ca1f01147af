"""Monthly rollup rows kept per month between questions (issue 18, analytics.KeptMonths): a new question
over months another question read takes their rows from memory, reads only the months written since,
and answers as the same question computed with nothing kept does. PostgreSQL only: SQLite counts no
months, and always reads.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from dieuhanh.indicators import analytics, services
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.units.models import Unit
from tests.factories import World
from tests.indicators.test_analytics_cache import add_rollup

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="months are counted on PostgreSQL only"),
]

YOY = analytics.Dimension("yoy", "x", "%", 1, f.parse("yoy(#{ev.test.positive})"), None)


def ask(world: World, dims: list, periods: str = "202107;202108", *, empty: bool = False) -> list[dict]:
    """A question over every commune of the 2025 map (more than the database sums itself); `empty`
    makes another question over the same months (a row for every commune)."""
    area = world.leader.user.area()
    units = services.units_named(["LEVEL-2"], edition="VN-2025", area=area, roots=[world.nation])
    return analytics.rows(dims, analytics.periods_of(periods), units, area=area, empty=empty)


def months_read(queries: CaptureQueriesContext) -> list[int]:
    """How many months each monthly rollup read of these queries asked the database for (its list of
    months, written out in the statement as logged)."""
    reads = [q["sql"] for q in queries.captured_queries if "string_agg(int8send" in q["sql"]]
    assert all("unnest('{" in sql for sql in reads), reads  # the months written out, as counted here
    return [sql.partition("unnest('{")[2].partition("}'")[0].count(",") + 1 for sql in reads]


def write_every_month(world: World, months: str) -> Unit:
    """A row in each month asked and its cùng kỳ, in a commune of another province (a month never
    written has no counter, and nothing is kept under none); that commune."""
    elsewhere = (
        Unit.objects.filter(edition_id=world.province.edition_id, kind="commune")
        .exclude(path__startswith=world.province.path)
        .order_by("path")
        .first()
    )
    for period in analytics.periods_of(months):
        for year in (period.start.year, period.start.year - 1):
            add_rollup(elsewhere, period.start.replace(year=year), 1)
    return elsewhere


def value(found: list[dict], dx: str, unit: Unit, pe: str) -> float | None:
    return next((r["value"] for r in found if (r["dx"], r["ou"], r["pe"]) == (dx, unit.ref, pe)), None)


def fresh(world: World, dims: list, periods: str = "202107;202108", *, empty: bool = False) -> list[dict]:
    ANSWERS.clear()  # the answers and the months kept
    return ask(world, dims, periods, empty=empty)


def test_a_new_question_over_months_read_before_reads_none_of_them(world):
    plain = [analytics.dimension("ev.test.positive")]
    write_every_month(world, "202107;202108")
    add_rollup(world.commune_a, date(2021, 8, 1), 3)
    add_rollup(world.commune_a, date(2020, 8, 1), 2)
    ask(world, [*plain, YOY])  # reads July and August of 2021, 2020 and (cùng kỳ of yoy) 2019

    kept, read = ANSWERS.months.kept, ANSWERS.months.read_months
    with CaptureQueriesContext(connection) as queries:
        found = ask(world, plain, empty=True)  # another question over 2021 and 2020
    assert months_read(queries) == []
    assert (ANSWERS.months.kept, ANSWERS.months.read_months) == (kept + 4, read)
    assert value(found, "ev.test.positive", world.commune_a, "202108") == 3
    assert (
        next(r for r in found if r["ou"] == world.commune_a.ref and r["pe"] == "202108")["change_pct"] == 50
    )
    assert found == fresh(world, plain, empty=True)


def test_a_month_written_since_is_read_again_and_counted(world):
    plain = [analytics.dimension("ev.test.positive")]
    write_every_month(world, "202107;202108")
    add_rollup(world.commune_a, date(2021, 7, 1), 1)
    ask(world, plain)
    add_rollup(world.commune_b, date(2021, 8, 1), 5)  # August written: read again, the others kept
    with CaptureQueriesContext(connection) as queries:
        found = ask(world, plain, empty=True)
    assert months_read(queries) == [1]
    assert value(found, "ev.test.positive", world.commune_b, "202108") == 5
    assert value(found, "ev.test.positive", world.commune_a, "202107") == 1
    assert found == fresh(world, plain, empty=True)


def test_an_emptied_rollup_or_a_transaction_of_its_own_is_never_answered_from_memory(world):
    plain = [analytics.dimension("ev.test.positive")]
    write_every_month(world, "202108")
    add_rollup(world.commune_a, date(2021, 8, 1), 3)
    assert value(ask(world, plain, "202108"), "ev.test.positive", world.commune_a, "202108") == 3

    kept_before = dict(ANSWERS.months._months)
    with transaction.atomic():  # its writes are its own until it commits: read, and not kept
        add_rollup(world.commune_a, date(2021, 8, 1), 4)
        ANSWERS.clear(months=False)
        assert value(ask(world, plain, "202108"), "ev.test.positive", world.commune_a, "202108") == 7
        assert ANSWERS.months._months == kept_before
        transaction.set_rollback(True)
    ANSWERS.clear(months=False)
    assert value(ask(world, plain, "202108"), "ev.test.positive", world.commune_a, "202108") == 3
    # The same connection's next write brings the month's counter to the number the rolled-back write
    # had: what was read inside the transaction must not be taken for it.
    add_rollup(world.commune_a, date(2021, 8, 1), 5)
    ANSWERS.clear(months=False)
    assert value(ask(world, plain, "202108"), "ev.test.positive", world.commune_a, "202108") == 8

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE warehouse_rollupmonth")
    ANSWERS.clear(months=False)
    assert ask(world, plain, "202108") == []


def test_months_kept_are_bounded_by_rows_least_recently_used_out(world, monkeypatch):
    plain = [analytics.dimension("ev.test.positive")]
    months = "202107;202108;202109"
    elsewhere = write_every_month(world, months)
    add_rollup(elsewhere, date(2021, 9, 1), 3)  # the same row: every month stays one row
    monkeypatch.setattr(ANSWERS.months, "max_rows", 2)  # two months of one row each
    ANSWERS.clear()
    ask(world, plain, months)
    assert ANSWERS.months._rows == 2
    with CaptureQueriesContext(connection) as queries:
        found = ask(world, plain, months, empty=True)
    assert months_read(queries) == [4]  # of the six months, two kept (the last read, of one row each)
    assert value(found, "ev.test.positive", elsewhere, "202109") == 4
    assert value(found, "ev.test.positive", elsewhere, "202107") == 1
    assert found == fresh(world, plain, months, empty=True)


def test_a_month_a_patch_read_again_is_current_for_the_next_question(world, monkeypatch):
    monkeypatch.setattr(analytics, "LEAF_READ_COST", 1000)  # by month, whatever the areas
    plain = [analytics.dimension("ev.test.positive")]
    write_every_month(world, "202107;202108")
    ask(world, plain)
    add_rollup(world.commune_b, date(2021, 8, 1), 5)
    by_month = ANSWERS.month_patches
    ask(world, plain)  # patched: August read again, and kept for others
    assert ANSWERS.month_patches == by_month + 1
    with CaptureQueriesContext(connection) as queries:
        found = ask(world, plain, empty=True)
    assert months_read(queries) == []
    assert value(found, "ev.test.positive", world.commune_b, "202108") == 5
    assert found == fresh(world, plain, empty=True)
