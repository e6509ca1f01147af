"""Reminders and escalation of citizens' reports, on the directives' follow-up machinery.

What is reused from `dieuhanh.directives.followup` and `.channels`: the normal priority's schedule
(`plan_for`: reminders 24 h before the deadline and at it, escalation 24 h after it, its channels),
quiet hours (`not_before`), the retries (`backoff`, `option("attempts")`), the per-channel token bucket
(`Throttle`, shared with the directives' messages in one worker round) and the channels themselves
(`Channel.notify`: in the app on the unit's live inbox, e-mail to the unit's officials, SMS). The round
runs inside `dieuhanh worker followup` (registered with `followup.also_run` in FeedbackConfig.ready).

Steps of an open item (received or accepted, not merged):
- not taken within its forward deadline (5 minutes): a reminder to the unit holding it;
- its answer deadline (5 days) minus the plan's first response reminder (24 h), and at the deadline:
  reminders to the unit;
- the plan's response escalation (24 h) after the answer deadline: the item is escalated — the
  province is told (its officials' inbox, e-mail), the item is marked `escalated_at` and shows in the
  province's `?escalated=true` list — once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from dieuhanh.accounts.services import audit
from dieuhanh.directives.channels import CHANNELS, ERROR_LENGTH, ChannelError, Message
from dieuhanh.directives.followup import CATCH_UP, Throttle, backoff, not_before, option, plan_for
from dieuhanh.directives.models import Priority
from dieuhanh.feedback.models import Event, EventKind, Feedback, Notice, Status
from dieuhanh.feedback.services import prune_throttles
from dieuhanh.units.models import Unit
from dieuhanh.vnformat import short_datetime

PRIORITY = Priority.NORMAL  # citizens' reports follow the normal schedule and its quiet hours
OPEN = (Status.RECEIVED, Status.ACCEPTED)


TAKE, ANSWER = "take", "answer"


def steps(item: Feedback) -> list[tuple[datetime, str]]:
    """The item's reminder moments in time order, each with what it asks: to take the item (or pass it
    on) by its forward deadline; to answer it, before and at the answer deadline."""
    plan = plan_for(PRIORITY)
    found = [(item.forward_due, TAKE)]
    found += [(item.answer_due - before, ANSWER) for before in plan.response_reminders]
    return sorted(step for step in found if step[0] >= item.received_at or step[1] == TAKE)


def owes(item: Feedback, asks: str) -> bool:
    return item.status in OPEN if asks == ANSWER else item.status == Status.RECEIVED


def escalation_at(item: Feedback) -> datetime:
    return item.answer_due + plan_for(PRIORITY).response_escalation


@dataclass
class Result:
    reminded: int = 0
    escalated: int = 0
    sent: int = 0
    failed: int = 0


def tick(now: datetime | None = None) -> Result:
    """Queue the reminders and escalations due at `now`: one transaction, one audit row each kind."""
    now = now or timezone.now()
    plan = plan_for(PRIORITY)
    lead = max(plan.response_reminders, default=timedelta(0))
    candidates = (
        Feedback.objects.filter(status__in=OPEN)
        .filter(Q(status=Status.RECEIVED, forward_due__lte=now) | Q(answer_due__lte=now + lead))
        # Escalated a day ago or more: nothing left to do for it (a stopped worker does not catch up).
        .filter(Q(escalated_at__isnull=True) | Q(escalated_at__gte=now - CATCH_UP))
        .select_related("unit", "unit__parent", "category", "place_unit")
        .order_by("answer_due", "id")
    )
    remind, escalate, positions = [], [], []
    for item in candidates.iterator(chunk_size=500):
        passed = [step for step in steps(item) if step[0] <= now]
        if len(passed) > item.reminders:
            positions.append((item.pk, len(passed)))
            if owes(item, passed[-1][1]):  # a step whose ask was met before it came passes quietly
                remind.append(item)
        if item.escalated_at is None and escalation_at(item) <= now and _province(item) is not None:
            escalate.append(item)
    result = Result(len(remind), len(escalate))
    if not (remind or escalate or positions):
        return result
    due_at = not_before(PRIORITY, now)
    with transaction.atomic():
        for pk, position in positions:
            Feedback.objects.filter(pk=pk, reminders__lt=position).update(reminders=position)
        _queue(remind, Notice.Purpose.REMINDER, due_at, to_province=False)
        if remind:
            audit(None, "feedback.remind", "feedback", rows=len(remind), codes=[i.code for i in remind][:200])
        if escalate:
            ids = [i.pk for i in escalate]
            Feedback.objects.filter(pk__in=ids, escalated_at__isnull=True).update(escalated_at=now)
            for item in escalate:
                Event.objects.create(
                    feedback=item, kind=EventKind.ESCALATED, at=now, unit=_province(item) or item.unit
                )
            _queue(escalate, Notice.Purpose.ESCALATION, due_at, to_province=True)
            audit(
                None, "feedback.escalate", "feedback", rows=len(ids), codes=[i.code for i in escalate][:200]
            )
    return result


def _province(item: Feedback) -> Unit | None:
    """The province above the commune or department holding the item (None when a province holds it)."""
    parent = item.unit.parent if item.unit.kind != "province" else None
    return parent if parent is not None and parent.kind == "province" else None


def _queue(items: list[Feedback], purpose: str, due_at: datetime, *, to_province: bool) -> None:
    channels = plan_for(PRIORITY).channels
    rows = []
    for item in items:
        unit = _province(item) if to_province else item.unit
        if unit is None:
            continue
        rows += [
            Notice(feedback=item, unit=unit, channel=c, purpose=purpose, due_at=due_at) for c in channels
        ]
    Notice.objects.bulk_create(rows, batch_size=2000)


def compose(notice: Notice) -> Message:
    item = notice.feedback
    what = _("report %(code)s (%(category)s, %(place)s)") % {
        "code": item.code,
        "category": item.category.name,
        "place": item.place_unit.name,
    }
    said = {"unit": item.unit.name, "what": what, "due": short_datetime(item.answer_due)}
    if notice.purpose == Notice.Purpose.REMINDER:
        body = (
            _("%(unit)s has not taken or passed on %(what)s; answer due %(due)s. See it on Điều hành.")
            if item.status == Status.RECEIVED
            else _("%(unit)s has not answered %(what)s; answer due %(due)s. See it on Điều hành.")
        )
        return Message(_("Reminder: %(what)s") % said, body % said)
    return Message(
        _("%(unit)s has not answered %(what)s") % said,
        _(
            "%(unit)s has not answered %(what)s, overdue since %(due)s. %(above)s is asked to follow it up."
            " See it on Điều hành."
        )
        % {**said, "above": notice.unit.name},
    )


def _stale(notice: Notice) -> bool:
    """The item was answered, merged or moved on since: the message no longer applies."""
    item = notice.feedback
    if item.status not in OPEN:
        return True
    return notice.purpose == Notice.Purpose.REMINDER and notice.unit_id != item.unit_id


def send_due(now: datetime | None = None, throttle: Throttle | None = None) -> Result:
    now = now or timezone.now()
    throttle = throttle or Throttle()
    result = Result()
    for name, channel in CHANNELS.items():
        while (budget := throttle.available(name, now)) > 0:
            batch = list(
                Notice.objects.filter(state=Notice.State.QUEUED, channel=name, due_at__lte=now)
                .select_related("feedback__unit", "feedback__category", "feedback__place_unit", "unit")
                .order_by("due_at", "id")[: min(budget, 500)]
            )
            if not batch:
                break
            for notice in batch:
                if _stale(notice):
                    notice.delete()
                    continue
                throttle.take(name)
                notice.attempts += 1
                try:
                    about = {
                        "feedback": notice.feedback.code,
                        "purpose": notice.purpose,
                        "reference": f"dieuhanh-feedback-notice-{notice.pk}",
                    }
                    channel.notify(notice.unit_id, channel.recipients(notice.unit), compose(notice), about)
                except ChannelError as e:
                    notice.last_error = str(e)[:ERROR_LENGTH]
                    if e.permanent or notice.attempts >= option("attempts"):
                        notice.state = Notice.State.FAILED
                        result.failed += 1
                    else:
                        notice.due_at = not_before(PRIORITY, now + backoff(notice.attempts))
                    notice.save(update_fields=["attempts", "last_error", "state", "due_at"])
                    continue
                notice.state, notice.sent_at = Notice.State.SENT, now
                notice.save(update_fields=["attempts", "state", "sent_at"])
                result.sent += 1
    if result.sent or result.failed:
        audit(None, "feedback.notify", "feedback", rows=result.sent, failed=result.failed)
    return result


def worker_round(now: datetime, throttle: Throttle, always: bool) -> str:
    """One round of `dieuhanh worker followup` for citizens' reports."""
    ticked, sent = tick(now), send_due(now, throttle)
    prune_throttles(now)
    if not (always or ticked.reminded or ticked.escalated or sent.sent or sent.failed):
        return ""
    return (
        f"{short_datetime(now)}: phản ánh: nhắc {ticked.reminded}, báo cấp tỉnh {ticked.escalated};"
        f" đã gửi {sent.sent}, lỗi {sent.failed}"
    )
