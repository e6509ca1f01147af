"""A validation violation handed to its unit as a task (issue 19, point 1), and the unit's operators
told through the follow-up channels (in the app, e-mail).

Violations live in the indicators layer (indicators.quality), tasks here: this module is the glue,
above both, so that the layers keep depending downward only. The task is an ordinary task
(directives.assignments.create_task: a leader or analyst over the unit, audited), titled with the rule and
the values, with its due date; the violation keeps the task's id. When the figures are corrected, the
next entry or run resolves the violation, and the share resolved counts it.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import date
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema, Status
from pydantic import Field

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.directives import assignments
from dieuhanh.directives.models import Task, TaskProgress, TaskStatus
from dieuhanh.indicators.periods import parse
from dieuhanh.indicators.quality.models import Violation
from dieuhanh.indicators.quality.rules import Finding
from dieuhanh.live import publish_on_commit
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware

logger = logging.getLogger(__name__)
router = Router(tags=["data quality"])

OPERATOR_ROLES = ("operator",)


def operators_of(unit: Unit) -> list[User]:
    return list(
        User.objects.filter(grants__unit=unit, grants__role__in=OPERATOR_ROLES, is_active=True)
        .distinct()
        .order_by("username")
    )


def notify_operators(unit: Unit, subject: str, text: str, *, reference: dict[str, Any]) -> None:
    """Inside the verb's transaction: once it commits, the unit's operators are told in the app (the
    unit's inbox stream, event `notification`) and by e-mail to those with an address."""
    note = {"purpose": "quality", "subject": subject, "text": text, **reference}
    publish_on_commit([unit.pk], "notification", note)
    transaction.on_commit(lambda: _mail_operators(unit, subject, text))


def _mail_operators(unit: Unit, subject: str, text: str) -> int:
    """Returns how many e-mails went out; a mail failure is logged, never raised (the task is made
    whatever the mail server says)."""
    addresses = sorted({u.email for u in operators_of(unit) if u.email})
    if not addresses:
        return 0
    try:
        send_mail(subject, f"{text} Xem trên hệ thống Điều hành.", None, addresses, fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("quality notice to %s not sent: %s", unit.ref, exc)
        return 0
    return len(addresses)


def violation_for(user: User, violation_id: int) -> Violation:
    rows: QuerySet[Violation] = Violation.objects.visible_to(user).select_related("rule", "unit")
    found: Violation | None = rows.filter(pk=violation_id).first()
    if found is None:
        raise assignments.AssignmentError("id", _("no violation #%(id)s") % {"id": violation_id}, status=404)
    return found


def task_from_violation(*, actor: User, violation: Violation, due: date, title: str = "") -> Task:
    """A task for the violation's unit, due `due`; the unit's operators are told."""
    if violation.task_id is not None and Task.objects.filter(pk=violation.task_id).exists():
        raise assignments.AssignmentError(
            "id",
            _("violation #%(id)s already has task #%(task)s")
            % {"id": violation.pk, "task": violation.task_id},
            status=409,
        )
    finding = Finding(
        violation.rule, violation.unit, violation.period, violation.left_value, violation.right_value
    )
    title = title.strip() or f"Rà soát số liệu kỳ {violation.period}: {violation.rule.name}"
    basis = f"Quy tắc kiểm tra {violation.rule.code}"
    with transaction.atomic():
        task = assignments.create_task(
            actor=actor,
            data=assignments.TaskInput(title=title[:500], owner=violation.unit.ref, basis=basis, due=due),
        )
        violation.task_id = task.pk
        violation.save(update_fields=["task_id"])
        subject = f"Nhiệm vụ rà soát số liệu: {violation.rule.name}"
        text = f"{violation.unit.name}: {finding.message()}. Hạn xử lý {due:%d/%m/%Y}."
        reference = {"task": task.pk, "violation": violation.pk}
        notify_operators(violation.unit, subject, text, reference=reference)
    return task


class TaskFromViolationIn(Schema):
    due: date = Field(..., description="when the unit must have corrected or explained the figures")
    title: str = Field("", max_length=500, description="default: the rule's name and the period")


class TaskFromViolationOut(Schema):
    task: int
    violation: int
    owner: str
    due: date
    title: str


@router.post(
    "/validation/violations/{violation_id}/task",
    response={201: TaskFromViolationOut},
    summary="Hand a violation to its unit as a task with a due date (leader or analyst)",
)
@area_aware
def post_task_from_violation(request: HttpRequest, violation_id: int, body: TaskFromViolationIn):
    user = caller(request)
    violation = violation_for(user, violation_id)
    task = task_from_violation(actor=user, violation=violation, due=body.due, title=body.title)
    return Status(
        201,
        {
            "task": task.pk,
            "violation": violation.pk,
            "owner": violation.unit.ref,
            "due": body.due,
            "title": task.title,
        },
    )


CAUSES = {"entry": "khi nhập lại số liệu", "run": "khi chạy lại kiểm tra"}


def close_fixed_tasks(
    sender: Any, *, violations: list[Violation], actor: User | None, cause: str, **_: Any
) -> None:
    """A violation found fixed closes the task made of it: hoàn thành, 100%, with a progress report
    saying which rule now holds and how it was seen (quality.rules.violations_resolved, inside the
    transaction that resolved it: a dry run closes nothing). The report is by whoever entered or ran,
    else by the task's creator (a run with no person behind it)."""
    tasks = Task.objects.select_for_update().filter(pk__in=[v.task_id for v in violations])
    open_tasks = {t.pk: t for t in tasks.exclude(status=TaskStatus.DONE)}
    now = timezone.now()
    for violation in violations:
        task = open_tasks.get(violation.task_id or 0)
        if task is None:
            continue
        rule = violation.rule
        text = (
            f"Tự động hoàn thành: số liệu {parse(violation.period).label()} đã được sửa — kiểm tra lại "
            f"{CAUSES.get(cause, cause)} thấy quy tắc '{rule.name}' ({rule.left} {rule.operator} "
            f"{rule.right}) đã được thỏa mãn."
        )
        by = actor or task.created_by
        TaskProgress.objects.create(task=task, percent=100, text=text, status=TaskStatus.DONE, by=by, at=now)
        before = task.percent
        task.percent, task.status = 100, TaskStatus.DONE
        task.save(update_fields=["percent", "status", "updated_at"])
        audit(actor, "tasks.progress", f"task:{task.pk}", percent=100, before=before, status=TaskStatus.DONE)
