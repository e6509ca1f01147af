"""The `dieuhanh` command: each app's commands (its `cli` module) assembled, and those that cross
apps — the database made or upgraded with the units (`init`, `units load`) and the server (`serve`)."""

from __future__ import annotations

import os

import typer

from dieuhanh.accounts import cli as accounts
from dieuhanh.directives import cli as directives
from dieuhanh.feedback import cli as feedback
from dieuhanh.indicators import cli as indicators
from dieuhanh.reports import cli as reports
from dieuhanh.terminal import console, migrate, progress_bar, setup_django
from dieuhanh.tracing import cli as tracing
from dieuhanh.warehouse import cli as warehouse
from dieuhanh.warehouse.enterprises import cli as enterprises

app = typer.Typer(help="Điều hành: the command room's platform.", no_args_is_help=True)
units = typer.Typer(help="Administrative units.", no_args_is_help=True)
worker = typer.Typer(help="Background workers.", no_args_is_help=True)
app.add_typer(units, name="units")
app.add_typer(accounts.users, name="users")
app.add_typer(accounts.tokens, name="token")
app.add_typer(warehouse.sources, name="sources")
app.add_typer(warehouse.venues, name="venues")
app.add_typer(worker, name="worker")
app.add_typer(directives.tasks, name="tasks")
app.add_typer(indicators.catalog, name="catalog")
app.add_typer(indicators.datavalues, name="datavalues")
app.add_typer(reports.app, name="report")
app.add_typer(feedback.app, name="feedback")
app.add_typer(enterprises.app, name="enterprises")
# An enterprise or a park is a unit: it is registered under `units`.
units.command("add")(enterprises.units_add)
for command in (warehouse.ingest, warehouse.purge, warehouse.partitions, tracing.trace, warehouse.synth):
    app.command()(command)
worker.command("ingest")(warehouse.worker_ingest)
worker.command("followup")(directives.worker_followup)
worker.command("reports")(reports.worker_reports)


@units.command("load")
def units_load() -> None:
    """Load VN-2021, VN-2025 and their succession from the packages (idempotent)."""
    setup_django()
    migrate()
    load_units()


def load_units() -> None:
    from dieuhanh.accounts.services import audit
    from dieuhanh.units.services import counts, load_units

    with progress_bar() as tick:
        report = load_units(progress=tick)
    for edition in ("VN-2021", "VN-2025"):
        c = counts(edition)
        console.print(
            f"{edition}: {c.get('province', 0)} tỉnh, {c.get('district', 0)} huyện, "
            f"{c.get('commune', 0)} xã — mới {report.created[edition]}, "
            f"cập nhật {report.updated[edition]}, giữ nguyên {report.unchanged[edition]}"
        )
    if report.changed:
        audit(
            None,
            "units.load",
            rows=sum(report.created.values()) + sum(report.updated.values()),
            **report.as_dict(),
        )
        console.print(
            f"Kế thừa 2021 → 2025: mới {report.successions_created}, "
            f"cập nhật {report.successions_updated}, bỏ {report.successions_removed}"
        )
    else:
        console.print("Không có thay đổi: đơn vị hành chính đã được nạp đầy đủ (nothing changed).")


@app.command()
def init(demo: bool = typer.Option(False, "--demo", help="also create the demo users")) -> None:
    """Create or upgrade the database, load the units, and (with --demo) the demo users."""
    setup_django()
    migrate()
    load_units()
    if demo:
        from django.conf import settings

        from dieuhanh.demo import (
            create_demo,
            create_demo_directives,
            load_demo_enterprises,
            load_demo_events,
            load_demo_indicators,
            load_demo_reports,
            load_demo_reports_of_citizens,
            load_demo_task_list,
            register_demo_cases,
        )

        with progress_bar() as tick:
            loaded = load_demo_events(settings.HOME / "demo-data", progress=tick)
        for line in loaded:
            console.print(line)
        for login in [*create_demo(), *load_demo_enterprises()]:
            console.print(login)
        demo_lines = [*register_demo_cases(), *create_demo_directives(), *load_demo_task_list()]
        for line in [*demo_lines, *load_demo_indicators(), *load_demo_reports()]:
            console.print(line)
        for line in load_demo_reports_of_citizens():
            console.print(line)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(
        0, "--workers", min=0, help="web processes (default: one per core with NATS, else one)"
    ),
) -> None:
    """Serve the command room (ASGI, uvicorn): one web process per core when live events go through NATS."""
    setup_django()
    import copy
    import logging
    import os

    import uvicorn
    from django.conf import settings

    from dieuhanh.live import BUS

    migrate()
    if not workers:
        # Several processes need the broker for each other's live events: without one, a single process
        # keeps every screen live (the log says why).
        workers = (os.cpu_count() or 1) if BUS.mode == "nats" else 1
    console.print(f"Phòng điều hành: http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)")
    live = "qua NATS" if BUS.mode == "nats" else "trong tiến trình (không có NATS)"
    console.print(f"{workers} tiến trình web; sự kiện trực tiếp {live}")
    uvicorn.run(
        "dieuhanh.asgi:application",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",  # joins the live relay at start (dieuhanh.asgi)
        # Django's configuration, whose every handler masks IDs and phone numbers: uvicorn's access and
        # error lines go through it too (a copy: uvicorn may write into the one it is given).
        log_config=copy.deepcopy(settings.LOGGING),
        log_level=logging.getLevelName(settings.LOG_LEVEL),
        timeout_graceful_shutdown=5,  # open event streams never end by themselves
    )


def main() -> None:
    # Whatever the command writes (the SQLite database, keys, the report archive, exports, the demo's
    # files) is about people: readable by the service's own user only.
    os.umask(0o077)
    app()
