"""Pages are Vietnamese for every official, whatever their browser asks for; English only when a user
chooses it, and then on every device they sign in from."""

from django.test import Client

from dieuhanh.accounts.models import User
from tests.factories import PASSWORD

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}


def test_an_english_browser_gets_the_vietnamese_room(world):
    anonymous = Client(**ENGLISH_BROWSER)
    login = anonymous.get("/login/")
    assert '<html lang="vi">' in login.content.decode() and login["Content-Language"] == "vi"
    assert "Đăng nhập phòng điều hành" in login.content.decode()
    signed_in = world.operator_a.browser()
    page = signed_in.get("/units/VN-2025/26743/", **ENGLISH_BROWSER).content.decode()
    assert '<html lang="vi">' in page and "Đăng xuất" in page and "Log out" not in page
    api = world.operator_a.client().get("/api/v1/me", **ENGLISH_BROWSER)
    assert api["Content-Language"] == "vi"


def test_a_users_choice_of_english_follows_them_to_another_device_and_back(world):
    laptop = world.operator_a.browser()
    chose = laptop.post("/language/", {"language": "en", "next": "/units/VN-2025/26743/"})
    assert chose.status_code == 302
    assert User.objects.get(pk=world.operator_a.user.pk).language == "en"
    assert "Log out" in laptop.get("/units/VN-2025/26743/").content.decode()

    phone = Client()  # another device: no cookie of the choice
    assert phone.login(username=world.operator_a.user.username, password=PASSWORD)
    page = phone.get("/units/VN-2025/26743/").content.decode()
    assert '<html lang="en">' in page and "Log out" in page

    phone.post("/language/", {"language": "vi", "next": "/"})
    assert User.objects.get(pk=world.operator_a.user.pk).language == "vi"
    assert "Đăng xuất" in laptop.get("/units/VN-2025/26743/").content.decode()
    # Another official's pages were never touched by the choice.
    assert "Đăng xuất" in world.operator_b.browser().get("/units/VN-2025/26740/").content.decode()


def test_a_visitors_choice_before_signing_in_is_kept_by_this_browser_only(db):
    visitor = Client(**ENGLISH_BROWSER)
    visitor.post("/language/", {"language": "en", "next": "/login/"})
    assert '<html lang="en">' in visitor.get("/login/").content.decode()
    assert '<html lang="vi">' in Client(**ENGLISH_BROWSER).get("/login/").content.decode()
    refused = visitor.post("/language/", {"language": "fr", "next": "/login/"})
    assert refused.status_code == 302
    unchanged = visitor.get("/login/").content.decode()
    assert '<html lang="en">' in unchanged, "an unknown language changes nothing"
