"""Everyone sees their own area: two neighbouring wards never see each other."""

import pytest

from dieuhanh.accounts.scoping import visible_to
from dieuhanh.accounts.services import revoke_role
from dieuhanh.units.models import Unit


def test_commune_operator_sees_own_commune_and_nothing_of_the_neighbour(world):
    area = visible_to(world.operator_a.user)
    assert not area.everything
    assert area.contains(world.commune_a)
    assert not area.contains(world.commune_b)
    assert not area.contains(world.province)
    visible = Unit.objects.visible_to(world.operator_a.user)
    assert list(visible.values_list("code", flat=True)) == ["26743"]
    assert not visible.filter(code="26740").exists()


def test_province_operator_sees_both_wards_but_not_another_province(world):
    visible = Unit.objects.visible_to(world.province_operator.user)
    assert visible.filter(id__in=[world.commune_a.id, world.commune_b.id]).count() == 2
    assert visible.count() == 1 + Unit.objects.filter(edition_id="VN-2025", parent=world.province).count()
    assert not visible.filter(edition_id="VN-2025", code="01").exists()  # Hà Nội
    assert not visible.filter(edition_id="VN-2021").exists()  # grants are per map edition


def test_national_grant_sees_every_edition(world):
    assert visible_to(world.leader.user).everything
    assert Unit.objects.visible_to(world.leader.user).count() == Unit.objects.count()


def test_no_grant_sees_nothing(world):
    revoke_role(actor=None, user=world.operator_a.user, unit=world.commune_a, role="operator")
    world.operator_a.user.refresh_from_db()
    assert not Unit.objects.visible_to(world.operator_a.user).exists()


UNIT_ROUTES = [
    "/api/v1/units/{edition}/{code}",
    "/api/v1/units/{edition}/{code}/successors",
    "/api/v1/units/{edition}/{code}/predecessors",
    "/api/v1/units?parent={edition}:{code}",
]


@pytest.mark.parametrize("route", UNIT_ROUTES)
def test_neighbours_cannot_reach_each_other_on_any_unit_route(world, route):
    for me, mine, theirs in [
        (world.operator_a, world.commune_a, world.commune_b),
        (world.operator_b, world.commune_b, world.commune_a),
    ]:
        own = me.client().get(route.format(edition="VN-2025", code=mine.code))
        other = me.client().get(route.format(edition="VN-2025", code=theirs.code))
        assert own.status_code == 200, own.content
        assert other.status_code == 404
        assert other["Content-Type"] == "application/problem+json"
        assert theirs.name not in other.content.decode()


def test_unit_list_of_a_commune_operator_holds_only_their_commune(world):
    for me, mine in [(world.operator_a, "VN-2025:26743"), (world.operator_b, "VN-2025:26740")]:
        body = me.client().get("/api/v1/units", {"page_size": 500}).json()
        assert [i["ref"] for i in body["items"]] == [mine]


def test_me_names_the_callers_grants_and_area(world):
    body = world.operator_a.client().get("/api/v1/me").json()
    assert body["username"] == "benthanh-operator"
    assert body["grants"] == [{"unit": "VN-2025:26743", "unit_name": "Phường Bến Thành", "role": "operator"}]
    assert body["visible_units"] == ["VN-2025:26743"]
    assert body["everything"] is False
    leader = world.leader.client().get("/api/v1/me").json()
    assert leader["everything"] is True
    assert leader["visible_units"] == ["VN-2021:VN", "VN-2025:VN"]


def test_unit_pages_respect_the_area(world):
    a = world.operator_a.browser()
    assert a.get("/units/VN-2025/26743/").status_code == 200
    assert a.get("/units/VN-2025/26740/").status_code == 404
    assert a.get("/units/VN-2025/79/").status_code == 404
    page = a.get("/units/", {"q": "sai gon"}).content.decode()
    assert "Phường Sài Gòn" not in page
