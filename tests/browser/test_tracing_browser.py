"""The tracing workspace in Debian's Chromium: register a case and see the chain drawn; a large case,
hundreds of contacts drawn by the browser in batches, then the same case grouped by commune of
residence."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import CASE, home, log_in, register, screenshot, stay

pytestmark = pytest.mark.browser

PEOPLE = 700  # more nodes than the page draws itself, more elements than one batch of the script


def test_a_tracer_registers_a_case_and_sees_the_graph(page, live_server, tracers, outbreak):
    log_in(page, live_server, "benthanh-tracer")
    page.get_by_role("link", name="Truy vết").click()
    page.get_by_label("Số CCCD hoặc số điện thoại").fill(CASE)
    page.get_by_label("Thời điểm khẳng định (chỉ khi đăng ký ca mới)").fill("2021-08-27T10:00")
    page.get_by_role("button", name="Mở ca bệnh").click()
    page.wait_for_url("**/tracing/cases/*/")
    assert page.get_by_role("status").inner_text().startswith("2 F1, 0 F2")
    page.get_by_role("link", name="Tìm cả F2").click()
    page.wait_for_url("**/?depth=2")
    assert page.get_by_role("status").inner_text().startswith("2 F1, 1 F2")
    graph = page.get_by_role("img", name="Chuỗi lây nhiễm: ca bệnh ở giữa, F1 ở vòng trong, F2 ở vòng ngoài")
    assert graph.locator("g.node").count() == 4  # the case, two F1, one F2 in this commune's view
    assert graph.locator("line").count() >= 3
    box, case = graph.bounding_box(), graph.locator("g.node.g0 circle").bounding_box()
    assert box is not None and case is not None and box["width"] > 300
    # The case is drawn in the centre (a decimal comma in the coordinates would put it at the corner).
    assert abs(case["x"] + case["width"] / 2 - (box["x"] + box["width"] / 2)) < 5
    assert abs(case["y"] + case["height"] / 2 - (box["y"] + box["height"] / 2)) < 5
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải danh sách theo xã (Excel)").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    screenshot(page, "tracing-case")


@pytest.fixture
def crowded_market(platform, venues):
    """The case at Bến Thành market for 40 minutes with 700 people; they live in Bến Thành (even) or
    Sài Gòn (odd)."""
    people = [f"09{n:08d}" for n in range(PEOPLE)]
    homes = [home(1, CASE, "26743")] + [
        home(n + 2, p, "26743" if n % 2 == 0 else "26740") for n, p in enumerate(people)
    ]
    assert platform.send("health", homes).json()["accepted"] == len(homes)
    market = "V-BT-CHO"
    stays = [stay(1, market, CASE, "2021-08-26T09:00:00+07:00", "2021-08-26T09:40:00+07:00")] + [
        stay(n + 2, market, p, "2021-08-26T09:05:00+07:00", "2021-08-26T09:35:00+07:00")
        for n, p in enumerate(people)
    ]
    assert platform.send("checkin", stays).json()["accepted"] == len(stays)


def test_a_large_graph_is_drawn_then_grouped_by_commune(page, live_server, tracers, crowded_market):
    case_id = register(tracers.a).json()["id"]
    log_in(page, live_server, "benthanh-tracer")
    page.goto(f"{live_server.url}/tracing/cases/{case_id}/?depth=1&group=person")
    assert page.locator("p.trace-summary").inner_text().startswith("700 F1, 0 F2")
    graph = page.get_by_role("img", name="Chuỗi lây nhiễm: ca bệnh ở giữa, F1 ở vòng trong, F2 ở vòng ngoài")
    expect(graph).to_have_attribute("data-complete", "true")  # drawn in batches, frame after frame
    assert graph.locator("g.node").count() == PEOPLE + 1
    assert graph.locator("line").count() == PEOPLE
    assert page.locator("#graph-progress").inner_text() == "Đã vẽ: 1.401/1.401"
    box, case = graph.bounding_box(), graph.locator("g.node.g0 circle").bounding_box()
    assert abs(case["x"] + case["width"] / 2 - (box["x"] + box["width"] / 2)) < 5  # the case in the centre
    screenshot(page, "tracing-large-person")

    page.get_by_label("Vẽ").select_option("commune")
    page.get_by_role("button", name="Vẽ lại").click()
    page.wait_for_url("**group=commune")
    titles = graph.locator("g.node title").all_text_contents()
    assert sorted(titles) == ["F0", "Phường Bến Thành (350)", "Phường Sài Gòn (350)"]
    assert "mỗi vòng tròn gộp những người sống ở một xã, phường" in page.locator("figcaption").inner_text()
    lists = page.locator("section.commune-list h3").all_inner_texts()
    assert any(t.startswith("Phường Bến Thành") and t.endswith("— 350") for t in lists)
    screenshot(page, "tracing-large-commune")
