"""Stored codes are English (issue 15, point 7): a directive's priority, a task's status. The old
Vietnamese codes are still accepted on input for one release, and the migrations rewrite stored values
both ways, a replayed report's task counts included."""

from __future__ import annotations

from importlib import import_module

from django.apps import apps

from dieuhanh.directives.followup import plan_for
from dieuhanh.directives.models import Delivery, Directive, Revision, Task, TaskProgress
from dieuhanh.reports.models import Report, ReportDefinition


def post(caller, url: str, body: dict):
    return caller.client().post(url, body, content_type="application/json")


def issue(caller, priority: str):
    body = {"title": "Xét nghiệm diện rộng", "priority": priority, "targets": {"units": ["VN-2025:26743"]}}
    return post(caller, "/api/v1/directives", body)


def post_task(caller):
    return post(caller, "/api/v1/tasks", {"title": "Số hóa hồ sơ hộ tịch", "owner": "VN-2025:26743"})


def report(caller, task_id: int, **fields):
    return post(caller, f"/api/v1/tasks/{task_id}/progress", fields)


def listed(caller, **params) -> list[int]:
    return [t["id"] for t in caller.client().get("/api/v1/tasks", params).json()["items"]]


def test_the_old_codes_are_read_on_input_and_the_answers_have_the_new_ones(world, settings):
    urgent = issue(world.leader, priority="khan").json()
    assert urgent["priority"] == "urgent"
    assert Directive.objects.get(pk=urgent["id"]).priority == "urgent"
    assert issue(world.leader, priority="gap").status_code == 422

    task = post_task(world.leader).json()
    started = report(world.operator_a, task["id"], percent=0, text="Đã giao", status="dang_thuc_hien")
    assert started.status_code == 201, started.content
    assert (started.json()["status"], started.json()["status_label"]) == ("in_progress", "đang thực hiện")
    assert listed(world.leader, status="dang_thuc_hien") == listed(world.leader, status="in_progress")
    assert listed(world.leader, status="in_progress") == [task["id"]]
    assert listed(world.leader, status="qua_han") == []

    settings.FOLLOWUP = {"khan": {"ack_escalation": 90}}  # DIEUHANH_FOLLOWUP written for the old codes
    assert plan_for("urgent").ack_escalation.total_seconds() == 90 * 60


def test_the_migrations_rewrite_the_stored_codes_both_ways(world):
    directives = import_module("dieuhanh.directives.migrations.0002_english_codes")
    reports = import_module("dieuhanh.reports.migrations.0004_snapshot_task_codes")
    directive = Directive.objects.get(pk=issue(world.leader, priority="normal").json()["id"])
    changed = {"priority": "urgent", "note": "Nâng mức"}
    assert post(world.leader, f"/api/v1/directives/{directive.pk}/update", changed).status_code == 200
    task = Task.objects.get(pk=post_task(world.leader).json()["id"])
    report(world.operator_a, task.pk, percent=100, text="Xong")
    definition = ReportDefinition.objects.create(
        code="thu", name="Thử", period_type="monthly", unit=world.nation, body={}, owner_unit=world.nation
    )
    counts = {"done": 1, "overdue": 2}
    snapshot = {"facts": {f"tasks|{world.nation.ref}": {"counts": counts, "overdue": []}, "fig|x": None}}
    archived = Report.objects.create(
        definition=definition, unit=world.nation, period="202108", format="md", snapshot=snapshot
    )

    def stored() -> tuple:
        archived.refresh_from_db()
        return (
            Directive.objects.get(pk=directive.pk).priority,
            Task.objects.get(pk=task.pk).status,
            TaskProgress.objects.get(task=task).status,
            archived.snapshot["facts"][f"tasks|{world.nation.ref}"]["counts"],
            Revision.objects.get(directive=directive, version=2).changes["priority"],
        )

    reports.backwards(apps, None)
    directives.backwards(apps, None)
    old_counts = {"hoan_thanh": 1, "qua_han": 2}
    assert stored() == ("khan", "hoan_thanh", "hoan_thanh", old_counts, ["thuong", "khan"])
    directives.forwards(apps, None)
    reports.forwards(apps, None)
    assert stored() == ("urgent", "done", "done", counts, ["normal", "urgent"])
    assert archived.snapshot["facts"]["fig|x"] is None


def test_the_delivery_page_names_a_changed_priority_in_vietnamese(world):
    directive = issue(world.leader, priority="normal").json()
    post(world.leader, f"/api/v1/directives/{directive['id']}/update", {"priority": "urgent", "note": "Gấp"})
    delivery = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_a)
    page = world.operator_a.browser().get(f"/inbox/{delivery.pk}/").content.decode()
    assert "priority: Thường → Khẩn" in page
