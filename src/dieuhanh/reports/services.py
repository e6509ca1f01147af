"""Verbs of the reports app: save a definition, generate a report (now or in the background), replay an
archived one from its snapshot, and generate what the schedule says is due."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.directives.assignments import vn_today
from dieuhanh.errors import DomainError
from dieuhanh.indicators import periods
from dieuhanh.indicators.periods import Period, PeriodError
from dieuhanh.indicators.services import (
    IndicatorError,
    at_or_above,
    audit_change,
    may_manage,
    national_owner,
    owner_of_change,
)
from dieuhanh.live import area_keys, publish_on_commit
from dieuhanh.replica import replica_reads
from dieuhanh.reports.compose import Composer, Document, check_templates
from dieuhanh.reports.definition import check
from dieuhanh.reports.facts import Facts, SnapshotError
from dieuhanh.reports.models import Report, ReportDefinition, ReportState
from dieuhanh.reports.render import FORMATS, render
from dieuhanh.units.models import Unit
from dieuhanh.units.services import unit_in_area

logger = logging.getLogger(__name__)
SHIPPED = Path(__file__).parent / "definitions"


class ReportError(DomainError):
    """A report that cannot be made as asked; `field` names the input at fault, `status` the HTTP answer."""


NO_REPORT = _("no report %(id)s in your area")
NOT_DONE = _("report %(id)s is not done: it has no file or snapshot yet")


# Definitions


def definition_state(definition: ReportDefinition) -> dict[str, Any]:
    """What an audit row keeps of a definition, before and after a change."""
    return {
        "name": definition.name,
        "period_type": definition.period_type,
        "unit": definition.unit.ref,
        "owner": definition.owner.username if definition.owner else None,
        "schedule_day": definition.schedule_day,
        "provincial_cutoff": definition.provincial_cutoff,
        "formats": definition.formats,
        "body": definition.body,
        "owner_unit": definition.owner_unit.ref,
    }


@transaction.atomic
def save_definition(
    *, actor: User | None, code: str, owner_unit: Unit | None = None, **fields: Any
) -> ReportDefinition:
    """Create or update a definition by code; its body is checked first (DefinitionError names the part).
    Only an admin of its owner unit (or above it) changes it (indicators.services' owner rules); the
    unit it reports on lies inside its owner unit."""
    check_templates(check(fields["body"]))
    found = (
        ReportDefinition.objects.select_for_update(of=("self",))
        .select_related("unit", "owner", "owner_unit")
        .filter(code=code)
        .first()
    )
    try:
        owner = owner_of_change(
            actor=actor,
            what="mẫu báo cáo",
            code=code,
            current=found.owner_unit if found else None,
            asked=owner_unit,
        )
    except IndicatorError as exc:
        raise ReportError(exc.field, exc.message, exc.status) from None
    unit = fields.get("unit") or (found.unit if found else None)
    if unit is not None and not at_or_above(owner, unit):
        raise ReportError(
            "unit",
            _("%(ref)s is outside the owner unit of report definition '%(code)s'")
            % {"ref": unit.ref, "code": code},
        )
    before = definition_state(found) if found else None
    definition = found or ReportDefinition(code=code)
    for name, value in {**fields, "owner_unit": owner}.items():
        ReportDefinition._meta.get_field(name)  # an unknown field is an error, as update_or_create made it
        setattr(definition, name, value)
    definition.save()
    audit_change(actor, "report_definition", code, before, definition_state(definition))
    return definition


@transaction.atomic
def delete_definition(*, actor: User | None, definition: ReportDefinition) -> None:
    """Only by an admin of its owner unit (or above it); a definition with archived reports stays."""
    if not may_manage(actor, definition.owner_unit):
        raise ReportError(
            "code",
            _(
                "you may not delete report definition '%(code)s': only an administrator of its owner unit "
                "or of a unit above it may"
            )
            % {"code": definition.code},
            403,
        )
    before = definition_state(definition)
    definition.delete()
    audit_change(actor, "report_definition", definition.code, before, None)


def load_shipped(*, actor: User | None = None, owner: User | None = None) -> list[ReportDefinition]:
    """The definitions shipped in reports/definitions/*.json, created or updated (idempotent)."""
    out = []
    nation = national_owner()  # shipped definitions are the nation's, whoever made one of their codes
    for path in sorted(SHIPPED.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        unit = Unit.objects.ref(data.pop("unit"))
        out.append(save_definition(actor=actor, unit=unit, owner=owner, owner_unit=nation, **data))
    return out


# Generation


def _period(definition: ReportDefinition, pid: str) -> Period:
    try:
        period = periods.parse(pid)
    except PeriodError as exc:
        raise ReportError("period", str(exc)) from None
    if period.type != definition.period_type:
        raise ReportError(
            "period",
            _("'%(code)s' is a %(type)s report; %(period)s is not a %(type)s period")
            % {"code": definition.code, "type": definition.period_type_label, "period": pid},
        )
    return period


def _unit_in_area(actor: User, ref: str | None, definition: ReportDefinition) -> Unit:
    """The unit asked for, else the definition's own; either inside the caller's area."""
    return unit_in_area(ref or definition.unit.ref, actor.area())


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ReportError(
            "format",
            _("'%(format)s' is not a report format: use one of %(codes)s")
            % {"format": fmt, "codes": ", ".join(FORMATS)},
        )
    return fmt


@dataclass(frozen=True)
class Request:
    definition: ReportDefinition
    unit: Unit
    period: Period
    fmt: str


def prepare(*, actor: User, definition: str, period: str, unit: str | None, fmt: str) -> Request:
    """The request checked: a known definition, a period of its type, a unit inside the actor's area."""
    found = ReportDefinition.objects.filter(code=definition).select_related("unit").first()
    if found is None:
        raise ReportError("definition", _("no report definition '%(code)s'") % {"code": definition}, 404)
    return Request(found, _unit_in_area(actor, unit, found), _period(found, period), _format(fmt))


def compose(actor: User, request: Request, *, body: dict, facts: Facts, number: str, dated: date) -> Document:
    composer = Composer(check(body), request.unit, request.period, facts)
    try:
        return composer.document(number=number, dated=dated)
    except SnapshotError as exc:
        raise ReportError("snapshot", str(exc), 409) from None


def generate(*, actor: User, request: Request, number: str = "", dated: date | None = None) -> Report:
    """Make the report now: compose, render, store the file and the snapshot; returns the archived Report."""
    report = Report.objects.create(
        definition=request.definition, unit=request.unit, period=request.period.id, format=request.fmt,
        requested_by=actor, state=ReportState.RUNNING,
    )  # fmt: skip
    audit(actor, "report.generate", f"{request.definition.code}@{request.unit.ref}/{request.period.id}")
    _run(report, number=number, dated=dated or vn_today())
    return report


def queue(*, actor: User, request: Request, number: str = "", dated: date | None = None) -> Report:
    """Archive a queued report and start making it after the commit, in the background."""
    report = Report.objects.create(
        definition=request.definition, unit=request.unit, period=request.period.id, format=request.fmt,
        requested_by=actor, snapshot={"number": number, "dated": (dated or vn_today()).isoformat()},
    )  # fmt: skip
    audit(actor, "report.queue", f"{request.definition.code}@{request.unit.ref}/{request.period.id}")
    transaction.on_commit(lambda: _start(report.pk))
    return report


def _start(report_id: int) -> None:
    threading.Thread(target=run_queued, args=(report_id,), name=f"report-{report_id}", daemon=True).start()


def run_queued(report_id: int) -> None:
    """Make a queued report (the background thread, or `dieuhanh worker reports` after a restart)."""
    try:
        report = Report.objects.select_related("definition", "unit", "requested_by").get(pk=report_id)
        if report.state != ReportState.QUEUED:
            return
        Report.objects.filter(pk=report_id).update(state=ReportState.RUNNING)
        _run(
            report,
            number=report.snapshot.get("number", ""),
            dated=date.fromisoformat(report.snapshot["dated"]),
        )
    finally:
        # The thread's own connections: left open they would outlive it (and hold the database).
        connections.close_all()


def _run(report: Report, *, number: str, dated: date, replay: Report | None = None) -> None:
    actor = report.requested_by or report.definition.owner
    try:
        if actor is None:
            raise ReportError(
                "owner", _("a scheduled report needs its definition's owner, whose area it reads")
            )
        request = Request(report.definition, report.unit, periods.parse(report.period), report.format)
        if replay is not None:
            body, facts = (
                replay.snapshot["body"],
                Facts(actor, recorded=replay.snapshot["facts"], replay=True),
            )
        else:
            body, facts = report.definition.body, Facts(actor)
        document = _read(actor, request, body=body, facts=facts, number=number, dated=dated)
        content = _deterministic(render(document, report.format), dated)
    except DomainError as exc:
        _fail(report, str(exc))
        raise
    except Exception as exc:  # the archive must say a background report failed, whatever the cause
        logger.exception("report %s failed", report.pk)
        _fail(report, f"{type(exc).__name__}: {exc}")
        raise
    _store(report, content, document, body, facts, number, dated)


def _read(actor: User, request: Request, *, body: dict, facts: Facts, number: str, dated: date) -> Document:
    """The report's reads (its figures, tasks and directives), on the replica when one is healthy and
    the actor has not just written (dieuhanh.replica); the archive row around them is the primary's.
    Should the replica fail halfway, the reads start again on the primary from the facts given."""
    given = dict(facts.recorded)

    def attempt() -> Document:
        facts.recorded.clear()
        facts.recorded.update(given)
        return compose(actor, request, body=body, facts=facts, number=number, dated=dated)

    return replica_reads(attempt, user=actor)()


def _fail(report: Report, message: str) -> None:
    Report.objects.filter(pk=report.pk).update(
        state=ReportState.FAILED, error=message, finished_at=timezone.now()
    )
    report.state, report.error = ReportState.FAILED, message
    _announce(report)


def _store(
    report: Report, content: bytes, document: Document, body: dict, facts: Facts, number: str, dated: date
) -> None:
    name = f"reports/{report.pk}-{report.definition.code}-{report.period}-{report.unit.code}.{report.format}"
    # Through the default storage, as attachments and photos are: the same folder on every machine, the
    # owner's alone (0600), and a name never overwritten (the storage picks another if taken).
    report.file = default_storage.save(name, ContentFile(content))
    report.sha256 = hashlib.sha256(content).hexdigest()
    report.snapshot = {"body": body, "facts": facts.recorded, "number": number, "dated": dated.isoformat()}
    report.missing, report.state, report.finished_at = document.missing, ReportState.DONE, timezone.now()
    report.save()
    _announce(report)


def _announce(report: Report) -> None:
    """A `report` live event to the screens of the report's unit and those above it (made or failed)."""
    data = {"report": report.pk, "definition": report.definition.code, "period": report.period}
    keys = area_keys(report.unit.edition_id, report.unit.path)
    publish_on_commit(keys, "report", data | {"state": report.state})


def _deterministic(content: bytes, dated: date) -> bytes:
    """A DOCX (a zip) whose entries carry the report's date rather than the moment of writing, so that
    replaying a report from its snapshot gives the same bytes."""
    if not content.startswith(b"PK"):
        return content
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(dated.year, dated.month, dated.day, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info))
    return out.getvalue()


def replay(*, actor: User, original: Report, fmt: str | None = None) -> Report:
    """The archived report made again from its snapshot (same definition text, same figures)."""
    if not actor.area().contains(original.unit):  # first: a state would tell the report exists
        raise ReportError("report", _("outside your area"), 404)
    if original.state != ReportState.DONE:
        raise ReportError("report", NOT_DONE % {"id": original.pk}, 409)
    report = Report.objects.create(
        definition=original.definition, unit=original.unit, period=original.period,
        format=_format(fmt or original.format), requested_by=actor, replay_of=original,
        state=ReportState.RUNNING,
    )  # fmt: skip
    dated = date.fromisoformat(original.snapshot["dated"])
    audit(actor, "report.replay", f"{original.pk}", format=report.format)
    _run(report, number=original.snapshot.get("number", ""), dated=dated, replay=original)
    return report


def open_file(report: Report) -> File:
    """The made file, for reading (a download, a copy)."""
    return default_storage.open(report.file, "rb")


def file_path(report: Report) -> Path:
    """Where the made file lies on this machine's disk (what the CLI prints)."""
    return Path(default_storage.path(report.file))


def file_name(report: Report) -> str:
    """The name a downloaded report is saved under: ict_monthly-202108-VN.docx."""
    return f"{report.definition.code}-{report.period}-{report.unit.code}.{report.format}"


# Schedule


def period_due(definition: ReportDefinition, today: date) -> Period | None:
    """The period whose report is due on `today`, if any.

    A report is due from its schedule day of the month after its period closed (the 15th of September
    for August). With the provinces' cut-off a month runs from the 15th to the 14th, so the month's
    report is due from the 15th of that same month (15 August for the month 15/7–14/8, named tháng 8).
    """
    if definition.schedule_day is None or today.day < definition.schedule_day:
        return None
    if definition.provincial_cutoff and definition.period_type == "monthly":
        return periods.period_of("monthly", today)
    closed = today.replace(day=1) - timedelta(days=1)
    period = periods.period_of(definition.period_type, closed)
    return period if period.end == closed else None


def run_schedule(today: date | None = None) -> list[Report]:
    """Generate every report due today that the archive does not hold yet (safe to run repeatedly)."""
    today = today or vn_today()
    made = []
    for definition in ReportDefinition.objects.filter(schedule_day__isnull=False).select_related(
        "unit", "owner"
    ):
        period = period_due(definition, today)
        if period is None:
            continue
        for fmt in definition.formats or ["docx"]:
            if (
                Report.objects.filter(
                    definition=definition, period=period.id, unit=definition.unit, format=fmt, scheduled=True
                )
                .exclude(state=ReportState.FAILED)
                .exists()
            ):
                continue
            report = Report.objects.create(
                definition=definition, unit=definition.unit, period=period.id, format=fmt, scheduled=True,
                state=ReportState.RUNNING,
            )  # fmt: skip
            audit(None, "report.schedule", f"{definition.code}@{definition.unit.ref}/{period.id}", format=fmt)
            try:
                _run(report, number="", dated=today)
            except DomainError:
                logger.warning("scheduled report %s failed: %s", report.pk, report.error)
            made.append(report)
    return made
