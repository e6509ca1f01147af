"""The composer's unit tree (one level at a time, inside the issuer's area) and the status page's
figures that it polls."""

from __future__ import annotations

import pytest

from dieuhanh.directives.models import Delivery
from tests.factories import issue, make_caller

TREE = "/directives/new/tree.json"


@pytest.fixture
def hcm_leader(world):
    return make_caller("hcm-leader", world.province, "leader")


def names(response) -> list[str]:
    assert response.status_code == 200
    return [item["name"] for item in response.json()["items"]]


def test_the_tree_starts_at_the_issuers_own_units(world, hcm_leader):
    assert names(hcm_leader.browser().get(TREE)) == ["Thành phố Hồ Chí Minh"]
    roots = world.leader.browser().get(TREE).json()["items"]
    assert [r["ref"] for r in roots] == ["VN-2025:VN", "VN-2021:VN"] and roots[0]["children"] == 34


def test_a_unit_opens_to_its_children_with_their_counts(world, hcm_leader):
    items = hcm_leader.browser().get(TREE, {"parent": "VN-2025:79"}).json()["items"]
    assert len(items) == 168
    ben_thanh = next(i for i in items if i["ref"] == "VN-2025:26743")
    assert ben_thanh == {"ref": "VN-2025:26743", "name": "Phường Bến Thành", "kind": "commune", "children": 0}


def test_the_tree_stays_inside_the_issuers_area(world, hcm_leader):
    assert hcm_leader.browser().get(TREE, {"parent": "VN-2025:01"}).status_code == 404  # Hà Nội
    assert hcm_leader.browser().get(TREE, {"parent": "VN-2025:VN"}).status_code == 404
    assert world.operator_a.browser().get(TREE).status_code == 403  # operators do not issue


def test_the_status_figures_follow_acknowledgements(world):
    directive = issue(world.leader, requires_ack=True).json()
    url = f"/directives/{directive['id']}/status.json"
    before = world.leader.browser().get(url).json()
    assert (before["total"], before["acknowledged"]) == (2, 0)
    assert sorted(before["pending"]) == ["VN-2025:26740", "VN-2025:26743"]
    delivery = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_a)
    world.operator_a.browser().post(f"/inbox/{delivery.pk}/ack/")
    after = world.leader.browser().get(url).json()
    assert after["acknowledged"] == 1 and after["pending"] == ["VN-2025:26740"]
    assert (
        after["provinces"][0]["name"] == "Thành phố Hồ Chí Minh"
        and after["provinces"][0]["acknowledged"] == 1
    )


def test_a_commune_sees_only_its_own_part_of_the_status(world):
    directive = issue(world.leader).json()
    own = world.operator_a.browser().get(f"/directives/{directive['id']}/status.json").json()
    assert own["total"] == 1 and own["pending"] == ["VN-2025:26743"]
    only_b = issue(world.leader, targets={"units": ["VN-2025:26740"]}).json()
    assert world.operator_a.browser().get(f"/directives/{only_b['id']}/status.json").status_code == 404
