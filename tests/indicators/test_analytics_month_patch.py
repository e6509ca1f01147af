"""A kept answer brought up to date by month (issue 18): a morning's batches write today's month in every
province, and a national answer then re-reads that month's rollup rows alone, not the country's. Row for
row, and on the API byte for byte, what the same question computed afresh gives; a write to months the
answer does not read leaves it as it is. PostgreSQL only: SQLite counts writes by source, not by area
or month, and computes the answer anew (tests/indicators/test_analytics_cache.py covers it there).

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

import json
from datetime import date

import msgspec
import pytest
from django.db import connection

from dieuhanh.indicators import analytics, services, versions
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit
from tests.factories import World
from tests.indicators.test_analytics import indicator
from tests.indicators.test_analytics_cache import add_rollup

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="months are counted on PostgreSQL only"),
]

MONTHS = ";".join(f"2021{m:02d}" for m in range(1, 13))


def one_commune_per_province(world: World) -> list[Unit]:
    """A commune in each province of the 2025 map: a write to all of them reaches every area."""
    found: dict[str, Unit] = {}
    for unit in Unit.objects.filter(edition_id=world.province.edition_id, kind="commune").order_by("path"):
        found.setdefault(versions.area_of(unit.path), unit)
    assert len(found) > analytics.PATCH_AREAS, "too few provinces: a patch by area would do"
    return list(found.values())


def national(world: World, periods: str = MONTHS) -> list[dict]:
    """Counts and cùng kỳ for every commune of the 2025 map, as the national leader asks them."""
    area = world.leader.user.area()
    units = services.units_named(["LEVEL-2"], edition="VN-2025", area=area, roots=[world.nation])
    dims = [
        analytics.dimension("ev.test.positive"),
        analytics.Dimension("yoy", "x", "%", 1, f.parse("yoy(#{ev.test.positive})"), None),
    ]
    return analytics.rows(dims, analytics.periods_of(periods), units, area=area)


def value(found: list[dict], dx: str, unit: Unit, pe: str) -> float | None:
    return next((r["value"] for r in found if (r["dx"], r["ou"], r["pe"]) == (dx, unit.ref, pe)), None)


def afresh(world: World, periods: str = MONTHS) -> list[dict]:
    ANSWERS.clear()
    return national(world, periods)


def test_a_write_in_every_province_in_one_month_is_patched_by_that_month(world):
    everywhere = one_commune_per_province(world)
    for unit in everywhere[::3]:
        add_rollup(unit, date(2020, 8, 1), 2)
    add_rollup(world.commune_a, date(2021, 3, 1), 5)
    national(world)

    misses, by_month = ANSWERS.misses, ANSWERS.month_patches
    for i, unit in enumerate(everywhere):  # one batch's rollups: today's month, every province
        add_rollup(unit, date(2021, 8, 1), i + 1)
    found = national(world)
    assert (ANSWERS.misses, ANSWERS.month_patches) == (misses, by_month + 1)
    assert value(found, "ev.test.positive", everywhere[3], "202108") == 4
    assert value(found, "yoy", everywhere[3], "202108") == 100  # (4 - 2) / 2
    assert value(found, "yoy", everywhere[4], "202108") is None  # no cùng kỳ
    assert value(found, "ev.test.positive", world.commune_a, "202103") == 5  # another month, as it was
    assert found == afresh(world)

    national(world)
    with connection.cursor() as cursor:  # cùng kỳ taken away everywhere: a month of last year
        cursor.execute("DELETE FROM warehouse_rollupmonth WHERE month = %s", [date(2020, 8, 1)])
    found = national(world)
    assert (ANSWERS.misses, ANSWERS.month_patches) == (misses + 1, by_month + 2)
    assert value(found, "yoy", everywhere[3], "202108") is None
    assert value(found, "ev.test.positive", everywhere[3], "202108") == 4
    assert found == afresh(world)


def test_a_write_to_months_the_answer_does_not_read_leaves_it_as_it_is(world):
    add_rollup(world.commune_a, date(2021, 8, 1), 3)
    add_rollup(world.commune_a, date(2020, 8, 1), 2)
    first = national(world, "202108")
    unmoved, patches, misses = ANSWERS.unmoved, ANSWERS.patches, ANSWERS.misses
    for unit in one_commune_per_province(world):
        add_rollup(unit, date(2021, 5, 1), 1)  # neither August 2021 nor its cùng kỳ
    assert national(world, "202108") == first
    assert (ANSWERS.unmoved, ANSWERS.patches, ANSWERS.misses) == (unmoved + 1, patches, misses)

    add_rollup(world.commune_b, date(2020, 8, 1), 4)  # cùng kỳ: read, so patched
    found = national(world, "202108")
    assert ANSWERS.patches == patches + 1
    assert value(found, "ev.test.positive", world.commune_b, "202108") is None
    assert found == afresh(world, "202108")


def test_weeks_read_from_the_daily_rollups_are_patched_by_the_months_their_days_lie_in(world):
    weeks = "2021W34;2021W35;2021W36"  # W35 is 30 August to 5 September
    everywhere = one_commune_per_province(world)
    add_rollup(world.commune_a, date(2021, 8, 24), 1, daily=True)
    national(world, weeks)
    by_month = ANSWERS.month_patches
    for i, unit in enumerate(everywhere):
        add_rollup(unit, date(2021, 9, 2), i + 1, daily=True)
    found = national(world, weeks)
    assert ANSWERS.month_patches == by_month + 1
    assert value(found, "ev.test.positive", everywhere[5], "2021W35") == 6
    assert value(found, "ev.test.positive", everywhere[5], "2021W36") is None
    assert value(found, "ev.test.positive", world.commune_a, "2021W34") == 1
    assert found == afresh(world, weeks)


def test_the_api_body_after_a_month_patch_is_the_fresh_body_byte_for_byte(world):
    indicator("rate_yoy", "yoy(#{ev.test.positive})", unit="%", decimals=1)
    query = {"dx": "ev.test.positive;rate_yoy", "pe": "202107;202108", "ou": "LEVEL-2", "edition": "VN-2025"}
    client = world.leader.client()

    def body() -> bytes:
        response = client.get("/api/v1/analytics", query)
        assert response.status_code == 200, response.content[:300]
        return response.content

    everywhere = one_commune_per_province(world)
    add_rollup(everywhere[0], date(2020, 8, 1), 2)
    body()
    by_month = ANSWERS.month_patches
    for i, unit in enumerate(everywhere):
        add_rollup(unit, date(2021, 8, 1), i + 1)
    patched = body()
    assert ANSWERS.month_patches == by_month + 1
    rows = json.loads(patched)["rows"]
    assert (
        next(r for r in rows if (r["dx"], r["ou"], r["pe"]) == ("rate_yoy", everywhere[0].ref, "202108"))[
            "value"
        ]
        == -50
    )  # (1 - 2) / 2
    headers = msgspec.json.encode(json.loads(patched)["headers"])
    assert patched == b'{"headers":' + headers + b',"rows":' + msgspec.json.encode(rows) + b"}"
    ANSWERS.clear()
    assert patched == body()


def test_a_month_counter_names_its_kind_and_month():
    assert versions.month_of(versions.month_source("checkin", date(2026, 12, 1))) == date(2026, 12, 1)
    assert versions.month_of("test@79") is None
    assert versions.month_of("events") is None
    assert parse("2021W35").start.month == 8  # the week the daily test spans two months with


def test_a_database_installed_before_months_were_counted_is_brought_over_on_migrate(world):
    """The triggers of a database installed by the code before (one area function per event, shared by
    both rollups) are pointed at the new functions, and the old functions dropped once none uses them."""
    with connection.cursor() as cursor:
        for name, event, referencing in (
            ("new", "INSERT", "NEW TABLE AS dieuhanh_new"),
            ("old", "DELETE", "OLD TABLE AS dieuhanh_old"),
        ):
            cursor.execute(
                f"CREATE OR REPLACE FUNCTION dieuhanh_bump_areas_{name}() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RETURN NULL; END $$"
            )
            for table in versions.AREA_TABLES:  # both tables, as the code before installed them
                cursor.execute(
                    f"CREATE OR REPLACE TRIGGER dieuhanh_version_{table}_areas_{name}"
                    f" AFTER {event} ON {table} REFERENCING {referencing}"
                    f" FOR EACH STATEMENT EXECUTE FUNCTION dieuhanh_bump_areas_{name}()"
                )
    versions.install()
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'dieuhanh_bump_areas_%' ORDER BY 1")
        functions = [row[0] for row in cursor.fetchall()]
    assert "dieuhanh_bump_areas_new" not in functions and "dieuhanh_bump_areas_old" not in functions
    assert "dieuhanh_bump_areas_month_new" in functions and "dieuhanh_bump_areas_day_new" in functions
    before = versions.areas(frozenset({"test"})) or {}
    add_rollup(world.commune_a, date(2021, 8, 1), 1)  # the new functions count the month
    after = versions.areas(frozenset({"test"})) or {}
    assert after.get("test#202108", 0) > before.get("test#202108", 0)


def formula_rows(world: World, text: str, periods: str) -> list[dict]:
    dims = [analytics.Dimension("f", "x", "", 1, f.parse(text), None)]
    area = world.leader.user.area()
    units = services.units_named(["LEVEL-2"], edition="VN-2025", area=area, roots=[world.nation])
    return analytics.rows(dims, analytics.periods_of(periods), units, area=area)


@pytest.mark.parametrize(
    ("text", "written", "expected"),
    [
        # September less August (1 + 6): 202109's row reads 202108
        ("#{ev.test.positive} - previous(#{ev.test.positive})", date(2021, 8, 1), 10 - 7),
        # March (1 + 6), August and September: 202109's year to date reads March
        ("ytd(#{ev.test.positive})", date(2021, 3, 1), 7 + 1 + 10),
    ],
)
def test_a_month_patch_remakes_the_rows_whose_formula_reads_the_written_month(
    world, monkeypatch, text, written, expected
):
    monkeypatch.setattr(analytics, "LEAF_READ_COST", 1000)  # by month, whatever the areas
    a = world.commune_a
    add_rollup(a, date(2021, 3, 1), 1)
    add_rollup(a, date(2021, 8, 1), 1)
    add_rollup(a, date(2021, 9, 1), 10)
    formula_rows(world, text, "202109")
    by_month = ANSWERS.month_patches
    add_rollup(a, written, 6)  # March's 1 or August's 1 becomes 7
    found = formula_rows(world, text, "202109")
    assert ANSWERS.month_patches == by_month + 1
    assert value(found, "f", a, "202109") == expected
    ANSWERS.clear()
    assert found == formula_rows(world, text, "202109")


def test_a_row_moved_to_another_month_leaves_the_month_it_left(world):
    everywhere = one_commune_per_province(world)
    for unit in everywhere:
        add_rollup(unit, date(2021, 8, 1), 2)
    national(world, "202108")
    with connection.cursor() as cursor:  # a correction: these counts were May's
        cursor.execute(
            "UPDATE warehouse_rollupmonth SET month = %s WHERE month = %s",
            [date(2021, 5, 1), date(2021, 8, 1)],
        )
    found = national(world, "202108")
    assert value(found, "ev.test.positive", everywhere[0], "202108") is None
    assert found == afresh(world, "202108") == []


def test_areas_moved_with_no_month_are_taken_as_any_month_of_the_answer(world):
    """Triggers older than the months' (a process started before `migrate`) bump the areas alone: the
    kept answer is then brought up to date as if every month of it was written, never kept as it is."""
    a = world.commune_a
    add_rollup(a, date(2021, 8, 1), 3)
    national(world, "202108")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no trigger: the write alone
        try:
            add_rollup(a, date(2021, 8, 1), 4)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
        for source in ("events", f"test@{versions.area_of(a.path)}"):  # what the older triggers bump
            cursor.execute(
                "INSERT INTO indicators_dataversion (source, slot, n) VALUES (%s, 0, 1)"
                " ON CONFLICT (source, slot) DO UPDATE SET n = indicators_dataversion.n + 1",
                [source],
            )
    unmoved = ANSWERS.unmoved
    found = national(world, "202108")
    assert value(found, "ev.test.positive", a, "202108") == 7
    assert ANSWERS.unmoved == unmoved
