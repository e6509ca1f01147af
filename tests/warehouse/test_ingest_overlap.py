"""A file's batches when the next one is read while the current one is written (`BatchesAhead`,
`Pipeline._meanwhile`): each batch stored once and counted once, a re-sent record a duplicate, the
resume line told only after a commit, and a failed commit or a failed read never reported stored."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from django.db import DatabaseError, connection, connections
from django.db.models import Sum

from dieuhanh.vnformat import VN_TZ
from dieuhanh.warehouse import ingest as pipeline
from dieuhanh.warehouse.ingest import Record, Summary, _add_to_rollups, ndjson_records, rollup_columns
from dieuhanh.warehouse.models import CheckIn, Rollup, RollupMonth, Venue
from dieuhanh.warehouse.services import ingest
from tests.factories import record


def lines(*records: dict | str) -> list[tuple[int, Record]]:
    text = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return list(ndjson_records(line.encode() for line in text))


def checkin(n: int, day: int = 26, venue: str = "V-BT-CHO") -> dict:
    return record("checkin", n, venue=venue, time_in=f"2021-08-{day:02d}T09:00:00+07:00", time_out=None)


def stored() -> list[str]:
    return sorted(CheckIn.objects.values_list("source_event_id", flat=True))


def seids(*numbers: int) -> list[str]:
    return sorted(record("checkin", n)["source_event_id"] for n in numbers)


def rolled_up() -> tuple[dict, int]:
    """The daily rollup's cells, and the monthly rollup's total."""
    days: Counter = Counter()
    cells = Rollup.objects.filter(kind="checkin").values_list("commune_id", "day", "count")
    for commune, day, count in cells:
        days[(commune, day)] += count
    month = RollupMonth.objects.filter(kind="checkin").aggregate(n=Sum("count"))["n"] or 0
    return dict(days), month


def counted_from_events() -> dict:
    """What the rollups must hold: one per stored check-in, by commune and Vietnam day."""
    pairs = CheckIn.objects.values_list("commune_id", "at")
    return dict(Counter((commune, at.astimezone(VN_TZ).date()) for commune, at in pairs))


def progress_log() -> tuple[list, Callable[[int, Summary], None]]:
    told: list[tuple[int, int, int, int]] = []

    def progress(line: int, done: Summary) -> None:
        told.append((line, done.accepted, done.duplicates, len(done.rejected)))

    return told, progress


def test_every_batch_is_stored_once_and_counted_once_with_a_resent_record_a_duplicate(platform, venues):
    told, progress = progress_log()
    total = ingest(
        platform.source,
        "checkin",
        lines(
            checkin(1),
            checkin(2, day=27),
            checkin(3, venue="V-SG-VP"),  # batch 1: lines 1–3
            checkin(4),
            "{not json",
            checkin(5, day=28),  # batch 2: a rejected line
            checkin(6, day=27),
            checkin(2, day=27),  # batch 3: a record of batch 1 again, refused by the key and counted once
            checkin(7, venue="V-SG-VP"),
            checkin(8),  # batch 4, the last, short
        ),
        batch_size=3,
        progress=progress,
    )
    assert told == [(3, 3, 0, 0), (6, 2, 0, 1), (9, 2, 1, 0), (10, 1, 0, 0)]
    assert (total.accepted, total.duplicates, [r.line for r in total.rejected]) == (8, 1, [5])
    assert stored() == seids(1, 2, 3, 4, 5, 6, 7, 8)
    days, month = rolled_up()
    assert days == counted_from_events() and sum(days.values()) == month == 8


def test_a_file_sent_twice_is_all_duplicates_and_counts_nothing_more(platform, venues):
    records = lines(*(checkin(n, day=20 + n % 5) for n in range(1, 12)))
    first = ingest(platform.source, "checkin", records, batch_size=4)
    before = rolled_up()
    told, progress = progress_log()
    again = ingest(platform.source, "checkin", records, batch_size=4, progress=progress)
    assert (first.accepted, again.accepted, again.duplicates) == (11, 0, 11)
    assert [line for line, *_ in told] == [4, 8, 11]
    assert rolled_up() == before and before[1] == 11


@pytest.mark.parametrize(
    "dims",
    [
        ("market", ""),
        ('a "quoted", {braced} one', "back\\slash"),
        ("NULL", " spaced "),
        ("Chợ Bến Thành", "\u0111"),
    ],
)
def test_the_rollup_arrays_keep_every_dimension_as_it_was(world, dims):
    commune = world.commune_b.id
    counts = Counter({(commune, date(2021, 8, 31), *dims): 2, (commune, date(2021, 9, 1), *dims): 3})
    _add_to_rollups("checkin", counts, lambda day: day, rollup_columns(counts))
    _add_to_rollups("checkin", counts, lambda day: day)  # made at once: the same cells, added again
    daily = set(Rollup.objects.filter(kind="checkin").values_list("day", "dim1", "dim2", "count"))
    assert daily == {(date(2021, 8, 31), *dims, 4), (date(2021, 9, 1), *dims, 6)}
    monthly = set(RollupMonth.objects.filter(kind="checkin").values_list("month", "dim1", "dim2", "count"))
    assert monthly == {(date(2021, 8, 1), *dims, 4), (date(2021, 9, 1), *dims, 6)}


# Transactional, as the command runs: each batch commits on its own.
@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_commit_fails_fails_the_run_and_is_never_reported_stored(platform, venues, monkeypatch):
    wrapper = connections["default"]
    commit, commits = wrapper._commit, []

    def failing_second_commit() -> None:
        commits.append(1)
        if len(commits) == 2:
            raise DatabaseError("the server refused the commit")
        commit()

    monkeypatch.setattr(wrapper, "_commit", failing_second_commit)
    told, progress = progress_log()
    records = lines(*(checkin(n, day=20 + n) for n in range(1, 8)))
    with pytest.raises(DatabaseError, match="refused the commit"):
        ingest(platform.source, "checkin", records, batch_size=3, progress=progress)
    assert told == [(3, 3, 0, 0)]  # the second batch, read ahead of its commit, is not told
    assert stored() == seids(1, 2, 3)
    days, month = rolled_up()
    assert days == counted_from_events() and month == 3
    # Resuming at the line after the one told stores the rest once.
    monkeypatch.setattr(wrapper, "_commit", commit)
    rest = ingest(platform.source, "checkin", records[3:], batch_size=3)
    assert (rest.accepted, rest.duplicates) == (4, 0)
    assert stored() == seids(*range(1, 8)) and rolled_up()[1] == 7


@pytest.mark.django_db(transaction=True)
def test_a_line_that_cannot_be_read_fails_its_own_batch_not_the_one_being_written(platform, venues):
    def reading() -> Iterator[tuple[int, Record]]:
        yield from lines(*(checkin(n) for n in range(1, 6)))
        raise OSError("the disk went away at line 6")

    told, progress = progress_log()
    with pytest.raises(OSError, match="line 6"):
        ingest(platform.source, "checkin", reading(), batch_size=3, progress=progress)
    # The second batch (lines 4–6) was being read while the first was written: the first commits.
    assert told == [(3, 3, 0, 0)]
    assert stored() == seids(1, 2, 3) and rolled_up()[1] == 3


def test_a_refused_batch_announces_only_the_communes_of_what_it_stored(platform, venues, monkeypatch):
    told: list[set[int]] = []
    announce = pipeline.announce
    monkeypatch.setattr(
        pipeline,
        "announce",
        lambda kind, communes, rooms=None: (told.append(set(communes)), announce(kind, communes, rooms)),
    )
    market, office = (Venue.objects.get(code=code).commune_id for code in ("V-BT-CHO", "V-SG-VP"))
    ingest(platform.source, "checkin", lines(checkin(1), checkin(3, venue="V-SG-VP")), batch_size=2)
    # The second batch's only record of the office's commune is a re-sent one: nothing new there.
    again = lines(checkin(3, venue="V-SG-VP"), checkin(4), checkin(5, venue="V-SG-VP"), checkin(6))
    ingest(platform.source, "checkin", again, batch_size=2)
    assert told == [{market, office}, {market}, {market, office}]


@pytest.mark.django_db(transaction=True)
def test_the_next_batch_is_read_before_this_one_is_written_and_an_interrupt_then_waits_for_it(
    platform, venues, monkeypatch
):
    events: list[object] = []
    written = pipeline.Pipeline._written

    def logged(self, *args, **kwargs):
        events.append("written")
        return written(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.Pipeline, "_written", logged)

    def reading() -> Iterator[tuple[int, Record]]:
        for item in lines(*(checkin(n) for n in range(1, 6))):
            events.append(item[0])
            yield item
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as the command takes it, at line 6

    told, progress = progress_log()
    with pytest.raises(KeyboardInterrupt):
        ingest(platform.source, "checkin", reading(), batch_size=3, progress=progress)
    if connection.vendor == "postgresql":  # read ahead while the COPY ends (SQLite reads in turn)
        assert events.index(4) < events.index("written")
    # The batch being written when the interrupt came commits, and is told; the next is not stored.
    assert told == [(3, 3, 0, 0)]
    assert stored() == seids(1, 2, 3) and rolled_up()[1] == 3


DIMENSIONS = [
    "",
    "x\\",
    "\\",
    '"',
    '""',
    ",",
    "{}",
    "{",
    " ",
    "NULL",
    "a,b",
    'a"b\\c',
    "Chợ Bến Thành",
    "\t",
    "a\nb",
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array literals are PostgreSQL's")
@pytest.mark.parametrize("style", ["ISO, MDY", "SQL, DMY", "German"])
def test_the_rollup_literals_read_back_exactly_under_any_date_style(world, style):
    days = [date(2021, 8, 31), date(2024, 2, 29), date(1, 1, 1), date(9999, 12, 31)]
    counts = Counter(
        {(world.commune_b.id, days[i % len(days)], d, d): i + 1 for i, d in enumerate(DIMENSIONS)}
    )
    columns = rollup_columns(counts)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL DateStyle = '{style}'")
        cursor.execute(
            "SELECT * FROM unnest(%s::bigint[], %s::date[], %s::text[], %s::text[], %s::bigint[])", columns
        )
        found = {(c, d, d1, d2): n for c, d, d1, d2, n in cursor.fetchall()}
    assert found == dict(counts)
