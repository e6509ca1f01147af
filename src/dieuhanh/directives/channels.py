"""How a notification reaches people: one `Channel` interface; in the app (live), e-mail, SMS.

A channel names its recipients for a unit and sends one notification to them, or raises
`ChannelError`; retrying with backoff, throttling and showing the failure are `followup`'s job, so
that every channel behaves the same on failure.

- in the app: published to the unit's live listeners (`live`), whichever web process holds their
  screens; never fails.
- e-mail: Django's `send_mail` (settings EMAIL_*; DIEUHANH_EMAIL_HOST turns it on) to the users who
  hold a recipient grant on the unit and have an address.
- SMS: one HTTP POST of JSON `{"to": [...], "text": ..., "reference": ...}` to settings.SMS_URL
  (DIEUHANH_SMS_URL; empty = no SMS), with a timeout, and `Authorization: Bearer DIEUHANH_SMS_TOKEN`
  when one is set. `reference` is the same on every retry so that a gateway can drop a duplicate
  (a timeout may hide a message that did go out).

Left for later: where phone numbers come from. Users carry no phone number and the unit has no
contact list, so SMS recipients come from settings.SMS_RECIPIENTS, a callable (or its dotted path)
unit → phone numbers; the default knows none, and a unit without numbers fails visibly, once.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

from dieuhanh.accounts.models import User
from dieuhanh.directives.models import RECIPIENT_ROLES, DirectiveKind, Notification, Priority
from dieuhanh.live import publish_on_commit
from dieuhanh.units.models import Unit
from dieuhanh.vnformat import short_datetime

ERROR_LENGTH = 300  # Notification.last_error and Delivery.last_error


class ChannelError(Exception):
    """A send that did not go through. `permanent`: retrying cannot help (no recipient, bad request)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str
    label: str  # how people call it, on the delivery's error line

    def recipients(self, unit: Unit) -> list[str]: ...

    def send(self, notification: Notification, recipients: list[str]) -> None: ...

    def notify(self, unit_id: int, recipients: list[str], message: Message, about: dict[str, Any]) -> None:
        """Carry any message about anything (a directive's delivery, a citizen's report) to a unit:
        `about` names the thing for the in-app event and `about["reference"]` is the SMS reference."""
        ...


# What is said


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


PURPOSE_LABELS: dict[str, str] = {
    Notification.Purpose.NEW: "chỉ đạo mới",
    Notification.Purpose.UPDATE: "chỉ đạo sửa đổi",
    Notification.Purpose.REMINDER: "nhắc việc",
    Notification.Purpose.ESCALATION: "báo cấp trên",
}


def compose(notification: Notification) -> Message:
    """The message in Vietnamese: what the directive is, and what the unit has not done yet."""
    delivery = notification.delivery
    directive = delivery.directive
    urgent = "[KHẨN] " if directive.priority == Priority.URGENT else ""
    title = f"{directive.number + ' ' if directive.number else ''}“{directive.title}”"
    unit = delivery.unit.name
    sent = short_datetime(delivery.sent_at)
    deadline = f", hạn báo cáo {short_datetime(directive.deadline)}" if directive.deadline else ""
    purpose = notification.purpose
    if purpose == Notification.Purpose.NEW:
        subject, text = f"Chỉ đạo mới: {directive.title}", f"{unit} nhận chỉ đạo {title}{deadline}."
    elif purpose == Notification.Purpose.UPDATE:
        subject = f"Chỉ đạo đã sửa đổi: {directive.title}"
        text = f"Chỉ đạo {title} gửi {unit} đã được sửa đổi{deadline}. Đề nghị xem lại."
    elif purpose == Notification.Purpose.REMINDER:
        subject = f"Nhắc việc: {directive.title}"
        text = f"{unit} chưa {_owed(notification)} chỉ đạo {title} (gửi lúc {sent}{deadline})."
    else:
        subject = f"{unit} chưa thực hiện chỉ đạo: {directive.title}"
        text = (
            f"{unit} chưa {_owed(notification)} chỉ đạo {title} (gửi lúc {sent}{deadline}). "
            f"Đề nghị {notification.unit.name} đôn đốc."
        )
    return Message(urgent + subject, f"{urgent}{text} Xem trên hệ thống Điều hành.")


def _owed(notification: Notification) -> str:
    delivery, directive = notification.delivery, notification.delivery.directive
    owed = []
    if directive.requires_ack and delivery.acknowledged_at is None:
        owed.append("xác nhận đã nhận")
    if (directive.form or directive.kind == DirectiveKind.REPORT_REQUEST) and delivery.responded_at is None:
        owed.append("báo cáo")
    return " và ".join(owed) or "thực hiện"


# How it is carried


class InAppChannel:
    name, label = Notification.Channel.IN_APP.value, "Trong ứng dụng"

    def recipients(self, unit: Unit) -> list[str]:
        return []  # whoever of the unit is listening: the live hub knows, not us

    def send(self, notification: Notification, recipients: list[str]) -> None:
        about = {"delivery": notification.delivery_id, "purpose": notification.purpose}
        self.notify(notification.unit_id, recipients, compose(notification), about)

    def notify(self, unit_id: int, recipients: list[str], message: Message, about: dict[str, Any]) -> None:
        data = {k: v for k, v in about.items() if k != "reference"}
        publish_on_commit(
            [unit_id], "notification", {**data, "subject": message.subject, "text": message.text}
        )


def unit_users(unit: Unit) -> Iterable[User]:
    """The active users who act for the unit on its inbox."""
    return User.objects.filter(grants__unit=unit, grants__role__in=RECIPIENT_ROLES, is_active=True).distinct()


class EmailChannel:
    name, label = Notification.Channel.EMAIL.value, "E-mail"

    def recipients(self, unit: Unit) -> list[str]:
        addresses = sorted({u.email for u in unit_users(unit) if u.email})
        if not addresses:
            raise ChannelError(f"{unit.name} không có người nhận nào có địa chỉ e-mail", permanent=True)
        return addresses

    def send(self, notification: Notification, recipients: list[str]) -> None:
        self.notify(notification.unit_id, recipients, compose(notification), {})

    def notify(self, unit_id: int, recipients: list[str], message: Message, about: dict[str, Any]) -> None:
        try:
            send_mail(message.subject, message.text, None, recipients, fail_silently=False)
        except (smtplib.SMTPException, OSError) as e:
            raise ChannelError(f"SMTP: {e}"[:ERROR_LENGTH]) from e


def no_phone_numbers(unit: Unit) -> list[str]:
    """The default SMS recipients lookup: nobody (see the module's docstring)."""
    return []


def _phone_lookup() -> Callable[[Unit], Iterable[str]]:
    lookup = settings.SMS_RECIPIENTS
    return import_string(lookup) if isinstance(lookup, str) else lookup


# 408 and 429 say "later"; any other 4xx says the request itself is wrong, and will stay wrong.
_RETRYABLE_4XX = (408, 429)


class SmsChannel:
    name, label = Notification.Channel.SMS.value, "SMS"

    def recipients(self, unit: Unit) -> list[str]:
        numbers = list(_phone_lookup()(unit))
        if not numbers:
            raise ChannelError(f"{unit.name} không có số điện thoại nhận tin nhắn", permanent=True)
        return numbers

    def send(self, notification: Notification, recipients: list[str]) -> None:
        about = {"reference": f"dieuhanh-notification-{notification.pk}"}
        self.notify(notification.unit_id, recipients, compose(notification), about)

    def notify(self, unit_id: int, recipients: list[str], message: Message, about: dict[str, Any]) -> None:
        send_sms(recipients, message.text, str(about.get("reference", "")))


def send_sms(recipients: list[str], text: str, reference: str) -> None:
    """One message through the SMS gateway (settings.SMS_URL); raises ChannelError."""
    url = settings.SMS_URL
    if urlsplit(url).scheme not in ("http", "https"):
        raise ChannelError("chưa cấu hình cổng SMS (DIEUHANH_SMS_URL)", permanent=True)
    body = {"to": recipients, "text": text, "reference": reference}
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if settings.SMS_TOKEN:
        headers["Authorization"] = f"Bearer {settings.SMS_TOKEN}"
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers, method="POST"
    )
    _post(request)


def _post(request: urllib.request.Request) -> None:
    try:
        with urllib.request.urlopen(request, timeout=settings.SMS_TIMEOUT) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as e:
        permanent = 400 <= e.code < 500 and e.code not in _RETRYABLE_4XX
        raise ChannelError(f"cổng SMS trả lời HTTP {e.code} {e.reason}", permanent=permanent) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ChannelError(f"không kết nối được cổng SMS: {reason}"[:ERROR_LENGTH]) from e


CHANNELS: dict[str, Channel] = {c.name: c for c in (InAppChannel(), EmailChannel(), SmsChannel())}
