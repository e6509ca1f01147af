"""The approval chain up both maps, as people at each level would walk it, and its refusals."""

from __future__ import annotations

from django.db.models import Count

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.indicators.approval.models import Approval, ApprovalAudit
from dieuhanh.units.models import Unit
from tests.factories import act, make_caller, state

A, B, HCM, VN = "VN-2025:26743", "VN-2025:26740", "VN-2025:79", "VN-2025:VN"


def refs(queryset) -> list[str]:
    return [f"{e}:{c}" for e, c in queryset.values_list("edition_id", "code")]


def test_the_chain_up_the_2025_map_to_the_nation(world, telecom):
    admin = make_caller("national-admin", world.nation, "admin")
    # Bến Thành approves its own figures; the next to act is the province, accepting.
    answer = act(world.operator_a, "approve", A)
    assert answer.status_code == 200, answer.content
    assert answer.json()["changed"] == 1
    mine = state(world.operator_a, A, children=False)["units"][0]
    assert mine["state"] == "approved"
    assert mine["next"] == {"action": "accept", "by": HCM, "byName": world.province.name, "level": "cấp tỉnh"}
    # The province accepts it, but cannot approve its own until every one of its communes is accepted.
    assert act(world.province_operator, "accept", A).status_code == 200
    early = act(world.province_operator, "approve", HCM)
    assert early.status_code == 409
    assert "chưa được chấp nhận" in early.json()["detail"]
    hcm = state(world.province_operator, HCM)
    assert hcm["units"][0]["next"]["waitingFor"] == hcm["summary"]["children"] - 1
    # Every other commune of the city approves (an admin acting for them in one call), the city accepts.
    others = refs(Unit.objects.filter(edition_id="VN-2025", parent=world.province).exclude(code="26743"))
    assert act(admin, "approve", *others).json()["changed"] == len(others)
    assert act(world.province_operator, "accept", *others).json()["changed"] == len(others)
    assert act(world.province_operator, "approve", HCM).status_code == 200
    # The nation accepts the city; it approves itself once all 34 provinces are accepted.
    assert act(world.leader, "accept", HCM).status_code == 200
    assert act(world.leader, "approve", VN).status_code == 409
    rest = Unit.objects.filter(edition_id="VN-2025").exclude(path__startswith="/VN/79/")
    communes, provinces = refs(rest.filter(kind="commune")), refs(rest.filter(kind="province"))
    assert act(admin, "approve", *communes).json()["changed"] == len(communes)
    assert act(admin, "accept", *communes).json()["changed"] == len(communes)
    assert act(admin, "approve", *provinces).json()["changed"] == 33
    assert act(world.leader, "accept", *provinces).json()["changed"] == 33
    answer = act(world.leader, "approve", VN)
    assert answer.status_code == 200, answer.content
    nation = state(world.leader, VN)
    assert nation["levels"] == ["commune", "province", "nation"]
    assert nation["units"][0]["state"] == "approved"
    assert nation["units"][0]["next"] is None
    assert {u["state"] for u in nation["units"][1:]} == {"approved_above"}
    assert Approval.objects.filter(data_set=telecom, period="202108").count() == 3321 + 34 + 1
    # Every action on every unit left its audit row, and each call one entry in the audit log.
    assert ApprovalAudit.objects.filter(unit__code="26743", action="approve").count() == 1
    assert ApprovalAudit.objects.filter(unit__code="26743", action="accept").count() == 1
    assert AuditEntry.objects.filter(action="approval.approve").count() == 6


def test_the_chain_up_the_2021_map_through_the_district(world, telecom):
    """commune → district → province → the nation accepting, in the smallest province of 2021."""
    province = (
        Unit.objects.filter(edition_id="VN-2021", kind="province")
        .annotate(n=Count("children__children"))
        .order_by("n", "code")
        .first()
    )
    assert province is not None
    districts = list(Unit.objects.filter(parent=province).order_by("code"))
    district = next(d for d in districts if d.children.exists())
    commune = district.children.order_by("code").first()
    commune_op = make_caller("xa-2021", commune, "operator")
    district_op = make_caller("huyen-2021", district, "operator")
    province_op = make_caller("tinh-2021", province, "leader")
    admin = make_caller("tinh-2021-admin", province, "admin")
    assert act(commune_op, "approve", commune.ref).status_code == 200
    shown = state(commune_op, commune.ref, children=False)
    assert shown["levels"] == ["commune", "district", "province", "nation"]
    assert shown["units"][0]["next"]["by"] == district.ref  # the district accepts, not the province
    # The province may not accept for the district.
    refused = act(province_op, "accept", commune.ref)
    assert refused.status_code == 403
    assert "cấp huyện" in refused.json()["detail"]
    assert act(district_op, "accept", commune.ref).status_code == 200
    rest = refs(Unit.objects.filter(parent__parent=province).exclude(pk=commune.pk))
    assert act(admin, "approve", *rest).status_code == 200
    assert act(admin, "accept", *rest).status_code == 200
    assert act(district_op, "approve", district.ref).status_code == 200
    others = refs(Unit.objects.filter(parent=province).exclude(pk=district.pk))
    assert act(admin, "approve", *others).status_code == 200
    assert act(province_op, "accept", district.ref, *others).status_code == 200
    assert act(province_op, "approve", province.ref).status_code == 200
    answer = act(world.leader, "accept", province.ref)
    assert answer.status_code == 200, answer.content
    assert state(province_op, province.ref, children=False)["units"][0]["state"] == "accepted"
    # Approved above: the commune can no longer take its approval back.
    late = act(commune_op, "unapprove", commune.ref, reason="nhập nhầm")
    assert late.status_code == 409
    assert "cấp trên" in late.json()["detail"]


def test_a_commune_cannot_approve_its_neighbour_nor_accept_for_the_province(world, telecom):
    neighbour = act(world.operator_a, "approve", B)
    assert neighbour.status_code == 404
    # The same words as for a unit that does not exist: nothing outside the area is revealed.
    unknown = act(world.operator_a, "approve", "VN-2025:99999")
    assert unknown.status_code == 404
    assert neighbour.json()["detail"].replace(B, "X") == unknown.json()["detail"].replace(
        "VN-2025:99999", "X"
    )
    # Both at once: nothing is written for its own commune either.
    assert act(world.operator_a, "approve", A, B).status_code == 404
    assert not Approval.objects.exists()
    assert act(world.operator_a, "approve", A).status_code == 200
    for_province = act(world.operator_a, "accept", A)
    assert for_province.status_code == 403
    assert "cấp tỉnh" in for_province.json()["detail"]
    assert act(world.operator_a, "approve", HCM).status_code == 404  # the province lies outside its area
    # The province's operator can accept, but cannot approve for a commune.
    assert act(world.province_operator, "approve", B).status_code == 403
    assert act(world.province_operator, "accept", A).status_code == 200
    # The state of a neighbour is not shown either.
    assert (
        world.operator_a.client().get(f"/api/v1/approvals?dataSet=telecom&period=202108&unit={B}").status_code
        == 404
    )


def test_accepting_at_the_wrong_level_is_refused(world, telecom):
    assert act(world.operator_a, "approve", A).status_code == 200
    # The nation is two levels above a commune: accepting is the province's.
    wrong = act(world.leader, "accept", A)
    assert wrong.status_code == 403
    assert "cấp tỉnh" in wrong.json()["detail"]
    # Nothing to accept: Sài Gòn has not approved.
    assert act(world.province_operator, "accept", B).status_code == 409
    assert Approval.objects.get(unit=world.commune_a).accepted_at is None


def test_unapproving_needs_a_reason_and_then_the_level_above_once_accepted(world, telecom):
    assert act(world.operator_a, "approve", A).status_code == 200
    no_reason = act(world.operator_a, "unapprove", A)
    assert no_reason.status_code == 422
    assert no_reason.json()["field"] == "reason"
    assert act(world.operator_a, "unapprove", A, reason="   ").status_code == 422
    assert act(world.operator_a, "unapprove", A, reason="Nhập nhầm doanh thu").status_code == 200
    assert not Approval.objects.exists()
    assert ApprovalAudit.objects.get(action="unapprove").reason == "Nhập nhầm doanh thu"
    # Once the province accepted, only the province can hand it back.
    act(world.operator_a, "approve", A)
    act(world.province_operator, "accept", A)
    assert act(world.operator_a, "unapprove", A, reason="sửa").status_code == 409
    assert act(world.province_operator, "unapprove", A, reason="Trả lại để sửa").status_code == 200
    assert state(world.operator_a, A)["units"][0]["state"] == "open"


def test_bad_input_names_the_field(world, telecom):
    assert act(world.operator_a, "approve", A, period="2021Q3").json()["field"] == "period"
    assert act(world.operator_a, "approve", A, data_set="nope").json()["field"] == "dataSet"
    assert act(world.operator_a, "approve").json()["field"] == "units"


def test_an_approval_tells_the_rooms_above_and_not_the_neighbour(
    world, telecom, django_capture_on_commit_callbacks
):
    import asyncio
    import json

    import pytest
    from asgiref.sync import async_to_sync, sync_to_async

    from dieuhanh.live import HUB, area_key

    def approve():
        with django_capture_on_commit_callbacks(execute=True):
            assert act(world.operator_a, "approve", A).status_code == 200

    async def scenario():
        province = HUB.stream({area_key("VN-2025", world.province.path)}, heartbeat=30)
        neighbour = HUB.stream({area_key("VN-2025", world.commune_b.path)}, heartbeat=30)
        for stream in (province, neighbour):
            await anext(stream)  # connected
        await sync_to_async(approve)()
        heard = await asyncio.wait_for(anext(province), 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(neighbour), 0.3)
        for stream in (province, neighbour):
            await stream.aclose()
        return heard

    heard = async_to_sync(scenario)()
    assert heard.startswith("event: approval\n")
    data = json.loads(heard.split("data: ", 1)[1])
    assert data["action"] == "approve" and data["unit"] == A and data["count"] == 1
    assert data["title"] == "Phê duyệt: Báo cáo viễn thông, tháng 8/2021"
