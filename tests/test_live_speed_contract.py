"""What a batch over the whole country sends on the live bus (dieuhanh.live): the subjects and the
messages subscribers read, whatever shortcut computes them (a unit's parent and its keys' text are
kept per process). The subjects' rules themselves: tests/test_live.py."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from dieuhanh import live
from dieuhanh.live import Bus, area_key, area_keys, subjects
from dieuhanh.units.models import Unit

pytestmark = pytest.mark.django_db


def _rooms(edition: str, **where) -> set:
    """The rooms a change at each of these units concerns (the unit's and its ancestors')."""
    paths = Unit.objects.filter(edition_id=edition, **where).values_list("path", flat=True)
    return set().union(*(area_keys(edition, path) for path in paths))


def _read(message: bytes) -> dict:
    """A message as the relay reads it (`Bus._deliver`): keys back to tuples."""
    body = json.loads(message)
    body["keys"] = [tuple(key) if isinstance(key, list) else key for key in body["keys"]]
    return body


def test_a_batch_over_every_commune_goes_out_once_per_map_with_every_room_it_concerns():
    country = _rooms("VN-2025", kind="commune")
    old_map = _rooms("VN-2021", path__startswith="/VN/79/")
    assert len(country) > 3000, "the test database holds every commune of the 2025 map"
    for _ in range(2):  # the second time from what the process kept: the same
        out = subjects(country | old_map | {42})
        assert set(out) == {"area.VN-2025.VN", "area.VN-2021.VN.79", "inbox.42"}
        assert len(out["area.VN-2025.VN"]) == len(country)
        assert set(out["area.VN-2025.VN"]) == country
        assert set(out["area.VN-2021.VN.79"]) == old_map
    one_city = _rooms("VN-2025", path__startswith="/VN/79/", kind="commune")
    assert set(subjects(one_city)) == {"area.VN-2025.VN.79"}, "one city's communes: the city's subject"
    ward = Unit.objects.get(edition_id="VN-2025", code="26743")
    assert set(subjects(area_keys("VN-2025", ward.path))) == {"area.VN-2025.VN.79.26743"}


@pytest.mark.parametrize(
    ("paths", "subject"),
    [
        (["/VN/", "/VN/79/26743/"], "area.VN-2025.VN"),  # no province between: two units concerned
        (["/VN/79/", "/VN/7/"], "area.VN-2025.VN"),  # "7" is no part of "79"
        (["/VN/79-/1/", "/VN/79/1/", "/VN/79/", "/VN/79-/"], "area.VN-2025.VN"),  # "-" sorts before "/"
        (["VN/79", "/VN//79/26743/"], "area.VN-2025.VN.79.26743"),  # read as parts: a unit and its ward
        (["/"], "area.VN-2025"),
        (["/a.b*c/d e/"], "area.VN-2025.a_b_c.d_e"),
    ],
)
def test_paths_of_any_form_go_out_on_the_subject_of_their_parts(paths, subject):
    assert set(subjects({area_key("VN-2025", path) for path in paths})) == {subject}


def _message(event_id: str, name: str, data: dict, keys: list) -> bytes:
    return live._payload(live._head(event_id, name, data), keys)


def test_a_message_reads_back_as_the_event_published_byte_for_byte_as_json_writes_it():
    keys = _rooms("VN-2025", path__startswith="/VN/79/") | {area_key("VN-2025", "/Việt Nam/")}
    data = {"kind": "checkin", "communes": 168, "tên": "Bến Thành", "tỉ lệ": 0.25}
    for _ in range(2):  # the keys' text written afresh, then as kept
        (group,) = subjects(keys).values()
        message = _message("e1", "figures", data, group)
        expected = {"id": "e1", "name": "figures", "data": data, "keys": group}
        assert message == json.dumps(expected, ensure_ascii=False).encode()
        assert _read(message) == expected
    inbox = _message("e2", "delivery", {"id": 5}, [7])
    assert _read(inbox) == {"id": "e2", "name": "delivery", "data": {"id": 5}, "keys": [7]}


def test_equal_keys_written_differently_are_each_written_as_they_are():
    """1 and True are one key to a set, and two texts in a message."""
    assert _read(_message("e", "n", {}, [area_key("VN-2025", "/VN/"), 1]))["keys"][1] == 1
    assert _read(_message("e", "n", {}, [True]))["keys"] == [True]
    assert _read(_message("e", "n", {}, [("x", 1)]))["keys"] == [("x", 1)]
    assert _read(_message("e", "n", {}, [("x", True)]))["keys"] == [("x", True)]


class _Broker:
    """A NATS client that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.sent.append((subject, _read(payload)))

    async def flush(self, timeout: float) -> None:
        pass


@pytest.fixture
def broker(monkeypatch) -> Iterator[tuple[Bus, _Broker]]:
    """A bus in the broker's mode, on its own thread and loop as `Bus._start` makes them."""
    bus, client = Bus(mode="nats", subject="test.live"), _Broker()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    connected: Future = Future()
    connected.set_result(client)
    monkeypatch.setattr(bus, "_mode", "nats")
    monkeypatch.setattr(bus, "_loop", loop)
    monkeypatch.setattr(bus, "_connected", connected)
    yield bus, client
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_through_the_bus_a_country_wide_batch_leaves_as_one_message_per_map(
    broker, django_capture_on_commit_callbacks
):
    bus, client = broker
    country = _rooms("VN-2025", kind="commune") | _rooms("VN-2021", kind="district")
    with django_capture_on_commit_callbacks(execute=True):  # the batch's transaction commits
        bus.publish_on_commit(country, "figures", {"kind": "checkin", "communes": 3321})
    bus.flush()
    sent = dict(client.sent)
    assert set(sent) == {"test.live.area.VN-2025.VN", "test.live.area.VN-2021.VN"}
    assert {key for body in sent.values() for key in body["keys"]} == country
    assert len({body["id"] for body in sent.values()}) == 1, "one event: one id on both subjects"
    assert all(body["data"] == {"kind": "checkin", "communes": 3321} for body in sent.values())


def test_events_leave_in_the_order_they_were_committed_with_their_data_as_it_was(
    broker, django_capture_on_commit_callbacks
):
    bus, client = broker
    country = _rooms("VN-2025", kind="commune")
    ward = area_keys("VN-2025", "/VN/79/26743/")
    data = {"kind": "checkin", "communes": 1}
    for n in range(1, 21):  # big and small events in turn: the small ones must not overtake
        data["communes"] = n  # the publisher's dict, changed once the event has left: each keeps its own
        with django_capture_on_commit_callbacks(execute=True):
            bus.publish_on_commit(country if n % 2 else ward, "figures", data)
            bus.publish_on_commit({7}, "delivery", {"n": n})
    bus.flush()
    heard = [(subject, body["data"]) for subject, body in client.sent]
    expected = []
    for n in range(1, 21):
        expected.append(
            (
                "test.live.area.VN-2025." + ("VN" if n % 2 else "VN.79.26743"),
                {"kind": "checkin", "communes": n},
            )
        )
        expected.append(("test.live.inbox.7", {"n": n}))
    assert heard == expected


def test_an_event_with_keys_that_cannot_be_sent_does_not_hold_back_the_others(
    broker, caplog, django_capture_on_commit_callbacks
):
    bus, client = broker
    with django_capture_on_commit_callbacks(execute=True):
        bus.publish_on_commit({area_key("VN-2025", 5)}, "figures", {})  # a path that is no text
        bus.publish_on_commit({7}, "delivery", {"n": 1})
    bus.flush()
    assert [subject for subject, _ in client.sent] == ["test.live.inbox.7"]
    assert "live: an event for 1 keys could not be written" in caplog.text
