"""Follow-up of directives: reminders and escalation at the schedule's times (the clock is the test's,
never a sleep), quiet hours, the notification channels with their throttling and retries, and the
inbox's live stream."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core import mail
from django.test import AsyncClient, Client
from django.utils import timezone
from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app
from dieuhanh.directives import services
from dieuhanh.directives.followup import Throttle, not_before, send_due, tick
from dieuhanh.directives.models import Delivery, Directive, DirectiveKind, Notification, Priority
from dieuhanh.live import HUB
from dieuhanh.vnformat import VN_TZ
from tests.factories import Gateway, next_chunk, parse

BEN_THANH, SAI_GON = "26743", "26740"
MORNING = datetime(2021, 8, 26, 9, 0, tzinfo=VN_TZ)
TITLE = "Báo cáo tình hình tiêm chủng"
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@pytest.fixture(autouse=True)
def in_app_only(settings):
    # Whatever the machine's environment says: the schedule's defaults, the in-app channel.
    settings.FOLLOWUP = {}
    settings.NOTIFY_CHANNELS = ["in_app"]


def issue(
    world, at: datetime, *, priority=Priority.URGENT, units=(BEN_THANH, SAI_GON), level=None, **extra
) -> Directive:
    data = services.DirectiveInput(
        title=TITLE,
        body="Đề nghị các phường báo cáo số mũi đã tiêm trong ngày.",
        targets=services.Targets(units=units, level=level),
        priority=priority,
        **extra,
    )
    return services.issue_directive(actor=world.leader.user, data=data, now=at)


def delivery(directive: Directive, unit) -> Delivery:
    return Delivery.objects.get(directive=directive, unit=unit)


def queued(purpose: str, **filters) -> list[Notification]:
    return list(Notification.objects.filter(purpose=purpose, **filters).order_by("unit_id", "id"))


def units_of(notifications: list[Notification]) -> set[int]:
    return {n.unit_id for n in notifications}


# The schedule


def test_an_urgent_reminder_comes_30_minutes_after_sending_and_not_before(world):
    directive = issue(world, MORNING)
    assert not tick(MORNING + 30 * MINUTE - timedelta(seconds=1))
    assert not Notification.objects.exists()

    assert tick(MORNING + 30 * MINUTE).reminded == 2
    reminders = queued(Notification.Purpose.REMINDER)
    assert units_of(reminders) == {world.commune_a.pk, world.commune_b.pk}
    assert {(n.channel, n.due_at) for n in reminders} == {("in_app", MORNING + 30 * MINUTE)}
    assert set(directive.deliveries.values_list("reminders", flat=True)) == {1}

    assert not tick(MORNING + 31 * MINUTE), "one reminder per step"
    assert tick(MORNING + HOUR).reminded == 2, "the second step"
    assert set(directive.deliveries.values_list("reminders", flat=True)) == {2}
    entries = AuditEntry.objects.filter(action="directives.remind", actor=None)
    assert [e.rows for e in entries] == [2, 2]


def test_escalation_after_two_hours_puts_the_delivery_in_the_parents_inbox(world):
    directive = issue(world, MORNING)
    parent = world.province_operator.user
    assert not tick(MORNING + 2 * HOUR - MINUTE).escalated
    assert not services.inbox(parent).filter(directive=directive).exists()

    assert tick(MORNING + 2 * HOUR).escalated == 2
    assert set(directive.deliveries.values_list("escalated_at", flat=True)) == {MORNING + 2 * HOUR}
    assert {d.unit_id for d in services.inbox(parent).filter(directive=directive)} == {
        world.commune_a.pk,
        world.commune_b.pk,
    }
    escalations = queued(Notification.Purpose.ESCALATION)
    assert units_of(escalations) == {world.province.pk}, "the message goes to the parent's inbox"
    assert {n.delivery.unit_id for n in escalations} == {world.commune_a.pk, world.commune_b.pk}
    # The neighbours still see only their own.
    assert [d.unit_id for d in services.inbox(world.operator_a.user)] == [world.commune_a.pk]

    assert not tick(MORNING + 5 * HOUR).escalated, "escalated once"
    entry = AuditEntry.objects.get(action="directives.escalate")
    assert entry.actor is None and entry.detail["parents"] == [world.province.pk]


def test_an_acknowledged_delivery_gets_no_acknowledgement_reminder_nor_escalation(world):
    sent = timezone.now() - 10 * MINUTE
    directive = issue(world, sent)
    services.acknowledge_delivery(actor=world.operator_a.user, delivery=delivery(directive, world.commune_a))

    assert tick(sent + 30 * MINUTE).reminded == 1
    assert tick(sent + 2 * HOUR).escalated == 1
    assert units_of(queued(Notification.Purpose.REMINDER)) == {world.commune_b.pk}
    assert delivery(directive, world.commune_a).escalated_at is None
    assert delivery(directive, world.commune_b).escalated_at == sent + 2 * HOUR


def test_a_cancelled_directive_gets_no_reminder_and_its_queued_messages_are_withdrawn(world):
    directive = issue(world, MORNING)
    tick(MORNING + 30 * MINUTE)
    assert len(queued(Notification.Purpose.REMINDER)) == 2
    services.cancel_directive(actor=world.leader.user, directive=directive, note="Đã có chỉ đạo thay thế")

    assert not tick(MORNING + HOUR)
    assert not tick(MORNING + DAY)
    assert directive.deliveries.filter(escalated_at__isnull=False).count() == 0
    result = send_due(MORNING + HOUR)
    assert (result.sent, result.withdrawn) == (0, 2)
    assert not Notification.objects.exists()


def test_response_reminders_follow_the_deadline_and_an_answer_stops_them(world):
    deadline = MORNING + 3 * DAY
    directive = issue(
        world,
        MORNING,
        priority=Priority.NORMAL,
        kind=DirectiveKind.REPORT_REQUEST,
        requires_ack=False,
        deadline=deadline,
    )
    assert not tick(deadline - DAY - MINUTE)
    assert tick(deadline - DAY).reminded == 2, "24 hours before the deadline"
    assert tick(deadline).reminded == 2, "at the deadline"
    services.respond_delivery(
        actor=world.operator_a.user, delivery=delivery(directive, world.commune_a), text="Đã tiêm 1.200 mũi"
    )
    assert not tick(deadline + DAY - MINUTE).escalated
    assert tick(deadline + DAY).escalated == 1, "a day after the deadline, only the unit without an answer"
    assert delivery(directive, world.commune_b).escalated_at == deadline + DAY


def test_a_later_deadline_brings_the_response_reminders_back(world, django_capture_on_commit_callbacks):
    now = timezone.now()
    directive = issue(
        world,
        now - 2 * DAY,
        priority=Priority.NORMAL,
        kind=DirectiveKind.REPORT_REQUEST,
        requires_ack=False,
        deadline=now + HOUR,
        units=(BEN_THANH,),
    )
    assert tick(now).reminded == 1  # 24 h before the deadline
    with django_capture_on_commit_callbacks(execute=True):
        services.update_directive(
            actor=world.leader.user, directive=directive, changes={"deadline": now + 3 * DAY}
        )
    assert delivery(directive, world.commune_a).reminders == 0
    assert len(queued(Notification.Purpose.UPDATE)) == 1, "the unit is told of the change"

    assert not tick(now + 2 * DAY - MINUTE)
    assert tick(now + 2 * DAY).reminded == 1, "24 h before the new deadline"


# Quiet hours


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2021, 8, 26, 21, 59, 59), datetime(2021, 8, 26, 21, 59, 59)),
        (datetime(2021, 8, 26, 22, 0), datetime(2021, 8, 27, 6, 0)),
        (datetime(2021, 8, 27, 3, 15), datetime(2021, 8, 27, 6, 0)),
        (datetime(2021, 8, 27, 5, 59, 59), datetime(2021, 8, 27, 6, 0)),
        (datetime(2021, 8, 27, 6, 0), datetime(2021, 8, 27, 6, 0)),
    ],
)
def test_quiet_hours_are_22_to_6_in_vietnam_time_for_normal_priority_only(local, expected):
    moment = local.replace(tzinfo=VN_TZ).astimezone(tz=None)  # whatever zone it comes in
    assert not_before(Priority.NORMAL, moment) == expected.replace(tzinfo=VN_TZ)
    assert not_before(Priority.URGENT, moment) == moment


def test_quiet_hours_hold_a_normal_reminder_until_six_but_not_an_urgent_one(world):
    late = datetime(2021, 8, 25, 23, 30, tzinfo=VN_TZ)
    normal = issue(world, late, priority=Priority.NORMAL)
    urgent = issue(world, late)

    tick(late + 30 * MINUTE)  # 00:00: the urgent one's first reminder
    assert send_due(late + 30 * MINUTE).sent == 2
    tick(late + DAY)  # 23:30 the next night: the normal one's first reminder
    held = queued(Notification.Purpose.REMINDER, delivery__directive=normal)
    assert {n.due_at for n in held} == {datetime(2021, 8, 27, 6, 0, tzinfo=VN_TZ)}
    send_due(late + DAY)  # the urgent one's later reminder and escalation go, at night
    assert Notification.objects.filter(delivery__directive=urgent).exclude(state="sent").count() == 0
    assert not send_due(datetime(2021, 8, 27, 5, 59, 59, tzinfo=VN_TZ))
    assert send_due(datetime(2021, 8, 27, 6, 0, tzinfo=VN_TZ)).sent == 2
    assert {n.state for n in queued(Notification.Purpose.REMINDER, delivery__directive=normal)} == {"sent"}


def test_issuing_queues_the_new_directive_at_once_if_urgent_and_at_six_if_normal(
    world, django_capture_on_commit_callbacks
):
    late = datetime(2021, 8, 25, 23, 30, tzinfo=VN_TZ)
    with django_capture_on_commit_callbacks(execute=True):
        urgent = issue(world, late)
        normal = issue(world, late, priority=Priority.NORMAL)
    new = Notification.Purpose.NEW
    assert {n.due_at for n in queued(new, delivery__directive=urgent)} == {late}
    assert {n.due_at for n in queued(new, delivery__directive=normal)} == {
        late.replace(day=26, hour=6, minute=0)
    }
    # Opened before six: the morning's message about it is no longer needed.
    services.read_delivery(actor=world.operator_a.user, delivery=delivery(normal, world.commune_a))
    result = send_due(late.replace(day=26, hour=6, minute=0))
    assert (result.sent, result.withdrawn) == (3, 1)


# Channels: SMS against a loopback gateway


PHONES = {BEN_THANH: ["+84903000001"], SAI_GON: []}  # Sài Gòn has given no number


@pytest.fixture
def sms(settings, gateway) -> Gateway:
    settings.NOTIFY_CHANNELS = ["sms"]
    settings.SMS_URL = gateway.url
    settings.SMS_TOKEN = "gateway-secret"
    settings.SMS_RECIPIENTS = lambda unit: PHONES.get(unit.code, [])
    return gateway


def test_a_failing_sms_gateway_is_retried_with_backoff_and_the_failure_shows_on_the_delivery(world, sms):
    sms.replies[:] = [500, 500, 200]
    directive = issue(world, MORNING, units=(BEN_THANH,))
    start = MORNING + 30 * MINUTE
    tick(start)

    assert send_due(start).retried == 1
    message = Notification.objects.get(channel="sms")
    assert (message.state, message.attempts, message.due_at) == ("queued", 1, start + MINUTE)
    assert message.last_error == "cổng SMS trả lời HTTP 500 Internal Server Error"
    assert delivery(directive, world.commune_a).last_error == (
        "SMS (nhắc việc): lần 1 không gửi được: cổng SMS trả lời HTTP 500 Internal Server Error; "
        "thử lại lúc 09:31 26/8/2021"
    )

    assert not send_due(start + MINUTE - timedelta(seconds=1)), "not before its time"
    assert len(sms.received) == 1
    assert send_due(start + MINUTE).retried == 1
    message.refresh_from_db()
    assert (message.attempts, message.due_at) == (2, start + 3 * MINUTE), "backoff doubles: 1, then 2 minutes"
    assert "thử lại lúc 09:33" in delivery(directive, world.commune_a).last_error

    assert send_due(start + 3 * MINUTE).sent == 1
    message.refresh_from_db()
    assert (message.state, message.attempts, message.sent_at) == ("sent", 3, start + 3 * MINUTE)
    assert "HTTP 500" in message.last_error, "the notification keeps its record"
    assert delivery(directive, world.commune_a).last_error == "", "the delivery shows current trouble only"

    assert len(sms.received) == 3
    bodies = [r["body"] for r in sms.received]
    assert {json.dumps(b, sort_keys=True) for b in bodies} == {json.dumps(bodies[0], sort_keys=True)}
    assert bodies[0]["to"] == ["+84903000001"]
    assert bodies[0]["reference"] == f"dieuhanh-notification-{message.pk}", "the gateway can drop duplicates"
    assert bodies[0]["text"].startswith(
        f"[KHẨN] {world.commune_a.name} chưa xác nhận đã nhận chỉ đạo “{TITLE}”"
    )
    assert {r["authorization"] for r in sms.received} == {"Bearer gateway-secret"}
    assert AuditEntry.objects.filter(action="directives.notify_failed").count() == 2


def test_an_sms_that_keeps_failing_is_given_up_after_the_last_attempt(world, sms, settings):
    settings.FOLLOWUP = {"attempts": 3}
    sms.replies[:] = [503]
    directive = issue(world, MORNING, units=(BEN_THANH,))
    at = MORNING + 30 * MINUTE
    tick(at)
    for _ in range(3):
        send_due(at)
        message = Notification.objects.get(channel="sms")
        at = message.due_at
    assert (message.state, message.attempts) == ("failed", 3)
    assert not send_due(at + DAY)
    assert len(sms.received) == 3
    assert delivery(directive, world.commune_a).last_error == (
        "SMS (nhắc việc): không gửi được sau 3 lần: cổng SMS trả lời HTTP 503 Service Unavailable"
    )


def test_an_sms_that_cannot_succeed_fails_at_once(world, sms):
    sms.replies[:] = [400]
    directive = issue(world, MORNING)
    tick(MORNING + 30 * MINUTE)
    result = send_due(MORNING + 30 * MINUTE)
    assert (result.failed, result.retried) == (2, 0)
    assert len(sms.received) == 1, "Sài Gòn has no number: no request is made for it"
    assert delivery(directive, world.commune_b).last_error == (
        "SMS (nhắc việc): không gửi được sau 1 lần: "
        f"{world.commune_b.name} không có số điện thoại nhận tin nhắn"
    )
    assert "HTTP 400" in delivery(directive, world.commune_a).last_error


def test_an_unreachable_sms_gateway_is_retried(world, sms, settings):
    settings.SMS_URL = "http://127.0.0.1:9/sms"  # the discard port: nothing listens
    directive = issue(world, MORNING, units=(BEN_THANH,))
    tick(MORNING + 30 * MINUTE)
    assert send_due(MORNING + 30 * MINUTE).retried == 1
    assert "không kết nối được cổng SMS" in delivery(directive, world.commune_a).last_error


# Channels: e-mail (Django's own locmem backend), throttling


def test_reminders_and_escalations_go_by_email_to_the_units_people(world, settings):
    settings.NOTIFY_CHANNELS = ["email"]
    for caller, address in (
        (world.operator_a, "benthanh@hcm.gov.vn"),
        (world.province_operator, "vp@hcm.gov.vn"),
    ):
        caller.user.email = address
        caller.user.save(update_fields=["email"])
    issue(world, MORNING, units=(BEN_THANH,))

    tick(MORNING + 30 * MINUTE)
    assert send_due(MORNING + 30 * MINUTE).sent == 1
    (reminder,) = mail.outbox
    assert reminder.to == ["benthanh@hcm.gov.vn"]
    assert reminder.subject == f"[KHẨN] Nhắc việc: {TITLE}"
    assert f"{world.commune_a.name} chưa xác nhận đã nhận" in reminder.body
    assert "gửi lúc 09:00 26/8/2021" in reminder.body

    tick(MORNING + 2 * HOUR)
    send_due(MORNING + 2 * HOUR)
    escalation = mail.outbox[-1]
    assert escalation.to == ["vp@hcm.gov.vn"]
    assert escalation.subject == f"[KHẨN] {world.commune_a.name} chưa thực hiện chỉ đạo: {TITLE}"
    assert f"Đề nghị {world.province.name} đôn đốc." in escalation.body


def test_sending_is_throttled_per_channel(world):
    directive = issue(world, MORNING, units=(world.province.code,), level="commune")
    communes = directive.deliveries.count()
    assert communes > 100
    tick(MORNING + 30 * MINUTE)

    throttle = Throttle({"in_app": 60})  # 60 a minute, a burst of 60
    now = MORNING + 30 * MINUTE
    assert send_due(now, throttle).sent == 60
    assert send_due(now, throttle).sent == 0, "the bucket is empty"
    assert send_due(now + 10 * timedelta(seconds=1), throttle).sent == 10, "one a second comes back"
    assert Notification.objects.filter(state="queued").count() == communes - 70
    assert send_due(now).sent == communes - 70, "a fresh bucket: the default 6000 a minute"


def test_urgent_messages_go_first_when_the_channel_is_throttled(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        normal = issue(world, MORNING, priority=Priority.NORMAL, units=(BEN_THANH,))
        urgent = issue(world, MORNING + HOUR, units=(BEN_THANH,))
    throttle = Throttle({"in_app": 1})
    assert send_due(MORNING + HOUR, throttle).sent == 1
    assert Notification.objects.get(delivery__directive=urgent).state == "sent"
    assert Notification.objects.get(delivery__directive=normal).state == "queued"


# The worker


def test_the_worker_runs_one_round_from_the_command_line(world):
    issue(world, timezone.now() - 31 * MINUTE)
    result = CliRunner().invoke(app, ["worker", "followup", "--once"])
    assert result.exit_code == 0, result.output
    assert "nhắc 2 đơn vị, báo cấp trên 0; đã gửi 2" in result.output
    assert Notification.objects.filter(state="sent").count() == 2


# Live: the inbox's server-sent events


async def open_stream(client: AsyncClient, token: str | None = None):
    # Per request: AsyncClient(headers=...) would send the header under another name.
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/api/v1/inbox/stream", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    chunks = response.streaming_content.__aiter__()
    assert await anext(chunks) == b"retry: 5000\n: connected\n\n"
    return chunks


def test_an_acknowledgement_reaches_its_units_stream_and_not_the_neighbours(
    world, django_capture_on_commit_callbacks
):
    directive = issue(world, timezone.now())
    a, b = delivery(directive, world.commune_a), delivery(directive, world.commune_b)

    def acknowledge(caller, target):
        with django_capture_on_commit_callbacks(execute=True):
            services.acknowledge_delivery(actor=caller.user, delivery=target)

    async def scenario():
        stream_a = await open_stream(AsyncClient(), world.operator_a.token)
        browser_b = AsyncClient()
        await browser_b.aforce_login(world.operator_b.user)
        stream_b = await open_stream(browser_b)
        await sync_to_async(acknowledge)(world.operator_a, a)
        heard_a = parse(await next_chunk(stream_a))
        await sync_to_async(acknowledge)(world.operator_b, b)
        heard_b = parse(await next_chunk(stream_b))  # B's stream is in order: its first event
        await stream_a.aclose()
        await stream_b.aclose()
        return heard_a, heard_b

    heard_a, heard_b = async_to_sync(scenario)()
    assert heard_a == (
        "delivery",
        {
            "id": a.pk,
            "directive": directive.pk,
            "state": "acknowledged",
            "event": "acknowledge",
            "cancelled": False,
        },
    )
    assert heard_b[1]["id"] == b.pk, "A's acknowledgement never reached Sài Gòn's stream"
    assert not HUB.listening(), "closed streams leave the hub"


def test_an_escalation_and_its_message_reach_the_parents_stream(world, django_capture_on_commit_callbacks):
    directive = issue(world, MORNING, units=(BEN_THANH,))

    def follow_up(now):
        with django_capture_on_commit_callbacks(execute=True):
            tick(now)
        with django_capture_on_commit_callbacks(execute=True):  # live events leave after commit
            send_due(now)

    async def scenario():
        token = world.province_operator.token
        stream = await open_stream(AsyncClient(), token)
        await sync_to_async(follow_up)(MORNING + 2 * HOUR)
        heard = [parse(await next_chunk(stream)) for _ in range(2)]
        await stream.aclose()
        return heard

    heard = async_to_sync(scenario)()
    assert [name for name, _ in heard] == ["delivery", "notification"]
    (_, changed), (_, message) = heard
    assert (changed["id"], changed["event"]) == (delivery(directive, world.commune_a).pk, "escalate")
    assert message["purpose"] == "escalation"
    assert message["subject"].startswith(f"[KHẨN] {world.commune_a.name} chưa thực hiện chỉ đạo")


def test_the_stream_keeps_the_connection_alive(world, settings):
    settings.LIVE_HEARTBEAT_SECONDS = 0.01

    async def scenario():
        stream = await open_stream(AsyncClient(), world.operator_a.token)
        chunk = await next_chunk(stream)
        await stream.aclose()
        return chunk

    assert async_to_sync(scenario)() == ": keep-alive\n\n"


def test_the_stream_needs_a_caller_who_acts_for_a_unit(world):
    assert Client().get("/api/v1/inbox/stream").status_code == 401
    bad = Client(headers={"Authorization": "Bearer dh_not-a-token"}).get("/api/v1/inbox/stream")
    assert bad.status_code == 401 and bad["WWW-Authenticate"] == "Bearer"
    refused = world.tracer.client().get("/api/v1/inbox/stream")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
