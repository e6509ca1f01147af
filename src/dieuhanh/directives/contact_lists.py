"""Tracing's "send to communes": one directive per commune of residence, asking it to follow up its
own contacts of a case.

The directive's text carries only pseudonymous keys and exposure facts: its readers are the commune's
operators, and identities are person-level data for tracers (DESIGN §5). The commune's tracer opens
the case's list (and the identities, audited) in the tracing workspace, which shows them exactly
this commune's residents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from dieuhanh.accounts.models import Grant, User
from dieuhanh.directives.models import Directive, DirectiveKind, Priority
from dieuhanh.directives.services import DirectiveInput, Targets, issue_to
from dieuhanh.tracing import services as tracing
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.present import local, minutes
from dieuhanh.units.models import Unit

FOLLOW_UP_HOURS = 24
TABLE_HEAD = (
    "| Mã ẩn danh | Phân loại | Tiếp xúc lần đầu | Số phút | Địa điểm |\n| --- | --- | --- | --- | --- |"
)
FORM = [
    {"key": "reached", "label": "Số người đã liên hệ được", "type": "number"},
    {"key": "quarantined", "label": "Số người đã cách ly", "type": "number"},
    {"key": "tested", "label": "Số người đã lấy mẫu xét nghiệm", "type": "number"},
    {"key": "notes", "label": "Ghi chú", "type": "text"},
]


@dataclass
class SendReport:
    sent: list[Directive] = field(default_factory=list)
    already: list[Unit] = field(default_factory=list)  # a list for this case went there before
    outside: list[Unit] = field(default_factory=list)  # communes outside the tracer's area
    undeclared: int = 0  # contacts with no known commune of residence


def send_contact_lists(
    *, actor: User, case: Case, depth: int = 2, deadline: datetime | None = None, now: datetime | None = None
) -> SendReport:
    area = tracing.require_tracer(actor)
    now = now or timezone.now()
    view = tracing.contacts(actor=actor, case=case, depth=depth, rule=tracing.Rule())
    issuer = _issuer(actor)
    report = SendReport()
    for unit, people in sorted(
        tracing.by_commune(view).items(), key=lambda item: item[0].ref if item[0] else ""
    ):
        if unit is None:
            report.undeclared = len(people)
        elif not area.contains(unit):
            report.outside.append(unit)
        elif Directive.objects.filter(targets__case=case.pk, deliveries__unit=unit).exists():
            report.already.append(unit)
        else:
            data = _directive_for(
                case, unit, people, view, deadline or now + timedelta(hours=FOLLOW_UP_HOURS)
            )
            report.sent.append(
                issue_to(
                    actor=actor, data=data, units=[unit], issuer=issuer, now=now, extra={"case": case.pk}
                )
            )
    return report


def _issuer(actor: User) -> Unit:
    grant = (
        Grant.objects.filter(user=actor, role="tracer").select_related("unit").order_by("unit__level").first()
    )
    assert grant is not None  # require_tracer has passed
    return grant.unit


def _directive_for(
    case: Case, unit: Unit, people: list[tracing.ContactView], view: tracing.TraceView, deadline: datetime
) -> DirectiveInput:
    f1 = sum(1 for p in people if p.generation == 1)
    rows = "\n".join(
        f"| `{p.person.hex()[:12]}` | F{p.generation} | {local(p.first_exposure):%H:%M %d/%m/%Y} | "
        f"{minutes(p.seconds):g} | {', '.join(sorted({view.venues[e.venue].code for e in p.edges}))} |"
        for p in people
    )
    body = "\n\n".join(
        [
            f"Ca bệnh #{case.pk} có **{len(people)} người tiếp xúc** cư trú tại {unit.name} "
            f"({f1} F1, {len(people) - f1} F2). Đề nghị liên hệ, hướng dẫn cách ly, lấy mẫu xét nghiệm "
            "và báo cáo kết quả.",
            f"Tổ truy vết của xã xem danh tính (CCCD, số điện thoại) tại mục Truy vết, ca bệnh #{case.pk}.",
            f"{TABLE_HEAD}\n{rows}",
        ]
    )
    return DirectiveInput(
        title=f"Theo dõi {len(people)} người tiếp xúc của ca bệnh #{case.pk}",
        body=body,
        targets=Targets(units=(unit.ref,)),
        kind=DirectiveKind.REPORT_REQUEST,
        priority=Priority.URGENT,
        requires_ack=True,
        deadline=deadline,
        form=FORM,
    )
