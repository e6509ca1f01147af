"""The reports API: definitions, generation in the background, the archive, the files, and replay."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest
from ninja import Router, Schema, Status

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.reports import services
from dieuhanh.reports.models import Report, ReportDefinition, ReportState
from dieuhanh.reports.render import CONTENT_TYPES
from dieuhanh.units.scoping import area_aware, metadata

router = Router(tags=["reports"])


class ReportIn(Schema):
    definition: str
    period: str
    unit: str | None = None  # EDITION:CODE; the definition's unit by default
    format: str = "docx"
    number: str = ""  # số văn bản, when already given; blank leaves the gap to be filled at signing


class ReplayIn(Schema):
    format: str | None = None


def _out(report: Report) -> dict[str, Any]:
    done = report.state == ReportState.DONE
    return {
        "id": report.pk,
        "definition": report.definition.code,
        "unit": report.unit.ref,
        "period": report.period,
        "format": report.format,
        "state": report.state,
        "error": report.error,
        "missing": report.missing,
        "file": f"/api/v1/reports/{report.pk}/file",
        "ready": done,
        "sha256": report.sha256,
        "scheduled": report.scheduled,
        "replay_of": report.replay_of_id,
        "created_at": report.created_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
    }


def _report(user: User, report_id: int) -> Report:
    found: Report | None = (
        Report.objects.visible_to(user).select_related("definition", "unit").filter(pk=report_id).first()
    )
    if found is None:
        raise services.ReportError(None, services.NO_REPORT % {"id": report_id}, 404)
    return found


@router.get(
    "/report-definitions", response=list[dict[str, Any]], summary="The periodic reports one can generate"
)
@metadata
def list_definitions(request: HttpRequest):
    return [
        {
            "code": d.code,
            "name": d.name,
            "period_type": d.period_type,
            "unit": d.unit.ref,
            "schedule_day": d.schedule_day,
            "provincial_cutoff": d.provincial_cutoff,
            "formats": d.formats,
            "owner_unit": d.owner_unit.ref,
        }
        for d in ReportDefinition.objects.select_related("unit", "owner_unit").order_by("code")
    ]


@router.post("/reports", response={202: dict[str, Any]}, summary="Generate a report in the background")
@area_aware
def create_report(request: HttpRequest, data: ReportIn):
    """Answers at once with the report's id and where its file will be; poll `GET /reports/{id}`."""
    user = caller(request)
    prepared = services.prepare(
        actor=user, definition=data.definition, period=data.period, unit=data.unit, fmt=data.format
    )
    report = services.queue(actor=user, request=prepared, number=data.number)
    return Status(202, _out(report))


@router.get(
    "/reports", response=list[dict[str, Any]], summary="The archive of generated reports in your area"
)
@area_aware
def list_reports(request: HttpRequest, definition: str = "", period: str = ""):
    reports: QuerySet[Report] = Report.objects.visible_to(caller(request)).select_related(
        "definition", "unit"
    )
    if definition:
        reports = reports.filter(definition__code=definition)
    if period:
        reports = reports.filter(period=period)
    return [_out(r) for r in reports.order_by("-created_at")[:200]]


@router.get("/reports/{report_id}", response=dict[str, Any], summary="A report's state, gaps and file")
@area_aware
def get_report(request: HttpRequest, report_id: int):
    return _out(_report(caller(request), report_id))


@router.get("/reports/{report_id}/file", summary="The generated file (DOCX, PDF, HTML or Markdown)")
@area_aware
def get_report_file(request: HttpRequest, report_id: int):
    report = _report(caller(request), report_id)
    if report.state != ReportState.DONE:
        raise services.ReportError(None, services.NOT_DONE % {"id": report_id}, 404)
    return FileResponse(
        services.open_file(report),
        as_attachment=True,
        filename=services.file_name(report),
        content_type=CONTENT_TYPES[report.format],
    )


@router.post(
    "/reports/{report_id}/replay", response={201: dict[str, Any]}, summary="Make an archived report again"
)
@area_aware
def replay_report(request: HttpRequest, report_id: int, data: ReplayIn):
    """From the report's snapshot: the definition's text and the figures as they were, whatever changed
    since."""
    user = caller(request)
    report = services.replay(actor=user, original=_report(user, report_id), fmt=data.format)
    return Status(201, _out(report))
