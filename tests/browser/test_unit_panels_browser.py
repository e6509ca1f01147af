"""The unit page in Debian's Chromium: the children table sorts by a figure when its heading is clicked."""

from __future__ import annotations

import pytest

from tests.factories import log_in, record, screenshot

pytestmark = pytest.mark.browser


def test_the_children_sort_by_a_figure(page, live_server, world, platform, venues):
    platform.send("test", [record("test", i) for i in range(3)])
    platform.send("test", [record("test", 9, commune="26740")])
    log_in(page, live_server, "hcm-operator")
    page.wait_for_url("**/inbox/")
    page.goto(f"{live_server.url}/units/VN-2025/79/")
    table = page.locator("table.children")
    names = table.locator("tbody tr td:first-child")
    assert names.first.inner_text() != "Phường Bến Thành"  # by name at first
    heading = table.get_by_role("columnheader", name="Xét nghiệm")
    heading.get_by_role("button").click()
    assert heading.get_attribute("aria-sort") == "descending"  # the largest first
    assert names.all_inner_texts()[:2] == ["Phường Bến Thành", "Phường Sài Gòn"]
    heading.get_by_role("button").click()
    assert heading.get_attribute("aria-sort") == "ascending"
    assert names.all_inner_texts()[-2:] == ["Phường Sài Gòn", "Phường Bến Thành"]
    by_name = table.get_by_role("columnheader", name="Tên")
    by_name.get_by_role("button").click()
    assert by_name.get_attribute("aria-sort") == "ascending" and heading.get_attribute("aria-sort") is None
    assert names.count() == 168  # sorting moves rows, never loses one
    screenshot(page, "unit-children-sorted")
