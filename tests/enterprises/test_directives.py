"""An enterprise gets directives and tasks like any unit: 'báo cáo số công nhân xét nghiệm trong ngày'."""

from __future__ import annotations

from tests.factories import make_caller


def _post(caller, url, body):
    return caller.client().post(url, body, content_type="application/json")


def test_a_directive_to_every_enterprise_of_a_park_reaches_each_officer_alone(firms):
    leader = make_caller("hcm-leader", firms.world.province, "leader")
    issued = _post(
        leader,
        "/api/v1/directives",
        {
            "title": "Báo cáo số công nhân xét nghiệm trong ngày",
            "body": "Các doanh nghiệp trong KCN báo cáo số công nhân đã xét nghiệm.",
            "targets": {"units": [firms.park.ref], "level": "enterprise"},
            "form": [{"key": "tested", "label": "Số công nhân xét nghiệm", "type": "number"}],
        },
    )
    assert issued.status_code == 201, issued.content
    assert issued.json()["status"]["total"] == 2
    items = firms.officer_one.client().get("/api/v1/inbox").json()["items"]
    assert [i["unit"] for i in items] == [firms.one.ref]
    delivery = items[0]["id"]
    assert _post(firms.officer_one, f"/api/v1/deliveries/{delivery}/ack", {}).status_code == 200
    answer = _post(firms.officer_one, f"/api/v1/deliveries/{delivery}/respond", {"figures": {"tested": 412}})
    assert answer.status_code == 201, answer.content
    # The other factory's officer cannot touch factory one's delivery.
    assert _post(firms.officer_two, f"/api/v1/deliveries/{delivery}/ack", {}).status_code == 404


def test_a_task_owned_by_an_enterprise(firms):
    leader = make_caller("hcm-leader", firms.world.province, "leader")
    task = _post(leader, "/api/v1/tasks", {"title": "Duy trì 3 tại chỗ", "owner": firms.two.ref})
    assert task.status_code == 201, task.content
    task_id = task.json()["id"]
    assert firms.officer_two.client().get(f"/api/v1/tasks/{task_id}").status_code == 200
    assert firms.officer_one.client().get(f"/api/v1/tasks/{task_id}").status_code == 404
    progress = _post(
        firms.officer_two, f"/api/v1/tasks/{task_id}/progress", {"percent": 50, "text": "Đã bố trí"}
    )
    assert progress.status_code in (200, 201), progress.content


def test_an_enterprises_daily_report_is_a_data_set_of_its_own(firms):
    from dieuhanh.indicators.models import DataValue
    from dieuhanh.indicators.services import save_data_element, save_data_set

    save_data_element(
        actor=None, code="workers_tested", name="Số công nhân xét nghiệm", unit="người", aggregation="sum",
        period_type="daily",
    )  # fmt: skip
    save_data_set(
        actor=None, code="bao_cao_doanh_nghiep", name="Báo cáo ngày của doanh nghiệp",
        elements=["workers_tested"], period_type="daily", unit_kind="enterprise", due_day=1,
    )  # fmt: skip

    def post(caller, unit):
        row = {"dataElement": "workers_tested", "period": "20210826", "orgUnit": unit.ref, "value": "412"}
        return caller.client().post(
            "/api/v1/datavalues", {"dataValues": [row]}, content_type="application/json"
        )

    assert post(firms.officer_one, firms.one).json()["importCount"]["imported"] == 1
    assert post(firms.officer_one, firms.two).json()["importCount"]["imported"] == 0
    assert DataValue.objects.filter(unit=firms.one).count() == 1
    assert not DataValue.objects.filter(unit=firms.two).exists()
    # The park sees its factories' reports summed.
    r = firms.park_officer.client().get(
        "/api/v1/analytics", {"dx": "workers_tested", "pe": "20210826", "ou": firms.park.ref}
    )
    assert r.status_code == 200 and r.json()["rows"][0]["value"] == 412
