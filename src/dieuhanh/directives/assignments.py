"""Government tasks (nhiệm vụ): who owes what by when, their progress reports, the lists the room
reads, imports.

The module is named `assignments`, not `tasks`, because a Django developer reads "tasks" as
background jobs; the model, its table and the API keep the word task (`Task`, `/api/v1/tasks`).

Status. The stored status is what the units reported and it follows the percent: 0% is *chưa thực
hiện* (or *đang thực hiện* when they say so), 1–99% *đang thực hiện*, 100% *hoàn thành*. *Quá hạn* is
never stored: a task past its due date (by the calendar in Vietnam) and not done shows as *quá hạn*,
computed at read time, so no nightly job is needed and a moved due date counts at once.

Percent never goes down silently: a lower percent than the last report needs its reason in the
report's text.

Imports (CSV or XLSX) keep the good lines: every valid line is written, all of them in one
transaction, and each bad line is reported with its line and column (DESIGN §5: nothing valid is
lost because a neighbour line was bad; nothing is half-written). A line naming a task that already
exists (same owner, title and basis) is reported as a duplicate, so loading a file twice adds nothing.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook
from openpyxl.styles import Font

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.directives.models import Directive, Task, TaskProgress, TaskStatus, current_code
from dieuhanh.directives.services import (
    EMPTY,
    NO_DIRECTIVE,
    DirectiveError,
    issuing_area,
    overdue_q,
    own_units,
    visible_directives,
)
from dieuhanh.errors import DomainError
from dieuhanh.sheets import TableError, append_row, read_table
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.units.services import unit_in_area
from dieuhanh.vnformat import VN_TZ, DateTextError, cell_date, short_date

STATUS_LABELS = {
    TaskStatus.NOT_STARTED: "chưa thực hiện",
    TaskStatus.IN_PROGRESS: "đang thực hiện",
    TaskStatus.DONE: "hoàn thành",
    TaskStatus.OVERDUE: "quá hạn",
}
REPORTED = (TaskStatus.NOT_STARTED, TaskStatus.IN_PROGRESS, TaskStatus.DONE)  # what a report may say
DEMO_FILE = Path(__file__).parent / "demo" / "tasks_2021H2.csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOO_LONG = _("is longer than %(n)s characters")


class AssignmentError(DirectiveError):
    """A task request that cannot be carried out: names the field (when one is to blame) and why.

    A kind of DirectiveError so that the API and the CLI answer it the same way."""


CoOwners = Task.co_owners.through


def vn_today() -> date:
    return timezone.now().astimezone(VN_TZ).date()


# Status, computed at read time


def shown_status(task: Task, today: date | None = None) -> str:
    """The status a person sees: the reported one, or quá hạn when past due and not done."""
    if task.status != TaskStatus.DONE and task.due is not None and task.due < (today or vn_today()):
        return TaskStatus.OVERDUE
    return task.status


def status_q(status: str, now: datetime) -> Q:
    """Tasks whose shown status is `status`."""
    if status == TaskStatus.OVERDUE:
        return overdue_q(now, Task)
    return Q(status=status) & ~overdue_q(now, Task)


# Who sees which tasks


def tasks_for(
    user: User,
    unit: Unit | None = None,
    *,
    overdue: bool = False,
    status: str | None = None,
    below: bool = False,
) -> QuerySet[Task]:
    """Tasks the user may see: owned by a unit of their area, or co-owned by one; soonest due first.

    `unit`: only the tasks it owns or co-owns (with `below`, also those of the units under it).
    """
    area = user.area()
    tasks: QuerySet[Task] = Task.objects.within(area)
    if not area.everything:
        tasks = tasks | Task.objects.filter(pk__in=CoOwners.objects.filter(area.q("unit")).values("task_id"))
    if unit is not None:
        tasks = tasks.filter(_of_unit(unit, below))
    now = timezone.now()
    if overdue:
        tasks = tasks.filter(overdue_q(now, Task))
    if status is not None:
        tasks = tasks.filter(status_q(status, now))
    return (
        tasks.select_related("owner", "created_by")
        .prefetch_related("co_owners")
        .order_by(F("due").asc(nulls_last=True), "id")
    )


def _of_unit(unit: Unit, below: bool) -> Q:
    if below:
        co_owned = CoOwners.objects.filter(unit__edition_id=unit.edition_id, unit__path__under=unit.path)
        return Q(owner__edition_id=unit.edition_id, owner__path__under=unit.path) | Q(
            pk__in=co_owned.values("task_id")
        )
    return Q(owner=unit) | Q(pk__in=CoOwners.objects.filter(unit=unit).values("task_id"))


def task_for(user: User, task_id: int) -> Task:
    """A task the user may see; one outside their area is as unknown as one that does not exist."""
    found = tasks_for(user).filter(pk=task_id).first()
    if found is None:
        raise AssignmentError("id", _("no task #%(id)s for you") % {"id": task_id}, status=404)
    return found


def history(task: Task) -> list[TaskProgress]:
    return list(task.progress.select_related("by").order_by("at", "id"))


# Create


@dataclass(frozen=True)
class TaskInput:
    title: str
    owner: str  # EDITION:CODE; a bare code is read on the 2025 map
    basis: str = ""
    co_owners: tuple[str, ...] = ()
    due: date | None = None
    directive: int | None = None


_TASK_FIELDS = ("title", "basis", "owner", "due", "directive")  # what a _Ready gives its Task as is


@dataclass(frozen=True)
class _Ready:
    """A task input checked and resolved: what create writes."""

    title: str
    basis: str
    owner: Unit
    co_owners: tuple[Unit, ...]
    due: date | None
    directive: Directive | None

    def key(self) -> tuple[int, str, str]:
        return _key(self.owner.pk, self.title, self.basis)

    def task(self, actor: User) -> Task:
        """The task to write (unsaved): one way for a task made alone and for an import's."""
        return Task(**{name: getattr(self, name) for name in _TASK_FIELDS}, created_by=actor)


def _key(owner: int, title: str, basis: str) -> tuple[int, str, str]:
    return owner, " ".join(title.split()).casefold(), " ".join(basis.split()).casefold()


def creating_area(actor: User) -> Area:
    """Where the actor may create tasks: under their leader or analyst grants."""
    area = issuing_area(actor)
    if not area:
        raise AssignmentError(None, _("creating a task needs a leader or analyst grant"), status=403)
    return area


def create_task(*, actor: User, data: TaskInput) -> Task:
    """A new task for a unit of the actor's area (leader or analyst over the owner unit)."""
    ready = _resolve(actor, data, creating_area(actor), {})
    with transaction.atomic():
        task = ready.task(actor)
        task.save()
        task.co_owners.set(ready.co_owners)
        audit(
            actor,
            "tasks.create",
            f"task:{task.pk}",
            title=task.title,
            owner=ready.owner.ref,
            co_owners=[u.ref for u in ready.co_owners],
            due=ready.due.isoformat() if ready.due else None,
        )
    return task


def _resolve(actor: User, data: TaskInput, area: Area, units: dict[str, Unit]) -> _Ready:
    """Check the input; errors name the field. `units` caches look-ups across the lines of an import."""
    title, basis = " ".join(_nfc(data.title).split()), _nfc(data.basis).strip()
    if not title:
        raise AssignmentError("title", EMPTY)
    if len(title) > 500:
        raise AssignmentError("title", TOO_LONG % {"n": 500})
    if len(basis) > 300:
        raise AssignmentError("basis", TOO_LONG % {"n": 300})
    seen = actor.area()
    owner = _unit("owner", data.owner, units, seen, area)
    co_owners = _co_owners(data.co_owners, owner, units, seen, area)
    return _Ready(title, basis, owner, co_owners, data.due, _directive(actor, data))


def _nfc(text: str) -> str:
    """Vietnamese text in one form: files from some systems spell "ệ" as "e" plus two accents."""
    return unicodedata.normalize("NFC", text)


def _unit(name: str, ref: str, units: dict[str, Unit], seen: Area, area: Area) -> Unit:
    """A unit the caller sees (404 otherwise) and may create tasks for (403 otherwise), looked up
    once per reference across the lines of an import."""
    if ref not in units:
        units[ref] = unit_in_area(ref, seen, field=name, may_act=area)
    return units[ref]


def _co_owners(
    refs: Iterable[str], owner: Unit, units: dict[str, Unit], seen: Area, area: Area
) -> tuple[Unit, ...]:
    chosen: dict[int, Unit] = {}
    for ref in refs:
        unit = _unit("co_owners", ref, units, seen, area)
        if unit.pk == owner.pk:
            raise AssignmentError("co_owners", _("%(ref)s is the owner") % {"ref": unit.ref})
        if unit.edition_id != owner.edition_id:
            raise AssignmentError(
                "co_owners",
                _("%(ref)s is not on the owner's map %(map)s") % {"ref": unit.ref, "map": owner.edition_id},
            )
        chosen[unit.pk] = unit
    return tuple(chosen.values())


def _directive(actor: User, data: TaskInput) -> Directive | None:
    if data.directive is None:
        return None
    found = visible_directives(actor).filter(pk=data.directive).first()
    if found is None:
        raise AssignmentError("directive", NO_DIRECTIVE % {"id": data.directive})
    return found


# Progress


def may_report(actor: User, task: Task) -> bool:
    """People of the owner or a co-owner unit (a grant on that very unit), and the task's creator."""
    if task.created_by_id == actor.pk:
        return True
    units = set(own_units(actor))
    return task.owner_id in units or task.co_owners.filter(pk__in=units).exists()


def report_progress(
    *, actor: User, task: Task, percent: int, text: str = "", status: str | None = None
) -> TaskProgress:
    """A progress report: percent 0–100 and text; the status follows the percent (100% is hoàn thành).

    A lower percent than the last report is accepted only with its reason in `text`.
    """
    if not may_report(actor, task):
        raise AssignmentError(
            None, _("only the owner or co-owner units' people, or the task's creator, may report"), status=403
        )
    text = text.strip()
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)  # reports on one task queue up
        new_status = next_status(locked, percent, text, status)
        now = timezone.now()
        report = TaskProgress.objects.create(
            task=locked, percent=percent, text=text, status=new_status, by=actor, at=now
        )
        before = locked.percent
        locked.percent, locked.status = percent, new_status
        locked.save(update_fields=["percent", "status", "updated_at"])
        audit(actor, "tasks.progress", f"task:{task.pk}", percent=percent, before=before, status=new_status)
    task.refresh_from_db()
    return report


def next_status(task: Task, percent: int, text: str, status: str | None) -> str:
    """The status after a report, or an AssignmentError naming what is wrong with it."""
    status = current_code(status)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise AssignmentError("percent", _("must be a whole number from 0 to 100"))
    if status is not None and status not in REPORTED:
        raise AssignmentError(
            "status",
            _("must be one of %(codes)s; overdue follows from the due date") % {"codes": ", ".join(REPORTED)},
        )
    if percent < task.percent and not text:
        raise AssignmentError(
            "text", _("the percent goes down from %(was)s%%: give the reason") % {"was": task.percent}
        )
    if percent == task.percent and not text and status in (None, task.status):
        raise AssignmentError("text", _("a report needs text, a new percent or a new status"))
    if percent == 100:
        if status not in (None, TaskStatus.DONE):
            raise AssignmentError("status", _("percent 100 means done"))
        return TaskStatus.DONE
    if status == TaskStatus.DONE:
        raise AssignmentError("status", _("done needs percent 100"))
    if percent > 0:
        if status == TaskStatus.NOT_STARTED:
            raise AssignmentError(
                "status", _("not started needs percent 0%%, not %(percent)s%%") % {"percent": percent}
            )
        return TaskStatus.IN_PROGRESS
    started = TaskStatus.IN_PROGRESS if task.status == TaskStatus.IN_PROGRESS else TaskStatus.NOT_STARTED
    return status or started


# Import from CSV or XLSX

COLUMNS: dict[str, tuple[str, ...]] = {  # field → headers that name it (lower case)
    "title": ("title", "nhiệm vụ", "tên nhiệm vụ"),
    "basis": ("basis", "căn cứ"),
    "owner": ("owner", "đơn vị chủ trì", "chủ trì"),
    "co_owners": ("co_owners", "đơn vị phối hợp", "phối hợp"),
    "due": ("due", "hạn", "thời hạn"),
}
REQUIRED = ("title", "owner")


@dataclass
class TaskImport:
    created: list[int] = field(default_factory=list)  # task ids
    duplicates: list[int] = field(default_factory=list)  # line numbers
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, why


def import_tasks(*, actor: User, path: Path) -> TaskImport:
    """Create the tasks of a CSV or XLSX file (one per line); bad lines are reported and skipped."""
    area = creating_area(actor)
    header, rows = _read(path)
    names = _columns(header, path)
    result, checked = TaskImport(), _check_lines(actor, area, rows, names)
    fresh = _drop_duplicates(checked, result)
    result.rejected = sorted((line, names.get(f, f), why) for line, f, why in _errors(checked))
    with transaction.atomic():
        result.created = _write(actor, [r for _, r in fresh])
        audit(
            actor,
            "tasks.import",
            path.name,
            rows=len(result.created),
            tasks=result.created,
            duplicates=result.duplicates,
            rejected=[list(r) for r in result.rejected],
        )
    return result


def _write(actor: User, ready: list[_Ready]) -> list[int]:
    """The tasks and their co-owners in two bulk inserts; their ids in the order given."""
    tasks = Task.objects.bulk_create([r.task(actor) for r in ready])
    links = [
        CoOwners(task_id=t.pk, unit_id=u.pk) for t, r in zip(tasks, ready, strict=True) for u in r.co_owners
    ]
    CoOwners.objects.bulk_create(links)
    return [t.pk for t in tasks]


Line = tuple[int, "_Ready | DomainError"]


def _check_lines(
    actor: User, area: Area, rows: Iterable[tuple[int, dict[str, Any]]], names: dict[str, str]
) -> list[Line]:
    units: dict[str, Unit] = {}
    checked: list[Line] = []
    for line, row in rows:
        values = {name: row.get(header) for name, header in names.items()}
        try:
            checked.append((line, _resolve(actor, _task_input(values), area, units)))
        except DomainError as e:
            checked.append((line, e))
    return checked


def _errors(lines: list[Line]) -> Iterator[tuple[int, str, str]]:
    for line, checked in lines:
        if isinstance(checked, DomainError):
            yield line, checked.field or "", str(checked.message)


def _drop_duplicates(lines: list[Line], result: TaskImport) -> list[tuple[int, _Ready]]:
    """The valid lines not already tasks (same owner, title, basis), nor repeated within the file."""
    ready = [(line, r) for line, r in lines if isinstance(r, _Ready)]
    existing = Task.objects.filter(owner__in={r.owner.pk for _, r in ready}).values_list(
        "owner_id", "title", "basis"
    )
    seen = {_key(*row) for row in existing}
    fresh = []
    for line, r in ready:
        if r.key() in seen:
            result.duplicates.append(line)
        else:
            seen.add(r.key())
            fresh.append((line, r))
    return fresh


def _task_input(values: dict[str, Any]) -> TaskInput:
    def text(name: str) -> str:
        value = values.get(name)
        return "" if value is None else str(value).strip()

    return TaskInput(
        title=text("title"),
        owner=text("owner"),
        basis=text("basis"),
        co_owners=tuple(ref for ref in re.split(r"[;,\s]+", text("co_owners")) if ref),
        due=_date(values.get("due")),
    )


def _date(value: Any) -> date | None:
    try:
        return cell_date(value)
    except DateTextError as e:
        raise AssignmentError("due", e.describe()) from None


def _columns(header: list[str], path: Path) -> dict[str, str]:
    """Field → the file's own header for it; refuses a file without the required columns."""
    found: dict[str, str] = {}
    for name in header:
        for field_name, aliases in COLUMNS.items():
            if _nfc(name).strip().lower() in aliases and field_name not in found:
                found[field_name] = name
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise AssignmentError(
            None,
            _("%(file)s: the header lacks the column(s) %(columns)s")
            % {"file": path.name, "columns": ", ".join(missing)},
        )
    return found


def _read(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """The header and (line number, row) of a CSV or XLSX file, through the one table reader."""
    try:
        return read_table(path)
    except TableError as e:
        raise AssignmentError(None, str(e)) from None


def load_demo_tasks(*, actor: User) -> list[str]:
    """The ministry's orientation tasks for the second half of 2021 (seed 001, section IV); once."""
    result = import_tasks(actor=actor, path=DEMO_FILE)
    lines = [f"Nhiệm vụ 6 tháng cuối năm 2021: mới {len(result.created)}, đã có {len(result.duplicates)}"]
    lines += [f"  dòng {line}, cột {column}: {why}" for line, column, why in result.rejected]
    return lines


# Export


EXPORT_HEADERS = (
    "STT",
    "Nhiệm vụ",
    "Căn cứ",
    "Đơn vị chủ trì",
    "Đơn vị phối hợp",
    "Hạn",
    "Trạng thái",
    "Tiến độ (%)",
)


def export_xlsx(tasks: Iterable[Task], title: str) -> bytes:
    """A task list for officials: a title line, a header, one row per task."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Nhiệm vụ"
    append_row(sheet, [title])
    sheet["A1"].font = Font(bold=True, size=13)
    append_row(sheet, EXPORT_HEADERS)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    today = vn_today()
    for n, task in enumerate(tasks, start=1):
        append_row(sheet, _export_row(n, task, today))
    for letter, width in zip("ABCDEFGH", (6, 70, 30, 30, 40, 12, 16, 12), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _export_row(n: int, task: Task, today: date) -> list[Any]:
    return [
        n,
        task.title,
        task.basis,
        task.owner.name,
        "; ".join(u.name for u in task.co_owners.all()),
        short_date(task.due) if task.due else "",
        STATUS_LABELS[TaskStatus(shown_status(task, today))],
        task.percent,
    ]
