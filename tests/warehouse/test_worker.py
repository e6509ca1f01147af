"""Source platforms send batches over NATS JetStream: ingested once, acknowledged only after the commit.

These tests use the real NATS server (DIEUHANH_NATS_URL, default nats://127.0.0.1:4222, JetStream on);
without one they fail (never skip), naming the command that starts it. Each test has its own subjects and
streams, deleted afterwards, so runs are independent and may overlap (SQLite and PostgreSQL at once).
"""

from __future__ import annotations

import signal

import pytest
from django.db import OperationalError
from nats.aio.msg import Msg

from dieuhanh.warehouse import worker
from dieuhanh.warehouse.models import CheckIn, HealthDeclaration, Rollup
from dieuhanh.warehouse.models import TestResult as LabTest
from dieuhanh.warehouse.services import create_source
from tests.factories import ndjson, record, settled

# The worker writes from its own thread, on its own connection: it sees only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


class SimulatedCrash(Exception):
    pass


def rollup(kind: str) -> int:
    return sum(Rollup.objects.filter(kind=kind).values_list("count", flat=True))


def test_batches_of_two_kinds_are_ingested_and_acknowledged(platform, venues, broker):
    broker.publish("checkin", [record("checkin", i) for i in range(3)], platform.token)
    broker.publish("test", [record("test", i) for i in range(2)], platform.token)
    broker.work()
    assert (CheckIn.objects.count(), rollup("checkin")) == (3, 3)
    assert (LabTest.objects.count(), rollup("test")) == (2, 2)
    assert [(r["kind"], r["source"], r["accepted"], r["duplicates"]) for r in broker.reports()] == [
        ("checkin", "ncovi", 3, 0),
        ("test", "ncovi", 2, 0),
    ]
    consumer = broker.consumer()
    assert settled(consumer) and consumer.ack_floor.stream_seq == 2
    assert broker.stored() == 0


def test_a_crash_between_commit_and_ack_is_redelivered_and_counted_once(platform, venues, broker):
    sequence = broker.publish("test", [record("test", i) for i in range(3)], platform.token)

    def crash(msg: Msg) -> None:
        raise SimulatedCrash(f"killed after committing sequence {msg.metadata.sequence.stream}")

    with pytest.raises(SimulatedCrash):
        broker.work(on_committed=crash)
    assert LabTest.objects.count() == 3  # written and committed…
    assert broker.consumer().num_ack_pending == 1  # …but never acknowledged

    deliveries: list[int] = []
    broker.work(on_committed=lambda msg: deliveries.append(msg.metadata.num_delivered))
    assert deliveries == [2]  # the server delivered the same message again, after ack_wait
    assert broker.reports() == [
        {
            "kind": "test",
            "sequence": sequence,
            "source": "ncovi",
            "accepted": 0,
            "duplicates": 3,
            "rejected": [],
        }
    ]
    assert (LabTest.objects.count(), rollup("test")) == (3, 3)
    assert settled(broker.consumer()) and broker.stored() == 0


def test_a_bad_token_is_terminated_reported_and_writes_nothing(platform, venues, broker):
    sequence = broker.publish("test", [record("test")], "dh_forged")
    broker.work()
    assert broker.reports() == [
        {
            "kind": "test",
            "sequence": sequence,
            "error": "mã truy cập không tồn tại, đã bị thu hồi hoặc không còn hiệu lực",
        }
    ]
    consumer = broker.consumer()
    assert settled(consumer) and consumer.ack_floor.stream_seq == sequence  # terminated: never again
    assert broker.stored() == 0
    assert LabTest.objects.count() == 0 and rollup("test") == 0


def test_messages_that_can_never_succeed_are_terminated_and_the_next_one_ingested(
    platform, venues, broker, world, settings
):
    _, qr_token = create_source(actor=None, name="qr-app", kinds=["checkin"], edition="VN-2025")
    one = [record("test", 1)]
    broker.publish("test", ndjson(one), "")
    broker.publish("weather", one, platform.token)
    broker.publish("test", one, qr_token)
    broker.publish("test", one, world.operator_a.token)
    broker.publish("test", [record("test", i) for i in range(9)], platform.token)
    broker.publish("test", one, platform.token)
    settings.MAX_BATCH_BYTES = 1000
    broker.work()
    errors = [r.get("error", "") for r in broker.reports()]
    assert "Authorization" in errors[0]
    assert "không có loại sự kiện 'weather'" in errors[1]
    assert "không được gửi sự kiện loại 'test'" in errors[2]
    assert "chỉ mã truy cập của nền tảng nguồn" in errors[3]
    assert "vượt giới hạn 1000 byte" in errors[4]
    assert errors[5] == "" and LabTest.objects.get().source_event_id == "test-1"
    assert settled(broker.consumer()) and broker.stored() == 0


def test_a_rejected_line_does_not_stop_the_rest_of_its_batch(platform, venues, broker):
    broker.publish(
        "test", [record("test", 1), record("test", 2, result="maybe"), record("test", 3)], platform.token
    )
    broker.work()
    (report,) = broker.reports()
    assert (report["accepted"], report["duplicates"]) == (2, 0)
    assert [(r["line"], r["field"]) for r in report["rejected"]] == [(2, "result")]
    assert set(LabTest.objects.values_list("source_event_id", flat=True)) == {"test-1", "test-3"}
    assert settled(broker.consumer())  # a bad line is the platform's to fix: the batch is not retried


def test_a_csv_batch_reports_to_the_platforms_reply_subject(platform, venues, broker):
    csv = (
        "source_event_id,person_id,commune,declared_at,symptoms,exposure\n"
        "h1,079201001234,26743,2021-08-26T08:00:00+07:00,fever;cough,true\n"
        "h2,0912345678,26740,2021-08-26 09:00,,false\n"
    )
    mine = f"{broker.bus.prefix}.ingested.ncovi-inbox"
    broker.publish("health", csv.encode(), platform.token, content_type="text/csv", reply_to=mine)
    broker.work()
    assert HealthDeclaration.objects.count() == 2
    assert broker.reports()[0]["accepted"] == 2


def test_a_database_failure_is_retried_later(platform, venues, broker, monkeypatch):
    real_ingest = worker.services.ingest
    attempts: list[int] = []

    def database_down_once(*args, **kwargs):
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise OperationalError("connection refused")
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(worker.services, "ingest", database_down_once)
    broker.publish("test", [record("test", 1)], platform.token)
    broker.work()
    assert attempts == [1, 2]  # handed back with a delay, delivered again, then written
    assert [r["accepted"] for r in broker.reports()] == [1]  # the failure is retried, not reported
    assert (LabTest.objects.count(), rollup("test")) == (1, 1)
    assert settled(broker.consumer())


def test_sigterm_finishes_the_message_in_hand_and_hands_back_the_rest(platform, venues, broker):
    for i in range(4):
        broker.publish("test", [record("test", i)], platform.token)

    def terminate_once(msg: Msg) -> None:
        if msg.metadata.sequence.stream == 1:  # once: the worker leaves a second signal to act as usual
            signal.raise_signal(signal.SIGTERM)

    # A long ack_wait: only a message handed back comes again within the second run's few seconds.
    broker.work(on_committed=terminate_once, ack_wait=60.0, stop_when_drained=False)
    first_run = LabTest.objects.count()
    assert 1 <= first_run < 4  # the signal is noticed while a message is in hand; that one is finished

    deliveries: list[int] = []
    broker.work(
        on_committed=lambda msg: deliveries.append(msg.metadata.num_delivered), ack_wait=60.0, stop_after=5
    )
    assert deliveries == [2] * (4 - first_run)
    assert (LabTest.objects.count(), rollup("test")) == (4, 4)
    assert [(r["accepted"], r["duplicates"]) for r in broker.reports()] == [(1, 0)] * 4
    assert settled(broker.consumer())
