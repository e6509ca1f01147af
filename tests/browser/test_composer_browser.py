"""The directive composer in Debian's Chromium: targets chosen on the unit tree with a live count,
a preview, the issue, then the status page following an acknowledgement without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from dieuhanh.directives.models import Delivery
from dieuhanh.directives.services import acknowledge_delivery
from tests.factories import log_in, screenshot

pytestmark = pytest.mark.browser


def test_the_composer_issues_to_units_chosen_on_the_tree(page, live_server, world):
    log_in(page, live_server, "leader")
    page.get_by_role("link", name="Chỉ đạo mới").click()
    page.get_by_label("Tiêu đề").fill("Kiểm tra điểm tiêm chủng")
    page.get_by_role("button", name="Mở Việt Nam").first.click()
    page.get_by_role("button", name="Mở Thành phố Hồ Chí Minh").click()
    page.get_by_label("Phường Bến Thành", exact=True).check()
    page.get_by_label("Phường Sài Gòn", exact=True).check()
    units = page.get_by_label("Đơn vị (MÃ-BẢN-ĐỒ:MÃ, cách nhau bởi dấu phẩy)")
    assert units.input_value() == "VN-2025:26743, VN-2025:26740"
    count = page.locator("#target-count")
    expect(count).to_contain_text("2 đơn vị")
    screenshot(page, "composer-tree")
    page.get_by_role("button", name="Xem trước").click()
    assert "Gửi 2 đơn vị" in page.get_by_role("region", name="Xem trước").inner_text()
    page.get_by_role("button", name="Ban hành").click()
    page.wait_for_url("**/directives/*/")
    assert "Đã ban hành tới 2 đơn vị." in page.get_by_role("status").first.inner_text()
    pending = page.locator("ul.pending")
    assert "Phường Bến Thành" in pending.inner_text() and "Phường Sài Gòn" in pending.inner_text()
    total = page.locator("table.status tfoot")
    assert total.locator("[data-field=total]").inner_text() == "2"
    # Bến Thành acknowledges while the page is open: the counts and the pending list follow.
    delivery = Delivery.objects.get(unit=world.commune_a)
    acknowledge_delivery(actor=world.operator_a.user, delivery=delivery)
    expect(total.locator("[data-field=acknowledged]")).to_have_text("1", timeout=15_000)
    expect(pending.get_by_text("Phường Bến Thành")).to_be_hidden()
    expect(pending.get_by_text("Phường Sài Gòn")).to_be_visible()
    screenshot(page, "directive-status-live")
