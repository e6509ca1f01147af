"""The command room (/room/): its area scoping, its figures, its directives, its live stream."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from dieuhanh.directives import services as directives
from dieuhanh.directives.models import Delivery
from dieuhanh.live import HUB
from dieuhanh.vnformat import VN_TZ
from tests.factories import HCM, TAY_NINH, next_chunk, parse, positives


def test_neighbouring_provinces_cannot_see_each_others_room(world, leaders):
    hcm, tay_ninh = leaders
    own = hcm.browser().get("/room/map.json").json()
    assert own["unit"]["ref"] == HCM
    assert len(own["items"]) == 168 and all(i["ref"].startswith("VN-2025:") for i in own["items"])
    assert {i["ref"] for i in own["items"]} >= {world.commune_a.ref, world.commune_b.ref}
    theirs = tay_ninh.browser().get("/room/map.json").json()
    assert theirs["unit"]["ref"] == TAY_NINH
    assert not {i["ref"] for i in own["items"]} & {i["ref"] for i in theirs["items"]}
    for who, other in [(hcm, TAY_NINH), (tay_ninh, HCM)]:
        for path in ("/room/", "/room/map.json", "/room/parts", "/room/stream"):
            assert who.browser().get(path, {"unit": other}).status_code == 404, (who.user, path)
    # A commune of the neighbour is just as hidden, and so is the other map.
    assert hcm.browser().get("/room/map.json", {"unit": "VN-2021:760"}).status_code == 404


def test_the_nation_sees_provinces_on_either_map_and_drills_to_communes(world):
    leader = world.leader.browser()
    nation = leader.get("/room/map.json").json()
    assert (nation["unit"]["ref"], len(nation["items"])) == ("VN-2025:VN", 34)
    hcm = next(i for i in nation["items"] if i["ref"] == HCM)
    assert hcm["drill"] and hcm["url"] == f"/room/?unit={HCM}"
    assert all(i["lat"] is not None and i["lon"] is not None for i in nation["items"])
    old_map = leader.get("/room/map.json", {"edition": "VN-2021"}).json()
    assert (old_map["unit"]["ref"], len(old_map["items"])) == ("VN-2021:VN", 63)
    ward = next(i for i in leader.get(hcm["url"].replace("/room/", "/room/map.json")).json()["items"]
                if i["ref"] == world.commune_a.ref)  # fmt: skip
    assert not ward["drill"] and ward["url"] == "/units/VN-2025/26743/"


def test_home_sends_leaders_to_the_room_and_operators_to_their_inbox(world, leaders):
    assert leaders[0].browser().get("/").url == "/room/"
    assert world.operator_a.browser().get("/").url == "/inbox/"
    page = leaders[0].browser().get("/room/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Thành phố Hồ Chí Minh</h1>" in html
    assert "Không có số liệu" not in html


def test_figures_of_the_day_with_last_year_threshold_and_the_map(world, leaders, platform):
    now = timezone.now().astimezone(VN_TZ).replace(microsecond=0)
    positives(platform, "26743", 4, now)
    positives(platform, "26743", 2, now - timedelta(days=365), prefix="last-year")
    positives(platform, "26743", 1, now - timedelta(days=3), prefix="before")
    hcm = leaders[0].browser()
    tiles = hcm.get("/room/parts").json()["tiles"]
    tile = tiles.split('data-figure="positive"')[1].split("</article>")[0]
    assert '<p class="value">4</p>' in tile
    assert "tăng 100% so với cùng kỳ năm trước" in tile  # 4 against 2 a year before
    # One positive in the 7 days before: the threshold is 1,5 × 1/7; 4 crosses it.
    assert "Vượt ngưỡng (0,2)" in tile and "crossed" in tiles.split('data-figure="positive"')[0][-40:]
    alerts = hcm.get("/room/parts").json()["alerts"]
    assert "Phường Bến Thành" in alerts and "Phường Sài Gòn" not in alerts
    items = {i["ref"]: i["value"] for i in hcm.get("/room/map.json", {"figure": "positive"}).json()["items"]}
    assert items[world.commune_a.ref] == 5 and items[world.commune_b.ref] == 0  # the week: 4 + 1
    nation = world.leader.browser().get("/room/map.json", {"figure": "positive"}).json()["items"]
    assert {i["ref"]: i["value"] for i in nation}[HCM] == 5
    # The neighbour's room counts none of it.
    tay_ninh = leaders[1].browser().get("/room/parts").json()["tiles"]
    assert '<p class="value">0</p>' in tay_ninh.split('data-figure="positive"')[1].split("</article>")[0]


def test_open_directives_with_their_rates_and_overdue_ones(world, leaders):
    body = {
        "title": "Báo cáo số mẫu xét nghiệm",
        "body": "Các phường báo cáo.",
        "targets": {"units": [world.commune_a.ref, world.commune_b.ref]},
        "form": [{"key": "samples", "label": "Số mẫu", "type": "number"}],
    }
    response = world.leader.client().post("/api/v1/directives", body, content_type="application/json")
    assert response.status_code == 201, response.content
    a = Delivery.objects.get(directive_id=response.json()["id"], unit=world.commune_a)
    directives.acknowledge_delivery(actor=world.operator_a.user, delivery=a)
    parts = leaders[0].browser().get("/room/parts").json()
    row = parts["directives"].split(f'data-directive="{a.directive_id}"')[1].split("</tr>")[0]
    assert '<td class="num ack">50%</td>' in row and '<td class="num resp">0%</td>' in row
    assert "Báo cáo số mẫu xét nghiệm" not in parts["alerts"]  # no deadline: nothing overdue
    a.directive.deadline = timezone.now() - timedelta(hours=1)
    a.directive.save()
    alerts = leaders[0].browser().get("/room/parts").json()["alerts"]
    assert "Báo cáo số mẫu xét nghiệm</a>: 2 đơn vị quá hạn" in alerts
    assert "Báo cáo số mẫu xét nghiệm" not in leaders[1].browser().get("/room/parts").json()["directives"]


async def open_room(client: AsyncClient, unit: str):
    response = await client.get("/room/stream", {"unit": unit})
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    chunks = response.streaming_content.__aiter__()
    assert await anext(chunks) == b"retry: 5000\n: connected\n\n"
    return chunks


def test_an_ingest_reaches_the_rooms_above_the_commune_and_not_the_neighbours(
    world, leaders, platform, django_capture_on_commit_callbacks
):
    def ingest():
        with django_capture_on_commit_callbacks(execute=True):
            positives(platform, "26743", 1, timezone.now().astimezone(VN_TZ))

    async def signed_in(caller):
        client = AsyncClient()
        await client.aforce_login(caller.user)
        return client

    async def scenario():
        hcm = await open_room(await signed_in(leaders[0]), HCM)
        ward = await open_room(await signed_in(leaders[0]), world.commune_a.ref)
        tay_ninh = await open_room(await signed_in(leaders[1]), TAY_NINH)
        await sync_to_async(ingest)()
        heard = [parse(await next_chunk(hcm)), parse(await next_chunk(ward))]
        with pytest.raises(TimeoutError):  # the neighbour's room stays quiet
            await asyncio.wait_for(anext(tay_ninh), 0.5)
        for stream in (hcm, ward, tay_ninh):
            await stream.aclose()
        return heard

    heard = async_to_sync(scenario)()
    assert heard == [("figures", {"kind": "test", "communes": 1})] * 2
    assert not HUB.listening(), "closed streams leave the hub"
