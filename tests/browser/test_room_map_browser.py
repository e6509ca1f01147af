"""The room's map with real boundaries (issue 17, point 3) in Chromium: 34 provinces on the 2025 map
and 63 on the 2021 one, a choropleth with its legend and the boundaries' attribution, the measure on
cùng kỳ, the 2021/2025 toggle that keeps the place, and the room on a 1920×1080 screen (map beside the
panels, above the fold), whose screenshot is kept in tests/browser/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ
from tests.factories import SCREENSHOTS, log_in, markers, positives, shapes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


@pytest.fixture
def page(browser):
    """A wide screen (1920×1080), in Vietnamese."""
    context = browser.new_context(locale="vi-VN", viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    yield page
    context.close()


def view_of(page) -> tuple[float, float, float]:
    lat, lon, zoom = (float(x) for x in page.locator("#room").get_attribute("data-view").split(","))
    return lat, lon, zoom


def test_the_nation_as_a_choropleth_of_provinces_on_a_wide_screen(page, asgi_server, world, platform):
    now = timezone.now().astimezone(VN_TZ).replace(microsecond=0)
    ha_noi = Unit.objects.filter(edition_id="VN-2025", parent__code="01").order_by("code").first()
    positives(platform, world.commune_a.code, 6, now)
    positives(platform, world.commune_a.code, 2, now - timedelta(days=365), prefix="ly")
    positives(platform, ha_noi.code, 1, now, prefix="hn")
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    expect(shapes(page)).to_have_count(34)  # every province of the 2025 map by its boundary
    assert markers(page).count() == 0
    hcm = page.locator('#room-map path.unit-shape[data-ref="VN-2025:79"]')
    expect(hcm).to_have_attribute("aria-label", "Thành phố Hồ Chí Minh: 6")
    colours = {
        ref: page.locator(f'#room-map path.unit-shape[data-ref="{ref}"]').get_attribute("fill")
        for ref in ("VN-2025:79", "VN-2025:01", "VN-2025:80")
    }
    assert len(set(colours.values())) == 3, colours  # 6, 1 and none: three classes
    legend = page.locator("#room-map .map-legend")
    expect(legend).to_contain_text("Ca dương tính")
    expect(legend).to_contain_text("Không có số liệu")
    expect(legend).to_contain_text("Tỉnh, thành phố: ranh giới")
    attribution = page.locator("#room-map .leaflet-control-attribution")
    expect(attribution).to_contain_text("@svg-maps/vietnam")
    expect(attribution).to_contain_text("CC BY 4.0")

    # The wide screen is used: the map beside the figures, whole above the fold, no sideways scroll.
    the_map = page.locator("#room-map").bounding_box()
    tiles = page.locator("#room-tiles").bounding_box()
    alerts = page.locator(".room-alerts").bounding_box()
    assert the_map["x"] + the_map["width"] <= tiles["x"] and the_map["x"] + the_map["width"] <= alerts["x"]
    assert the_map["y"] + the_map["height"] <= 1080 and the_map["height"] >= 560
    assert page.evaluate("document.documentElement.scrollWidth") <= 1920
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "room-nation-1920x1080.png"
    page.screenshot(path=str(shot))  # the screen as seen, without scrolling
    print(f"screenshot: {shot}")

    # The change on cùng kỳ: 6 against 2 a year before.
    page.locator("#room-measure").select_option("change")
    expect(legend).to_contain_text("So với cùng kỳ năm trước")
    expect(hcm).to_have_attribute("aria-label", "Thành phố Hồ Chí Minh: 6 (+200%)")
    expect(page.locator('#room-map path.unit-shape[data-ref="VN-2025:80"]')).to_have_attribute(
        "aria-label", "Tỉnh Tây Ninh: 0 (cùng kỳ: 0)"
    )
    expect(page.locator('#room-map path.unit-shape[data-ref="VN-2025:01"]')).to_have_attribute(
        "aria-label", "Thành phố Hà Nội: 1 (cùng kỳ: 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "room-nation-change-1920x1080.png"))
    # Going down keeps the figure and the measure: Bến Thành on cùng kỳ, in the city's room.
    hcm.dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2025:79&measure=change")
    expect(page.locator("#room-map .map-legend")).to_contain_text("So với cùng kỳ năm trước")
    expect(page.locator(f'#room-map .unit-marker[data-ref="{world.commune_a.ref}"]')).to_have_attribute(
        "aria-label", "Phường Bến Thành: 6 (+200%)"
    )


def test_the_toggle_keeps_the_place_and_the_map_drills_down(page, asgi_server, world):
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    expect(shapes(page)).to_have_count(34)
    # Down to Hồ Chí Minh City: its communes are points (no package ships their boundaries), inside
    # the province's outline, and the legend says so.
    page.locator('#room-map path.unit-shape[data-ref="VN-2025:79"]').dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2025:79")
    expect(markers(page)).to_have_count(168)
    expect(page.locator("#room-map .map-legend")).to_contain_text("điểm tại toạ độ trụ sở")
    lat, lon, zoom = view_of(page)
    assert 9.5 < lat < 11.5 and 106.3 < lon < 107.6 and zoom >= 7  # with Côn Đảo, at 8.7° N

    # The city of 2025 is three provinces of 2021: the 2021 map opens on the nation, at the same place.
    page.get_by_role("navigation", name="Phiên bản bản đồ").get_by_role("link", name="VN-2021").click()
    page.wait_for_url("**/room/?edition=VN-2021&from=VN-2025%3A79*")
    assert page.get_by_role("heading", level=1).inner_text() == "Việt Nam"
    expect(shapes(page)).to_have_count(63)
    assert view_of(page) == pytest.approx((lat, lon, zoom), abs=0.01)
    page.screenshot(path=str(SCREENSHOTS / "room-2021-kept-place-1920x1080.png"))

    # Down to the old city (its districts are points), and back to 2025: its successor, the new city.
    page.locator('#room-map path.unit-shape[data-ref="VN-2021:79"]').dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2021:79")
    expect(markers(page)).to_have_count(22)
    page.get_by_role("navigation", name="Phiên bản bản đồ").get_by_role("link", name="VN-2025").click()
    page.wait_for_url("**/room/?edition=VN-2025&from=VN-2021%3A79*")
    assert page.get_by_role("heading", level=1).inner_text() == "Thành phố Hồ Chí Minh"
    expect(markers(page)).to_have_count(168)

    # A province the reform left whole (Hà Nội) is itself on the other map.
    page.goto(f"{asgi_server.url}/room/?unit=VN-2025:01")
    expect(markers(page)).to_have_count(126)
    page.get_by_role("navigation", name="Phiên bản bản đồ").get_by_role("link", name="VN-2021").click()
    page.wait_for_url("**/room/?edition=VN-2021&from=VN-2025%3A01*")
    assert page.get_by_role("heading", level=1).inner_text() == "Thành phố Hà Nội"
    expect(markers(page)).to_have_count(30)  # its districts
    # Drill to a commune: a district's room, then the commune's page.
    first = page.locator("#room-map .unit-marker").first
    first.dispatch_event("click")
    page.wait_for_url("**/room/?unit=VN-2021:*")
    expect(markers(page).first).to_be_visible()
    commune = markers(page).first.get_attribute("data-ref")
    markers(page).first.dispatch_event("click")
    page.wait_for_url(f"**/units/VN-2021/{commune.split(':')[1]}/")
