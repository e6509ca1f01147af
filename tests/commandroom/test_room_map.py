"""The room's map (issue 17, point 3): the province shapes' route, the figures on cùng kỳ in map.json,
and the place on the other map that the 2021/2025 toggle opens.

The shapes are build output of `make assets` (dieuhanh.units.shapes): without it the shape tests fail
and say so."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dieuhanh.commandroom import map_views
from dieuhanh.commandroom.room import counterpart
from dieuhanh.units.services import get_unit
from dieuhanh.vnformat import VN_TZ
from tests.factories import make_caller, positives


@pytest.fixture
def shapes_built():
    if map_views.shapes_file("VN-2025") is None:
        pytest.fail("the province shapes are not built: run `make assets`")


def test_the_shapes_of_each_map_are_served_with_caching_headers(world, shapes_built):
    assert Client().get("/room/shapes/VN-2025.json").status_code == 302  # signed-in users only
    leader = world.leader.browser()
    for edition, count in (("VN-2025", 34), ("VN-2021", 63)):
        response = leader.get(f"/room/shapes/{edition}.json")
        assert response.status_code == 200 and response["Content-Type"] == "application/geo+json"
        assert "max-age=86400" in response["Cache-Control"] and response["ETag"]
        found = json.loads(response.content)
        assert len(found["features"]) == count and found["edition"] == edition
        assert "CC BY 4.0" in found["attribution"]
        again = leader.get(f"/room/shapes/{edition}.json", headers={"If-None-Match": response["ETag"]})
        assert again.status_code == 304 and again.content == b""
        packed = leader.get(f"/room/shapes/{edition}.json", headers={"Accept-Encoding": "gzip, br"})
        assert packed["Content-Encoding"] == "gzip"
        assert gzip.decompress(packed.content) == response.content
        assert len(packed.content) < len(response.content) / 3
    # The same boundaries for every signed-in user: a commune's operator gets them too.
    assert world.operator_a.browser().get("/room/shapes/VN-2025.json").status_code == 200
    assert leader.get("/room/shapes/VN-1999.json").status_code == 404


def test_unbuilt_shapes_answer_what_to_do(world, monkeypatch):
    monkeypatch.setattr(map_views, "shapes_file", lambda edition: None)
    response = world.leader.browser().get("/room/shapes/VN-2025.json")
    assert response.status_code == 503
    assert response.json()["detail"] == "Chạy `make assets` trên máy chủ để dựng ranh giới từ gói dữ liệu."


def test_the_map_gives_each_unit_its_figure_on_cung_ky(world, platform):
    now = timezone.now().astimezone(VN_TZ).replace(microsecond=0)
    leader = world.leader.browser()
    positives(platform, world.commune_a.code, 6, now)
    nation = leader.get("/room/map.json", {"figure": "positive"}).json()
    assert nation["unit"]["province"] is None and nation["unit"]["level"] == 0
    hcm = {i["ref"]: i for i in nation["items"]}["VN-2025:79"]
    assert (hcm["value"], hcm["previous"], hcm["change_pct"]) == (6, None, None)  # no data a year ago
    positives(platform, world.commune_a.code, 2, now - timedelta(days=365), prefix="ly")
    items = {i["ref"]: i for i in leader.get("/room/map.json", {"figure": "positive"}).json()["items"]}
    assert (items["VN-2025:79"]["previous"], items["VN-2025:79"]["change_pct"]) == (2, 200.0)
    assert (items["VN-2025:80"]["value"], items["VN-2025:80"]["previous"]) == (0, 0)  # known: none then
    assert items["VN-2025:80"]["change_pct"] is None
    province = leader.get("/room/map.json", {"figure": "positive", "unit": "VN-2025:79"}).json()
    assert province["unit"]["province"] == "VN-2025:79"
    commune = {i["ref"]: i for i in province["items"]}[world.commune_a.ref]
    assert (commune["value"], commune["previous"], commune["change_pct"]) == (6, 2, 200.0)


def test_the_toggle_opens_the_same_place_on_the_other_map(world):
    leader = world.leader.user
    assert counterpart(leader, get_unit("VN-2025:VN"), "VN-2021").ref == "VN-2021:VN"
    # Hồ Chí Minh City of 2025 is three provinces of 2021: the nation, where the page keeps the view.
    assert counterpart(leader, get_unit("VN-2025:79"), "VN-2021").ref == "VN-2021:VN"
    assert counterpart(leader, get_unit("VN-2025:01"), "VN-2021").ref == "VN-2021:01"  # Hà Nội, unchanged
    assert counterpart(leader, get_unit("VN-2021:74"), "VN-2025").ref == "VN-2025:79"  # Bình Dương
    assert counterpart(leader, get_unit("VN-2021:760"), "VN-2025").ref == "VN-2025:79"  # Quận 1, a district
    bến_thành_2021 = counterpart(leader, world.commune_a, "VN-2021")
    assert bến_thành_2021.edition_id == "VN-2021" and bến_thành_2021.path.startswith("/VN/79/760/")
    assert counterpart(leader, bến_thành_2021, "VN-2025") == world.commune_a
    # Through the page: the place is kept, and the view travels in the address.
    response = world.leader.browser().get("/room/", {"edition": "VN-2021", "from": "VN-2025:01"})
    assert response.status_code == 200 and response.context["unit"].ref == "VN-2021:01"


def test_the_toggle_never_leaves_the_callers_area(world):
    hcm = make_caller("hcm-leader", world.province, "leader")
    # Their area is on the 2025 map only: asking for 2021 keeps them in their own room.
    assert counterpart(hcm.user, world.province, "VN-2021") == world.province
    page = hcm.browser().get("/room/", {"edition": "VN-2021", "from": "VN-2025:79"})
    assert page.status_code == 200 and page.context["unit"] == world.province
    # A place outside it is 404, as for ?unit= (nothing said about what is there).
    assert hcm.browser().get("/room/", {"edition": "VN-2021", "from": "VN-2025:80"}).status_code == 404
