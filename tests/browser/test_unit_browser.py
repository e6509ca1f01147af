import pytest

from tests.factories import log_in, screenshot

pytestmark = pytest.mark.browser


def test_leader_logs_in_and_browses_down_to_a_commune(page, live_server, world):
    log_in(page, live_server, "leader")
    page.wait_for_url("**/room/")  # leaders land on the command room
    page.get_by_role("link", name="Đơn vị hành chính").click()
    page.wait_for_url("**/units/VN-2025/VN/")
    assert page.get_by_role("heading", level=1).inner_text() == "Việt Nam"
    page.get_by_role("link", name="Thành phố Hồ Chí Minh").click()
    page.get_by_role("link", name="Phường Bến Thành", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Phường Bến Thành"
    crumbs = page.get_by_role("navigation", name="Đường dẫn").inner_text()
    assert "Việt Nam" in crumbs and "Thành phố Hồ Chí Minh" in crumbs
    assert "VN-2025:26743" in page.locator("dl.facts").inner_text()
    screenshot(page, "unit-commune")


def test_search_without_diacritics_then_switch_to_english(page, live_server, world):
    log_in(page, live_server, "hcm-operator")
    page.wait_for_url("**/inbox/")  # operators land on their inbox
    page.get_by_role("link", name="Đơn vị hành chính").click()
    page.get_by_label("Tìm đơn vị").fill("sai gon")
    page.get_by_role("button", name="Tìm").click()
    page.get_by_role("link", name="Phường Sài Gòn").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Phường Sài Gòn"
    page.get_by_role("button", name="EN").click()
    assert page.get_by_role("button", name="Log out").is_visible()
    screenshot(page, "unit-commune-en")


def test_commune_operator_cannot_open_the_neighbour(page, live_server, world):
    log_in(page, live_server, "benthanh-operator")
    page.wait_for_url("**/inbox/")
    page.get_by_role("link", name="Đơn vị hành chính").click()
    page.wait_for_url("**/units/VN-2025/26743/")
    response = page.goto(f"{live_server.url}/units/VN-2025/26740/")
    assert response.status == 404
