"""Citizens' reports and questions (phản ánh, kiến nghị): routed to a 2025 unit, timed, answered in public.

An item belongs to the unit that handles it now (`unit`); forwarding moves it and adds an Event. The
citizen follows it by its tracking code; the phone number, if given, is only a person key here (the
number itself is sealed in the warehouse's identity vault).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import AreaQuerySet


class Handler(models.TextChoices):
    COMMUNE = "commune", _("The commune or ward where it happens")
    PROVINCE = "province", _("The province or city")
    AGENCY = "agency", _("A department of the province (an agency unit)")


class Category(models.Model):
    """What a report is about; it decides who handles it and how fast (defaults: HCMC 1022's)."""

    code = models.SlugField(max_length=40, primary_key=True, help_text="English code, stable in the API")
    name = models.CharField(max_length=120, help_text="Vietnamese label shown to citizens")
    handler = models.CharField(max_length=10, choices=Handler.choices, default=Handler.COMMUNE)
    forward_minutes = models.PositiveIntegerField(
        default=5, help_text="the unit that receives it takes it or passes it on within this"
    )
    answer_days = models.PositiveIntegerField(default=5, help_text="first answer within this, from receipt")
    agency = models.CharField(
        max_length=20,
        blank=True,
        help_text="handler 'agency': the department's code under each province (unit 79-SATTP for SATTP)",
    )
    merge_hours = models.PositiveIntegerField(
        default=72, help_text="reports of this category at the same place within this are merged (0: never)"
    )
    order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "code"]
        verbose_name = "lĩnh vực"
        verbose_name_plural = "lĩnh vực"

    def __str__(self) -> str:
        return self.name


class Status(models.TextChoices):
    RECEIVED = "received", _("Filed")
    ACCEPTED = "accepted", _("Being handled")
    ANSWERED = "answered", _("Answered")
    MERGED = "merged", _("Merged with a same report")
    # A progress update with a photo: HCMC 1022's rule, "answered within 5 days, or progress is posted
    # with a photo" — the first-answer deadline is met, the item stays open until it is answered.
    PROGRESS = "progress", _("Progress posted with a photo")


class FeedbackQuerySet(AreaQuerySet):
    area_field = "unit"
    subtree: Unit | None = None  # under(unit): the unit whose subtree the rows are held to

    def under(self, unit: Unit) -> FeedbackQuerySet:
        """The reports handled by the unit and by those below it. The subtree's ids are a subquery (an
        indexed prefix scan of the units): the reports' (unit, answer_due, …) index serves a queue's
        page (services.queue_page), with no join on the units' paths."""
        found = self.filter(unit_id__in=Unit.objects.under(unit).values("id"))
        found.subtree = unit
        return found

    def _clone(self) -> FeedbackQuerySet:
        found = super()._clone()  # type: ignore[misc]  # QuerySet's own copy, not in the stubs
        found.subtree = self.subtree
        return found


class Feedback(models.Model):
    # Unique by a constraint (Meta), not unique=True: on PostgreSQL that adds a second index
    # (varchar_pattern_ops, for LIKE 'prefix%') that no query reads and every report writes.
    code = models.CharField(max_length=12, help_text="the citizen's tracking code")
    # No index of its own: feedback_dupes and feedback_public_category begin with it.
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+", db_index=False)
    text = models.TextField()
    # No index of its own: feedback_queue and feedback_unit_page begin with it.
    unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="+", db_index=False, help_text="handles it now"
    )
    place_unit = models.ForeignKey(
        Unit, on_delete=models.PROTECT, related_name="+", help_text="the 2025 commune where it happens"
    )
    # The place as the citizen gave it: for the handling officials only, never on a public answer.
    lat = models.FloatField(null=True, blank=True)
    lon = models.FloatField(null=True, blank=True)
    address = models.CharField(max_length=300, blank=True)
    phone_key = models.BinaryField(
        max_length=32, null=True, blank=True, help_text="person key, not the number"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    received_at = models.DateTimeField()
    assigned_at = models.DateTimeField(help_text="when the current unit got it")
    forward_due = models.DateTimeField(help_text="the current unit takes it or passes it on by then")
    answer_due = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answer = models.TextField(blank=True, help_text="public")
    incident_id = models.BigIntegerField(  # unique where set (Meta): a citizen's report has none
        null=True, blank=True, help_text="the source platform's incident report it came from"
    )
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="the citizen's 1-5 on the answer"
    )
    rated_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="duplicates",
        db_index=False,  # a partial index (Meta): most reports are no one's duplicate
        help_text="the item this duplicate follows: its reporter sees that item's status",
    )
    reporters = models.PositiveIntegerField(
        default=1, help_text="this report and the duplicates merged into it"
    )
    reminders = models.PositiveSmallIntegerField(default=0, help_text="reminder steps whose time has come")
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="when the province was told")
    directive = models.ForeignKey(
        "directives.Directive",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback_items",
        db_index=False,  # a partial index (Meta): few reports become a directive
        help_text="the directive this report became",
    )
    task = models.ForeignKey(
        "directives.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback_items",
        db_index=False,  # a partial index (Meta): few reports become a task
        help_text="the task this report became",
    )

    objects = FeedbackQuerySet.as_manager()

    class Meta:
        # Issue 20's intake speed: every index here is written by every report, so each one is read
        # by a query that needs it, and what only the public page reads (answered reports) is a
        # partial index WHERE status = 'answered' that a new report never enters — as are the public
        # search's trigram indexes (migrations 0006, 0011). A report's INSERT went from 19 indexes to 11.
        indexes = [
            # The queue's count and its status tabs (an index-only count of a subtree's items).
            models.Index(fields=["unit", "status", "received_at"], name="feedback_queue"),
            # A queue's page, oldest deadline first, with what its filters (status, overdue,
            # escalated) read: found from the index alone (services.queue_page).
            models.Index(
                fields=["unit", "answer_due", "id", "status", "forward_due", "escalated_at"],
                name="feedback_unit_page",
            ),
            # The public page, newest answer first, all of it or by category.
            models.Index(
                fields=["answered_at", "id"], name="feedback_public", condition=models.Q(status="answered")
            ),
            models.Index(
                fields=["category", "answered_at", "id"],
                name="feedback_public_category",
                condition=models.Q(status="answered"),
            ),
            # The intake's duplicate search (services._same_report).
            models.Index(fields=["category", "place_unit", "received_at"], name="feedback_dupes"),
            # The follow-up worker's open items by deadline.
            models.Index(fields=["status", "answer_due"], name="feedback_open_due"),
            # Foreign keys that few reports fill: their look-ups (a primary's duplicates, a
            # directive's or task's reports) and the deletes' checks, without a NULL entry per report.
            models.Index(
                fields=["merged_into"],
                name="feedback_merged_into",
                condition=models.Q(merged_into__isnull=False),
            ),
            models.Index(
                fields=["directive"], name="feedback_directive", condition=models.Q(directive__isnull=False)
            ),
            models.Index(fields=["task"], name="feedback_task", condition=models.Q(task__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="feedback_code_unique"),
            models.UniqueConstraint(
                fields=["incident_id"],
                name="feedback_incident_unique",
                condition=models.Q(incident_id__isnull=False),
            ),
        ]
        verbose_name = "phản ánh"
        verbose_name_plural = "phản ánh"

    def __str__(self) -> str:
        return self.code


class EventKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    ACCEPTED = "accepted", _("Taken on by the unit")
    FORWARDED = "forwarded", _("Passed on to another unit")
    ANSWERED = "answered", _("Answer posted")
    PROGRESS = "progress", _("Progress update")
    MERGED = "merged", _("Merged into a same report")
    JOINED = "joined", _("Another citizen reported the same")
    UNMERGED = "unmerged", _("Parted from the report it was merged into, handled on its own")
    LEFT = "left", _("A report merged into it by mistake was parted")
    ESCALATED = "escalated", _("Overdue, reported to the province")
    DIRECTIVE = "directive", _("Made into a directive")
    TASK = "task", _("Made into a task")


class Event(models.Model):
    """One step of an item's public history: who had it, what was done, when."""

    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    at = models.DateTimeField()
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+", help_text="the unit after it")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, help_text="the forwarding reason or the answer")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M}"


def photo_path(instance: Photo, filename: str) -> str:
    # Our own name, never the sender's: no path tricks, no clashes.
    return f"feedback/{instance.feedback_id}/{instance.sha256}"


class Photo(models.Model):
    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="photos")
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to=photo_path)

    def __str__(self) -> str:
        return self.sha256


def post_photo_path(instance: PostPhoto, filename: str) -> str:
    return f"feedback/{instance.event.feedback_id}/posts/{instance.sha256}"


class PostPhoto(models.Model):
    """A photo an official posted with an answer or a progress update (its Event): public, so stored
    without its metadata (feedback.photos.strip_metadata). A citizen's photos are Photo rows."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="photos")
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="of the stored photo, without its metadata")
    file = models.FileField(upload_to=post_photo_path)

    class Meta:
        ordering = ["event", "id"]

    def __str__(self) -> str:
        return self.sha256


class Throttle(models.Model):
    """Reports counted per sender in a fixed window; the key is a keyed hash, never the IP or number."""

    class Scope(models.TextChoices):
        CLIENT = "client", "địa chỉ máy"
        PHONE = "phone", "số điện thoại"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="feedback_throttle_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key[:8]}: {self.count}"


class Confirmation(models.Model):
    """A confirmation code sent by SMS to a repeated sender's phone (no CAPTCHA service): the code is
    kept as a keyed hash, the phone as its keyed hash; once confirmed, the phone sends without a code
    until `confirmed_until`."""

    key = models.CharField(max_length=64, unique=True, help_text="keyed hash of the phone number")
    code_hash = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    confirmed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key[:8]


class Notice(models.Model):
    """A reminder or escalation about an item on one channel, sent by the follow-up worker with the
    directives' channels, throttle, quiet hours and backoff (feedback.followup)."""

    class Purpose(models.TextChoices):
        REMINDER = "reminder", "nhắc việc"
        ESCALATION = "escalation", "báo cấp trên"

    class State(models.TextChoices):
        QUEUED = "queued", "chờ gửi"
        SENT = "sent", "đã gửi"
        FAILED = "failed", "lỗi"

    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="notices")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+", help_text="whose inbox")
    channel = models.CharField(max_length=8)
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="feedback_notice_due")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.channel} → {self.unit_id}: {self.state}"


class SessionStatus(models.TextChoices):
    OPEN = "open", _("Taking questions")
    CLOSED = "closed", _("No longer taking questions")
    PUBLISHED = "published", _("Published")


class SessionQuerySet(AreaQuerySet):
    area_field = "unit"


class Session(models.Model):
    """A "Dân hỏi – Chính quyền trả lời" session of a unit on a date: questions by topic, answered."""

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=300)
    date = models.DateField(help_text="the day of the session")
    topics = models.JSONField(default=list, help_text="the topics questions are grouped under")
    status = models.CharField(max_length=10, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return self.title


class Question(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="questions")
    topic = models.CharField(max_length=100)
    text = models.TextField()
    asked_at = models.DateTimeField()
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answerer_title = models.CharField(max_length=200, blank=True, help_text="e.g. Chủ tịch UBND phường")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["topic", "asked_at", "id"]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.text[:40]}"
