"""Source platforms send events: every kind in, bad values out with line and field, nothing twice."""

from __future__ import annotations

import pytest
from django.db import connection

from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import CheckIn, Rollup
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.persons import person_key
from dieuhanh.warehouse.qr import payload
from dieuhanh.warehouse.services import create_source
from tests.factories import CCCD_A, PHONE_B, Platform, record


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_accepted_and_counted(platform, venues, kind):
    response = platform.send(kind, [record(kind)])
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    event = KINDS[kind].model.objects.get()
    assert event.source_event_id == f"{kind}-1"
    assert Rollup.objects.filter(kind=kind).values_list("count", flat=True).get() == 1


BAD_VALUES = [
    ("checkin", {"venue": "NO-SUCH"}, "venue"),
    ("checkin", {"person_id": "12345"}, "person_id"),
    ("checkin", {"person_id": 79201001234}, "person_id"),
    ("checkin", {"time_in": "26/08/2021 09:00"}, "time_in"),
    ("checkin", {"time_out": "2021-08-26T08:00:00+07:00"}, "time_out"),
    ("checkin", {"time_in": "2099-01-01T00:00:00+07:00", "time_out": None}, "time_in"),
    ("checkin", {"source_event_id": None}, "source_event_id"),
    ("health", {"symptoms": ["fever", "headache"]}, "symptoms"),
    ("health", {"exposure": "maybe"}, "exposure"),
    ("health", {"commune": "79"}, "commune"),
    ("health", {"commune": "VN-2025:99999"}, "commune"),
    ("travel", {"mode": "bicycle"}, "mode"),
    ("travel", {"arrive_at": "2021-08-25T00:00:00+07:00"}, "arrive_at"),
    ("travel", {"from_commune": None}, "from_commune"),
    ("test", {"result": "maybe"}, "result"),
    ("test", {"method": "smell"}, "method"),
    ("vaccination", {"dose": 5}, "dose"),
    ("vaccination", {"dose": 0}, "dose"),
    ("vaccination", {"vaccine": ""}, "vaccine"),
    ("quarantine", {"place": "hotel"}, "place"),
    ("quarantine", {"end": "2021-08-01T00:00:00+07:00"}, "end"),
    ("report", {"text": None}, "text"),
    ("report", {"person_id": "not-a-phone"}, "person_id"),
]


@pytest.mark.parametrize("kind, override, field", BAD_VALUES)
def test_bad_values_are_rejected_with_line_and_field_and_neighbours_kept(
    platform, venues, kind, override, field
):
    batch = [record(kind, 1), record(kind, 2, **override), record(kind, 3)]
    body = platform.send(kind, batch).json()
    assert body["accepted"] == 2
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["line"] == 2 and rejected["field"] == field, rejected
    assert rejected["error"]
    assert set(KINDS[kind].model.objects.values_list("source_event_id", flat=True)) == {
        f"{kind}-1",
        f"{kind}-3",
    }


def test_a_line_that_is_not_json_is_rejected_alone(platform, venues):
    body = '{"source_event_id": "a"\nnot json at all\n'
    response = platform.client().post("/api/v1/events/checkin", body, content_type="application/x-ndjson")
    rejected = response.json()["rejected"]
    assert [r["line"] for r in rejected] == [1, 2]
    assert all(r["field"] is None and "JSON" in r["error"] for r in rejected)


def test_duplicates_within_and_across_batches_change_nothing(platform, venues):
    first = platform.send("test", [record("test", 1), record("test", 2), record("test", 1)]).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    again = platform.send("test", [record("test", 1), record("test", 2), record("test", 3)]).json()
    assert (again["accepted"], again["duplicates"]) == (1, 2)
    assert LabTest.objects.count() == 3
    assert Rollup.objects.get(kind="test").count == 3


def test_the_same_id_from_two_sources_is_two_events(platform, venues, world):
    other, token = create_source(actor=None, name="lab", kinds=["test"], edition="VN-2025")
    platform.send("test", [record("test", 1)])
    Platform(other, token).send("test", [record("test", 1)])
    assert LabTest.objects.count() == 2


def test_csv_body_with_file_line_numbers(platform, venues):
    csv = (
        "source_event_id,person_id,commune,declared_at,symptoms,exposure\n"
        "h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever;cough,true\n"
        "h2,079201001234,26743,2021-08-26T08:00:00+07:00,,nope\n"
        "h3,0912345678,26740,2021-08-26 09:00,,false\n"
    )
    response = platform.client().post("/api/v1/events/health", csv, content_type="text/csv")
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [{"line": 3, "field": "exposure", "error": body["rejected"][0]["error"]}]


def test_time_without_offset_is_read_as_vietnam_time(platform, venues):
    platform.send("test", [record("test", sampled_at="2021-08-26T23:30:00")])
    event = LabTest.objects.get()
    assert event.at.isoformat() == "2021-08-26T16:30:00+00:00"
    assert str(Rollup.objects.get().day) == "2021-08-26"  # the local day, not UTC's


def test_person_ids_are_normalised_before_pseudonymising(platform, venues):
    forms = ["0912 345 678", "+84912345678", "84912345678", "091.234.5678"]
    platform.send("vaccination", [record("vaccination", i, person_id=p) for i, p in enumerate(forms)])
    keys = {bytes(k) for k in KINDS["vaccination"].model.objects.values_list("person_key", flat=True)}
    assert keys == {person_key(PHONE_B)}


def test_signed_qr_payload_is_accepted_and_a_forged_one_refused(platform, venues):
    good = payload("V-BT-CHO")
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    body = platform.send(
        "checkin", [record("checkin", 1, venue=good), record("checkin", 2, venue=forged)]
    ).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["field"] == "venue" and "mã QR giả" in body["rejected"][0]["error"]
    assert CheckIn.objects.get().venue_id == venues[0].pk


def test_checkin_belongs_to_the_venues_commune(platform, venues):
    platform.send("checkin", [record("checkin", 1), record("checkin", 2, venue="V-SG-VP")])
    communes = dict(Rollup.objects.values_list("commune__code", "dim1"))
    assert communes == {"26743": "market", "26740": "office"}


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_unusable_requests_get_problems_and_write_nothing(platform, venues, world, settings):
    assert "không có loại sự kiện" in _problem(platform.send("weather", [record("test")]), 404)["detail"]
    bad = Platform(platform.source, "dh_forged")
    _problem(bad.send("test", [record("test")]), 401)
    only_checkins, token = create_source(actor=None, name="qr-app", kinds=["checkin"], edition="VN-2025")
    _problem(Platform(only_checkins, token).send("test", [record("test")]), 403)
    person = world.operator_a.client().post("/api/v1/events/test", "{}", content_type="application/x-ndjson")
    _problem(person, 403)
    settings.MAX_BATCH_BYTES = 100
    _problem(platform.send("test", [record("test", i) for i in range(5)]), 413)
    assert LabTest.objects.count() == 0 and Rollup.objects.count() == 0


def test_raw_citizen_ids_are_nowhere_in_the_database(platform, venues):
    platform.send("checkin", [record("checkin", 1)])
    platform.send("travel", [record("travel", 1)])
    platform.send("report", [record("report", 1, person_id="0987 654 321")])
    content = _database_bytes()
    for raw in [CCCD_A, "912345678", "987654321"]:
        assert raw.encode() not in content, raw
    assert person_key(CCCD_A) in content  # the pseudonym is there instead


def _database_bytes() -> bytes:
    """Every byte the database holds: the SQLite file image, or each table copied out of PostgreSQL."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.serialize()
    out = b""
    with connection.cursor() as cursor:
        # Plain tables only: a partitioned table's rows are in its partitions (which are plain tables).
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        )
        for (table,) in cursor.fetchall():
            with cursor.cursor.copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                out += b"".join(bytes(chunk) for chunk in copy)
    return out
