"""The inbox in Debian's Chromium, on a phone-sized screen: a commune official acknowledges in one tap."""

from __future__ import annotations

import pytest

from tests.factories import issue, log_in, screenshot

pytestmark = pytest.mark.browser


def test_a_commune_operator_lands_on_the_inbox_and_acknowledges(phone, live_server, world):
    issue(world.leader, title="Rà soát người về từ vùng dịch")
    issue(
        world.leader,
        title="Tăng cường xét nghiệm",
        priority="urgent",
        form=[{"key": "samples", "label": "Số mẫu đã lấy", "type": "number"}],
    )
    log_in(phone, live_server, "benthanh-operator")
    phone.wait_for_url("**/inbox/")
    assert phone.get_by_role("heading", level=1).inner_text().startswith("Hộp thư chỉ đạo")
    titles = phone.locator("ul.inbox .title").all_inner_texts()
    assert titles == ["Tăng cường xét nghiệm", "Rà soát người về từ vùng dịch"]  # urgent first
    phone.get_by_role("link", name="Khẩn Tăng cường xét nghiệm").click()
    phone.get_by_role("button", name="Đã nhận").click()
    assert "Đã xác nhận nhận chỉ đạo." in phone.get_by_role("status").first.inner_text()
    assert "benthanh-operator xác nhận lúc" in phone.locator("dl.facts").inner_text()
    phone.get_by_label("Số mẫu đã lấy").fill("1.250")
    phone.get_by_role("button", name="Gửi báo cáo").click()
    assert "Số mẫu đã lấy: 1.250" in phone.locator("ol.responses").inner_text()
    # Nothing spills sideways on a phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(phone, "inbox-delivery-phone")


def test_the_leader_composes_sees_the_live_count_and_issues(browser, live_server, world):
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "leader")
    page.get_by_role("link", name="Chỉ đạo mới").click()
    page.get_by_label("Tiêu đề").fill("Tổng rà soát người về từ vùng dịch")
    page.get_by_label("Đơn vị (MÃ-BẢN-ĐỒ:MÃ, cách nhau bởi dấu phẩy)").fill("VN-2025:79")
    page.get_by_label("Gửi đến").select_option("commune")
    count = page.locator("#target-count")
    count.filter(has_text="168 đơn vị").wait_for()
    page.get_by_label("Mức độ").select_option("urgent")
    page.get_by_role("button", name="Xem trước").click()
    assert "Gửi 168 đơn vị" in page.get_by_role("region", name="Xem trước").inner_text()
    page.get_by_role("button", name="Ban hành").click()
    page.wait_for_url("**/directives/*/")
    assert "Đã ban hành tới 168 đơn vị." in page.get_by_role("status").first.inner_text()
    assert "Thành phố Hồ Chí Minh" in page.locator("table.status").inner_text()
    screenshot(page, "directive-status")
    context.close()
