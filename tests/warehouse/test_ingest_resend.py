"""A file sent again, in part or whole, stores each event once (issue 18: SQLite writes a batch with
INSERT OR IGNORE in no savepoint, and finds what it ignored afterwards; PostgreSQL as before).

What an official sees: the summary's accepted and duplicates, the events stored and the rollups'
figures. A re-sent event keeps the values it was first stored with, even when the copy carries
another time (it must not count on a second day).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dieuhanh.cli import app
from dieuhanh.warehouse.models import CheckIn, Rollup
from tests.factories import record

runner = CliRunner()


def checkins(path, numbers: list[int], **override) -> None:
    path.write_text("".join(json.dumps(record("checkin", n, **override)) + "\n" for n in numbers))


def ingest(path) -> dict:
    result = runner.invoke(app, ["ingest", str(path), "--kind", "checkin", "--source", "ncovi"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    return {k: summary[k] for k in ("accepted", "duplicates", "rejected")}


def figures() -> dict[str, int]:
    return {str(day): n for day, n in Rollup.objects.filter(kind="checkin").values_list("day", "count")}


@pytest.mark.usefixtures("cli", "venues")
def test_a_second_file_stores_only_its_new_events_and_counts_them_once(platform, tmp_path):
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    checkins(first, [1, 2, 3, 4])
    assert ingest(first) == {"accepted": 4, "duplicates": 0, "rejected": 0}
    # Two already stored (sent again a day later), two new, and one new event twice in the file.
    second.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                record("checkin", 5),
                record("checkin", 2, time_in="2021-08-27T09:00:00+07:00", time_out=None),
                record("checkin", 6),
                record("checkin", 4, time_in="2021-08-27T09:00:00+07:00", time_out=None),
                record("checkin", 6),
            ]
        )
    )
    assert ingest(second) == {"accepted": 2, "duplicates": 3, "rejected": 0}
    assert sorted(CheckIn.objects.values_list("source_event_id", flat=True)) == [
        f"checkin-{n}" for n in range(1, 7)
    ]
    assert {str(d.date()) for d in CheckIn.objects.values_list("at", flat=True)} == {"2021-08-26"}
    assert figures() == {"2021-08-26": 6}
    # The whole second file again: nothing new.
    assert ingest(second) == {"accepted": 0, "duplicates": 5, "rejected": 0}
    assert CheckIn.objects.count() == 6 and figures() == {"2021-08-26": 6}


@pytest.mark.usefixtures("venues")
def test_one_request_repeating_an_earlier_batch_stores_it_once(platform, monkeypatch):
    from dieuhanh.warehouse import services

    real = services.batches
    monkeypatch.setattr(services, "batches", lambda records, size: real(records, 2))  # 20,000 in production
    response = platform.send("checkin", [record("checkin", n) for n in (1, 2, 1, 3, 2, 4)])
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 4, "duplicates": 2, "rejected": []}
    assert CheckIn.objects.count() == 4 and figures() == {"2021-08-26": 4}
