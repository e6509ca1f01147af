"""Directives (chỉ đạo) and what each target unit did with them; tasks (nhiệm vụ) and their progress.

A directive is one row however many units it reaches; each target unit gets one Delivery that
carries its own state and times. Updates and cancellation keep the directive's id (as CAP's
Update/Cancel reference the original) and are kept as Revisions that recipients see.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import AreaQuerySet


class UnitGroup(models.Model):
    """A saved set of units to address at once, e.g. "2.500 xã, phường phía Nam"."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    edition = models.ForeignKey(Edition, on_delete=models.PROTECT, related_name="+")
    units = models.ManyToManyField(Unit, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Priority(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    NORMAL = "normal", _("Normal")


class DirectiveKind(models.TextChoices):
    DIRECTIVE = "directive", _("Directive")
    REPORT_REQUEST = "report_request", _("Request for report")
    NOTICE = "notice", _("Notice")


class DirectiveQuerySet(AreaQuerySet):
    area_field = "issuer_unit"


class Directive(models.Model):
    number = models.CharField(max_length=40, blank=True, help_text="số hiệu, e.g. 15/CĐ-TTg")
    title = models.CharField(max_length=300)
    body = models.TextField(help_text="Markdown")
    kind = models.CharField(max_length=16, choices=DirectiveKind.choices, default=DirectiveKind.DIRECTIVE)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    issuer_unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField()
    requires_ack = models.BooleanField(default=True)
    form = models.JSONField(
        default=list, blank=True, help_text="response form: [{key, label, type: text|number, data_element?}]"
    )
    deadline = models.DateTimeField(null=True, blank=True)
    late_answers = models.BooleanField(default=True, help_text="may units respond after the deadline?")
    targets = models.JSONField(help_text="how the targets were chosen: {units, level, group}")
    edition = models.ForeignKey(Edition, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DirectiveQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["issued_at"], name="directive_issued")]

    def __str__(self) -> str:
        return f"{self.number or '#' + str(self.pk)} {self.title}"

    @property
    def needs_response(self) -> bool:
        return bool(self.form) or self.kind == DirectiveKind.REPORT_REQUEST


class Revision(models.Model):
    """A directive's history: issued, each update, its cancellation."""

    class Action(models.TextChoices):
        ISSUE = "issue", _("Issued")
        UPDATE = "update", _("Updated")
        CANCEL = "cancel", _("Cancelled")

    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    changes = models.JSONField(default=dict, help_text="field: [before, after]")
    note = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["directive", "version"], name="revision_once")]

    def __str__(self) -> str:
        return f"{self.directive_id} v{self.version} {self.action}"

    def shown_changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) as a page shows them: a priority by its label (Khẩn, Thường)."""
        shown = []
        for name, (before, after) in self.changes.items():
            if name == "priority":
                before, after = (Priority(v).label if v in Priority.values else v for v in (before, after))
            shown.append((name, before, after))
        return shown


def attachment_path(instance: Attachment, filename: str) -> str:
    # The stored name is ours, never the uploader's: no path tricks, no clashes.
    return f"directives/{instance.directive_id}/{instance.sha256}"


class Attachment(models.Model):
    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=200, help_text="the uploader's file name, for display")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=attachment_path)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


# Who may act for a unit on its inbox; an enterprise's safety officer acts for it (issue 21).
RECIPIENT_ROLES = ("leader", "analyst", "operator", "admin", "enterprise")


class DeliveryState(models.TextChoices):
    SENT = "sent", _("Sent")
    READ = "read", _("Read")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESPONDED = "responded", _("Responded")


STATE_ORDER = {s: i for i, s in enumerate(DeliveryState.values)}


class DeliveryQuerySet(AreaQuerySet):
    area_field = "unit"


class Delivery(models.Model):
    """One directive at one target unit, with the furthest state it reached and when."""

    directive = models.ForeignKey(Directive, on_delete=models.CASCADE, related_name="deliveries")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    province = models.ForeignKey(
        Unit,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the unit's province, for the room's status",
    )
    state = models.CharField(max_length=12, choices=DeliveryState.choices, default=DeliveryState.SENT)
    sent_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    reminders = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, help_text="the last failed notification")

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["directive", "unit"], name="delivery_once")]
        indexes = [
            models.Index(fields=["unit", "sent_at"], name="delivery_inbox"),
            models.Index(fields=["directive", "province", "state"], name="delivery_status"),
        ]

    def __str__(self) -> str:
        return f"{self.directive_id} → {self.unit_id}: {self.state}"


class Response(models.Model):
    """A unit's answer; a new version for each edit, none overwritten."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="responses")
    version = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    figures = models.JSONField(default=dict, blank=True, help_text="form key → number")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delivery", "version"], name="response_version_once")]

    def __str__(self) -> str:
        return f"{self.delivery_id} v{self.version}"


class Notification(models.Model):
    """A message about a delivery on one channel: new, reminder or escalation; retried with backoff."""

    class Channel(models.TextChoices):
        IN_APP = "in_app", _("In the app")
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")

    class Purpose(models.TextChoices):
        NEW = "new", _("New directive")
        UPDATE = "update", _("Directive changed")
        REMINDER = "reminder", _("Reminder")
        ESCALATION = "escalation", _("Escalation")

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="notifications")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+", help_text="whose inbox")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    due_at = models.DateTimeField(help_text="not before (quiet hours, backoff)")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.channel} → {self.unit_id}: {self.state}"


class TaskStatus(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    OVERDUE = "overdue", _("Overdue")


# The codes were Vietnamese until issue 15 (point 7) and are English now, with Vietnamese labels, as
# every other stored code. Input still accepts the old ones for one release (the API, the pages'
# forms, DIEUHANH_FOLLOWUP), so that clients can move after the server; output has the new ones.
# Migration 0002 rewrote the stored values (reports 0004 the archived snapshots' task counts).
# Remove in the next release.
OLD_CODES: dict[str, str] = {
    "khan": Priority.URGENT,
    "thuong": Priority.NORMAL,
    "chua_thuc_hien": TaskStatus.NOT_STARTED,
    "dang_thuc_hien": TaskStatus.IN_PROGRESS,
    "hoan_thanh": TaskStatus.DONE,
    "qua_han": TaskStatus.OVERDUE,
}


def current_code(value: Any) -> Any:
    """The code for `value`: an old Vietnamese code's English one, anything else as it is."""
    return OLD_CODES.get(value, value) if isinstance(value, str) else value


class TaskQuerySet(AreaQuerySet):
    area_field = "owner"


class Task(models.Model):
    """A task (nhiệm vụ) a unit owes: from a directive, a decision or a plan."""

    title = models.CharField(max_length=500)
    basis = models.CharField(max_length=300, blank=True, help_text="e.g. Quyết định 942/QĐ-TTg")
    owner = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    co_owners = models.ManyToManyField(Unit, blank=True, related_name="+")
    directive = models.ForeignKey(
        Directive, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    due = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.NOT_STARTED)
    percent = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["owner", "due"], name="task_owner_due")]

    def __str__(self) -> str:
        return self.title


class TaskProgress(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="progress")
    percent = models.PositiveSmallIntegerField()
    text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.task_id}: {self.percent}%"
