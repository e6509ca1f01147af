"""Validation rules where values enter (API, CSV, Excel, the entry page) and in runs over an area."""

from __future__ import annotations

import io

from django.core import mail
from openpyxl import load_workbook

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.directives import quality_assignments
from dieuhanh.directives.models import Task, TaskStatus
from dieuhanh.indicators import analytics
from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.excel import XLSX_TYPE
from dieuhanh.indicators.models import DataValue
from dieuhanh.indicators.periods import parse
from dieuhanh.indicators.quality import grid
from dieuhanh.indicators.quality.models import Violation
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from tests.factories import A, B, make_caller
from tests.factories import quality_post as post
from tests.factories import quality_row as row


def stored(element: str, unit: str = A, period: str = "202401") -> float | None:
    edition, code = unit.split(":")
    found = DataValue.objects.filter(
        element__code=element, unit__edition_id=edition, unit__code=code, period=period
    ).first()
    return found.value if found else None


def test_a_refusing_rule_turns_the_value_away_naming_rule_and_values(world, services):
    post(world.operator_a, row("dossiers_received", 40))
    response = post(world.operator_a, row("dossiers_online", 50))
    assert response.status_code == 409, response.content
    (conflict,) = response.json()["conflicts"]
    assert conflict["errorCode"] == "E7630" and conflict["field"] == "value"
    reason = conflict["value"]
    assert "Hồ sơ trực tuyến không vượt hồ sơ tiếp nhận" in reason and "online_within_received" in reason
    assert "#{dossiers_online} = 50" in reason and "#{dossiers_received} = 40" in reason
    assert stored("dossiers_online") is None
    assert not Violation.objects.exists()  # nothing written, nothing to follow


def test_a_batch_keeps_its_good_lines_and_reports_each_refused_one(world, services):
    response = post(
        world.operator_a,
        row("dossiers_received", 40, period="202401"),
        row("dossiers_online", 50, period="202401"),  # breaks the rule with the line above
        row("dossiers_received", 40, period="202402"),
        row("dossiers_online", 30, period="202402"),  # fine
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "WARNING"
    assert sorted(c["index"] for c in body["conflicts"]) == [0, 1]  # both figures of the broken cell
    assert body["importCount"]["imported"] == 2
    assert (stored("dossiers_received", period="202402"), stored("dossiers_online", period="202402")) == (
        40,
        30,
    )
    assert stored("dossiers_online", period="202401") is None


def test_a_csv_import_names_the_refused_line(world, services):
    text = (
        "dataElement,period,orgUnit,categoryOptionCombo,value,comment\n"
        f"dossiers_received,202401,{A},,40,\n"
        f"dossiers_online,202403,{A},,5,\n"
        f"dossiers_received,202403,{A},,4,\n"
    )
    response = world.operator_a.client().post("/api/v1/datavalues", text, content_type="text/csv")
    body = response.json()
    assert body["importCount"]["imported"] == 1
    assert sorted(c["line"] for c in body["conflicts"]) == [3, 4]


def test_an_excel_upload_keeps_good_lines_and_names_the_refused_row(world, services):
    client = world.operator_a.client()
    template = client.get("/api/v1/datasets/dvc_xa/template.xlsx", {"unit": A, "period": "202401"})
    book = load_workbook(io.BytesIO(template.content))
    sheet = book.worksheets[0]
    rows = {r[0].value: r[0].row for r in sheet.iter_rows(min_row=7) if r[0].value}
    sheet.cell(rows["dossiers_received"], 5, 10)
    sheet.cell(rows["dossiers_online"], 5, 12)
    sheet.cell(rows["staff"], 5, 3)
    out = io.BytesIO()
    book.save(out)
    response = client.post("/api/v1/datasets/dvc_xa/upload", out.getvalue(), content_type=XLSX_TYPE)
    body = response.json()
    assert response.status_code == 200 and body["importCount"]["imported"] == 1
    assert sorted(c["line"] for c in body["conflicts"]) == sorted(
        [rows["dossiers_received"], rows["dossiers_online"]]
    )
    assert stored("staff") == 3 and stored("dossiers_online") is None


def test_the_entry_page_shows_the_rule_that_refused(world, services):
    page = world.operator_a.browser().post(
        f"/entry/dvc_xa/?unit={A}&period=202401",
        {"v:dossiers_received:": "10", "v:dossiers_online:": "12", "v:staff:": "2"},
    )
    text = page.content.decode()
    assert page.status_code == 200
    assert "Hồ sơ trực tuyến không vượt hồ sơ tiếp nhận" in text
    assert stored("staff") == 2 and stored("dossiers_online") is None


def test_a_warning_rule_lets_the_value_in_records_it_and_a_fix_resolves_it(world, services):
    response = post(world.operator_a, row("staff", 0))
    body = response.json()
    assert response.status_code == 200 and body["status"] == "SUCCESS"
    (warning,) = body["validationViolations"]
    assert warning["rule"] == "staff_present" and warning["leftSide"]["value"] == 0
    violation = Violation.objects.get()
    assert (violation.state, violation.unit.ref, violation.period) == ("open", A, "202401")
    post(world.operator_a, row("staff", 2))
    violation.refresh_from_db()
    assert violation.state == "resolved" and violation.resolved_by == world.operator_a.user
    stats = world.province_operator.client().get("/api/v1/validation/violations").json()
    assert (stats["total"], stats["resolved"], stats["resolvedShare"]) == (1, 1, 100.0)


def hcm_communes() -> list[Unit]:
    return list(
        Unit.objects.filter(edition_id="VN-2025", path__under="/VN/79/", kind="commune").order_by("path")
    )


def test_a_run_returns_every_violation_past_500_and_only_inside_the_area(world, services):
    communes = hcm_communes()
    months = ["202401", "202402", "202403", "202404"]
    records = [row("staff", 0, unit=u.ref, period=m) for u in communes for m in months]
    records += [row("staff", 1, unit="VN-2025:01", period="202401")]  # Hà Nội's own figure: outside
    import_values(records, actor=None, area=Area(True, frozenset()))
    expected = len(communes) * len(months)
    assert expected > 500
    Violation.objects.all().delete()  # the run finds them again

    response = world.province_operator.client().post(
        "/api/v1/validation/run",
        {"dataSet": "dvc_xa", "periods": months, "unit": "VN-2025:79", "children": True},
        content_type="application/json",
    )
    body = response.json()
    assert response.status_code == 200, body
    # staff_present applies at every level: the city's total (0) breaks it too, once per month
    expected += len(months)
    assert body["violationCount"] == expected == len(body["violations"])
    assert {v["orgUnit"] for v in body["violations"]} == {u.ref for u in communes} | {"VN-2025:79"}
    assert Violation.objects.filter(state="open").count() == expected

    csv = world.province_operator.client().post(
        "/api/v1/validation/run?format=csv",
        {"rules": ["staff_present"], "periods": months, "unit": "VN-2025:79"},
        content_type="application/json",
    )
    assert csv["Content-Type"].startswith("text/csv")
    assert len(csv.content.decode().strip().splitlines()) == expected + 1
    assert "VN-2025:01" not in csv.content.decode()


def test_a_run_outside_the_callers_area_is_not_found(world, services):
    post(world.operator_b, row("staff", 0, unit=B))
    client = world.operator_a.client()
    answer = client.post(
        "/api/v1/validation/run",
        {"dataSet": "dvc_xa", "periods": ["202401"], "unit": B},
        content_type="application/json",
    )
    assert answer.status_code == 404
    assert B not in answer.content.decode() or "không có đơn vị" in answer.json()["detail"]
    own = client.post(
        "/api/v1/validation/run",
        {"dataSet": "dvc_xa", "periods": ["202401"]},
        content_type="application/json",
    )
    assert own.status_code == 200 and own.json()["violationCount"] == 0  # its own commune: nothing wrong
    assert client.get("/api/v1/validation/violations").json()["total"] == 0  # B's is not A's to see
    assert client.get(f"/api/v1/validation/violations?unit={B}").status_code == 404


def test_a_violation_becomes_a_task_for_its_unit_and_its_operators_are_told(
    world, services, monkeypatch, django_capture_on_commit_callbacks
):
    world.operator_a.user.email = "benthanh@example.vn"
    world.operator_a.user.save()
    heard: list[tuple] = []
    monkeypatch.setattr(
        quality_assignments,
        "publish_on_commit",
        lambda keys, name, data: heard.append((list(keys), name, data)),
    )
    post(world.operator_a, row("staff", 0))
    violation = Violation.objects.get()
    url = f"/api/v1/validation/violations/{violation.pk}/task"
    due = {"due": "2024-02-15"}
    assert world.operator_b.client().post(url, due, content_type="application/json").status_code == 404
    assert world.operator_a.client().post(url, due, content_type="application/json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = world.leader.client().post(url, due, content_type="application/json")
    assert response.status_code == 201, response.content
    task = Task.objects.get(pk=response.json()["task"])
    assert task.owner == world.commune_a and str(task.due) == "2024-02-15"
    assert "Có cán bộ một cửa" in task.title
    violation.refresh_from_db()
    assert violation.task_id == task.pk
    (message,) = mail.outbox
    assert message.to == ["benthanh@example.vn"] and "Có cán bộ một cửa" in message.subject
    assert "#{staff} = 0" in message.body
    assert heard == [([world.commune_a.pk], "notification", heard[0][2])]
    assert heard[0][2]["task"] == task.pk and heard[0][2]["purpose"] == "quality"
    assert world.leader.client().post(url, due, content_type="application/json").status_code == 409
    stats = world.leader.client().get("/api/v1/validation/violations").json()
    assert (stats["withTask"], stats["resolvedShare"]) == (1, 0.0)


def test_a_fixed_violation_closes_its_task_and_counts_as_resolved(world, services):
    """Fixed at entry, or found fixed by a run: the task is done, with a note saying why."""
    from dieuhanh.indicators.quality import rules

    post(world.operator_a, row("staff", 0), row("staff", 0, period="202402"))
    january, february = Violation.objects.order_by("period")
    due = parse("202403").start
    tasks = [
        quality_assignments.task_from_violation(actor=world.leader.user, violation=v, due=due)
        for v in (january, february)
    ]
    client = world.leader.client()
    assert client.get("/api/v1/validation/violations").json()["resolvedShare"] == 0.0

    post(world.operator_a, row("staff", 3))  # January corrected on the entry path
    first = Task.objects.get(pk=tasks[0].pk)
    assert (first.status, first.percent) == (TaskStatus.DONE, 100)
    (note,) = first.progress.all()
    assert note.by == world.operator_a.user
    assert "Có cán bộ một cửa" in note.text and "nhập lại" in note.text and "tháng 1/2024" in note.text
    assert Task.objects.get(pk=tasks[1].pk).status == TaskStatus.NOT_STARTED
    assert client.get("/api/v1/validation/violations").json()["resolvedShare"] == 50.0

    # February corrected behind the rules' back (a direct change): the next run finds it holds.
    DataValue.objects.filter(element__code="staff", period="202402").update(value=2)
    chosen = rules.rules_named("dvc_xa", [])
    rules.run(chosen, [parse("202402")], [world.commune_a], actor=None)
    second = Task.objects.get(pk=tasks[1].pk)
    assert second.status == TaskStatus.DONE and "chạy lại kiểm tra" in second.progress.get().text
    stats = client.get("/api/v1/validation/violations").json()
    assert (stats["resolved"], stats["resolvedShare"]) == (2, 100.0)


def test_the_column_way_and_the_cell_way_find_the_same_violations(world, services):
    """Sums of stored figures are judged a column at a time (numpy); any rule can be judged cell by
    cell. On the same figures, with missing ones, both strategies for them, a rule limited to a level and
    every operator, both find the same cells, skips, violations and values."""
    import random

    from dieuhanh.indicators.models import DataElement
    from dieuhanh.indicators.quality import rules
    from dieuhanh.indicators.quality.rules import save_rule

    any_missing, all_missing = "skip_if_any_missing", "skip_if_all_missing"
    extra = [
        ("sums", "#{dossiers_online} + 5", ">=", "#{dossiers_received} - #{staff}", any_missing, ()),
        ("equal", "#{dossiers_online}", "==", "#{dossiers_received}", "never_skip", ()),
        ("negated", "-#{staff}", "<", "0", all_missing, ()),
        ("differ", "#{dossiers_online}", "!=", "#{staff}", any_missing, (2,)),
        ("more", "#{dossiers_received}", ">", "#{dossiers_online} + 0.5", any_missing, ()),
    ]
    for code, left, op, right, missing, levels in extra:
        save_rule(actor=None, code=code, name=code, left=left, operator=op, right=right, missing=missing,
                  data_set="dvc_xa", levels=levels)  # fmt: skip
    communes = hcm_communes()[:40]
    elements = {e.code: e for e in DataElement.objects.all()}
    pick = random.Random(19)
    DataValue.objects.bulk_create(
        DataValue(element=elements[code], unit=u, period=m, value=pick.choice([0, 1, 2, 3, 7, 7.5, 12]))
        for u in communes
        for m in ("202401", "202402")
        for code in ("dossiers_received", "dossiers_online", "staff")
        if pick.random() < 0.8  # about one figure in five missing
    )
    periods = [parse("202401"), parse("202402")]
    compiled = [rules.compile_rule(r) for r in rules.rules_named("dvc_xa", [])]
    assert len(compiled) == 7 and all(c.left.linear and c.right.linear for c in compiled)
    stored, _others = grid.stored_refs(set().union(*(c.refs for c in compiled)), communes, periods)
    by_columns = rules._run_matrix(compiled, periods, communes, stored, keep_keys=True)
    by_cells = rules._run_cells(compiled, periods, communes, None)

    def seen(results):
        return {
            r.compiled.rule.code: (
                r.keys,
                r.skipped,
                {k: (f.left, f.right) for k, f in r.findings.items()},
            )
            for r in results
        }

    assert seen(by_columns) == seen(by_cells)
    assert all(r.findings and r.keys for r in by_cells)
    assert sum(r.skipped for r in by_cells) > 0


def test_the_stored_way_and_analytics_agree(world, services):
    communes = hcm_communes()[:30]
    records = [
        row("dossiers_received", 10 + i, unit=u.ref, period=m)
        for i, u in enumerate(communes)
        for m in ("202401", "202402")
    ]
    import_values(records, actor=None, area=Area(True, frozenset()))
    periods = [parse("202401"), parse("202402")]
    fast = grid.read({"dossiers_received"}, communes, periods).columns["dossiers_received"]
    dim = analytics.dimension("dossiers_received")
    answer = analytics.compute([dim], periods, communes)
    slow = {k: v.value for k, v in answer.cells["dossiers_received"].items() if k[1] in {"202401", "202402"}}
    assert fast == slow and len(fast) == 60


def test_an_admin_makes_a_rule_through_the_api_and_others_cannot(world, services):
    admin = make_caller("quantri", world.nation, "admin")
    rule = {
        "code": "received_positive",
        "name": "Có hồ sơ tiếp nhận",
        "left": "#{dossiers_received}",
        "operator": ">",
        "right": "0",
        "strictness": "warn",
        "data_set": "dvc_xa",
    }
    made = admin.client().post("/api/v1/validation/rules", rule, content_type="application/json")
    assert made.status_code == 201, made.content
    assert made.json()["owner_unit"] == "VN-2025:VN"
    assert AuditEntry.objects.filter(action="validationrule.create", target="received_positive").exists()
    refused = world.operator_a.client().post(
        "/api/v1/validation/rules", rule, content_type="application/json"
    )
    assert refused.status_code == 403
    bad = admin.client().post(
        "/api/v1/validation/rules", {**rule, "left": "#{nothing} +"}, content_type="application/json"
    )
    assert bad.status_code == 422 and bad.json()["field"] == "left"
    codes = [r["code"] for r in world.operator_a.client().get("/api/v1/validation/rules").json()]
    assert codes == ["online_within_received", "received_positive", "staff_present"]


def test_a_dry_run_refuses_alike_and_records_nothing(world, services):
    body = {"dataValues": [row("staff", 0), row("dossiers_received", 4), row("dossiers_online", 9)]}
    response = world.operator_a.client().post(
        "/api/v1/datavalues?dryRun=true", body, content_type="application/json"
    )
    answer = response.json()
    assert answer["dryRun"] and sorted(c["index"] for c in answer["conflicts"]) == [1, 2]
    assert [w["rule"] for w in answer["validationViolations"]] == ["staff_present"]
    assert not Violation.objects.exists() and not DataValue.objects.exists()
