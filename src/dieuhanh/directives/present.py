"""Directives and deliveries as the API and exports show them."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from dieuhanh.directives import services
from dieuhanh.directives.models import Delivery, Directive, Response
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
    return {
        "id": directive.pk,
        "number": directive.number,
        "title": directive.title,
        "body": directive.body,
        "kind": directive.kind,
        "priority": directive.priority,
        "issuer_unit": directive.issuer_unit.ref,
        "issuer_name": directive.issuer_unit.name,
        "issued_by": _name(directive.issued_by),
        "issued_at": directive.issued_at,
        "requires_ack": directive.requires_ack,
        "deadline": directive.deadline,
        "late_answers": directive.late_answers,
        "form": directive.form,
        "targets": directive.targets,
        "edition": directive.edition_id,
        "version": directive.version,
        "cancelled_at": directive.cancelled_at,
        "revisions": [
            {
                "version": r.version,
                "action": r.action,
                "changes": r.changes,
                "note": r.note,
                "by": _name(r.by),
                "at": r.at,
            }
            for r in sorted(directive.revisions.all(), key=lambda r: r.version)
        ],
        "attachments": [attachment_out(a) for a in directive.attachments.all()],
        "status": status,
    }


def attachment_out(attachment: Any) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": f"/api/v1/attachments/{attachment.pk}",
    }


def is_overdue(delivery: Delivery, now: datetime) -> bool:
    return Delivery.objects.filter(pk=delivery.pk).filter(services.overdue_q(now)).exists()


def delivery_out(delivery: Delivery, now: datetime, overdue: bool | None = None) -> dict[str, Any]:
    """`overdue` may be given by a caller that computed it for a whole page in one query."""
    return {
        "id": delivery.pk,
        "unit": delivery.unit.ref,
        "unit_name": delivery.unit.name,
        "state": delivery.state,
        "overdue": is_overdue(delivery, now) if overdue is None else overdue,
        "escalated": delivery.escalated_at is not None,
        "sent_at": delivery.sent_at,
        "read_at": delivery.read_at,
        "acknowledged_at": delivery.acknowledged_at,
        "acknowledged_by": _name(delivery.acknowledged_by) or None,
        "responded_at": delivery.responded_at,
        "last_error": delivery.last_error,
        "directive": directive_out(delivery.directive),
        "responses": [
            {"version": r.version, "text": r.text, "figures": r.figures, "by": _name(r.by), "at": r.at}
            for r in sorted(delivery.responses.all(), key=lambda r: r.version)
        ],
    }


def status_xlsx(directive: Directive, area: Area) -> tuple[bytes, str]:
    """One row per target unit of the area: its state and times, and its latest figures."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Tình hình thực hiện"
    sheet.append([f"{directive.number} {directive.title}".strip()])
    sheet["A1"].font = Font(bold=True, size=13)
    keys = [q["key"] for q in directive.form if q.get("type") == "number"]
    labels = [q["label"] for q in directive.form if q.get("type") == "number"]
    sheet.append(["Mã đơn vị", "Đơn vị", "Trạng thái", "Đã nhận lúc", "Người nhận", "Báo cáo lúc", *labels])
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
        sheet.append(
            [
                d.unit.ref,
                d.unit.name,
                STATE_LABELS[d.state],
                _local(d.acknowledged_at),
                _name(d.acknowledged_by),
                _local(d.responded_at),
                *[figures.get(k) for k in keys],
            ]
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
