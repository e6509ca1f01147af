"""The pages under their Content-Security-Policy in Chromium: any violation the browser reports fails."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import Watch, log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_the_login_page_the_room_the_composer_and_a_unit_page_under_the_policy(page, asgi_server, world):
    watch = Watch(page)
    response = page.goto(f"{asgi_server.url}/login/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    log_in(page, asgi_server, "leader")
    page.wait_for_url("**/room/")
    expect(page.locator("#room-map path.unit-shape")).to_have_count(34)  # room.js, vnmap.js and Leaflet ran
    expect(page.locator("#room-live")).to_have_text("Trực tiếp")  # the live stream is open
    assert watch.violations() == []

    page.get_by_role("link", name="Chỉ đạo mới").click()
    page.get_by_label("Đơn vị (MÃ-BẢN-ĐỒ:MÃ, cách nhau bởi dấu phẩy)").fill("VN-2025:79")
    page.get_by_label("Gửi đến").select_option("commune")
    # The live count, once an inline script, now a static file reading its words from data-units.
    expect(page.locator("#target-count")).to_contain_text("168 đơn vị")
    assert watch.violations() == []

    page.goto(f"{asgi_server.url}/units/VN-2025/79/")
    by_name = page.locator("table.children").get_by_role("columnheader", name="Tên")
    by_name.get_by_role("button").click()  # sortable.js sorts the children table
    expect(by_name).to_have_attribute("aria-sort", "ascending")
    assert watch.violations() == []


def test_the_inbox_under_the_policy(page, asgi_server, world):
    watch = Watch(page)
    log_in(page, asgi_server, "benthanh-operator")
    page.wait_for_url("**/inbox/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hộp thư chỉ đạo")
    page.wait_for_load_state("networkidle")
    assert watch.violations() == []


def test_a_violation_is_seen(page, asgi_server, world):
    """The watch itself: an inline script on one of our pages is refused and reported."""
    watch = Watch(page)
    page.goto(f"{asgi_server.url}/login/")
    page.evaluate(
        """() => { const s = document.createElement("script"); s.textContent = "window.ran = 1";
                   document.body.append(s); }"""
    )
    page.wait_for_function("window.__violations.length > 0")
    assert page.evaluate("window.ran") is None
    assert any("script-src" in v for v in watch.violations())


def test_the_api_docs_and_the_admin_login_under_the_policy(page, asgi_server, world):
    watch = Watch(page)
    page.goto(f"{asgi_server.url}/api/v1/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()  # Swagger UI ran from its files
    page.goto(f"{asgi_server.url}/admin/login/")
    expect(page.get_by_label("Tên đăng nhập")).to_be_visible()
    assert watch.violations() == []
