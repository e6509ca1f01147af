"""Saved unit groups stay in their area (issue 16, point 9): a group is listed, counted and addressed
only by callers whose area holds all its units; to anyone else it answers as a group that does not
exist, so its name, its size and its units do not leak."""

from __future__ import annotations

import pytest

from tests.factories import make_caller

A, B = "VN-2025:26743", "VN-2025:26740"  # Bến Thành, Sài Gòn
HANOI_WARD = "VN-2025:00004"  # Phường Ba Đình, Hà Nội


def save_group(caller, code: str, name: str, units: list[str]):
    body = {"code": code, "name": name, "targets": {"units": units}}
    response = caller.client().post("/api/v1/unit-groups", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def listed(client) -> list[str]:
    response = client.get("/api/v1/unit-groups")
    assert response.status_code == 200, response.content
    return [g["code"] for g in response.json()]


@pytest.fixture
def groups(world):
    hcm_leader = make_caller("hcm-leader", world.province, "leader")
    save_group(world.leader, "bac-nam", "Ba Đình và Bến Thành", [HANOI_WARD, A])
    save_group(hcm_leader, "trung-tam", "Phường trung tâm", [A, B])
    save_group(world.leader, "ben-thanh", "Riêng Bến Thành", [A])
    return hcm_leader


def test_each_caller_lists_only_the_groups_inside_its_area(world, platform, groups):
    hcm_leader = groups
    assert listed(world.leader.client()) == ["bac-nam", "trung-tam", "ben-thanh"]  # by name
    assert listed(hcm_leader.client()) == ["trung-tam", "ben-thanh"]
    assert listed(world.province_operator.client()) == ["trung-tam", "ben-thanh"]
    assert listed(world.operator_a.client()) == ["ben-thanh"]  # 'trung-tam' reaches Sài Gòn too
    assert listed(world.operator_b.client()) == []
    assert listed(platform.client()) == []  # a source platform's token has no area


def test_a_group_reaching_outside_the_area_answers_as_one_that_does_not_exist(world, groups):
    hcm_leader = groups.client()

    def issue(group: str):
        body = {"title": "Kiểm tra", "targets": {"group": group}}
        return hcm_leader.post("/api/v1/directives", body, content_type="application/json")

    foreign, missing = issue("bac-nam"), issue("khong-co")
    assert (foreign.status_code, missing.status_code) == (422, 422)
    assert foreign.json()["detail"] == missing.json()["detail"].replace("khong-co", "bac-nam")
    assert HANOI_WARD not in foreign.content.decode()

    counted = hcm_leader.get("/api/v1/directives/targets", {"group": "bac-nam"})
    assert counted.status_code == 422 and HANOI_WARD not in counted.content.decode()
    assert hcm_leader.get("/api/v1/directives/targets", {"group": "trung-tam"}).json()["count"] == 2


def test_the_composer_offers_only_the_groups_of_the_issuers_area(world, groups):
    page = groups.browser().get("/directives/new/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Phường trung tâm" in text and "Riêng Bến Thành" in text
    assert "Ba Đình và Bến Thành" not in text
    assert "Ba Đình và Bến Thành" in world.leader.browser().get("/directives/new/").content.decode()
