"""The tracing workspace in Debian's Chromium: register a case, see the chain drawn."""

from __future__ import annotations

import pytest

from tests.factories import CASE, log_in, screenshot

pytestmark = pytest.mark.browser


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
