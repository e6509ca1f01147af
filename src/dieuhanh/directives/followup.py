"""Follow-up of directives: reminders to a late unit, escalation to its parent, and the notification queue.

The schedule, per priority (settings.FOLLOWUP overrides any entry, in minutes; env DIEUHANH_FOLLOWUP
as JSON, e.g. `{"urgent": {"ack_reminders": [15, 45]}, "quiet_hours": [21, 7]}`; the old keys
`khan`/`thuong` are still read for one release):

| | khẩn (urgent) | thường (normal) |
| --- | --- | --- |
| reminders while unacknowledged, after sending | 30 min, 1 h | 24 h, 48 h |
| escalation while unacknowledged, after sending | 2 h | 72 h |
| reminders while unanswered, before the deadline | 2 h, at the deadline | 24 h, at the deadline |
| escalation while unanswered, after the deadline | 2 h | 24 h |
| channels | in_app, email, sms | in_app, email |
| quiet hours 22:00–06:00, Vietnam time | never held back | messages wait for 06:00 |

Response steps exist when the directive asks for an answer (a form, or a request for report) and has
a deadline; a response step before the delivery was sent is dropped. Nothing follows up a cancelled
directive, and an escalation happens once per delivery (it then stays in the parent's inbox).

`Delivery.reminders` is how far the delivery is through its schedule: the number of reminder steps
whose time has come. A step whose ask the unit met before the step was handled (acknowledged a minute
after the step, between two ticks) is passed over without a message. Moving the deadline later moves
the count back so that the new steps remind again.

Messages are `Notification` rows, one per channel, queued with `due_at` (quiet hours; backoff) and
sent by `send_due`: a token bucket per channel (settings.NOTIFY_PER_MINUTE), attempts counted,
exponential backoff on failure (1, 2, 4, 8 … min, at most 1 h), `failed` after FOLLOWUP["attempts"]
(5) or at once when retrying cannot help. A failure shows on the delivery (`Delivery.last_error`,
Vietnamese, with the next try's time) until a later send on the same channel goes through, which
clears it; the notification keeps its own `last_error` and `attempts` as the record. A queued message
that no longer applies when its time comes (the directive was cancelled, the unit has acted, a new
directive already opened) is withdrawn: deleted, and counted in the audit.

`tick` and `send_due` take the time as an argument: the worker passes the clock, tests their own.
Run one follow-up worker (`dieuhanh worker followup`); two would send the same reminder twice. The
same worker makes the warehouse's event partitions ahead, at start and once a day (`dieuhanh
partitions`, warehouse.partitions).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from dieuhanh.accounts.services import audit
from dieuhanh.db import db_datetime, insert_rows
from dieuhanh.directives import live
from dieuhanh.directives.channels import CHANNELS, ERROR_LENGTH, PURPOSE_LABELS, Channel, ChannelError
from dieuhanh.directives.models import (
    Delivery,
    Directive,
    DirectiveKind,
    Notification,
    Priority,
    current_code,
)
from dieuhanh.vnformat import VN_TZ, short_datetime
from dieuhanh.warehouse import partitions

logger = logging.getLogger(__name__)

ACK, RESPONSE = "ack", "response"

DEFAULT_SCHEDULE: dict[str, dict[str, Any]] = {
    Priority.URGENT: {
        "ack_reminders": [30, 60],
        "ack_escalation": 120,
        "response_reminders": [120, 0],
        "response_escalation": 120,
        "channels": ["in_app", "email", "sms"],
        "quiet": False,
    },
    Priority.NORMAL: {
        "ack_reminders": [24 * 60, 48 * 60],
        "ack_escalation": 72 * 60,
        "response_reminders": [24 * 60, 0],
        "response_escalation": 24 * 60,
        "channels": ["in_app", "email"],
        "quiet": True,
    },
}
DEFAULT_OPTIONS: dict[str, Any] = {
    "quiet_hours": [22, 6],  # from 22:00 until 06:00, Vietnam time
    "attempts": 5,
    "backoff_seconds": 60,
    "backoff_max_seconds": 3600,
}
# A delivery already escalated drops out of the tick's search a day after its last step: a worker
# stopped for longer skips what it missed for it, rather than reminding a day late.
CATCH_UP = timedelta(days=1)


# The schedule


@dataclass(frozen=True)
class Plan:
    ack_reminders: tuple[timedelta, ...]
    ack_escalation: timedelta
    response_reminders: tuple[timedelta, ...]
    response_escalation: timedelta
    channels: tuple[str, ...]
    quiet: bool


def plan_for(priority: str) -> Plan:
    overrides = {current_code(key): value for key, value in settings.FOLLOWUP.items()}
    raw = DEFAULT_SCHEDULE[priority] | overrides.get(priority, {})
    return Plan(
        ack_reminders=tuple(sorted(timedelta(minutes=m) for m in raw["ack_reminders"])),
        ack_escalation=timedelta(minutes=raw["ack_escalation"]),
        response_reminders=tuple(timedelta(minutes=m) for m in raw["response_reminders"]),
        response_escalation=timedelta(minutes=raw["response_escalation"]),
        channels=tuple(c for c in raw["channels"] if c in settings.NOTIFY_CHANNELS),
        quiet=bool(raw["quiet"]),
    )


def option(name: str) -> Any:
    return settings.FOLLOWUP.get(name, DEFAULT_OPTIONS[name])


def not_before(priority: str, moment: datetime) -> datetime:
    """When a message may go: at once if urgent; otherwise outside quiet hours (Vietnam time)."""
    start, end = option("quiet_hours")
    local = moment.astimezone(VN_TZ)
    hour = local.hour
    quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not quiet or not plan_for(priority).quiet:
        return moment
    wake = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if wake <= local:
        wake += timedelta(days=1)
    return wake.astimezone(UTC)


def expects_response(directive: Directive) -> bool:
    """An answer can be late only when one is asked for and there is a deadline."""
    return directive.needs_response and directive.deadline is not None


def owed(delivery: Delivery, directive: Directive) -> set[str]:
    """What the unit still owes: acknowledgement, response."""
    missing = set()
    if directive.requires_ack and delivery.acknowledged_at is None:
        missing.add(ACK)
    if expects_response(directive) and delivery.responded_at is None:
        missing.add(RESPONSE)
    return missing


@dataclass(frozen=True)
class Step:
    at: datetime
    asks: str  # ACK or RESPONSE


def steps(delivery: Delivery, directive: Directive, plan: Plan) -> list[Step]:
    """The delivery's reminder steps in time order; a step after the unit met its ask is not one."""
    found = []
    if directive.requires_ack:
        for after in plan.ack_reminders:
            at = delivery.sent_at + after
            if delivery.acknowledged_at is None or at <= delivery.acknowledged_at:
                found.append(Step(at, ACK))
    if expects_response(directive):
        assert directive.deadline is not None
        for before in plan.response_reminders:
            at = directive.deadline - before
            if at > delivery.sent_at and (delivery.responded_at is None or at <= delivery.responded_at):
                found.append(Step(at, RESPONSE))
    return sorted(found, key=lambda s: s.at)


def escalation_at(delivery: Delivery, directive: Directive, plan: Plan) -> datetime | None:
    """When the parent unit is to be told, if the unit still owes something; None when it owes nothing."""
    missing = owed(delivery, directive)
    moments = []
    if ACK in missing:
        moments.append(delivery.sent_at + plan.ack_escalation)
    if RESPONSE in missing:
        assert directive.deadline is not None
        moments.append(directive.deadline + plan.response_escalation)
    return min(moments, default=None)


# The tick: which reminders and escalations are due


@dataclass
class TickResult:
    reminded: int = 0
    escalated: int = 0

    def __bool__(self) -> bool:
        return bool(self.reminded or self.escalated)


@dataclass
class _Due:
    """What one directive's tick will write."""

    directive: Directive
    positions: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))  # reminders → ids
    remind: list[Delivery] = field(default_factory=list)
    escalate: list[Delivery] = field(default_factory=list)


def tick(now: datetime | None = None) -> TickResult:
    """Queue the reminders and escalations due at `now`, one transaction per directive."""
    now = now or timezone.now()
    result = TickResult()
    candidates = _candidates(now)
    # Directive by directive, each read whole before it is written: no cursor stays open across writes.
    for directive in Directive.objects.filter(pk__in=candidates.values("directive_id")).order_by("pk"):
        due = _Due(directive)
        for delivery in candidates.filter(directive=directive).select_related("unit").order_by("pk"):
            _examine(delivery, due, now)
        _apply(due, now)
        result.reminded += len(due.remind)
        result.escalated += len(due.escalate)
    return result


def _candidates(now: datetime) -> QuerySet[Delivery]:
    """Deliveries of live directives that may have a step or an escalation due (a coarse filter)."""
    plans = [plan_for(p) for p in Priority.values]
    first_ack = min(min((*p.ack_reminders, p.ack_escalation)) for p in plans)
    last_ack = max(max((*p.ack_reminders, p.ack_escalation)) for p in plans)
    lead = max(max(p.response_reminders, default=timedelta(0)) for p in plans)
    not_done = Q(escalated_at__isnull=True)
    # By the directive's issue time (indexed), which is when its deliveries were sent (the fan-out).
    issued = "directive__issued_at"
    ack = Q(
        directive__requires_ack=True, acknowledged_at__isnull=True, **{f"{issued}__lte": now - first_ack}
    ) & (not_done | Q(**{f"{issued}__gte": now - last_ack - CATCH_UP}))
    asks_answer = ~Q(directive__form=[]) | Q(directive__kind=DirectiveKind.REPORT_REQUEST)
    response = (
        asks_answer
        & Q(responded_at__isnull=True, directive__deadline__lte=now + lead)
        & (not_done | Q(directive__deadline__gte=now - CATCH_UP))
    )
    return Delivery.objects.filter(directive__cancelled_at__isnull=True).filter(ack | response)


def _examine(delivery: Delivery, due: _Due, now: datetime) -> None:
    directive = due.directive
    plan = plan_for(directive.priority)
    passed = [s for s in steps(delivery, directive, plan) if s.at <= now]
    if len(passed) > delivery.reminders:
        due.positions[len(passed)].append(delivery.pk)
        if passed[-1].asks in owed(delivery, directive):
            due.remind.append(delivery)
    escalate = escalation_at(delivery, directive, plan)
    if (
        delivery.escalated_at is None
        and escalate is not None
        and escalate <= now
        and delivery.unit.parent_id is not None
    ):
        due.escalate.append(delivery)


def _apply(due: _Due, now: datetime) -> None:
    directive = due.directive
    plan = plan_for(directive.priority)
    with transaction.atomic():
        for position, ids in due.positions.items():
            Delivery.objects.filter(pk__in=ids, reminders__lt=position).update(reminders=position)
        if due.remind:
            queue(due.remind, Notification.Purpose.REMINDER, not_before(directive.priority, now), plan)
            audit(
                None,
                "directives.remind",
                f"directive:{directive.pk}",
                rows=len(due.remind),
                deliveries=[d.pk for d in due.remind],
            )
        if due.escalate:
            _escalate(due.escalate, directive, now, plan)


def _escalate(deliveries: list[Delivery], directive: Directive, now: datetime, plan: Plan) -> None:
    ids = [d.pk for d in deliveries]
    Delivery.objects.filter(pk__in=ids, escalated_at__isnull=True).update(escalated_at=now)
    due_at = not_before(directive.priority, now)
    queue(deliveries, Notification.Purpose.ESCALATION, due_at, plan, to_parent=True)
    audit(
        None,
        "directives.escalate",
        f"directive:{directive.pk}",
        rows=len(ids),
        deliveries=ids,
        parents=sorted({d.unit.parent_id for d in deliveries if d.unit.parent_id}),
    )
    # The parents' inboxes now hold these deliveries: tell whoever is watching them.
    live.publish_deliveries(Delivery.objects.filter(pk__in=ids), "escalate")


def queue(
    deliveries: list[Delivery], purpose: str, due_at: datetime, plan: Plan, *, to_parent: bool = False
) -> int:
    """One queued notification per delivery and channel of the plan; returns how many."""
    rows = [
        Notification(
            delivery=delivery,
            unit_id=_inbox_of(delivery, to_parent),
            channel=channel,
            purpose=purpose,
            due_at=due_at,
        )
        for delivery in deliveries
        for channel in plan.channels
    ]
    Notification.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _inbox_of(delivery: Delivery, to_parent: bool) -> int:
    unit = delivery.unit.parent_id if to_parent else delivery.unit_id
    assert unit is not None, "escalations are only for units with a parent"
    return unit


# Sending: throttled per channel, retried with backoff


class Throttle:
    """A token bucket per channel: NOTIFY_PER_MINUTE sends a minute, bursting to one minute's worth.

    Time is the caller's (`now`), so that tests control it. A fresh Throttle starts full: one call of
    `send_due` without one sends at most a minute's worth per channel.
    """

    def __init__(self, per_minute: dict[str, int] | None = None):
        self.per_minute = per_minute if per_minute is not None else settings.NOTIFY_PER_MINUTE
        self._tokens: dict[str, float] = {}
        self._at: dict[str, datetime] = {}

    def available(self, channel: str, now: datetime) -> int:
        rate = self.per_minute.get(channel, 60)
        tokens = self._tokens.get(channel, float(rate))
        if channel in self._at:
            elapsed = max(0.0, (now - self._at[channel]).total_seconds())
            tokens = min(float(rate), tokens + elapsed * rate / 60)
        self._tokens[channel], self._at[channel] = tokens, now
        return int(tokens)

    def take(self, channel: str) -> None:
        self._tokens[channel] -= 1


@dataclass
class SendResult:
    sent: int = 0
    retried: int = 0  # failed, to be tried again
    failed: int = 0  # failed for good
    withdrawn: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.retried or self.failed or self.withdrawn)


def send_due(now: datetime | None = None, throttle: Throttle | None = None) -> SendResult:
    """Send the queued notifications due at `now`, urgent first, as far as each channel's bucket allows."""
    now = now or timezone.now()
    throttle = throttle or Throttle()
    result = SendResult()
    for channel in CHANNELS.values():
        _send_channel(channel, now, throttle, result)
    return result


def _due(channel: str, now: datetime) -> QuerySet[Notification]:
    return (
        Notification.objects.filter(state=Notification.State.QUEUED, channel=channel, due_at__lte=now)
        .select_related("delivery__directive", "delivery__unit", "unit")
        .order_by("-delivery__directive__priority", "due_at", "id")  # 'urgent' sorts after 'normal'
    )


def _send_channel(channel: Channel, now: datetime, throttle: Throttle, result: SendResult) -> None:
    # Every notification handled leaves the due set (sent, withdrawn, or due later), so this ends.
    sent, withdrawn = [], []
    while (budget := throttle.available(channel.name, now)) > 0:
        batch = list(_due(channel.name, now)[: min(budget, 500)])
        if not batch:
            break
        for notification in batch:
            if _stale(notification):
                notification.delete()
                withdrawn.append(notification.delivery_id)
                continue
            throttle.take(channel.name)
            if _attempt(channel, notification, now, result):
                sent.append(notification.pk)
    result.sent += len(sent)
    result.withdrawn += len(withdrawn)
    if sent or withdrawn:
        audit(
            None,
            "directives.notify",
            f"channel:{channel.name}",
            rows=len(sent),
            sent=sent,
            withdrawn_for_deliveries=withdrawn,
        )


def _stale(notification: Notification) -> bool:
    """A message that no longer applies: the directive cancelled, or the unit has done what it says."""
    delivery = notification.delivery
    directive = delivery.directive
    if directive.cancelled_at is not None:
        return True
    if notification.purpose in (Notification.Purpose.REMINDER, Notification.Purpose.ESCALATION):
        return not owed(delivery, directive)
    if notification.purpose == Notification.Purpose.NEW:
        return delivery.read_at is not None
    return False


def _attempt(channel: Channel, notification: Notification, now: datetime, result: SendResult) -> bool:
    """One try; True when it went through."""
    try:
        channel.send(notification, channel.recipients(notification.unit))
    except ChannelError as e:
        _failed(channel, notification, e, now, result)
        return False
    notification.attempts += 1
    notification.state, notification.sent_at = Notification.State.SENT, now
    notification.save(update_fields=["attempts", "state", "sent_at"])
    # The delivery shows the current trouble: solved for this channel once a send goes through.
    Delivery.objects.filter(pk=notification.delivery_id, last_error__startswith=f"{channel.label} (").update(
        last_error=""
    )
    return True


def _failed(
    channel: Channel, notification: Notification, error: ChannelError, now: datetime, result: SendResult
) -> None:
    notification.attempts += 1
    notification.last_error = str(error)[:ERROR_LENGTH]
    final = error.permanent or notification.attempts >= option("attempts")
    if final:
        notification.state = Notification.State.FAILED
        result.failed += 1
    else:
        retry = now + backoff(notification.attempts)
        notification.due_at = not_before(notification.delivery.directive.priority, retry)
        result.retried += 1
    notification.save(update_fields=["attempts", "last_error", "state", "due_at"])
    line = _error_line(channel, notification, error, final)
    Delivery.objects.filter(pk=notification.delivery_id).update(last_error=line)
    audit(
        None,
        "directives.notify_failed",
        f"notification:{notification.pk}",
        channel=channel.name,
        purpose=notification.purpose,
        delivery=notification.delivery_id,
        attempt=notification.attempts,
        error=notification.last_error,
        retry_at=None if final else notification.due_at.isoformat(),
    )


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after the 1st, 2nd, 3rd … failure, at most an hour."""
    seconds = option("backoff_seconds") * 2 ** (attempts - 1)
    return timedelta(seconds=min(seconds, option("backoff_max_seconds")))


def _error_line(channel: Channel, notification: Notification, error: ChannelError, final: bool) -> str:
    """The delivery's error line, as the room reads it."""
    head = f"{channel.label} ({PURPOSE_LABELS[notification.purpose]})"
    if final:
        line = f"{head}: không gửi được sau {notification.attempts} lần: {error}"
    else:
        retry = short_datetime(notification.due_at)
        line = f"{head}: lần {notification.attempts} không gửi được: {error}; thử lại lúc {retry}"
    return line[:ERROR_LENGTH]


# After a directive's verb (services._changed)


def directive_changed(event: str, directive: Directive) -> None:
    """Queue "new directive" and "directive changed" messages. Never raises: the verb is committed.

    Runs after the verb's commit, so a process that dies in between loses these messages (not the
    directive, nor its reminders, which the tick finds from the deliveries).
    """
    try:
        if event == "issue":
            due_at = not_before(directive.priority, directive.issued_at)
            _announce(directive, Notification.Purpose.NEW, due_at)
        elif event == "update":
            now = timezone.now()
            _replan(directive, now)
            _announce(directive, Notification.Purpose.UPDATE, not_before(directive.priority, now))
    except Exception:
        logger.exception("followup: %s of directive %s was not announced", event, directive.pk)


def _announce(directive: Directive, purpose: str, due_at: datetime) -> None:
    plan = plan_for(directive.priority)
    if not plan.channels:
        return
    # A directive to every commune is 10,000 deliveries: plain rows and one bulk write (COPY on
    # PostgreSQL), not 10,000 model instances.
    due, created = db_datetime(due_at), db_datetime(timezone.now())
    rows = [
        (delivery, unit, channel, purpose, Notification.State.QUEUED.value, due, 0, "", created)
        for delivery, unit in directive.deliveries.values_list("id", "unit_id")
        for channel in plan.channels
    ]
    with transaction.atomic():
        insert_rows(Notification, NOTIFICATION_COLUMNS, rows)
        audit(None, "directives.notify", f"directive:{directive.pk}", rows=len(rows), purpose=purpose)


NOTIFICATION_COLUMNS = [
    "delivery_id",
    "unit_id",
    "channel",
    "purpose",
    "state",
    "due_at",
    "attempts",
    "last_error",
    "created_at",
]


def _replan(directive: Directive, now: datetime) -> None:
    """After a change of deadline or priority, move each delivery back to the steps still to come."""
    plan = plan_for(directive.priority)
    back: dict[int, list[int]] = defaultdict(list)
    for delivery in directive.deliveries.filter(reminders__gt=0):
        passed = sum(1 for s in steps(delivery, directive, plan) if s.at <= now)
        if passed < delivery.reminders:
            back[passed].append(delivery.pk)
    for position, ids in back.items():
        Delivery.objects.filter(pk__in=ids).update(reminders=position)


# The worker


def run(*, once: bool = False, interval: float = 60, report: Callable[[str], None] = print) -> None:
    """Tick and send every `interval` seconds (`dieuhanh worker followup`); with `once`, one round."""
    throttle = Throttle()  # one bucket for the worker's life: the rate holds across rounds
    partitioned: date | None = None  # the day the event partitions were last made ahead
    while True:
        try:
            _round(throttle, report, always=once)
        except Exception:
            if once:
                raise
            logger.exception("followup: round failed; trying again in %s s", interval)
        partitioned = _partitions_daily(partitioned, report)
        if once:
            return
        time.sleep(interval)
        close_old_connections()  # between rounds: drop a connection the server closed or that aged out


def _partitions_daily(done: date | None, report: Callable[[str], None]) -> date | None:
    """Once a day (Vietnam time) and at start: the warehouse's event partitions ahead, as `dieuhanh
    partitions` makes them (PostgreSQL; nothing on SQLite). A failure waits for the next round."""
    today = timezone.now().astimezone(VN_TZ).date()
    if done == today:
        return done
    try:
        made = partitions.ensure(today=today)
    except Exception:
        logger.exception("followup: making the event partitions failed; trying again next round")
        return done
    if made:
        report(f"Đã tạo {len(made)} phân vùng sự kiện: {', '.join(p.name for p in made)}")
    return today


# Other apps' follow-ups run in the same worker round, after the directives', with the same throttle
# (one rate per channel for everything the worker sends): each takes (now, throttle, always) and
# returns a line to report ("" when it did nothing and `always` is false). Registered in an app's
# ready() (feedback: citizens' reports).
ROUNDS: list[Callable[[datetime, Throttle, bool], str]] = []


def also_run(round_: Callable[[datetime, Throttle, bool], str]) -> None:
    if round_ not in ROUNDS:
        ROUNDS.append(round_)


def _round(throttle: Throttle, report: Callable[[str], None], *, always: bool) -> None:
    now = timezone.now()
    ticked, sent = tick(now), send_due(now, throttle)
    if ticked or sent or always:
        report(
            f"{short_datetime(now)}: nhắc {ticked.reminded} đơn vị, báo cấp trên {ticked.escalated}; "
            f"đã gửi {sent.sent}, chờ gửi lại {sent.retried}, lỗi {sent.failed}, bỏ {sent.withdrawn}"
        )
    for other in ROUNDS:
        line = other(now, throttle, always)
        if line:
            report(line)
