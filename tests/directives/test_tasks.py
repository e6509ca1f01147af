"""Tasks (nhiệm vụ) through the API as the world's users: who creates, who sees, who reports; the
status that follows the percent and the due date; imports from CSV and XLSX; the demo tasks."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app
from dieuhanh.directives.assignments import AssignmentError, import_tasks, load_demo_tasks, vn_today
from dieuhanh.directives.models import Task, TaskProgress
from tests.factories import Caller, make_caller

A, B, HCMC = "VN-2025:26743", "VN-2025:26740", "VN-2025:79"
HANOI = "VN-2025:01"


def post_task(caller: Caller, **fields):
    body = {"title": "Triển khai nền tảng họp trực tuyến", "basis": "Quyết định 942/QĐ-TTg", "owner": A}
    return caller.client().post("/api/v1/tasks", {**body, **fields}, content_type="application/json")


def report(caller: Caller, task_id: int, **fields):
    return caller.client().post(f"/api/v1/tasks/{task_id}/progress", fields, content_type="application/json")


def listed(caller: Caller, **params) -> list[int]:
    response = caller.client().get("/api/v1/tasks", params)
    assert response.status_code == 200, response.content
    return [t["id"] for t in response.json()["items"]]


def days(n: int) -> str:
    return (vn_today() + timedelta(days=n)).isoformat()


@pytest.fixture
def province_leader(world) -> Caller:
    return make_caller("hcm-leader", world.province, "leader")


# Create and see


def test_a_leader_creates_a_task_that_its_unit_and_the_province_see_and_the_neighbour_does_not(world):
    response = post_task(world.leader, due=days(30), co_owners=[])
    assert response.status_code == 201, response.content
    task = response.json()
    assert (task["owner"], task["basis"], task["percent"]) == (
        {"ref": A, "name": "Phường Bến Thành"},
        "Quyết định 942/QĐ-TTg",
        0,
    )
    assert (task["status"], task["status_label"], task["overdue"]) == (
        "not_started",
        "chưa thực hiện",
        False,
    )
    assert task["created_by"] == "leader" and task["progress"] == []
    entry = AuditEntry.objects.get(action="tasks.create")
    assert (entry.actor, entry.target, entry.detail["owner"]) == (world.leader.user, f"task:{task['id']}", A)

    assert listed(world.operator_a) == [task["id"]]
    assert listed(world.operator_a, unit=A) == [task["id"]]
    assert listed(world.province_operator) == [task["id"]]  # a province sees its communes' tasks
    assert listed(world.province_operator, unit=HCMC) == []  # the province's own tasks
    assert listed(world.province_operator, unit=HCMC, below="true") == [task["id"]]
    assert listed(world.operator_b) == []
    assert world.operator_b.client().get("/api/v1/tasks", {"unit": A}).status_code == 404  # not theirs
    assert world.operator_b.client().get(f"/api/v1/tasks/{task['id']}").status_code == 404
    assert report(world.operator_b, task["id"], percent=10, text="xong").status_code == 404
    assert world.operator_a.client().get(f"/api/v1/tasks/{task['id']}").json()["title"] == task["title"]


def test_only_a_leader_or_analyst_over_the_owner_unit_creates(world, province_leader):
    assert post_task(world.operator_a).status_code == 403  # an operator is neither
    hanoi = post_task(province_leader, owner=HANOI)  # another province: answered as no unit is
    unknown = post_task(province_leader, owner="VN-2025:00000")
    assert hanoi.status_code == unknown.status_code == 404
    told = hanoi.json()["detail"].replace(HANOI, "X")
    assert told == unknown.json()["detail"].replace("VN-2025:00000", "X")
    assert unknown.json()["detail"] == "owner: không có đơn vị 'VN-2025:00000' trong phạm vi của bạn"
    outside = post_task(province_leader, co_owners=[HANOI])
    assert outside.status_code == 404 and outside.json()["detail"].startswith("co_owners:")
    other_map = post_task(world.leader, co_owners=["VN-2021:26743"])
    assert other_map.status_code == 422
    assert "không thuộc bản đồ hành chính VN-2025" in other_map.json()["detail"]
    blank = post_task(world.leader, title="   ")
    assert blank.status_code == 422 and blank.json()["detail"] == "title: không được để trống"
    assert post_task(world.leader, due="31/12/2021").status_code == 422  # the API takes ISO dates
    assert Task.objects.count() == 0 and not AuditEntry.objects.filter(action="tasks.create").exists()
    analyst = make_caller("hcm-analyst", world.province, "analyst")
    assert post_task(analyst, co_owners=[B]).status_code == 201
    assert post_task(province_leader, owner=HCMC).status_code == 201


def test_a_co_owner_sees_the_task_and_reports_on_it(world):
    task = post_task(world.leader, co_owners=[B, B]).json()
    assert task["co_owners"] == [{"ref": B, "name": "Phường Sài Gòn"}]
    assert listed(world.operator_b) == [task["id"]] and listed(world.operator_b, unit=B) == [task["id"]]
    assert (
        report(world.operator_b, task["id"], percent=20, text="Phường Sài Gòn đã phối hợp").status_code == 201
    )


def test_every_route_as_each_user_two_neighbouring_wards_never_see_each_other(world):
    a = post_task(world.leader, title="Việc của Bến Thành", due=days(-1)).json()["id"]
    b = post_task(world.leader, title="Việc của Sài Gòn", owner=B, due=days(-1)).json()["id"]
    sees = {"leader": {a, b}, "hcm-operator": {a, b}, "benthanh-operator": {a}, "saigon-operator": {b}}
    sees["hcm-tracer"] = {a, b}
    for caller in world.everyone():
        assert set(listed(caller)) == sees[caller.user.username]
        assert set(listed(caller, overdue="true")) == sees[caller.user.username]
    for me, mine, theirs, their_unit in ((world.operator_a, a, b, B), (world.operator_b, b, a, A)):
        c = me.client()
        for below in ("false", "true"):  # a neighbour's unit is not theirs to filter by
            assert c.get("/api/v1/tasks", {"unit": their_unit, "below": below}).status_code == 404
        assert c.get(f"/api/v1/tasks/{theirs}").status_code == 404
        assert report(me, theirs, percent=10, text="thử").status_code == 404
        export = load_workbook(io.BytesIO(c.get("/api/v1/tasks/export.xlsx").content)).active
        assert [r[1] for r in export.iter_rows(min_row=3, values_only=True)] == [
            "Việc của Bến Thành" if mine == a else "Việc của Sài Gòn"
        ]
        assert c.get(f"/api/v1/tasks/{mine}").status_code == 200
    nobody = make_caller("no-grant", world.commune_a, "operator")
    nobody.user.grants.all().delete()
    assert nobody.client().get("/api/v1/tasks").json() == {"count": 0, "items": []}
    assert TaskProgress.objects.count() == 0


# Progress


def test_progress_follows_the_percent_and_keeps_its_history(world):
    task = post_task(world.leader, due=days(10)).json()
    first = report(world.operator_a, task["id"], percent=40, text="Đã lắp đặt thiết bị")
    assert first.status_code == 201, first.content
    assert (first.json()["status"], first.json()["percent"]) == ("in_progress", 40)
    lower = report(world.operator_a, task["id"], percent=30)
    assert lower.status_code == 422 and lower.json()["detail"].startswith("text: tiến độ giảm từ 40%")
    assert (
        report(world.operator_a, task["id"], percent=30, text="Một điểm cầu phải lắp lại").status_code == 201
    )
    assert report(world.operator_a, task["id"], percent=30).status_code == 422  # nothing new to say
    assert report(world.operator_a, task["id"], percent=50, status="done").status_code == 422
    assert report(world.operator_a, task["id"], percent=100, status="in_progress").status_code == 422
    assert report(world.operator_a, task["id"], percent=101).status_code == 422
    assert report(world.operator_a, task["id"], percent=60, status="overdue").status_code == 422
    done = report(world.operator_a, task["id"], percent=100, text="Hoàn thành")
    body = done.json()
    assert (body["status"], body["status_label"], body["percent"]) == ("done", "hoàn thành", 100)
    assert [(p["percent"], p["status"], p["by"]) for p in body["progress"]] == [
        (40, "in_progress", "benthanh-operator"),
        (30, "in_progress", "benthanh-operator"),
        (100, "done", "benthanh-operator"),
    ]
    assert body["progress"][1]["text"] == "Một điểm cầu phải lắp lại"
    audits = AuditEntry.objects.filter(action="tasks.progress").order_by("id")
    assert [(e.detail["before"], e.detail["percent"]) for e in audits] == [(0, 40), (40, 30), (30, 100)]
    assert all(e.actor == world.operator_a.user and e.target == f"task:{task['id']}" for e in audits)


def test_reporting_is_for_the_owner_and_co_owner_units_people_and_the_creator(world, province_leader):
    task = post_task(province_leader).json()
    refused = report(world.province_operator, task["id"], percent=10, text="Thành phố đôn đốc")
    assert refused.status_code == 403  # sees the commune's task, but acts for the city
    assert report(world.tracer, task["id"], percent=10, text="…").status_code == 403
    assert report(province_leader, task["id"], percent=10, text="Giao phường thực hiện").status_code == 201
    assert report(world.operator_a, task["id"], percent=20, text="Đang thực hiện").status_code == 201
    assert TaskProgress.objects.filter(task_id=task["id"]).count() == 2


def test_a_task_past_due_and_not_done_shows_as_overdue_at_read_time(world):
    late = post_task(world.leader, title="Báo cáo tình hình", due=days(-1)).json()
    today = post_task(world.leader, title="Hạn hôm nay", due=days(0)).json()
    open_ended = post_task(world.leader, title="Không có hạn").json()
    assert (late["status"], late["status_label"], late["overdue"]) == ("overdue", "quá hạn", True)
    assert Task.objects.get(pk=late["id"]).status == "not_started"  # quá hạn is never stored
    assert listed(world.leader, overdue="true") == [late["id"]]
    assert listed(world.leader, status="overdue") == [late["id"]]
    assert listed(world.leader, status="not_started") == [today["id"], open_ended["id"]]
    assert listed(world.leader) == [late["id"], today["id"], open_ended["id"]]  # soonest due first
    report(world.operator_a, late["id"], percent=50, text="Đang làm")
    assert listed(world.operator_a, overdue="true") == [late["id"]]
    assert report(world.operator_a, late["id"], percent=100, text="Xong").json()["status"] == "done"
    assert listed(world.leader, overdue="true") == []
    assert listed(world.leader, status="done") == [late["id"]]


def test_a_task_is_late_from_the_day_after_its_due_day_in_vietnam(world):
    """The one overdue_q takes a moment, as for deliveries; a task's due day ends at midnight in
    Vietnam (UTC+7), not at midnight UTC."""
    from dieuhanh.directives.services import overdue_q

    task = post_task(world.leader, due="2026-03-01").json()
    for at, is_late in (("2026-03-01T16:59:00+00:00", False), ("2026-03-01T17:00:00+00:00", True)):
        found = Task.objects.filter(overdue_q(datetime.fromisoformat(at), Task), pk=task["id"]).exists()
        assert found is is_late, at


def test_an_unknown_unit_filter_is_404(world):
    response = world.leader.client().get("/api/v1/tasks", {"unit": "VN-2025:00000"})
    assert response.status_code == 404
    assert response.json()["detail"] == "unit: không có đơn vị 'VN-2025:00000' trong phạm vi của bạn"


def test_export_xlsx_holds_the_callers_tasks_only(world):
    post_task(world.leader, title="Nhiệm vụ Bến Thành", due=days(-3))
    post_task(world.leader, title="Nhiệm vụ Sài Gòn", owner=B)
    response = world.operator_a.client().get("/api/v1/tasks/export.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0].startswith("Danh sách nhiệm vụ, lập lúc")
    assert rows[1][:3] == ("STT", "Nhiệm vụ", "Căn cứ")
    assert [r[1] for r in rows[2:]] == ["Nhiệm vụ Bến Thành"]
    assert rows[2][6] == "quá hạn"


# Import


GOOD_AND_BAD = [
    ["title", "basis", "owner", "co_owners", "due"],
    ["Lắp camera giám sát", "Kế hoạch 12/KH-UBND", A, B, "31/12/2021"],
    ["Cập nhật dữ liệu dân cư", "", B, "", "32/12/2021"],
    ["Tập huấn cán bộ", "", "VN-2025:00000", "", ""],
    ["", "", A, "", ""],
    ["Rà soát hộ nghèo", "", A, f"{B};VN-2025:99999", ""],
    ["Phổ cập kỹ năng số", "Kế hoạch 12/KH-UBND", B, "", "2021-11-30"],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_import_csv_keeps_the_good_lines_and_names_each_bad_line_and_column(world, tmp_path):
    result = import_tasks(actor=world.leader.user, path=write_csv(tmp_path / "nv.csv", GOOD_AND_BAD))
    assert [(line, column) for line, column, _ in result.rejected] == [
        (3, "due"),
        (4, "owner"),
        (5, "title"),
        (6, "co_owners"),
    ]
    assert result.rejected[0][2] == (
        "“32/12/2021” không phải ngày hợp lệ: tháng 12/2021 chỉ có 31 ngày. Hãy viết theo dạng 26/8/2021."
    )
    assert result.rejected[3][2] == "không có đơn vị 'VN-2025:99999' trong phạm vi của bạn"
    tasks = {t.title: t for t in Task.objects.all()}
    assert set(tasks) == {"Lắp camera giám sát", "Phổ cập kỹ năng số"}  # line 6 is not half-written
    assert [u.ref for u in tasks["Lắp camera giám sát"].co_owners.all()] == [B]
    assert (tasks["Phổ cập kỹ năng số"].due.isoformat(), tasks["Phổ cập kỹ năng số"].owner.ref) == (
        "2021-11-30",
        B,
    )
    entry = AuditEntry.objects.get(action="tasks.import")
    assert (entry.actor, entry.target, entry.rows) == (world.leader.user, "nv.csv", 2)
    assert sorted(entry.detail["tasks"]) == sorted(t.pk for t in tasks.values())
    assert len(entry.detail["rejected"]) == 4

    again = import_tasks(actor=world.leader.user, path=tmp_path / "nv.csv")
    assert (again.created, again.duplicates, len(again.rejected)) == ([], [2, 7], 4)
    assert Task.objects.count() == 2


def test_import_xlsx_with_vietnamese_headers_and_area_checked_per_line(world, province_leader, tmp_path):
    book = Workbook()
    sheet = book.active
    nfd = unicodedata.normalize("NFD", "Nhiệm vụ")  # as some systems write it
    sheet.append(["STT", nfd, "Căn cứ", "Đơn vị chủ trì", "Đơn vị phối hợp", "Hạn"])
    sheet.append([1, "Số hóa hồ sơ hộ tịch", "Quyết định 942/QĐ-TTg", "26743", None, vn_today()])
    sheet.append([2, "Nhiệm vụ của Hà Nội", "", HANOI, None, None])
    sheet.append([None, None, None, None, None, None])
    sheet.append([4, "Nhiệm vụ của thành phố", "", HCMC, f"{A}, {B}", "15/10/2021"])
    book.save(tmp_path / "nv.xlsx")
    result = import_tasks(actor=province_leader.user, path=tmp_path / "nv.xlsx")
    assert [(line, column) for line, column, _ in result.rejected] == [(3, "Đơn vị chủ trì")]
    assert "trong phạm vi của bạn" in result.rejected[0][2]
    assert len(result.created) == 2
    city = Task.objects.get(owner__code="79")
    assert sorted(u.ref for u in city.co_owners.all()) == sorted([A, B])
    assert Task.objects.get(owner__code="26743").due == vn_today()


def test_import_refuses_a_file_it_cannot_read_and_writes_nothing(world, tmp_path):
    no_owner = write_csv(tmp_path / "a.csv", [["title", "due"], ["Một việc", "1/1/2022"]])
    with pytest.raises(AssignmentError, match=r"a\.csv: dòng tiêu đề thiếu cột owner"):
        import_tasks(actor=world.leader.user, path=no_owner)
    (tmp_path / "b.xlsx").write_text("not a workbook")
    with pytest.raises(AssignmentError, match="không phải tệp XLSX"):
        import_tasks(actor=world.leader.user, path=tmp_path / "b.xlsx")
    with pytest.raises(AssignmentError, match="cần quyền lãnh đạo hoặc chuyên viên") as refused:
        import_tasks(actor=world.operator_a.user, path=write_csv(tmp_path / "c.csv", GOOD_AND_BAD))
    assert refused.value.status == 403
    assert Task.objects.count() == 0 and not AuditEntry.objects.filter(action="tasks.import").exists()


def test_the_demo_tasks_import_cleanly_once(world):
    lines = load_demo_tasks(actor=world.leader.user)
    assert lines == ["Nhiệm vụ 6 tháng cuối năm 2021: mới 43, đã có 0"]
    tasks = Task.objects.all()
    assert {t.owner.ref for t in tasks} == {"VN-2025:VN"} and {t.due.isoformat() for t in tasks} == {
        "2021-12-31"
    }
    assert all(len(t.title) <= 150 and t.basis.startswith("Báo cáo tóm tắt") for t in tasks)
    parks = Task.objects.get(title__contains="Yên Bình")
    assert sorted(u.name for u in parks.co_owners.all()) == ["Tỉnh Bắc Ninh", "Tỉnh Thái Nguyên"]
    assert load_demo_tasks(actor=world.leader.user) == ["Nhiệm vụ 6 tháng cuối năm 2021: mới 0, đã có 43"]
    assert listed(world.leader, overdue="true", page_size=100)[:1] == [min(t.pk for t in tasks)]


# The command


runner = CliRunner()


@pytest.fixture
def cli_db(world, monkeypatch):
    monkeypatch.setattr("dieuhanh.cli.migrate", lambda: None)
    return world


def test_tasks_import_command_lists_bad_lines_and_exits_2(cli_db, tmp_path):
    path = write_csv(tmp_path / "nv.csv", GOOD_AND_BAD)
    result = runner.invoke(app, ["tasks", "import", str(path), "--as", "leader"])
    assert result.exit_code == 2, result.output
    assert "dòng 3, cột due: “32/12/2021” không phải ngày hợp lệ" in result.output
    assert "Nhiệm vụ: mới 2, đã có 0, bị từ chối 4" in result.output
    good = write_csv(tmp_path / "ok.csv", [GOOD_AND_BAD[0], ["Việc mới", "", A, "", "1/1/2022"]])
    assert runner.invoke(app, ["tasks", "import", str(good), "--as", "leader"]).exit_code == 0
    unknown = runner.invoke(app, ["tasks", "import", str(good), "--as", "nobody"])
    assert unknown.exit_code == 1 and "nobody" in unknown.output
    refused = runner.invoke(app, ["tasks", "import", str(good), "--as", "benthanh-operator"])
    assert refused.exit_code == 1 and "cần quyền lãnh đạo hoặc chuyên viên" in refused.output
