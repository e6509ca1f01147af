"""The park page in Debian's Chromium: the park's officer lands on the park and sees its factories ranked."""

from __future__ import annotations

import pytest

from tests.factories import log_in, screenshot

pytestmark = pytest.mark.browser


def test_the_park_officer_sees_the_factories_ranked(page, live_server, tested):
    log_in(page, live_server, "kcn-officer")
    page.wait_for_url("**/inbox/")  # an enterprise's officer lands on its inbox, as an operator does
    page.goto(f"{live_server.url}/units/")
    page.wait_for_url(f"**/units/VN-2025/{tested.park.code}/")  # their one unit: the park itself
    ranking = page.locator("section.enterprise-ranking")
    assert ranking.get_by_role("heading", name="Xếp hạng doanh nghiệp").is_visible()
    most_positive = ranking.locator("table").nth(1).locator("tbody tr td:nth-child(2)")
    assert most_positive.all_inner_texts() == ["Nhà máy Một", "Nhà máy Hai"]  # 1 positive, then none
    # The factories are the park's children too, each a link to its own page.
    page.get_by_role("link", name="Nhà máy Hai").first.click()
    page.wait_for_url(f"**/units/VN-2025/{tested.two.code}/")
    assert "Người lao động và tỷ lệ tiêm chủng" in page.content()
    screenshot(page, "enterprise-park-ranking")
