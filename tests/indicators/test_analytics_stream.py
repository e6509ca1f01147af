"""A national answer's monthly rollup rows stream in month by month, in the order its rows need them, and
the rows of the first periods are made while PostgreSQL sums the next months (issue 18,
analytics._month_rows, CountGrid.add_chunks). The answer is the one read at once; while the months
come the connection takes no other query (a clear error, never a wait on the driver's lock); an answer
given up half-way leaves the connection free. PostgreSQL only: SQLite counts no months and reads at
once.

Expected figures are the test's own arithmetic on the rows it wrote."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from dieuhanh.indicators import analytics
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.analytics import ANSWERS, _streaming
from dieuhanh.indicators.periods import parse
from dieuhanh.units.models import Unit
from tests.factories import World
from tests.indicators.test_analytics_cache import add_rollup

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="months stream on PostgreSQL only"),
]

YOY = analytics.Dimension("yoy", "x", "%", 1, f.parse("yoy(#{ev.test.positive})"), None)
MONTHS = ["202106", "202107", "202108", "2021Q3"]


def communes(world: World) -> list[Unit]:
    return list(Unit.objects.filter(edition_id=world.commune_a.edition_id, kind="commune").order_by("path"))


def write(world: World) -> tuple[Unit, Unit]:
    """Counts in two communes over three months of 2021 and their cùng kỳ."""
    a, b = world.commune_a, world.commune_b
    for unit, month, n in (
        (a, date(2021, 6, 1), 4), (a, date(2020, 6, 1), 2), (a, date(2021, 7, 1), 6),
        (a, date(2020, 7, 1), 3), (b, date(2021, 8, 1), 5), (b, date(2020, 8, 1), 10),
        (b, date(2021, 9, 1), 1),
    ):  # fmt: skip
        add_rollup(unit, month, n)
    return a, b


def by_cell(found: list[dict]) -> dict[tuple[str, str, str], tuple]:
    return {(r["dx"], r["ou"], r["pe"]): (r["value"], r["same_period_last_year"]) for r in found}


def test_a_streamed_answer_is_the_answer_read_at_once_and_its_first_rows_come_before_its_last_month(
    world, monkeypatch
):
    a, b = write(world)
    units, periods = communes(world), [parse(p) for p in MONTHS]
    dims = [analytics.dimension("ev.test.positive"), YOY]
    events: list[str] = []
    months, segment = analytics._month_rows, analytics.Computed._segment

    def month_rows(counted, spread, buckets, *shared):
        for chunk in months(counted, spread, buckets, *shared):
            events.append("month " + spread.firsts[chunk.buckets[0]].isoformat())
            yield chunk

    def made(self, d, period, positions):
        found = segment(self, d, period, positions)
        events.append("rows " + period.id)  # once made
        return found

    monkeypatch.setattr(analytics, "_month_rows", month_rows)
    monkeypatch.setattr(analytics.Computed, "_segment", made)
    ANSWERS.clear()
    streamed = analytics.rows(dims, periods, units)

    # The first period's rows are made once June and its cùng kỳ are in, before the last month comes.
    read = [e for e in events if e.startswith("month ")]
    # June, its cùng kỳ, and the year before that (the cùng kỳ row's yoy) first.
    assert set(read[:3]) == {"month 2021-06-01", "month 2020-06-01", "month 2019-06-01"}
    assert len(read) == len(set(read)) == 12  # June to September of 2021, 2020 and 2019, each once
    assert events.index("rows 202106") < events.index(read[-1])

    cells = by_cell(streamed)
    assert cells[("ev.test.positive", a.ref, "202106")] == (4, 2)
    assert cells[("yoy", a.ref, "202107")] == (100, None)  # (6 - 3) / 3
    assert cells[("ev.test.positive", b.ref, "2021Q3")] == (6, 10)  # a quarter: three months
    assert cells[("yoy", b.ref, "202108")] == (-50, None)
    at_once = analytics.Computed(analytics.compute(dims, periods, units), dims, periods, units, "vi", False)
    assert streamed == at_once.rows()


def test_a_ratio_of_two_counts_streams_one_and_reads_the_other_first(world, monkeypatch):
    a, _ = write(world)
    add_rollup(a, date(2021, 7, 1), 0)
    units, periods = communes(world), [parse(p) for p in MONTHS]
    share = analytics.Dimension(
        "share", "x", "%", 1, f.parse("#{ev.test.positive} / #{ev.test.positive.pcr} * 100"), None
    )
    events: list[str] = []
    months, segment = analytics._month_rows, analytics.Computed._segment

    def month_rows(counted, spread, buckets, *shared):
        events.append("read")
        yield from months(counted, spread, buckets, *shared)
        events.append("read to the end")

    def made(self, d, period, positions):
        found = segment(self, d, period, positions)
        events.append("rows")
        return found

    monkeypatch.setattr(analytics, "_month_rows", month_rows)
    monkeypatch.setattr(analytics.Computed, "_segment", made)
    ANSWERS.clear()
    found = by_cell(analytics.rows([share], periods, units))
    # One count read whole before the rows, the other one streamed under them.
    assert events[:3] == ["read", "read to the end", "read"]
    assert events.index("rows") < events.index("read to the end", 2)
    assert found[("share", a.ref, "202107")][0] == 100  # every row written is a PCR one
    answer = analytics.compute([share], periods, units)
    assert found == by_cell(analytics.Computed(answer, [share], periods, units, "vi", False).rows())


def test_no_query_may_run_while_months_stream_and_an_answer_given_up_frees_the_connection(world):
    write(world)
    units, periods = communes(world), [parse(p) for p in MONTHS]
    ANSWERS.clear()
    answer = analytics.compute([analytics.dimension("ev.test.positive")], periods, units, streamed=True)
    grid = answer.cells["ev.test.positive"]
    assert isinstance(grid, analytics.CountGrid)
    assert grid.of_period("202106") is not None  # June in: the other months still to come
    with pytest.raises(RuntimeError, match="still being read"):
        Unit.objects.count()
    grid.settle()
    assert Unit.objects.filter(pk=world.commune_a.pk).count() == 1
    assert grid.get((world.commune_b.pk, "202108")) == 5

    ANSWERS.clear()
    answer = analytics.compute([analytics.dimension("ev.test.positive")], periods, units, streamed=True)
    grid = answer.cells["ev.test.positive"]
    assert isinstance(grid, analytics.CountGrid)
    grid.of_period("202106")
    grid.abandon()
    assert_free()
    assert Unit.objects.filter(pk=world.commune_a.pk).count() == 1


def assert_free() -> None:
    lock = connection.connection.lock  # the driver's: held while a statement streams
    assert lock.acquire(timeout=5), "a statement given up still holds the connection"
    lock.release()
    assert _streaming not in connection.execute_wrappers


@pytest.mark.parametrize("where", ["making the rows", "summing a month"])
def test_an_error_half_way_leaves_the_connection_free_and_the_next_answer_right(world, monkeypatch, where):
    a, b = write(world)
    units, periods = communes(world), [parse(p) for p in MONTHS]
    dims = [analytics.dimension("ev.test.positive"), YOY]
    calls = {"n": 0}
    broken = analytics._count_rows if where == "making the rows" else analytics.CountGrid._add

    def fails_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("the test's")
        return broken(*args, **kwargs)

    if where == "making the rows":
        monkeypatch.setattr(analytics, "_count_rows", fails_second)
    else:
        monkeypatch.setattr(analytics.CountGrid, "_add", fails_second)
    ANSWERS.clear()
    with pytest.raises(MemoryError):
        analytics.rows(dims, periods, units)
    assert_free()
    if where == "summing a month":  # compute() alone, as the quality checks call it: settled at once
        calls["n"] = 0
        with pytest.raises(MemoryError):
            analytics.compute(dims, periods, units)
        assert_free()
    monkeypatch.undo()
    cells = by_cell(analytics.rows(dims, periods, units))
    assert cells[("ev.test.positive", a.ref, "202106")] == (4, 2)
    assert cells[("yoy", b.ref, "202108")] == (-50, None)


def test_a_first_answer_s_months_bring_their_leaves_in_any_order_and_each_counts_where_it_should(world):
    # Each month brings a leaf the months before had not, the later ones with smaller ids: the table of
    # the leaves' places grows with each (_LeafPlaces.extended) rather than being made again.
    leaves = sorted(Unit.objects.filter(edition_id="VN-2025", kind="commune"), key=lambda u: u.pk)
    last, middle, first = leaves[-1], leaves[len(leaves) // 2], leaves[0]
    for unit, month, n in (
        (last, date(2021, 6, 1), 4),
        (middle, date(2021, 7, 1), 6),
        (first, date(2021, 8, 1), 5),
    ):
        add_rollup(unit, month, n)
    units, periods = communes(world), [parse(p) for p in ("202106", "202107", "202108", "2021Q3")]
    ANSWERS.clear()
    analytics._LEAF_PLACES.clear()  # as in a process that has asked nothing yet
    cells = by_cell(analytics.rows([analytics.dimension("ev.test.positive")], periods, units))
    assert cells[("ev.test.positive", last.ref, "202106")][0] == 4
    assert cells[("ev.test.positive", middle.ref, "202107")][0] == 6
    assert cells[("ev.test.positive", first.ref, "202108")][0] == 5
    assert cells[("ev.test.positive", first.ref, "2021Q3")][0] == 5
    assert ("ev.test.positive", first.ref, "202106") not in cells
    table = next(iter(analytics._LEAF_PLACES.values()))
    assert table.ids.tolist() == [last.pk, middle.pk, first.pk]  # in the order the months brought them
