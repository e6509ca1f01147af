"""Approval used downstream: analytics with approvalLevel, a report and the room marking figures not yet
approved ("chưa phê duyệt"), the map layer's JSON."""

from __future__ import annotations

from datetime import date

from dieuhanh.indicators.approval.services import configure
from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.services import save_data_set
from dieuhanh.reports import services as reports
from dieuhanh.units.scoping import Area
from tests.factories import act, values

A, B, HCM = "VN-2025:26743", "VN-2025:26740", "VN-2025:79"


def analytics(caller, ou: str, level: str | None = None) -> dict[str, float]:
    url = f"/api/v1/analytics?dx=postal_revenue&pe=202108&ou={ou}"
    if level:
        url += f"&approvalLevel={level}"
    answer = caller.client().get(url)
    assert answer.status_code == 200, answer.content
    return {r["ou"]: r["value"] for r in answer.json()["rows"]}


def test_analytics_with_approval_level_counts_only_approved_data(world, telecom):
    assert (
        values(world.province_operator, ("postal_revenue", A, 10), ("postal_revenue", B, 20)).status_code
        == 200
    )
    leader = world.leader
    assert analytics(leader, HCM) == {HCM: 30}
    assert analytics(leader, HCM, "commune") == {}
    act(world.operator_a, "approve", A)
    assert analytics(leader, HCM, "commune") == {HCM: 10}
    assert analytics(leader, f"{A};{B}", "commune") == {A: 10}
    # Approved at the commune is not approved at the province.
    assert analytics(leader, HCM, "province") == {}
    assert analytics(leader, HCM, "1") == {}  # the map's level number, as DHIS2's levels
    bad = leader.client().get(
        "/api/v1/analytics?dx=postal_revenue&pe=202108&ou=VN-2025:79&approvalLevel=ward"
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "approvalLevel"


def test_data_outside_any_approved_data_set_is_counted_as_it_is(world, telecom):
    from dieuhanh.indicators.services import save_data_element

    save_data_element(actor=None, code="loose", name="Không thuộc biểu nào")
    values(world.operator_a, ("loose", A, 4))
    url = "/api/v1/analytics?dx=loose&pe=202108&ou=VN-2025:26743&approvalLevel=commune"
    assert world.leader.client().get(url).json()["rows"][0]["value"] == 4


def test_a_report_marks_the_figures_not_yet_approved(world, hcm_report, media):
    data_set = save_data_set(
        actor=None,
        code="hcm_dossiers",
        name="Hồ sơ trực tuyến",
        elements=["online_dossiers"],
        period_type="monthly",
        unit_kind="commune",
    )
    configure(actor=None, data_set=data_set)
    everywhere = Area(True, frozenset())
    for ref, n in ((A, 7), (B, 5)):
        record = {"dataElement": "online_dossiers", "period": "202108", "orgUnit": ref, "value": n}
        assert import_values([record], actor=None, area=everywhere).status == "SUCCESS"
    answer = act(world.operator_a, "approve", A, data_set="hcm_dossiers")
    assert answer.status_code == 200, answer.content
    user = world.province_operator.user
    request = reports.prepare(
        actor=user, definition="hcm", period="202108", unit=world.province.ref, fmt="md"
    )
    report = reports.generate(actor=user, request=request, dated=date(2021, 9, 15))
    text = reports.file_path(report).read_text(encoding="utf-8")
    row_a = next(line for line in text.splitlines() if f"| {world.commune_a.name} |" in line)
    row_b = next(line for line in text.splitlines() if f"| {world.commune_b.name} |" in line)
    assert "7" in row_a and "chưa phê duyệt" not in row_a
    assert "5" in row_b and "chưa phê duyệt" in row_b
    # The snapshot keeps it: a replay after the approval says the same.
    act(world.operator_b, "approve", B, data_set="hcm_dossiers")
    again = reports.replay(actor=user, original=report)
    assert "chưa phê duyệt" in reports.file_path(again).read_text(encoding="utf-8")
    fresh = reports.file_path(reports.generate(actor=user, request=request, dated=date(2021, 9, 15)))
    rows = [line for line in fresh.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    assert rows and not any("chưa phê duyệt" in line for line in rows)
    # The city's own total is not approved until the city approves it.
    assert "hồ sơ *(chưa phê duyệt)*" in fresh.read_text(encoding="utf-8")


def test_the_map_layer_gives_each_units_state(world, telecom):
    act(world.operator_a, "approve", A)
    act(world.province_operator, "accept", A)
    act(world.operator_b, "approve", B)
    answer = world.province_operator.client().get("/api/v1/approvals/map?unit=VN-2025:79&period=202108")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["dataSet"] == "telecom"
    assert body["values"][A]["value"] == "accepted"
    assert body["values"][B]["value"] == "approved"
    assert sum(v["value"] == "open" for v in body["values"].values()) == len(body["values"]) - 2
    assert {e["value"] for e in body["legend"]} == {"open", "approved", "accepted", "approved_above"}
    # A commune sees only itself (no children on the map), never its neighbour.
    mine = world.operator_a.client().get("/api/v1/approvals/map?period=202108").json()
    assert mine["unit"] == A and mine["values"] == {}


def test_a_room_tile_marks_a_figure_not_yet_approved(world, telecom):
    from dieuhanh.commandroom.room import indicator_tiles

    values(world.operator_a, ("postal_revenue", A, 10))
    tile = next(t for t in indicator_tiles(world.commune_a) if t.code == "postal_revenue")
    assert tile.value == 10 and tile.unapproved
    page = world.leader.browser().get(f"/room/parts?unit={A}")
    assert page.status_code == 200
    assert "chưa phê duyệt" in page.json()["tiles"]
    act(world.operator_a, "approve", A)
    tile = next(t for t in indicator_tiles(world.commune_a) if t.code == "postal_revenue")
    assert not tile.unapproved
    assert "chưa phê duyệt" not in world.leader.browser().get(f"/room/parts?unit={A}").json()["tiles"]


def test_the_completeness_view_shows_who_approved(world, telecom):
    values(world.operator_a, ("postal_revenue", A, 1))
    values(world.operator_b, ("postal_revenue", B, 2))
    act(world.operator_a, "approve", A)
    answer = world.province_operator.client().get(
        f"/api/v1/datasets/telecom/completeness?period=202108&parent={HCM}"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["approved"] == 1
    by_unit = {u["unit"]: u for u in body["units"]}
    assert by_unit[A]["approved"] is True and by_unit[B]["approved"] is False
    page = world.province_operator.browser().get("/units/VN-2025/79/?period=202108")
    assert page.status_code == 200
    assert "1/168 đơn vị đã phê duyệt kỳ này" in page.content.decode()
