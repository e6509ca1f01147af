"""Issue 16, points 3 and 4: one bad line never sinks a batch, and one request is one transaction.

Over HTTP (NDJSON and CSV), over NATS and through the file CLI: a line that is not UTF-8, a time
in year 0001, a NUL or other control character, an oversized value is rejected by its line number
with the field and the reason, and its neighbours are stored once. A request or a message that
fails half-way leaves nothing stored; a file run that stops says the line to resume from.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from datetime import datetime

import msgspec
import pytest
from django.db import OperationalError
from django.test import Client
from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app
from dieuhanh.warehouse import ingest as pipeline
from dieuhanh.warehouse import services
from dieuhanh.warehouse.kinds import KINDS, text_fields
from dieuhanh.warehouse.models import HealthDeclaration, IncidentReport, Rollup
from dieuhanh.warehouse.models import TestResult as LabTest
from tests.factories import record, settled

runner = CliRunner()


def line(r: dict) -> bytes:
    return json.dumps(r, ensure_ascii=False).encode()


def post(platform, kind: str, body: bytes, content_type: str = "application/x-ndjson"):
    response = platform.client().post(f"/api/v1/events/{kind}", body, content_type=content_type)
    assert response.status_code == 200, response.content
    return response.json()


def stored(kind: str) -> set[str]:
    return set(KINDS[kind].model.objects.values_list("source_event_id", flat=True))


def rolled_up(kind: str) -> int:
    return sum(Rollup.objects.filter(kind=kind).values_list("count", flat=True))


def text_cases() -> list[tuple[str, str]]:
    return [(kind, name) for kind, spec in KINDS.items() for name in text_fields(spec.struct)]


def time_cases() -> list[tuple[str, str]]:
    return [
        (kind, f.name)
        for kind, spec in KINDS.items()
        for f in msgspec.structs.fields(spec.struct)
        if "datetime" in repr(f.type)
    ]


def with_value(kind: str, n: int, name: str, value: str) -> dict:
    base = record(kind, n)
    if name == "person_id" and kind == "report":
        base["person_id"] = "0912345678"  # optional there: give it one to spoil
    original = base.get(name, "")
    # Spoil a valid value in its middle, so that only the bad character makes it bad.
    base[name] = original[: len(original) // 2] + value + original[len(original) // 2 :]
    return base


# HTTP, NDJSON


def second(**override: str) -> bytes:
    return line(record("test", 2, **override))


BAD_NDJSON_LINES = [
    # (what, the bad line's bytes, the field named, words of the reason)
    ("not UTF-8", second().replace(b"26743", b"267\xff43"), None, "không phải UTF-8 hợp lệ (byte 0xff"),
    ("year 1 with an offset", second(sampled_at="0001-01-01T00:00:00+07:00"), "sampled_at", "2000"),
    ("year 1 without one", second(sampled_at="0001-01-01T00:00:00"), "sampled_at", "2000"),
    ("the day before the bound", second(sampled_at="1999-12-31T23:59:59+07:00"), "sampled_at", "2000"),
    ("a NUL", second(commune="26743\u0000"), "commune", "U+0000"),
    ("an escape sequence", second(source_event_id="test-\u001b[31m2"), "source_event_id", "U+001B"),
    ("a C1 control", second(person_id="0792010\u008501234"), "person_id", "U+0085"),
    ("a lone surrogate", second().replace(b"26743", b"\\ud800"), None, ""),
    ("a person ID of 1,000 digits", second(person_id="0" * 1000), "person_id", "độ dài <= 40"),
]


@pytest.mark.parametrize("what, bad, field, reason", BAD_NDJSON_LINES, ids=[c[0] for c in BAD_NDJSON_LINES])
def test_a_bad_ndjson_line_is_rejected_by_number_and_its_neighbours_kept(
    platform, venues, what, bad, field, reason
):
    body = b"\n".join([line(record("test", 1)), bad, line(record("test", 3))])
    answer = post(platform, "test", body)
    assert (answer["accepted"], answer["duplicates"]) == (2, 0)
    (rejected,) = answer["rejected"]
    assert (rejected["line"], rejected["field"]) == (2, field), rejected
    assert reason in rejected["error"] and rejected["error"]
    assert stored("test") == {"test-1", "test-3"} and rolled_up("test") == 2


@pytest.mark.parametrize("kind, name", text_cases())
def test_every_text_field_of_every_kind_refuses_a_nul(platform, venues, kind, name):
    # PostgreSQL refuses NUL in text: before, this line made the whole batch a 500.
    body = b"\n".join(
        [line(record(kind, 1)), line(with_value(kind, 2, name, "\u0000")), line(record(kind, 3))]
    )
    answer = post(platform, kind, body)
    assert answer["rejected"] == [{"line": 2, "field": name, "error": "chứa ký tự điều khiển (U+0000)"}]
    assert stored(kind) == {f"{kind}-1", f"{kind}-3"}


@pytest.mark.parametrize("kind, name", text_cases())
def test_every_text_field_of_every_kind_is_capped(platform, venues, kind, name):
    body = b"\n".join([line(record(kind, 1, **{name: "7" * 4001})), line(record(kind, 2))])
    answer = post(platform, kind, body)
    assert [(r["line"], r["field"]) for r in answer["rejected"]] == [(1, name)]
    assert "độ dài <=" in answer["rejected"][0]["error"]
    assert stored(kind) == {f"{kind}-2"}


@pytest.mark.parametrize("kind, name", time_cases())
def test_every_time_field_of_every_kind_refuses_year_1(platform, venues, kind, name):
    year_1 = record(kind, 1, **{name: "0001-01-01T00:00:00+07:00"})
    answer = post(platform, kind, b"\n".join([line(year_1), line(record(kind, 2))]))
    assert [(r["line"], r["field"]) for r in answer["rejected"]] == [(1, name)]
    assert stored(kind) == {f"{kind}-2"}


def test_the_earliest_time_is_accepted_and_a_report_keeps_its_line_breaks(platform, venues):
    answer = post(platform, "test", line(record("test", 1, sampled_at="2000-01-01T00:00:00+07:00")))
    assert answer["accepted"] == 1
    text = "Tụ tập đông người\ttại hẻm 12,\r\nquận 1"
    assert post(platform, "report", line(record("report", 1, text=text)))["accepted"] == 1
    assert IncidentReport.objects.get().text == text


# HTTP, CSV

CSV_HEADER = b"source_event_id,person_id,commune,declared_at,symptoms,exposure\n"


def test_bad_csv_lines_are_rejected_by_number_and_their_neighbours_kept(platform, venues):
    body = (
        b"\xef\xbb\xbf"  # a byte-order mark, as Excel writes
        + CSV_HEADER
        + b"h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever;cough,true\n"
        + b"h2,079201001234,267\xe143,2021-08-26T08:00:00+07:00,,false\n"  # Latin-1 'á', not UTF-8
        + b"h3,079201001234,26743,2021-08-26T08:00:00\xff,,false\n"
        + b"h4,0792010\x0001234,26743,2021-08-26T08:00:00+07:00,,false\n"
        + b"h5,079201001234,26743,0001-01-01 00:00,,false\n"
        + b'h6,079201001234,26743,2021-08-26T08:00:00+07:00,,"' + b"x" * 200_000 + b'"\n'
        + b"h7,0912345678,26740,2021-08-26 09:00,,false\n"
    )  # fmt: skip
    answer = post(platform, "health", body, "text/csv")
    rejected = [(r["line"], r["field"]) for r in answer["rejected"]]
    assert rejected == [(3, "commune"), (4, "declared_at"), (5, "person_id"), (6, "declared_at"), (7, None)]
    reasons = [r["error"] for r in answer["rejected"]]
    assert "UTF-8" in reasons[0] and "UTF-8" in reasons[1] and "U+0000" in reasons[2]
    assert "2000" in reasons[3] and "CSV" in reasons[4]
    assert answer["accepted"] == 2
    assert set(HealthDeclaration.objects.values_list("source_event_id", flat=True)) == {"h1", "h7"}


def test_a_csv_header_that_is_not_utf8_is_rejected_and_nothing_half_read(platform, venues):
    body = b"source_event_id,person_id,commune,d\xe9clared_at,symptoms,exposure\n" + (
        b"h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever,true\n"
    )
    answer = post(platform, "health", body, "text/csv")
    assert answer["accepted"] == 0
    assert [(r["line"], "dòng tiêu đề" in r["error"]) for r in answer["rejected"]] == [(1, True)]
    assert HealthDeclaration.objects.count() == 0


# One request, one transaction


def _raise_operational_error() -> None:
    raise OperationalError("disk I/O error")


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def small_batches(monkeypatch) -> None:
    """Requests cut into batches of two records (20,000 in production), to fail between two of them."""
    real = services.batches
    monkeypatch.setattr(services, "batches", lambda records, size: real(records, 2))


def fail_in_rollups(monkeypatch, on_call: int, fault: Callable[[], None] = _raise_operational_error) -> None:
    """The `on_call`-th batch written fails once, after its events and before its rollups."""
    real, calls = pipeline._add_to_rollups, []

    def flaky(*args):
        calls.append(1)
        if len(calls) == on_call:
            fault()
        return real(*args)

    monkeypatch.setattr(pipeline, "_add_to_rollups", flaky)


def test_a_request_failing_half_way_stores_nothing_and_a_resend_stores_it_once(platform, venues, monkeypatch):
    small_batches(monkeypatch)  # five records: three batches
    fail_in_rollups(monkeypatch, on_call=2)
    body = b"\n".join(line(record("test", i)) for i in range(1, 6))
    client = Client(headers={"Authorization": f"Bearer {platform.token}"}, raise_request_exception=False)
    response = client.post("/api/v1/events/test", body, content_type="application/x-ndjson")
    assert response.status_code >= 500
    assert LabTest.objects.count() == 0 and rolled_up("test") == 0
    assert not AuditEntry.objects.filter(action="events.ingest").exists()
    answer = post(platform, "test", body)  # the source sends it again: its first batch is not a duplicate
    assert (answer["accepted"], answer["duplicates"]) == (5, 0)
    assert LabTest.objects.count() == 5 and rolled_up("test") == 5


# NATS


@pytest.mark.django_db(transaction=True)
def test_a_nats_message_keeps_its_good_lines_and_reports_the_bad(platform, venues, broker):
    broker.publish(
        "test",
        b"\n".join(
            [
                line(record("test", 1)),
                line(record("test", 2)).replace(b"26743", b"267\xff43"),
                line(record("test", 3, sampled_at="0001-01-01T00:00:00+07:00")),
                line(record("test", 4, commune="26743\u0000")),
                line(record("test", 5)),
            ]
        ),
        platform.token,
    )
    csv = CSV_HEADER + (
        b"h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever,true\n"
        b"h2,079201001234,267\xe143,2021-08-26T08:00:00+07:00,,false\n"
        b"h3,079201001234,26743,2021-08-26T08:00:00+07:00,,false\n"
    )
    broker.publish("health", csv, platform.token, content_type="text/csv")
    broker.work()
    ndjson, table = broker.reports()
    assert (ndjson["accepted"], table["accepted"]) == (2, 2)
    assert [(r["line"], r["field"]) for r in ndjson["rejected"]] == [
        (2, None),
        (3, "sampled_at"),
        (4, "commune"),
    ]
    assert [(r["line"], r["field"]) for r in table["rejected"]] == [(3, "commune")]
    assert stored("test") == {"test-1", "test-5"}
    assert set(HealthDeclaration.objects.values_list("source_event_id", flat=True)) == {"h1", "h3"}
    assert settled(broker.consumer())  # acknowledged, not terminated nor retried


@pytest.mark.django_db(transaction=True)
def test_a_nats_message_failing_half_way_is_retried_whole(platform, venues, broker, monkeypatch):
    small_batches(monkeypatch)
    fail_in_rollups(monkeypatch, on_call=2)
    broker.publish("test", [record("test", i) for i in range(1, 6)], platform.token)
    broker.work()
    # The first delivery rolled back whole: the second finds nothing of it stored.
    assert [(r["accepted"], r["duplicates"]) for r in broker.reports()] == [(5, 0)]
    assert LabTest.objects.count() == 5 and rolled_up("test") == 5
    assert settled(broker.consumer())


# The file CLI


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output, result.exception


@pytest.mark.usefixtures("cli")
def test_the_cli_reports_bad_lines_by_number_without_a_traceback(platform, venues, tmp_path):
    ndjson = tmp_path / "tests.ndjson"
    ndjson.write_bytes(
        b"\n".join(
            [
                line(record("test", 1)),
                line(record("test", 2)).replace(b"26743", b"267\xff43"),
                line(record("test", 3, sampled_at="0001-01-01T00:00:00+07:00")),
                line(record("test", 4, commune="26743\u0000")),
                line(record("test", 5)),
            ]
        )
        + b"\n"
    )
    code, output, _ = invoke("ingest", str(ndjson), "--kind", "test", "--source", "ncovi")
    assert code == 0, output
    assert "Traceback" not in output
    assert "dòng 2, -: không phải UTF-8 hợp lệ" in output
    assert "dòng 3, sampled_at: trước ngày 01/01/2000" in output
    assert "dòng 4, commune: chứa ký tự điều khiển (U+0000)" in output
    assert '"accepted": 2' in output and stored("test") == {"test-1", "test-5"}
    csv = tmp_path / "health.csv"
    csv.write_bytes(
        CSV_HEADER
        + b"h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever,true\n"
        + b"h2,079201001234,267\xe143,2021-08-26T08:00:00+07:00,,false\n"
    )
    code, output, _ = invoke("ingest", str(csv), "--kind", "health", "--source", "ncovi")
    assert code == 0 and "dòng 3, commune: không phải văn bản UTF-8 hợp lệ" in output
    assert HealthDeclaration.objects.count() == 1


# Transactional, as the command runs: each batch commits on its own. Inside the test's transaction a
# failing batch on SQLite (written in no savepoint: Pipeline._write_new_sqlite) would poison it all.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("suffix, first", [(".ndjson", 1), (".csv", 2)])
@pytest.mark.parametrize("fault", [_raise_operational_error, _sigterm], ids=["database error", "SIGTERM"])
@pytest.mark.usefixtures("cli")
def test_a_stopped_cli_run_names_the_line_to_resume_from_and_resuming_stores_the_rest_once(
    platform, venues, tmp_path, monkeypatch, suffix, first, fault
):
    records = [record("test", i) for i in range(1, 8)]
    path = tmp_path / f"tests{suffix}"
    if suffix == ".csv":
        names = list(records[0])
        path.write_text(
            ",".join(names) + "\n" + "".join(",".join(r[n] for n in names) + "\n" for r in records)
        )
    else:
        path.write_bytes(b"".join(line(r) + b"\n" for r in records))
    monkeypatch.setattr("dieuhanh.warehouse.cli.FILE_BATCH", 2)
    fail_in_rollups(monkeypatch, on_call=3, fault=fault)  # the third batch of two stops the run
    code, output, _ = invoke("ingest", str(path), "--kind", "test", "--source", "ncovi")
    resume = first + 4  # two batches of two records are stored
    assert code == 1 and "Traceback" not in output, output
    assert f"tiếp tục từ dòng {resume}" in output and f"--from-line {resume}" in output
    assert stored("test") == {f"test-{i}" for i in range(1, 5)} and rolled_up("test") == 4

    code, output, _ = invoke(
        "ingest", str(path), "--kind", "test", "--source", "ncovi", "--from-line", str(resume)
    )
    assert code == 0, output
    assert '"accepted": 3' in output and '"duplicates": 0' in output
    assert stored("test") == {f"test-{i}" for i in range(1, 8)}
    assert LabTest.objects.count() == 7 and rolled_up("test") == 7


@pytest.mark.usefixtures("cli")
def test_resuming_earlier_than_needed_stores_nothing_twice(platform, venues, tmp_path):
    path = tmp_path / "tests.ndjson"
    path.write_bytes(b"".join(line(record("test", i)) + b"\n" for i in range(1, 6)))
    assert invoke("ingest", str(path), "--kind", "test", "--source", "ncovi", "--from-line", "4")[0] == 0
    assert stored("test") == {"test-4", "test-5"}
    code, output, _ = invoke("ingest", str(path), "--kind", "test", "--source", "ncovi", "--from-line", "2")
    assert code == 0, output
    assert '"accepted": 2' in output and '"duplicates": 2' in output
    assert LabTest.objects.count() == 4 and rolled_up("test") == 4


def test_time_bounds_hold_for_spreadsheet_times_too(platform, venues):
    # CSV and Parquet rows carry datetimes already parsed: the same bound applies to them.
    pipe = pipeline.Pipeline(platform.source, "test")
    summary = pipe.ingest(
        [
            (1, {**record("test", 1), "sampled_at": datetime(1, 1, 1)}),
            (2, record("test", 2)),
        ]
    )
    assert [(r.line, r.field) for r in summary.rejected] == [(1, "sampled_at")] and summary.accepted == 1
