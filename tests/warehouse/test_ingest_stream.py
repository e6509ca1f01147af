"""A batch validated while it is written (PostgreSQL streams it into COPY; SQLite validates it first):
the same answers either way — re-sent records, bad lines after them, venues registered mid-run."""

from __future__ import annotations

import json

from django.db import connection
from django.db.models import Sum

from dieuhanh.warehouse.ingest import Pipeline, ndjson_records
from dieuhanh.warehouse.models import CheckIn, Rollup, RollupMonth
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.services import VenueInput, ingest, save_venue
from tests.factories import record


def lines(*records: dict | str) -> list:
    text = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return list(ndjson_records(line.encode() for line in text))


def counted(kind: str) -> tuple[int, int]:
    def total(model) -> int:
        return model.objects.filter(kind=kind).aggregate(n=Sum("count"))["n"] or 0

    return total(Rollup), total(RollupMonth)


def test_postgresql_streams_the_batches_that_fill_no_vault(platform):
    streams = connection.vendor == "postgresql"
    assert Pipeline(platform.source, "checkin").streams is streams
    assert Pipeline(platform.source, "test").streams is streams
    assert Pipeline(platform.source, "health").streams is False  # its persons are vaulted first


def test_a_batch_resent_in_part_keeps_its_new_records_and_rejects_its_bad_lines(platform, venues):
    first = ingest(platform.source, "test", lines(record("test", 1), record("test", 2)))
    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, [])
    # The stored record comes before a bad line and a new one: the copy is refused at the stored
    # record, and the lines after it are still validated, rejected or written.
    again = ingest(
        platform.source,
        "test",
        lines(
            record("test", 3),
            record("test", 1),
            record("test", 4, sampled_at="0021-08-26T09:00:00+07:00"),
            "{not json",
            record("test", 5),
            record("test", 3),
        ),
    )
    assert (again.accepted, again.duplicates) == (2, 2)
    assert [(r.line, r.field) for r in again.rejected] == [(3, "sampled_at"), (4, None)]
    stored = LabTest.objects.filter(source=platform.source).values_list("source_event_id", flat=True)
    assert sorted(stored) == sorted(record("test", n)["source_event_id"] for n in (1, 2, 3, 5))
    assert counted("test") == (4, 4)


def test_a_batch_of_rejected_lines_only_writes_no_event_and_counts_nothing(platform, venues):
    summary = ingest(platform.source, "checkin", lines(record("checkin", 1, venue="NO-SUCH-VENUE"), "{"))
    assert (summary.accepted, summary.duplicates) == (0, 0)
    assert [(r.line, r.field) for r in summary.rejected] == [(1, "venue"), (2, None)]
    assert "NO-SUCH-VENUE" in summary.rejected[0].error
    assert CheckIn.objects.count() == 0 and counted("checkin") == (0, 0)


def test_a_venue_registered_while_a_file_is_ingested_counts_from_the_next_batch(platform, venues, world):
    pipeline = Pipeline(platform.source, "checkin")
    unknown = pipeline.ingest(lines(record("checkin", 1, venue="V-NEW")))
    assert [(r.line, r.field) for r in unknown.rejected] == [(1, "venue")]
    save_venue(actor=None, venue=VenueInput("V-NEW", "Trạm mới", "school", "26740"))
    known = pipeline.ingest(lines(record("checkin", 2, venue="V-NEW"), record("checkin", 3)))
    assert (known.accepted, known.rejected) == (2, [])
    at_new = CheckIn.objects.get(source_event_id=record("checkin", 2)["source_event_id"])
    assert at_new.commune_id == world.commune_b.id
    assert counted("checkin") == (2, 2)


def test_escaped_and_raw_control_characters_are_refused_on_the_fast_path_too(platform, venues):
    # An ASCII line without a backslash skips the per-field text check: these lines must not.
    escaped = json.dumps(record("checkin", 1, person_id="079201\u0007001234"))  # \u0007 as an escape
    raw_c1 = json.dumps(record("checkin", 2, venue="V-BT-CHO\u0085"), ensure_ascii=False)
    delete = json.dumps(record("checkin", 3, venue="V-BT-\x7fCHO"), ensure_ascii=False)
    summary = ingest(platform.source, "checkin", lines(escaped, raw_c1, delete, record("checkin", 4)))
    assert [(r.line, r.field) for r in summary.rejected] == [(1, "person_id"), (2, "venue"), (3, "venue")]
    assert summary.accepted == 1
