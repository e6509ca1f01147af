from django.utils import translation


def test_login_page_is_vietnamese_by_default(client, db):
    page = client.get("/login/").content.decode()
    assert "Đăng nhập phòng điều hành" in page
    assert "Tên đăng nhập" in page and "Mật khẩu" in page


def test_english_switch(world):
    c = world.operator_a.browser()
    response = c.post("/language/", {"language": "en", "next": "/units/VN-2025/26743/"})
    assert response.status_code == 302
    page = c.get("/units/VN-2025/26743/").content.decode()
    assert "Log out" in page and "Đăng xuất" not in page
    translation.activate("vi")


def test_pages_need_login(client, db):
    response = client.get("/units/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_commune_operator_lands_on_their_commune(world):
    response = world.operator_a.browser().get("/units/")
    assert response.status_code == 302 and response["Location"] == "/units/VN-2025/26743/"


def test_province_page_lists_its_communes_with_breadcrumb(world):
    page = world.province_operator.browser().get("/units/VN-2025/79/").content.decode()
    assert "Phường Bến Thành" in page and "Phường Sài Gòn" in page
    assert "168 đơn vị trực thuộc" in page


def test_national_user_sees_both_maps(world):
    c = world.leader.browser()
    page = c.get("/units/", {"edition": "VN-2021"}).content.decode()
    assert c.get("/units/", {"edition": "VN-2021"}).status_code == 302  # one root: the nation
    page = c.get("/units/VN-2021/760/").content.decode()
    assert "Quận 1" in page and "Phường Tân Định" in page
    page = c.get("/units/VN-2021/26752/").content.decode()
    assert "Sau sắp xếp năm 2025 thuộc về" in page


def test_search_page_finds_without_diacritics(world):
    page = world.leader.browser().get("/units/", {"q": "ben thanh"}).content.decode()
    assert "Phường Bến Thành" in page


def test_unit_page_shows_the_areas_figures(world, platform, venues):
    from tests.factories import record

    platform.send("test", [record("test", i) for i in range(3)])
    platform.send("test", [record("test", 9, commune="26740")])
    page = world.operator_a.browser().get("/units/VN-2025/26743/").content.decode()
    assert "Số liệu từ 28/7/2021 đến 26/8/2021" in page
    assert '<td>Xét nghiệm</td><td class="num">3</td>' in page
    city = world.province_operator.browser().get("/units/VN-2025/79/").content.decode()
    assert '<td>Xét nghiệm</td><td class="num">4</td>' in city
