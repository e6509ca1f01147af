"""Directives and deliveries as the API and exports show them."""

from __future__ import annotations

import io
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from dieuhanh.directives import services
from dieuhanh.directives.models import Attachment, Delivery, Directive, Response, Revision
from dieuhanh.sheets import append_row
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import short_datetime

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATE_LABELS = {
    "sent": "Đã gửi",
    "read": "Đã xem",
    "acknowledged": "Đã nhận",
    "responded": "Đã báo cáo",
}


def _name(user: Any) -> str:
    return (user.get_full_name() or user.full_name or user.username) if user else ""


def directive_out(directive: Directive, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return _directive_out(directive, histories([directive])[directive.pk], status)


def directives_out(directives: Sequence[Directive]) -> list[dict[str, Any]]:
    history = histories(directives)
    return [_directive_out(d, history[d.pk]) for d in directives]


def _directive_out(directive: Directive, history: History, status: dict[str, Any] | None = None):
    return {
        "id": directive.pk,
        "number": directive.number,
        "title": directive.title,
        "body": directive.body,
        "kind": directive.kind,
        "priority": directive.priority,
        "issuer_unit": history.issuer_unit,
        "issuer_name": history.issuer_name,
        "issued_by": history.issued_by,
        "issued_at": directive.issued_at,
        "requires_ack": directive.requires_ack,
        "deadline": directive.deadline,
        "late_answers": directive.late_answers,
        "form": directive.form,
        "targets": directive.targets,
        "edition": directive.edition_id,
        "version": directive.version,
        "cancelled_at": directive.cancelled_at,
        "revisions": history.revisions,
        "attachments": history.attachments,
        "status": status,
    }


class History:
    """What a directive shows beyond its own row, the same for each of its 10,000 recipients: who issued
    it, its revisions and its attachments."""

    __slots__ = ("at", "attachments", "issued_by", "issuer_name", "issuer_unit", "revisions")

    def __init__(self, at: float) -> None:
        self.at = at
        self.issuer_unit = self.issuer_name = self.issued_by = ""
        self.revisions: list[dict[str, Any]] = []
        self.attachments: list[dict[str, Any]] = []


# Per process, keyed by the directive's `updated_at`: every revision saves the directive, and attaching a
# file touches it (services.attach), so a changed history is always a new key, in every process. Only the
# names of the people in it may be older, by at most HISTORY_SECONDS after a user is renamed.
HISTORY_SECONDS = 60.0
HISTORY_ENTRIES = 2_000
_histories: dict[tuple[int, datetime], History] = {}
_histories_lock = threading.Lock()


def histories(directives: Iterable[Directive]) -> dict[int, History]:
    """Each directive's history, from the cache or, for those missing, in three queries for them all."""
    now = time.monotonic()
    found: dict[int, History] = {}
    missing: dict[int, Directive] = {}
    for d in directives:
        hit = _histories.get((d.pk, d.updated_at))
        if hit is not None and now - hit.at < HISTORY_SECONDS:
            found[d.pk] = hit
        else:
            missing[d.pk] = d
    if not missing:
        return found
    fresh = {pk: History(now) for pk in missing}
    for d in Directive.objects.filter(pk__in=missing).select_related("issuer_unit", "issued_by"):
        history = fresh[d.pk]
        history.issuer_unit, history.issuer_name = d.issuer_unit.ref, d.issuer_unit.name
        history.issued_by = _name(d.issued_by)
    for r in Revision.objects.filter(directive_id__in=missing).select_related("by").order_by("version"):
        fresh[r.directive_id].revisions.append(
            {
                "version": r.version,
                "action": r.action,
                "changes": r.changes,
                "note": r.note,
                "by": _name(r.by),
                "at": r.at,
            }
        )
    for a in Attachment.objects.filter(directive_id__in=missing).order_by("id"):
        fresh[a.directive_id].attachments.append(attachment_out(a))
    with _histories_lock:
        if len(_histories) + len(fresh) > HISTORY_ENTRIES:
            _histories.clear()
        for pk, history in fresh.items():
            _histories[(pk, missing[pk].updated_at)] = history
    return found | fresh


def forget_histories() -> None:
    """Empty the cache (the tests' rolled-back databases reuse ids)."""
    with _histories_lock:
        _histories.clear()


def attachment_out(attachment: Any) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": f"/api/v1/attachments/{attachment.pk}",
    }


def deliveries_out(deliveries: Sequence[Delivery], now: datetime) -> list[dict[str, Any]]:
    """Deliveries as shown, with their directives' histories (cached) and their responses (one query, and
    none when no delivery of them was answered): an opened directive costs no query beyond its row."""
    history = histories({d.directive_id: d.directive for d in deliveries}.values())
    answered = [d.pk for d in deliveries if d.responded_at is not None]
    responses: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if answered:
        for r in Response.objects.filter(delivery_id__in=answered).select_related("by").order_by("version"):
            responses[r.delivery_id].append(
                {"version": r.version, "text": r.text, "figures": r.figures, "by": _name(r.by), "at": r.at}
            )
    return [
        {
            "id": d.pk,
            "unit": d.unit.ref,
            "unit_name": d.unit.name,
            "state": d.state,
            "overdue": services.is_overdue(d, now),
            "escalated": d.escalated_at is not None,
            "sent_at": d.sent_at,
            "read_at": d.read_at,
            "acknowledged_at": d.acknowledged_at,
            "acknowledged_by": _name(d.acknowledged_by) or None,
            "responded_at": d.responded_at,
            "last_error": d.last_error,
            "directive": _directive_out(d.directive, history[d.directive_id]),
            "responses": responses[d.pk],
        }
        for d in deliveries
    ]


def delivery_out(delivery: Delivery, now: datetime) -> dict[str, Any]:
    return deliveries_out([delivery], now)[0]


def status_xlsx(directive: Directive, area: Area) -> tuple[bytes, str]:
    """One row per target unit of the area: its state and times, and its latest figures."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Tình hình thực hiện"
    append_row(sheet, [f"{directive.number} {directive.title}".strip()])
    sheet["A1"].font = Font(bold=True, size=13)
    keys = [q["key"] for q in directive.form if q.get("type") == "number"]
    labels = [q["label"] for q in directive.form if q.get("type") == "number"]
    append_row(
        sheet, ["Mã đơn vị", "Đơn vị", "Trạng thái", "Đã nhận lúc", "Người nhận", "Báo cáo lúc", *labels]
    )
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    deliveries = (
        Delivery.objects.filter(directive=directive)
        .within(area)
        .select_related("unit", "acknowledged_by")
        .order_by("unit__path")
    )
    latest = _latest_figures(directive)
    for d in deliveries:
        figures = latest.get(d.pk, {})
        append_row(
            sheet,
            [
                d.unit.ref,
                d.unit.name,
                STATE_LABELS[d.state],
                _local(d.acknowledged_at),
                _name(d.acknowledged_by),
                _local(d.responded_at),
                *[figures.get(k) for k in keys],
            ],
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), XLSX_TYPE


def _latest_figures(directive: Directive) -> dict[int, dict[str, float]]:
    latest: dict[int, dict[str, float]] = {}
    for delivery_id, figures in (
        Response.objects.filter(delivery__directive=directive)
        .order_by("delivery_id", "version")
        .values_list("delivery_id", "figures")
    ):
        latest[delivery_id] = figures
    return latest


def _local(value: datetime | None) -> str:
    return short_datetime(value) if value else ""
