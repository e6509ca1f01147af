"""Government tasks' API (`/api/v1/tasks`): the lists per unit and the overdue list, a task with
its history, progress reports.

Routes are thin: every check and write is a verb of `dieuhanh.directives.assignments`; errors are
AssignmentError (problem+json)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import BeforeValidator, Field

from dieuhanh.accounts.guards import caller
from dieuhanh.directives import assignments
from dieuhanh.directives.models import Task, TaskProgress, TaskStatus, current_code
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import short_datetime

router = Router(tags=["tasks"])

ShownStatus = Literal["not_started", "in_progress", "done", "overdue"]
ReportedStatus = Literal["not_started", "in_progress", "done"]
# The old codes (chua_thuc_hien, dang_thuc_hien, hoan_thanh, qua_han) are still accepted on input for
# one release: directives.models.OLD_CODES.
ShownStatusIn = Annotated[ShownStatus, BeforeValidator(current_code)]
ReportedStatusIn = Annotated[ReportedStatus, BeforeValidator(current_code)]


class TaskIn(Schema):
    title: str = Field(..., min_length=1, max_length=500)
    basis: str = Field("", max_length=300, description="the basis document, e.g. Quyết định 942/QĐ-TTg")
    owner: str = Field(..., description="EDITION:CODE of the unit that owes the task (chủ trì)")
    co_owners: list[str] = Field(default_factory=list, max_length=500, description="EDITION:CODE (phối hợp)")
    due: date | None = None
    directive: int | None = Field(None, description="the directive the task comes from")


class ProgressIn(Schema):
    percent: int = Field(
        ..., ge=0, le=100, description="lower than the last report only with a reason in text"
    )
    text: str = Field("", max_length=10_000)
    status: ReportedStatusIn | None = Field(
        None, description="default: follows the percent; overdue (quá hạn) is computed"
    )


class UnitRef(Schema):
    ref: str
    name: str


class TaskOut(Schema):
    id: int
    title: str
    basis: str
    owner: UnitRef
    co_owners: list[UnitRef]
    due: date | None
    status: ShownStatus = Field(description="as reported, or overdue when past due and not done")
    status_label: str
    overdue: bool
    percent: int
    directive: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class ProgressOut(Schema):
    percent: int
    text: str
    status: ReportedStatus
    status_label: str
    by: str
    at: datetime


class TaskDetail(TaskOut):
    progress: list[ProgressOut]


class TaskPage(Schema):
    count: int
    items: list[TaskOut]


class TaskFilter(Schema):
    unit: str | None = Field(None, description="EDITION:CODE: the tasks this unit owns or co-owns")
    below: bool = Field(False, description="with unit: also the tasks of the units under it")
    status: ShownStatusIn | None = None
    overdue: bool = Field(False, description="only the tasks past due and not done")
    page: int = Field(1, ge=1, le=100_000)  # an offset past 2^63 overflows SQLite
    page_size: int = Field(50, ge=1, le=500)


def _filtered(request: HttpRequest, q: TaskFilter):
    user = caller(request)
    unit = unit_in_area(q.unit, user.area()) if q.unit else None
    return assignments.tasks_for(user, unit, overdue=q.overdue, status=q.status, below=q.below)


@router.get("/tasks", response=TaskPage, summary="Tasks of your area (owned or co-owned), soonest due first")
@area_aware
def list_tasks(request: HttpRequest, q: Query[TaskFilter]):
    found = _filtered(request, q)
    start = (q.page - 1) * q.page_size
    page, today = found[start : start + q.page_size], assignments.vn_today()
    return {"count": found.count(), "items": [_task_out(t, today) for t in page]}


@router.post("/tasks", response={201: TaskDetail}, summary="Create a task for a unit you lead or analyse")
@area_aware
def post_task(request: HttpRequest, body: TaskIn):
    data = assignments.TaskInput(
        title=body.title,
        owner=body.owner,
        basis=body.basis,
        co_owners=tuple(body.co_owners),
        due=body.due,
        directive=body.directive,
    )
    task = assignments.create_task(actor=caller(request), data=data)
    return Status(201, _detail(assignments.task_for(caller(request), task.pk)))


@router.get(
    "/tasks/export.xlsx",
    summary="The filtered task list as XLSX, for officials",
    openapi_extra={"responses": {200: {"content": {assignments.XLSX_TYPE: {}}}}},
)
@area_aware
def export_tasks(request: HttpRequest, q: Query[TaskFilter]) -> HttpResponse:
    made = short_datetime(timezone.now())
    title = f"Danh sách nhiệm vụ{' quá hạn' if q.overdue else ''}, lập lúc {made}"
    response = HttpResponse(
        assignments.export_xlsx(_filtered(request, q), title), content_type=assignments.XLSX_TYPE
    )
    response["Content-Disposition"] = 'attachment; filename="nhiem-vu.xlsx"'
    return response


@router.get(
    "/tasks/{task_id}", response=TaskDetail, summary="One task of your area, with its progress history"
)
@area_aware
def get_task(request: HttpRequest, task_id: int):
    return _detail(assignments.task_for(caller(request), task_id))


@router.post(
    "/tasks/{task_id}/progress",
    response={201: TaskDetail},
    summary="Report progress: percent and text (the owner's or a co-owner's people, or the creator)",
)
@area_aware
def post_progress(request: HttpRequest, task_id: int, body: ProgressIn):
    user = caller(request)
    task = assignments.task_for(user, task_id)
    assignments.report_progress(
        actor=user, task=task, percent=body.percent, text=body.text, status=body.status
    )
    return Status(201, _detail(assignments.task_for(user, task_id)))


def _task_out(task: Task, today: date) -> dict[str, Any]:
    shown = assignments.shown_status(task, today)
    return {
        "id": task.pk,
        "title": task.title,
        "basis": task.basis,
        "owner": _ref(task.owner),
        "co_owners": [_ref(u) for u in task.co_owners.all()],
        "due": task.due,
        "status": shown,
        "status_label": assignments.STATUS_LABELS[TaskStatus(shown)],
        "overdue": shown == TaskStatus.OVERDUE,
        "percent": task.percent,
        "directive": task.directive_id,
        "created_by": task.created_by.username,
        "created_at": timezone.localtime(task.created_at),
        "updated_at": timezone.localtime(task.updated_at),
    }


def _detail(task: Task) -> dict[str, Any]:
    return {
        **_task_out(task, assignments.vn_today()),
        "progress": [_progress_out(p) for p in assignments.history(task)],
    }


def _progress_out(p: TaskProgress) -> dict[str, Any]:
    return {
        "percent": p.percent,
        "text": p.text,
        "status": p.status,
        "status_label": assignments.STATUS_LABELS[TaskStatus(p.status)],
        "by": p.by.username,
        "at": timezone.localtime(p.at),
    }


def _ref(unit: Unit) -> dict[str, str]:
    return {"ref": unit.ref, "name": unit.name}
