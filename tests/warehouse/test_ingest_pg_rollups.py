"""The rollups a batch adds to, as analytics reads them: per day and per month, counted once.

On PostgreSQL one statement adds a batch's days and sums them by month (`ingest._add_to_rollups`); the
figures must be those of the events stored, across month ends, in Vietnam time, and after a re-send.
"""

from __future__ import annotations

import json
from datetime import date

from dieuhanh.warehouse.ingest import Pipeline, ndjson_records
from dieuhanh.warehouse.models import CheckIn, Rollup, RollupMonth
from dieuhanh.warehouse.services import ingest
from tests.factories import record


def lines(*records: dict) -> list:
    return list(ndjson_records(json.dumps(r).encode() for r in records))


def checkin(n: int, time_in: str, venue: str = "V-BT-CHO") -> dict:
    return record("checkin", n, venue=venue, time_in=time_in, time_out=None)


def summed(model: type[Rollup] | type[RollupMonth], bucket: str) -> dict[tuple[date, str], int]:
    """The check-ins' rollup counts by day or month and dim1, over every commune."""
    found: dict[tuple[date, str], int] = {}
    for when, dim1, count in model.objects.filter(kind="checkin").values_list(bucket, "dim1", "count"):
        found[(when, dim1)] = found.get((when, dim1), 0) + count
    return found


def by_day() -> dict[tuple[date, str], int]:
    return summed(Rollup, "day")


def by_month() -> dict[tuple[date, str], int]:
    return summed(RollupMonth, "month")


def test_a_batch_across_a_month_end_counts_each_day_and_each_month(platform, venues):
    summary = ingest(
        platform.source,
        "checkin",
        lines(
            checkin(1, "2021-08-30T09:00:00+07:00"),
            checkin(2, "2021-08-31T23:30:00+07:00"),
            # 17:30 UTC on 31 August is already 1 September in Vietnam: it counts for September.
            checkin(3, "2021-08-31T17:30:00+00:00"),
            checkin(4, "2021-09-01T08:00:00+07:00"),
            checkin(5, "2021-09-01T09:00:00+07:00", venue="V-SG-VP"),
        ),
    )
    assert (summary.accepted, summary.rejected) == (5, [])
    market, office = "market", "office"  # the venues' kinds, the check-ins' first dimension
    assert by_day() == {
        (date(2021, 8, 30), market): 1,
        (date(2021, 8, 31), market): 1,
        (date(2021, 9, 1), market): 2,
        (date(2021, 9, 1), office): 1,
    }
    assert by_month() == {
        (date(2021, 8, 1), market): 2,
        (date(2021, 9, 1), market): 2,
        (date(2021, 9, 1), office): 1,
    }


def test_the_next_batch_adds_to_the_same_cells_and_a_resent_one_adds_nothing(platform, venues):
    pipeline = Pipeline(platform.source, "checkin")
    first = [checkin(n, f"2021-09-{n:02d}T10:00:00+07:00") for n in (1, 2)]
    pipeline.ingest(lines(*first))
    pipeline.ingest(lines(checkin(3, "2021-09-02T11:00:00+07:00"), checkin(4, "2021-10-01T10:00:00+07:00")))
    again = pipeline.ingest(lines(*first, checkin(5, "2021-10-01T12:00:00+07:00")))
    assert (again.accepted, again.duplicates) == (1, 2)
    market = "market"
    assert by_day() == {
        (date(2021, 9, 1), market): 1,
        (date(2021, 9, 2), market): 2,
        (date(2021, 10, 1), market): 2,
    }
    assert by_month() == {(date(2021, 9, 1), market): 3, (date(2021, 10, 1), market): 2}
    assert sum(by_month().values()) == CheckIn.objects.count() == 5
