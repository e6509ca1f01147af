"""The phone's menu bar (issue 17, point 5): what each role finds in it, and the unread count on
Hộp thư, which counts only the caller's own units' unopened directives."""

from __future__ import annotations

import re

from dieuhanh.directives.models import Delivery
from tests.factories import issue


def bar(page: str) -> str:
    found = re.search(r'<nav class="bottombar".*?<details class="more">', page, re.S)
    assert found, "no bottom bar"
    return found[0]


def links(html: str) -> list[str]:
    return [" ".join(re.sub(r"<[^>]+>", " ", a).split()) for a in re.findall(r"<a [^>]*>.*?</a>", html, re.S)]


def test_each_role_finds_its_places_in_the_bar(world, client):
    assert links(bar(world.operator_a.browser().get("/inbox/").content.decode())) == [
        "Hộp thư",
        "Nhập liệu",
        "Đơn vị",
    ]
    assert links(bar(world.leader.browser().get("/inbox/").content.decode())) == [
        "Hộp thư",
        "Điều hành",
        "Đơn vị",
    ]
    assert links(bar(world.tracer.browser().get("/inbox/").content.decode())) == [
        "Hộp thư",
        "Truy vết",
        "Đơn vị",
    ]
    # Signed out (the login page, citizens' pages), there is no bar: the header has room enough.
    assert 'class="bottombar"' not in client.get("/login/").content.decode()
    assert 'class="bottombar"' not in client.get("/phan-anh/").content.decode()


def test_the_unread_count_rides_on_the_inbox_link(world):
    issue(world.leader)
    issue(world.leader, targets={"units": ["VN-2025:26740"]})  # Sài Gòn's alone
    browser = world.operator_a.browser()
    page = browser.get("/inbox/").content.decode()
    assert links(bar(page))[0] == "Hộp thư 1"
    assert '<span class="badge" aria-label="1 chưa đọc">1</span>' in page
    assert links(bar(world.operator_b.browser().get("/inbox/").content.decode()))[0] == "Hộp thư 2"
    delivery = Delivery.objects.get(unit=world.commune_a)
    browser.get(f"/inbox/{delivery.pk}/")  # opened: read
    assert links(bar(browser.get("/inbox/").content.decode()))[0] == "Hộp thư"
