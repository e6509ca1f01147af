"""Event tables partitioned by time on PostgreSQL; plain tables on SQLite (warehouse.partitions).

Tests marked `pg_only` need PostgreSQL's partitions and are skipped on the SQLite pass of `make test`
(they run in its PostgreSQL pass); the others run on both databases.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from typer.testing import CliRunner

from dieuhanh.cli import app
from dieuhanh.warehouse import partitions
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import CheckIn, Rollup
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.services import purge
from tests.factories import record

pg_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL partitions (pg_partitioned_table, DETACH/DROP): SQLite keeps plain tables; "
    "this runs in the PostgreSQL pass of `make test`",
)
CHECKINS, TESTS = CheckIn._meta.db_table, LabTest._meta.db_table


def _checkin(n: int, time_in: str) -> dict:
    return record("checkin", n, time_in=time_in, time_out=None)


def _test(n: int, sampled_at: str) -> dict:
    return record("test", n, sampled_at=sampled_at)


def _where(table: str, seid: str) -> str:
    """The partition holding the event."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {table} WHERE source_event_id = %s",  # noqa: S608
            [seid],
        )
        return cursor.fetchone()[0]


def _exists(relation: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [relation])
        return cursor.fetchone() is not None


def _keys(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT source_event_id FROM {partitions.key_table(table)} ORDER BY 1")  # noqa: S608
        return [r[0] for r in cursor.fetchall()]


def _counted(kind: str) -> int:
    return Rollup.objects.filter(kind=kind).aggregate(n=Sum("count"))["n"] or 0


@pg_only
def test_every_event_table_is_partitioned_by_time_with_a_default_and_a_key_table(db):
    with connection.cursor() as cursor:
        for name, kind in KINDS.items():
            table = kind.model._meta.db_table
            cursor.execute(
                "SELECT p.partstrat, a.attname FROM pg_partitioned_table p"
                " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
                " WHERE p.partrelid = %s::regclass",
                [table],
            )
            assert cursor.fetchone() == ("r", "at"), table
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = %s::regclass",
                [table],
            )
            children = {r[0] for r in cursor.fetchall()}
            assert f"{table}_default" in children
            week_or_month = r"\d{4}w\d{2}" if name == "checkin" else r"\d{6}"
            assert any(re.fullmatch(rf"{table}_p{week_or_month}", c) for c in children), children
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype = 'p'",
                [partitions.key_table(table)],
            )
            once = f"{kind.model.__name__.lower()}_once_per_source"
            assert cursor.fetchone() == (once, "PRIMARY KEY (source_id, source_event_id)")


@pg_only
def test_ensure_makes_the_periods_ahead_once(db):
    made = partitions.ensure(today=date(2031, 3, 15), months=3, weeks=8)  # a Saturday of ISO week 11
    names = {m.name for m in made}
    assert {n for n in names if n.startswith(CHECKINS + "_p")} == {
        f"{CHECKINS}_p2031w{w}" for w in range(11, 20)
    }
    assert {n for n in names if n.startswith(TESTS + "_p")} == {f"{TESTS}_p2031{m:02d}" for m in range(3, 7)}
    assert len(made) == 9 + 6 * 4  # no default: the migration made them
    week = next(p for p in partitions.partitions_of(CHECKINS) if p.name == f"{CHECKINS}_p2031w11")
    assert (week.start, week.end) == (
        datetime(2031, 3, 9, 17, tzinfo=UTC),
        datetime(2031, 3, 16, 17, tzinfo=UTC),
    )
    month = next(p for p in partitions.partitions_of(TESTS) if p.name == f"{TESTS}_p203103")
    assert (month.start, month.end) == (
        datetime(2031, 2, 28, 17, tzinfo=UTC),
        datetime(2031, 3, 31, 17, tzinfo=UTC),
    )
    assert partitions.ensure(today=date(2031, 3, 15), months=3, weeks=8) == []


def test_the_partitions_command_makes_what_is_missing_once(db):
    first = CliRunner().invoke(app, ["partitions", "--weeks", "10", "--months", "4"])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, ["partitions", "--weeks", "10", "--months", "4"])
    assert again.exit_code == 0, again.output
    if connection.vendor == "sqlite":
        assert "SQLite" in first.output and "không chia phân vùng" in first.output
        assert partitions.ensure() == []
        return
    # The migration made this week and the 8 next, this month and the 3 next: these options go further.
    assert f"Đã tạo phân vùng {CHECKINS}_p" in first.output
    assert f"Đã tạo phân vùng {TESTS}_p" in first.output
    assert "Không cần tạo phân vùng nào" in again.output


@pg_only
def test_an_event_outside_the_partitions_lands_in_the_default_and_is_counted(platform, venues):
    body = platform.send("test", [_test(1, "2021-08-26T10:00:00+07:00")]).json()  # no 2021 partition yet
    assert body["accepted"] == 1
    assert _where(TESTS, "test-1") == f"{TESTS}_default"
    assert _counted("test") == 1
    made = partitions.ensure(today=date(2021, 9, 1), months=0, weeks=0)
    assert partitions.Made(f"{TESTS}_p202108", 1) in made  # split out of the default, with its row
    assert _where(TESTS, "test-1") == f"{TESTS}_p202108"
    assert LabTest.objects.count() == 1 and _counted("test") == 1
    assert platform.send("test", [_test(1, "2021-08-26T10:00:00+07:00")]).json()["duplicates"] == 1


@pg_only
def test_weeks_and_months_begin_at_midnight_in_vietnam(platform, venues):
    sunday, monday = "2021-08-29T23:30:00+07:00", "2021-08-30T00:30:00+07:00"  # UTC: both on Sunday
    platform.send("checkin", [_checkin(1, sunday), _checkin(2, monday)])
    platform.send("test", [_test(1, "2021-08-31T23:30:00+07:00"), _test(2, "2021-09-01T00:30:00+07:00")])
    # "Today" makes week 30 and August; weeks 34 and 35 and September come out of the default.
    partitions.ensure(today=date(2021, 8, 1), months=0, weeks=0)
    assert (_where(CHECKINS, "checkin-1"), _where(CHECKINS, "checkin-2")) == (
        f"{CHECKINS}_p2021w34",
        f"{CHECKINS}_p2021w35",
    )
    assert (_where(TESTS, "test-1"), _where(TESTS, "test-2")) == (f"{TESTS}_p202108", f"{TESTS}_p202109")


def test_a_duplicate_claiming_another_time_is_a_duplicate(platform, venues):
    partitions.ensure(today=date(2021, 8, 1), months=2, weeks=8)  # August–October, weeks 30–38
    assert platform.send("test", [_test(1, "2021-08-26T10:00:00+07:00")]).json()["accepted"] == 1
    platform.send("checkin", [_checkin(1, "2021-08-03T09:00:00+07:00")])
    # Re-sent with another time (another month, another week): alone, and beside a new event.
    again = platform.send("test", [_test(1, "2021-09-10T10:00:00+07:00")]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    mixed = platform.send(
        "test", [_test(2, "2021-09-11T10:00:00+07:00"), _test(1, "2021-10-01T08:00:00+07:00")]
    )
    assert (mixed.json()["accepted"], mixed.json()["duplicates"]) == (1, 1)
    late = platform.send("checkin", [_checkin(1, "2021-08-24T09:00:00+07:00")]).json()
    assert (late["accepted"], late["duplicates"]) == (0, 1)
    assert sorted(LabTest.objects.values_list("source_event_id", "at")) == [
        ("test-1", datetime(2021, 8, 26, 3, tzinfo=UTC)),
        ("test-2", datetime(2021, 9, 11, 3, tzinfo=UTC)),
    ]
    assert CheckIn.objects.get().at == datetime(2021, 8, 3, 2, tzinfo=UTC)
    assert _counted("test") == 2 and _counted("checkin") == 1
    source = platform.source.pk
    assert partitions.by_source_event(LabTest, source, "test-2").get().at == datetime(
        2021, 9, 11, 3, tzinfo=UTC
    )
    assert not partitions.by_source_event(LabTest, source, "test-3").exists()
    if connection.vendor == "postgresql":
        assert (_where(TESTS, "test-1"), _where(TESTS, "test-2")) == (f"{TESTS}_p202108", f"{TESTS}_p202109")
        assert _keys(TESTS) == ["test-1", "test-2"]


def test_any_writer_is_held_to_one_event_per_source_id(platform, venues):
    """Not only the pipeline: the unique constraint (SQLite) or the key table's triggers (PostgreSQL)."""
    platform.send("test", [_test(1, "2021-08-26T10:00:00+07:00")])
    stored = LabTest.objects.get()
    copy = LabTest(
        source_id=stored.source_id,
        source_event_id="test-1",
        commune_id=stored.commune_id,
        at=datetime(2021, 12, 1, tzinfo=UTC),
        method="pcr",
        result="negative",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()
    assert LabTest.objects.count() == 1
    # Keys follow updates and deletes (PostgreSQL: the key table's triggers).
    LabTest.objects.update(source_event_id="test-9")
    copy.save()  # test-1 is free again
    with pytest.raises(IntegrityError), transaction.atomic():
        LabTest.objects.filter(source_event_id="test-1").update(source_event_id="test-9")
    LabTest.objects.filter(source_event_id="test-9").delete()
    assert list(LabTest.objects.values_list("source_event_id", "at")) == [
        ("test-1", datetime(2021, 12, 1, tzinfo=UTC))
    ]
    if connection.vendor == "postgresql":
        assert _keys(TESTS) == ["test-1"]


def test_purge_drops_whole_old_partitions_and_keeps_recent_rows_and_rollups(platform, venues):
    partitions.ensure(today=date(2021, 7, 26), months=0, weeks=10)  # weeks 30 (26/7) to 40
    times = {
        1: "2021-06-15T09:00:00+07:00",  # before every partition: the default's, deleted row by row
        2: "2021-08-03T09:00:00+07:00",  # week 31: dropped with its partition
        3: "2021-08-20T09:00:00+07:00",  # week 33: dropped
        4: "2021-08-31T10:00:00+07:00",  # week 35 straddles the cut-off: this one is older, deleted
        5: "2021-09-02T09:00:00+07:00",  # week 35, newer than the cut-off: kept
        6: "2021-09-28T09:00:00+07:00",  # week 39: kept
    }
    body = platform.send("checkin", [_checkin(n, t) for n, t in times.items()]).json()
    assert body["accepted"] == 6
    platform.send("test", [_test(1, "2021-08-26T10:00:00+07:00")])
    now = datetime(2021, 10, 1, tzinfo=UTC)  # 30 days: the cut-off is 1/9/2021 00:00 UTC (07:00 here)
    report = purge(actor=None, now=now, retention={"checkin": 30, "test": 365})
    assert report.deleted == {"checkin": 4, "test": 0}
    assert sorted(CheckIn.objects.values_list("source_event_id", flat=True)) == [
        "checkin-5",
        "checkin-6",
    ]
    assert LabTest.objects.count() == 1
    assert _counted("checkin") == 6 and _counted("test") == 1  # the figures stay
    if connection.vendor == "postgresql":
        weeks = [f"{CHECKINS}_p2021w{w}" for w in range(30, 35)]
        assert report.dropped["checkin"] == weeks and report.dropped["test"] == []
        assert not any(_exists(name) for name in weeks)
        assert _exists(f"{CHECKINS}_p2021w35") and _exists(f"{CHECKINS}_default")
        assert (_where(CHECKINS, "checkin-5"), _where(CHECKINS, "checkin-6")) == (
            f"{CHECKINS}_p2021w35",
            f"{CHECKINS}_p2021w39",
        )
        assert _keys(CHECKINS) == ["checkin-5", "checkin-6"]  # the keys followed their events
    else:
        assert report.dropped == {}
    # An event purged is gone with its key: sent again, it is new (as when rows were deleted).
    assert platform.send("checkin", [_checkin(3, times[3])]).json()["accepted"] == 1


@pg_only
def test_a_key_goes_only_once_its_event_is_gone(platform, venues):
    partitions.ensure(today=date(2021, 8, 2), months=0, weeks=2)  # weeks 31–33
    platform.send("checkin", [_checkin(1, "2021-08-03T09:00:00+07:00")])
    cutoff = datetime(2021, 8, 16, tzinfo=UTC)
    expired = partitions.expired_partitions(CHECKINS, cutoff)
    assert expired == {f"{CHECKINS}_p2021w31": 1, f"{CHECKINS}_p2021w32": 0}
    partitions.drop_partitions(CHECKINS, expired)
    # A late event of a dropped week arrives before the keys are trimmed: it lands in the default.
    platform.send("checkin", [_checkin(2, "2021-08-04T09:00:00+07:00")])
    assert partitions.purge_keys(CHECKINS, cutoff) == 1
    assert _keys(CHECKINS) == ["checkin-2"]
    assert platform.send("checkin", [_checkin(2, "2021-08-04T09:00:00+07:00")]).json()["duplicates"] == 1
    assert platform.send("checkin", [_checkin(1, "2021-08-03T09:00:00+07:00")]).json()["accepted"] == 1


@pg_only
def test_the_migration_keeps_the_rows_ids_and_dedupe(platform, venues):
    sent = [_test(1, "2021-08-26T10:00:00+07:00"), _test(2, "2021-09-02T10:00:00+07:00")]
    platform.send("test", sent)
    before = sorted(LabTest.objects.values_list("id", "source_event_id", "at", "result"))
    with connection.schema_editor() as editor:
        partitions.unpartition_table(editor, LabTest)  # back to the plain table of 0004
    assert not partitions.is_partitioned(TESTS) and not _exists(partitions.key_table(TESTS))
    assert sorted(LabTest.objects.values_list("id", "source_event_id", "at", "result")) == before
    with connection.schema_editor() as editor:
        partitions.partition_table(editor, LabTest, partitions.MONTH)
    assert partitions.is_partitioned(TESTS)
    assert sorted(LabTest.objects.values_list("id", "source_event_id", "at", "result")) == before
    assert (_where(TESTS, "test-1"), _where(TESTS, "test-2")) == (f"{TESTS}_p202108", f"{TESTS}_p202109")
    assert _keys(TESTS) == ["test-1", "test-2"]
    body = platform.send("test", [*sent, _test(3, "2021-09-03T10:00:00+07:00")]).json()
    assert (body["accepted"], body["duplicates"]) == (1, 2)
    assert LabTest.objects.get(source_event_id="test-3").id > max(row[0] for row in before)
