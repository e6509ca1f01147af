"""The live bus (dieuhanh.live): its subjects, the broker's way on the real NATS server, coalescing, and
the area cache it voids. Across real processes: tests/test_live_processes.py."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import transaction

from dieuhanh import live
from dieuhanh.commandroom import room
from dieuhanh.directives import services
from dieuhanh.live import BUS, HUB, Bus, Event, area_key, area_keys, merge, subjects

WARD = "/VN/79/26743/"


def test_an_event_goes_out_once_per_map_on_the_deepest_unit_above_all_it_concerns_and_per_inbox():
    keys = (
        area_keys("VN-2025", WARD)
        | area_keys("VN-2025", "/VN/79/26740/")
        | area_keys("VN-2021", "/VN/79/760/")
    )
    out = subjects(keys | {42, 7})
    assert set(out) == {"area.VN-2025.VN.79", "area.VN-2021.VN.79.760", "inbox.42", "inbox.7"}
    assert set(out["area.VN-2025.VN.79"]) == area_keys("VN-2025", WARD) | area_keys(
        "VN-2025", "/VN/79/26740/"
    )
    two_provinces = subjects(area_keys("VN-2025", WARD) | area_keys("VN-2025", "/VN/01/00004/"))
    assert set(two_provinces) == {"area.VN-2025.VN"}, "two provinces: the nation's subject"
    assert set(subjects({area_key("VN-2025", "/VN/a.b*c/")})) == {"area.VN-2025.VN.a_b_c"}  # never a wildcard


def test_a_burst_is_merged_into_one_event_per_name_with_its_counts_added_up():
    burst = [
        Event("figures", {"kind": "test", "communes": 3}),
        Event("directive", {"directive": 5, "event": "acknowledge", "deliveries": 1}),
        Event("figures", {"kind": "checkin", "communes": 2}),
        Event("directive", {"directive": 5, "event": "acknowledge", "deliveries": 1}),
    ]
    figures, directive = merge(burst)
    assert figures == Event("figures", {"count": 2, "kind": ["test", "checkin"], "communes": 5})
    assert directive == Event(
        "directive", {"count": 2, "directive": 5, "event": "acknowledge", "deliveries": 2}
    )
    assert merge(burst[:1]) == burst[:1], "a lone event goes as it came"


def test_a_coalescing_stream_sends_the_first_event_at_once_and_the_burst_behind_it_as_one():
    keys = {area_key("VN-2025", "/VN/79/")}

    async def scenario():
        stream = HUB.stream(keys, heartbeat=30, coalesce=0.3)
        assert await anext(stream) == "retry: 5000\n: connected\n\n"
        HUB.deliver(keys, "figures", {"kind": "test", "communes": 1})
        started = time.monotonic()
        first = await asyncio.wait_for(anext(stream), 5)
        quick = time.monotonic() - started
        for _ in range(50):
            HUB.deliver(keys, "figures", {"kind": "test", "communes": 1})
        second = await asyncio.wait_for(anext(stream), 5)
        await stream.aclose()
        return first, quick, second

    first, quick, second = async_to_sync(scenario)()
    assert first == Event("figures", {"kind": "test", "communes": 1}).encode()
    assert quick < 0.3, "the first event waited for the window"
    assert second == Event("figures", {"count": 50, "kind": "test", "communes": 50}).encode()
    assert not HUB.listening()


async def _connected(bus: Bus) -> None:
    """Wait until the bus's own subscription is in place (the relay starts in the background)."""
    await asyncio.wrap_future(bus._relaying)


def test_through_nats_an_event_reaches_a_subscriber_once_though_it_went_out_on_two_subjects():
    """The broker's way, on the real NATS server: a Bus of the test's own, on subjects of its own."""
    bus = Bus(mode="nats", servers=settings.NATS_SERVERS, subject=f"test{uuid.uuid4().hex[:8]}.live")
    assert bus.mode == "nats", f"NATS does not answer at {settings.NATS_URL}"
    nation_2025, nation_2021 = area_key("VN-2025", "/VN/"), area_key("VN-2021", "/VN/")
    province = area_key("VN-2025", "/VN/79/")

    async def scenario():
        stream = HUB.stream({nation_2025, nation_2021}, heartbeat=30)  # the nation: both maps
        province_stream = HUB.stream({province}, heartbeat=30)
        assert await anext(stream) == await anext(province_stream) == "retry: 5000\n: connected\n\n"
        bus.relay()
        await _connected(bus)
        keys = area_keys("VN-2025", WARD) | area_keys("VN-2021", "/VN/79/760/26734/")
        bus.publish_on_commit(keys, "figures", {"kind": "test", "communes": 2})  # two subjects, one per map
        heard = await asyncio.wait_for(anext(stream), 10)
        heard_province = await asyncio.wait_for(anext(province_stream), 10)
        with pytest.raises(TimeoutError):  # the second subject's copy is not heard again
            await asyncio.wait_for(anext(stream), 0.5)
        await stream.aclose()
        await province_stream.aclose()
        return heard, heard_province

    before = HUB.version([nation_2025])
    heard, heard_province = async_to_sync(scenario)()
    expected = Event("figures", {"kind": "test", "communes": 2}).encode()
    assert heard == heard_province == expected
    assert HUB.version([nation_2025]) > before, "the relay voids the caches of the areas it concerns"
    assert bus.listening() is None, "beyond one process, publishers cannot know who listens"
    bus.flush()


class RolledBack(Exception):
    pass


def test_a_verb_that_rolls_back_publishes_nothing_and_one_that_commits_publishes_once(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    """The one call's promise, on the real NATS server: the verbs' own bus, on a subject of the test's
    own, and a screen of the unit's inbox. The test's transaction stands for the request's: what it
    would run on commit is run (Django's capture), what a rollback dropped is not there to run."""
    bus = Bus(mode="nats", servers=settings.NATS_SERVERS, subject=f"test{uuid.uuid4().hex[:8]}.live")
    assert bus.mode == "nats", f"NATS does not answer at {settings.NATS_URL}"
    monkeypatch.setattr(live, "BUS", bus)
    data = services.DirectiveInput("Báo cáo", "Báo cáo số mẫu.", services.Targets((world.commune_a.ref,)))
    directive = services.issue_directive(actor=world.leader.user, data=data)
    delivery = directive.deliveries.select_related("directive", "unit").get()
    operator = world.operator_a.user

    def answer_then_acknowledge() -> None:
        with django_capture_on_commit_callbacks(execute=True) as ran:
            with pytest.raises(RolledBack), transaction.atomic():
                services.respond_delivery(actor=operator, delivery=delivery, text="Đã lấy 120 mẫu.")
                raise RolledBack  # e.g. a later step of the same request failed
            delivery.refresh_from_db()
            services.acknowledge_delivery(actor=operator, delivery=delivery)
        assert ran, "the acknowledgement left nothing to run on commit"

    async def scenario() -> tuple[str, bool]:
        stream = HUB.stream({world.commune_a.pk}, heartbeat=30)
        await anext(stream)
        await _connected(bus)
        await sync_to_async(answer_then_acknowledge)()
        heard = await asyncio.wait_for(anext(stream), 10)
        try:
            await asyncio.wait_for(anext(stream), 0.5)
            again = True
        except TimeoutError:
            again = False
        await stream.aclose()
        return heard, again

    heard, again = async_to_sync(scenario)()
    data = {"id": delivery.pk, "directive": directive.pk, "state": "acknowledged", "event": "acknowledge"}
    assert heard == Event("delivery", {**data, "cancelled": False}).encode(), "heard the rolled-back one"
    assert not again, "the acknowledgement was heard twice"
    bus.flush()


def test_without_a_broker_the_events_stay_in_the_process_and_the_log_says_so_once(caplog):
    bus = Bus(mode="auto", servers=["nats://127.0.0.1:9"], subject="nowhere.live")  # port 9: nobody
    assert bus.mode == "local"
    assert bus.mode == "local"
    said = [r.getMessage() for r in caplog.records if r.name == "dieuhanh.live"]
    assert said == [
        "live: no NATS answers at nats://127.0.0.1:9: live events reach only the screens of this process"
    ]


@pytest.mark.django_db
def test_a_flood_of_one_kind_of_event_does_not_hold_back_another_kind():
    keys = {area_key("VN-2025", "/VN/")}

    async def scenario():
        stream = HUB.stream(keys, heartbeat=30, coalesce=5)
        await anext(stream)
        HUB.deliver(keys, "directive", {"directive": 1, "event": "acknowledge", "deliveries": 1})
        first = await asyncio.wait_for(anext(stream), 5)
        for _ in range(20):  # the acknowledgements go on: they wait for their window (5 s)
            HUB.deliver(keys, "directive", {"directive": 1, "event": "acknowledge", "deliveries": 1})
        HUB.deliver(keys, "figures", {"kind": "test", "communes": 1})
        started = time.monotonic()
        figures = await asyncio.wait_for(anext(stream), 5)
        waited = time.monotonic() - started
        rest = await asyncio.wait_for(anext(stream), 10)
        await stream.aclose()
        return first, figures, waited, rest

    first, figures, waited, rest = async_to_sync(scenario)()
    assert first.startswith("event: directive")
    assert figures == Event("figures", {"kind": "test", "communes": 1}).encode()
    assert waited < 1, "new figures waited behind the acknowledgements' window"
    assert (
        rest
        == Event(
            "directive", {"count": 20, "directive": 1, "event": "acknowledge", "deliveries": 20}
        ).encode()
    )


def test_an_area_s_shared_parts_are_computed_once_until_an_event_concerns_it(world, monkeypatch, settings):
    monkeypatch.setattr(BUS, "_mode", "nats")  # the cache is kept only when every process's events reach us
    room.shared.clear()
    computed = []

    def compute():
        computed.append(1)
        return len(computed)

    province, ward, neighbour = world.province, world.commune_a, world.commune_b
    assert [room.shared(province, "figures", "vi", compute) for _ in range(3)] == [1, 1, 1]
    assert room.shared(ward, "figures", "vi", compute) == 2, "each area its own"
    HUB.deliver(area_keys("VN-2025", neighbour.path), "figures", {"kind": "test", "communes": 1})
    assert room.shared(province, "figures", "vi", compute) == 1, (
        "within the screens' refresh window it stands"
    )
    settings.LIVE_COALESCE_SECONDS = 0
    assert room.shared(province, "figures", "vi", compute) == 3, "an event below the province voids its parts"
    assert room.shared(ward, "figures", "vi", compute) == 2, "the neighbour's event leaves the ward's"
    monkeypatch.setattr(room, "SHARED_SECONDS", 0)
    assert room.shared(ward, "figures", "vi", compute) == 4, "and none is kept longer than its time"
    room.shared.clear()
