"""The analytics API's body after writes (issue 18): a kept answer brought up to date by a write (patched
on PostgreSQL, computed anew on SQLite) is served as the bytes msgspec gives for its rows, byte for
byte what the same question computed afresh gives, and counts the write.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

import json
from datetime import date

import msgspec
import pytest
from django.db import connection

from dieuhanh.indicators import analytics, services
from dieuhanh.indicators.analytics import ANSWERS
from dieuhanh.units.models import Unit
from tests.factories import World
from tests.indicators.test_analytics import indicator
from tests.indicators.test_analytics_cache import add_rollup

pytestmark = pytest.mark.django_db

PE = "202107;202108"
DX = "ev.test.positive;rate_yoy"


def ask(world: World) -> bytes:
    response = world.leader.client().get(
        "/api/v1/analytics", {"dx": DX, "pe": PE, "ou": "LEVEL-2", "edition": "VN-2025"}
    )
    assert response.status_code == 200, response.content[:300]
    return response.content


def service_rows(world: World) -> list[dict]:
    """The same question through the service: the national leader's area, every commune of the map."""
    area = world.leader.user.area()
    units = services.units_named(["LEVEL-2"], edition="VN-2025", area=area, roots=[world.nation])
    dims = [analytics.dimension(code) for code in DX.split(";")]
    return analytics.rows(dims, analytics.periods_of(PE), units, area=area)


def expected_body(world: World, body: bytes, rows: list[dict]) -> bytes:
    """The route's body for these rows: its headers, and the rows as msgspec encodes them whole."""
    headers = msgspec.json.encode(json.loads(body)["headers"])
    return b'{"headers":' + headers + b',"rows":' + msgspec.json.encode(rows) + b"}"


def afresh(world: World) -> bytes:
    ANSWERS.clear()
    return ask(world)


def value(body: bytes, dx: str, unit: Unit, pe: str) -> float | None:
    rows = json.loads(body)["rows"]
    return next((r["value"] for r in rows if (r["dx"], r["ou"], r["pe"]) == (dx, unit.ref, pe)), None)


def other_province_commune(world: World) -> Unit:
    return (
        Unit.objects.filter(edition_id=world.province.edition_id, kind="commune")
        .exclude(path__startswith=world.province.path)
        .order_by("-path")
        .first()
    )


@pytest.fixture
def national(world: World) -> World:
    indicator("rate_yoy", "yoy(#{ev.test.positive})", unit="%", decimals=1)
    add_rollup(world.commune_a, date(2021, 8, 1), 3)
    add_rollup(world.commune_a, date(2020, 8, 1), 2)
    add_rollup(other_province_commune(world), date(2021, 7, 1), 4)
    ANSWERS.clear()
    return world


def test_the_body_after_each_write_is_the_fresh_answer_byte_for_byte_and_counts_the_write(national):
    world, a, b = national, national.commune_a, national.commune_b
    far = other_province_commune(world)
    pg = connection.vendor == "postgresql"
    first = ask(world)
    assert first == expected_body(world, first, service_rows(world))
    assert first == afresh(world)
    assert value(first, "ev.test.positive", a, "202108") == 3
    assert value(first, "rate_yoy", a, "202108") == 50  # (3 - 2) / 2

    writes = [
        (lambda: add_rollup(a, date(2021, 8, 1), 1), (a, "ev.test.positive", "202108", 4)),  # counts only
        (lambda: add_rollup(b, date(2021, 7, 1), 5), (b, "ev.test.positive", "202107", 5)),  # a new row
        (lambda: add_rollup(far, date(2021, 7, 1), 2), (far, "ev.test.positive", "202107", 6)),  # far away
        (lambda: add_rollup(a, date(2020, 8, 1), -2), (a, "rate_yoy", "202108", None)),  # cùng kỳ gone
    ]
    for write, (unit, dx, pe, expected) in writes:
        ask(world)  # the answer kept, and its JSON made
        patches = ANSWERS.patches
        write()
        body = ask(world)
        assert ANSWERS.patches == (patches + 1 if pg else patches)
        assert value(body, dx, unit, pe) == expected
        assert body == expected_body(world, body, service_rows(world))
        assert body == afresh(world)


def test_writes_between_which_only_the_rows_were_read_give_the_fresh_body(national):
    """The JSON made once, then two writes whose answers are read as rows only (a screen's, not the
    API's): the body then holds both."""
    world, a, b = national, national.commune_a, national.commune_b
    far = other_province_commune(world)
    ask(world)
    add_rollup(b, date(2021, 8, 1), 7)
    assert any(r["ou"] == b.ref and r["pe"] == "202108" for r in service_rows(world))
    add_rollup(far, date(2021, 8, 1), 9)
    service_rows(world)
    add_rollup(a, date(2021, 7, 1), 1)
    body = ask(world)
    assert [value(body, "ev.test.positive", u, "202108") for u in (b, far)] == [7, 9]
    assert value(body, "ev.test.positive", a, "202107") == 1
    assert body == expected_body(world, body, service_rows(world))
    assert body == afresh(world)


def test_the_rows_json_of_a_patched_answer_is_msgspecs_encoding_of_its_rows(national):
    world, a = national, national.commune_a
    area = world.leader.user.area()
    units = services.units_named(["LEVEL-2"], edition="VN-2025", area=area, roots=[world.nation])
    dims = [analytics.dimension(code) for code in DX.split(";")]
    periods = analytics.periods_of(PE)
    assert len(units) > 2 * analytics.JSON_BLOCK  # several blocks in each dimension × period
    for n in (1, 2, -3):
        analytics.rows_json(dims, periods, units, area=area)
        add_rollup(a, date(2021, 7, 1), n)
        found = b"".join(analytics.rows_json(dims, periods, units, area=area))
        assert found == msgspec.json.encode(analytics.rows(dims, periods, units, area=area))
    assert b"".join(analytics.rows_json(dims, periods, units, area=area, empty=True)) == msgspec.json.encode(
        analytics.rows(dims, periods, units, area=area, empty=True)
    )
