"""The approval state as a layer of the room's map (issue 19): a province leader colours its communes
by approval, and the map follows an approval made while the room is open."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dieuhanh.indicators.approval import services as approval
from tests.factories import log_in, make_caller, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

A, B = "VN-2025:26743", "VN-2025:26740"


def test_a_province_colours_its_communes_by_approval_state(page, asgi_server, world, approved_telecom):
    approval.act(
        actor=world.operator_a.user,
        action="approve",
        data_set=approved_telecom,
        period="202108",
        units=[world.commune_a],
    )
    approval.act(
        actor=world.province_operator.user,
        action="accept",
        data_set=approved_telecom,
        period="202108",
        units=[world.commune_a],
    )
    make_caller("hcm-leader", world.province, "leader")
    log_in(page, asgi_server, "hcm-leader")
    page.wait_for_url("**/room/")
    expect(page.locator("#room-map .unit-marker")).to_have_count(168)  # the map is drawn
    page.locator("#room-measure").select_option("layer:approval")
    accepted = page.locator(f'#room-map [data-ref="{A}"]')
    expect(accepted).to_have_attribute("fill", "#1d6b2f")
    expect(page.locator(f'#room-map [data-ref="{B}"]')).to_have_attribute("fill", "#c9c9c9")
    expect(page.locator("#room-map")).to_contain_text("Cấp trên đã chấp nhận")
    screenshot(page, "room-approval-layer")
    # Sài Gòn approves while the room is open: its point turns green without reloading.
    approval.act(
        actor=world.operator_b.user,
        action="approve",
        data_set=approved_telecom,
        period="202108",
        units=[world.commune_b],
    )
    expect(page.locator(f'#room-map [data-ref="{B}"]')).to_have_attribute("fill", "#7fb77e", timeout=15_000)
