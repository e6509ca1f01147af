"""The command room in Chromium, served by uvicorn (ASGI) as `dieuhanh serve` serves it: the live
stream needs an ASGI server (Django's test server is WSGI and would hold a stream's events back)."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dieuhanh.units.services import get_unit
from dieuhanh.vnformat import VN_TZ
from tests.factories import log_in, make_caller, markers, record, screenshot, shapes

pytestmark = [
    pytest.mark.browser,
    # WhiteNoise's static files are plain iterators, which Django's ASGI handler reads whole: harmless.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_the_national_leader_drills_from_the_nation_to_a_commune_on_the_map(page, asgi_server, world):
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    assert page.get_by_role("heading", level=1).inner_text() == "Việt Nam"
    expect(shapes(page)).to_have_count(34)
    expect(page.locator("#map-summary")).to_contain_text("34 đơn vị")
    screenshot(page, "room-nation")
    # Neighbouring circles overlap at this zoom: the click goes to the marker itself.
    page.locator('#room-map [data-ref="VN-2025:79"]').dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2025:79")
    assert page.get_by_role("heading", level=1).inner_text() == "Thành phố Hồ Chí Minh"
    expect(markers(page)).to_have_count(168)
    screenshot(page, "room-province")
    page.locator('#room-map [data-ref="VN-2025:26743"]').dispatch_event("click")
    page.wait_for_url("**/units/VN-2025/26743/")
    assert page.get_by_role("heading", level=1).inner_text() == "Phường Bến Thành"
    screenshot(page, "room-drilled-commune")


def test_a_province_leader_sees_only_its_province(page, asgi_server, world):
    make_caller("hcm-leader", world.province, "leader")
    log_in(page, asgi_server, "hcm-leader")
    page.wait_for_url("**/room/")
    assert page.get_by_role("heading", level=1).inner_text() == "Thành phố Hồ Chí Minh"
    expect(markers(page)).to_have_count(168)
    page.get_by_text("Các đơn vị trên bản đồ dạng danh sách").click()
    expect(page.locator("#map-list").get_by_role("link", name="Phường Bến Thành", exact=True)).to_be_visible()
    assert page.locator("#map-list").get_by_role("link", name="Phường Tây Ninh").count() == 0
    assert page.locator("nav.editions").count() == 0  # its area lies on the 2025 map only
    screenshot(page, "room-province-leader")
    neighbour = get_unit("VN-2025:80")  # Tây Ninh
    assert page.goto(f"{asgi_server.url}/room/?unit={neighbour.ref}").status == 404
    assert page.goto(f"{asgi_server.url}/room/map.json?unit={neighbour.ref}").status == 404


def test_a_figure_ingested_through_the_api_appears_on_the_open_room(page, asgi_server, world, platform):
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    page.goto(f"{asgi_server.url}/room/?unit=VN-2025:79&figure=positive")
    tile = page.locator('[data-figure="positive"] .value')
    expect(tile).to_have_text("—")  # no data from any source yet
    expect(page.locator("#room-live")).to_have_text("Trực tiếp")
    when = timezone.now().astimezone(VN_TZ).isoformat()
    tests = [
        record(
            "test",
            source_event_id=f"live-{i}",
            result="positive",
            sampled_at=when,
            person_id=f"07920100{i:04d}",
        )
        for i in range(3)
    ]
    body = "\n".join(json.dumps(t, ensure_ascii=False) for t in tests).encode()
    response = page.request.post(
        f"{asgi_server.url}/api/v1/events/test",
        data=body,
        headers={"Authorization": f"Bearer {platform.token}", "Content-Type": "application/x-ndjson"},
    )
    assert response.json()["accepted"] == 3
    # Heard live, without a reload: the waits are generous because the two passes of make test share
    # the machine (the map's values come in a second request after the tiles'); not a timing check.
    expect(tile).to_have_text("3", timeout=10_000)
    expect(page.locator("#room-tiles .day")).to_contain_text("Số liệu ngày")
    bến_thành = page.locator('#room-map [data-ref="VN-2025:26743"]')
    expect(bến_thành).to_have_attribute("aria-label", "Phường Bến Thành: 3", timeout=10_000)
    expect(page.locator("#room-alerts")).to_contain_text("Phường Bến Thành")
    screenshot(page, "room-live-figure")


def test_switching_the_map_edition(page, asgi_server, world):
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    expect(shapes(page)).to_have_count(34)
    page.get_by_role("navigation", name="Phiên bản bản đồ").get_by_role("link", name="VN-2021").click()
    page.wait_for_url("**/room/?edition=VN-2021&from=VN-2025%3AVN*")
    expect(shapes(page)).to_have_count(63)
    expect(page.get_by_role("heading", name="Bản đồ · VN-2021")).to_be_visible()
    screenshot(page, "room-nation-2021")
    page.locator('#room-map [data-ref="VN-2021:79"]').dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2021:79")
    expect(markers(page)).to_have_count(22)  # the districts of the old city: 5 towns and counties, 17 urban
    screenshot(page, "room-province-2021")
