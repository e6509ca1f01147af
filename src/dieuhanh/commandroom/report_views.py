"""The reports page: generate a periodic report for a unit of one's area, and the archive to download from."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dieuhanh.accounts.guards import caller
from dieuhanh.errors import DomainError
from dieuhanh.indicators.periods import PeriodError
from dieuhanh.indicators.periods import read as read_period
from dieuhanh.reports import services
from dieuhanh.reports.models import Report, ReportDefinition, ReportState
from dieuhanh.reports.render import CONTENT_TYPES, FORMATS
from dieuhanh.units.scoping import area_aware

FORMAT_NAMES = {"docx": "Word (DOCX)", "pdf": "PDF", "html": "HTML", "md": "Markdown"}


@login_required
@area_aware
def reports_page(request: HttpRequest) -> HttpResponse:
    user = caller(request)
    area = user.area()
    # Any definition may be run for a unit of one's own area (a national one for one's province).
    has_area = bool(area)
    definitions = list(ReportDefinition.objects.select_related("unit").order_by("name")) if has_area else []
    archive: QuerySet[Report] = (
        Report.objects.visible_to(user).select_related("definition", "unit").order_by("-created_at")
    )
    return render(
        request,
        "commandroom/reports.html",
        {
            "definitions": definitions,
            "archive": archive[:100],
            "formats": [(f, FORMAT_NAMES[f]) for f in FORMATS],
            "form": request.session.pop("report_form", {}),
        },
    )


@login_required
@area_aware
@require_POST
def generate(request: HttpRequest) -> HttpResponse:
    user = caller(request)
    form = {k: request.POST.get(k, "").strip() for k in ("definition", "period", "unit", "format")}
    try:
        period = read_period(form["period"]).id  # 'tháng 8/2021' as well as 202108
    except PeriodError:
        period = form["period"]  # the service says what is wrong with it
    try:
        prepared = services.prepare(
            actor=user, definition=form["definition"], period=period,
            unit=form["unit"] or None, fmt=form["format"] or "docx",
        )  # fmt: skip
        report = services.generate(actor=user, request=prepared)
    except DomainError as exc:
        request.session["report_form"] = form
        messages.error(request, _("The report could not be made: %(reason)s") % {"reason": exc})
        return redirect("reports")
    messages.success(request, _("Report %(id)s is ready.") % {"id": report.pk})
    return redirect("reports")


@login_required
@area_aware
def download(request: HttpRequest, report_id: int) -> FileResponse:
    report: Report | None = (
        Report.objects.visible_to(caller(request))
        .select_related("definition", "unit")
        .filter(pk=report_id)
        .first()
    )
    if report is None or report.state != ReportState.DONE:
        raise Http404(_("No such report in your area."))
    return FileResponse(
        services.open_file(report), as_attachment=True, filename=services.file_name(report),
        content_type=CONTENT_TYPES[report.format],
    )  # fmt: skip
