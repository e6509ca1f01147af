"""A file's large batches validated by a second process on SQLite while this one writes (issue 18,
point 3): the same summaries, rejections (line, field, message), stored rows and figures as when this
process validates them. On PostgreSQL no second process runs, and the same answers hold.

The batches here are small: the size from which a second process validates, and its chunks, are
lowered so that a few lines go through it in several chunks.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from dieuhanh.warehouse import ingest as pipeline_module
from dieuhanh.warehouse.ingest import Pipeline, csv_records, ndjson_records
from dieuhanh.warehouse.kinds import FieldError
from dieuhanh.warehouse.models import CheckIn, Rollup, RollupMonth
from dieuhanh.warehouse.services import VenueInput, save_venue
from tests.factories import PHONE_B, record

# PostgreSQL validates while its COPY writes, in one process: these are the second process's own tests.
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="only SQLite validates in a second process: the SQLite pass runs it"
)


def lines(*records: dict | str | bytes) -> list:
    def encoded(r: dict | str | bytes) -> bytes:
        if isinstance(r, bytes):
            return r
        return (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)).encode()

    return list(ndjson_records(encoded(r) for r in records))


# Every way a line is taken or refused, with repeats within a batch and across batches.
MIXED = [
    record("checkin", 1),
    record("checkin", 2, venue="V-SG-VP", person_id=PHONE_B, time_out=None),
    "{not json",
    record("checkin", 3, venue="NO-SUCH-VENUE"),
    record("checkin", 4, time_in="2099-01-01T00:00:00+07:00"),
    record("checkin", 5, time_out="2021-08-26T08:00:00+07:00"),  # before time_in
    record("checkin", 6, person_id="079201\u0007001234"),
    b'{"source_event_id": "checkin-7", "venue": "V-BT-\xff"}',
    record("checkin", 1),  # repeated within the batch
    record("checkin", 8, time_in="2021-08-27T23:30:00+00:00", time_out=None),  # the next day in Vietnam
    record("checkin", 9, person_id="not a person id"),
    record("checkin", 10, source_event_id=None),
    record("checkin", 11, venue=" V-SG-VP "),
]


def run(platform, batches: list[list]) -> tuple[list[dict], list, list, list]:
    """Each batch ingested by one pipeline; what an official sees: the summaries, the stored check-ins
    and the daily and monthly figures."""
    pipeline = Pipeline(platform.source, "checkin")
    summaries = [pipeline.ingest(batch).as_dict() for batch in batches]
    stored = list(
        CheckIn.objects.order_by("id").values_list(
            "source_event_id", "commune_id", "at", "person_key", "venue_id", "time_out"
        )
    )
    days = list(
        Rollup.objects.order_by("day", "commune_id", "dim1").values_list("day", "commune_id", "dim1", "count")
    )
    months = list(
        RollupMonth.objects.order_by("month", "commune_id").values_list("month", "commune_id", "count")
    )
    return summaries, stored, days, months


def empty() -> None:
    CheckIn.objects.all().delete()
    Rollup.objects.all().delete()
    RollupMonth.objects.all().delete()


def through_a_second_process(monkeypatch) -> None:
    """Batches of 3 lines or more are validated by the second process: 1 line, then 2 a chunk."""
    monkeypatch.setattr(pipeline_module, "_SECOND_PROCESS_FROM", 3)
    monkeypatch.setattr(pipeline_module, "_CHUNK", 2)
    monkeypatch.setattr(pipeline_module, "_FIRST_CHUNK", 1)


@pytest.fixture
def second_process(monkeypatch):
    through_a_second_process(monkeypatch)


@pytest.mark.usefixtures("venues")
def test_a_second_process_gives_the_same_rows_rejections_and_figures(platform, monkeypatch):
    batches = [
        lines(*MIXED),
        # The second batch re-sends stored records among new ones: counted once, as duplicates.
        lines(record("checkin", 12), record("checkin", 2), "[]", record("checkin", 13), record("checkin", 8)),
    ]
    here = run(platform, batches)
    empty()
    through_a_second_process(monkeypatch)
    there = run(platform, batches)
    assert there == here
    summaries = here[0]
    assert [(s["accepted"], s["duplicates"]) for s in summaries] == [(4, 1), (2, 2)]
    assert [(r["line"], r["field"]) for r in summaries[0]["rejected"]] == [
        (3, None),
        (4, "venue"),
        (5, "time_in"),
        (6, "time_out"),
        (7, "person_id"),
        (8, None),
        (11, "person_id"),
        (12, "source_event_id"),
    ]
    assert "NO-SUCH-VENUE" in summaries[0]["rejected"][1]["error"]
    # A time sent in UTC is stored as that instant and counts on its day in Vietnam.
    at = CheckIn.objects.get(source_event_id="checkin-8").at
    assert at == datetime(2021, 8, 27, 23, 30, tzinfo=UTC)
    assert {str(day) for day, *_ in here[2]} == {"2021-08-26", "2021-08-28"}
    assert len(here[1]) == 6 and sum(n for *_, n in here[2]) == 6


@pytest.mark.usefixtures("venues")
def test_a_spreadsheets_rows_and_a_readers_refusals_go_through_the_second_process(platform, monkeypatch):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["source_event_id", "venue", "person_id", "time_in", "time_out"])
    writer.writerow(["c-1", "V-BT-CHO", "079201001234", "2021-08-26 09:00:00", ""])
    writer.writerow(["c-2", "V-NONE", "079201001234", "2021-08-26 09:00:00", ""])
    writer.writerow(["c-3", "V-SG-VP", "079201001234", "26/08/2021", ""])
    writer.writerow(["c-4", "V-SG-VP", PHONE_B, "2021-08-26T10:00:00+07:00", "2021-08-26 11:00"])
    rows = list(
        csv_records(io.BytesIO(text.getvalue().encode() + "c-5,V-BT-\udcff\n".encode(errors="surrogatepass")))
    )
    # A line its reader could not read is a refusal the second process passes on as it is.
    batch = [*rows, (7, FieldError(None, "không đọc được dòng này"))]
    here = run(platform, [batch])
    empty()
    through_a_second_process(monkeypatch)
    assert run(platform, [batch]) == here
    assert here[0][0]["accepted"] == 2
    assert [(r["line"], r["field"]) for r in here[0][0]["rejected"]] == [
        (3, "venue"),
        (4, "time_in"),
        (6, "venue"),
        (7, None),
    ]
    assert here[0][0]["rejected"][-1]["error"] == "không đọc được dòng này"


@pytest.mark.usefixtures("venues", "second_process")
def test_a_venue_registered_between_batches_is_known_to_the_second_process(platform, world):
    pipeline = Pipeline(platform.source, "checkin")
    before = pipeline.ingest(
        lines(record("checkin", 1, venue="V-NEW"), record("checkin", 2), record("checkin", 3))
    )
    assert (before.accepted, [(r.line, r.field) for r in before.rejected]) == (2, [(1, "venue")])
    save_venue(actor=None, venue=VenueInput("V-NEW", "Trạm mới", "school", "26740"))
    after = pipeline.ingest(
        lines(record("checkin", 1, venue="V-NEW"), record("checkin", 4), record("checkin", 5))
    )
    assert (after.accepted, after.rejected) == (3, [])
    assert CheckIn.objects.get(source_event_id="checkin-1").commune_id == world.commune_b.id


@pytest.mark.usefixtures("venues", "second_process")
def test_a_batch_validated_and_never_written_leaves_the_next_one_whole(platform):
    pipeline = Pipeline(platform.source, "checkin")
    pipeline.prepare(lines(*(record("checkin", n) for n in range(1, 8))))  # e.g. the caller gave up
    summary = pipeline.ingest(lines(*(record("checkin", n) for n in range(20, 25)), "{"))
    assert (summary.accepted, summary.duplicates) == (5, 0)
    assert [(r.line, r.field) for r in summary.rejected] == [(6, None)]
    assert sorted(CheckIn.objects.values_list("source_event_id", flat=True)) == [
        f"checkin-{n}" for n in range(20, 25)
    ]


@sqlite_only
@pytest.mark.usefixtures("venues", "second_process")
def test_the_second_process_ends_with_its_pipeline(platform):
    pipeline = Pipeline(platform.source, "checkin")
    assert pipeline.ingest(lines(*(record("checkin", n) for n in range(1, 4)))).accepted == 3
    validator = pipeline._validator
    assert validator is not None
    process = validator._process
    assert process.is_alive()
    # Another pipeline's process, forked while the first lives, must not hold the first one's pipe open.
    other = Pipeline(platform.source, "checkin")
    assert other.ingest(lines(*(record("checkin", n) for n in range(4, 7)))).accepted == 3
    assert other._validator is not None and other._validator._process.is_alive()
    del pipeline, validator
    gc.collect()
    assert process.exitcode == 0  # it saw its pipe end and left (a terminated one says -15)
    assert other._validator._process.is_alive()


@sqlite_only
@pytest.mark.usefixtures("venues", "second_process")
def test_ctrl_c_while_a_batch_is_written_ends_the_second_process_and_the_next_batch_is_whole(
    platform, monkeypatch
):
    pipeline = Pipeline(platform.source, "checkin")
    calls = []
    insert = pipeline_module.insert_rows

    def interrupted(*args, **kwargs):  # Ctrl-C as the second chunk is being written
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return insert(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "insert_rows", interrupted)
    with pytest.raises(KeyboardInterrupt), transaction.atomic():  # a batch is one transaction
        pipeline.ingest(lines(*(record("checkin", n) for n in range(1, 8))))
    assert pipeline._validator is None  # ended, not read on: its pipe may be out of step
    assert CheckIn.objects.count() == 0
    summary = pipeline.ingest(lines(*(record("checkin", n) for n in range(1, 8))))
    assert (summary.accepted, summary.duplicates, summary.rejected) == (7, 0, [])
    assert sorted(CheckIn.objects.values_list("source_event_id", flat=True)) == sorted(
        f"checkin-{n}" for n in range(1, 8)
    )
