"""`dieuhanh report` and `dieuhanh worker reports`: periodic reports from a terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from dieuhanh.terminal import acting_user, console, fail, setup_django

app = typer.Typer(help="Periodic reports (báo cáo định kỳ).", no_args_is_help=True)


def _report_actor(username: str | None, definition: str):
    """The person whose area the report reads: --as, else the definition's owner, else a superuser."""
    from dieuhanh.accounts.models import User
    from dieuhanh.reports.models import ReportDefinition

    if username:
        return acting_user(username)
    found = ReportDefinition.objects.filter(code=definition).select_related("owner").first()
    actor = (found.owner if found else None) or User.objects.filter(is_superuser=True, is_active=True).first()
    if actor is None:
        raise fail("chưa có người dùng nào để đọc số liệu: dùng --as USER")
    return actor


def _copy(report, output: Path) -> None:
    """The made file written to where the user asked (read from the storage, wherever it is kept)."""
    import shutil

    from dieuhanh.reports import services

    with services.open_file(report) as source, output.open("wb") as target:
        shutil.copyfileobj(source, target)


@app.command("generate")
def report_generate(
    definition: str = typer.Argument(..., help="a definition's code (dieuhanh report list)"),
    period: str = typer.Option(..., "--period", help="e.g. 202108, 2021S1"),
    unit: str | None = typer.Option(None, "--unit", help="EDITION:CODE; the definition's unit by default"),
    fmt: str = typer.Option("docx", "--format", help="docx, pdf, html or md"),
    output: Path | None = typer.Option(None, "-o", "--output", help="where to write the file"),
    username: str | None = typer.Option(None, "--as", help="whose area the report reads"),
    number: str = typer.Option("", "--number", help="the document's number, when already given"),
) -> None:
    """Generate a report now; it is archived with its snapshot, and copied to -o when given."""
    setup_django()
    from dieuhanh.errors import DomainError
    from dieuhanh.reports import services

    actor = _report_actor(username, definition)
    try:
        request = services.prepare(actor=actor, definition=definition, period=period, unit=unit, fmt=fmt)
        report = services.generate(actor=actor, request=request, number=number)
    except DomainError as e:
        raise fail(str(e)) from None
    if output is not None:
        _copy(report, output)
    console.print(f"Đã lập báo cáo số {report.pk}: {output or services.file_path(report)}")
    for line in report.missing:
        console.print(f"  chưa có số liệu: {line}")


@app.command("list")
def report_list() -> None:
    """The report definitions and their schedules."""
    setup_django()
    from dieuhanh.reports.models import ReportDefinition

    for d in ReportDefinition.objects.select_related("unit").order_by("code"):
        due = f", lập ngày {d.schedule_day} hằng kỳ" if d.schedule_day else ""
        typer.echo(f"{d.code}\t{d.period_type}\t{d.unit.ref}\t{d.name}{due}")


@app.command("load")
def report_load() -> None:
    """Create or update the shipped definitions (ICT monthly, half-year)."""
    setup_django()
    from dieuhanh.reports.services import load_shipped

    for d in load_shipped():
        console.print(f"  {d.code}: {d.name}")


@app.command("replay")
def report_replay(
    report_id: int,
    output: Path = typer.Option(..., "-o", "--output"),
    fmt: str | None = typer.Option(None, "--format"),
    username: str | None = typer.Option(None, "--as"),
) -> None:
    """Make an archived report again from its snapshot (same text, same figures)."""
    setup_django()
    from dieuhanh.errors import DomainError
    from dieuhanh.reports import services
    from dieuhanh.reports.models import Report

    original = Report.objects.select_related("definition", "unit").filter(pk=report_id).first()
    if original is None:
        raise fail(f"không có báo cáo số {report_id}")
    actor = _report_actor(username, original.definition.code)
    try:
        report = services.replay(actor=actor, original=original, fmt=fmt)
    except DomainError as e:
        raise fail(str(e)) from None
    _copy(report, output)
    same = "giống hệt bản gốc" if report.sha256 == original.sha256 else "khác định dạng bản gốc"
    console.print(f"Đã lập lại báo cáo số {report_id} thành số {report.pk} ({same}): {output}")


@app.command("schedule")
def report_schedule(
    today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD, to run the schedule as of that day"),
) -> None:
    """Generate the reports the schedule says are due (idempotent; run it daily, or use the worker)."""
    setup_django()
    from datetime import date

    from dieuhanh.reports.services import run_schedule

    made = run_schedule(date.fromisoformat(today) if today else None)
    for r in made:
        console.print(f"  {r.definition.code} {r.period} {r.format}: {r.state} {r.error}")
    console.print(f"Đã lập {len(made)} báo cáo đến hạn." if made else "Không có báo cáo nào đến hạn.")


def worker_reports(
    once: bool = typer.Option(False, "--once", help="one round, then stop"),
    interval: float = typer.Option(300, "--interval", min=1, help="seconds between rounds"),
) -> None:
    """Generate reports due by schedule and any queued report a restart left unmade."""
    setup_django()
    import time

    from dieuhanh.reports.models import Report, ReportState
    from dieuhanh.reports.services import run_queued, run_schedule

    while True:
        for report_id in Report.objects.filter(state=ReportState.QUEUED).values_list("pk", flat=True):
            run_queued(report_id)
        for r in run_schedule():
            console.print(f"  {r.definition.code} {r.period} {r.format}: {r.state}")
        if once:
            return
        time.sleep(interval)
