"""`dieuhanh tasks` and `dieuhanh worker followup`: government tasks and the directives' follow-up from
a terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from dieuhanh.terminal import acting_user, console, existing, fail, imported, setup_django

tasks = typer.Typer(help="Tasks (nhiệm vụ).", no_args_is_help=True)


@tasks.command("import")
def tasks_import(
    path: Path,
    username: str = typer.Option(..., "--as", help="a leader or analyst over the tasks' owner units"),
) -> None:
    """Import tasks from CSV or XLSX: title, basis, owner, co_owners, due; bad lines are listed."""
    setup_django()
    from dieuhanh.directives.assignments import import_tasks
    from dieuhanh.errors import DomainError

    existing(path)
    actor = acting_user(username)
    try:
        result = import_tasks(actor=actor, path=path)
    except DomainError as e:
        raise fail(str(e)) from None
    created, known, rejected = len(result.created), len(result.duplicates), len(result.rejected)
    imported(result.rejected, f"Nhiệm vụ: mới {created}, đã có {known}, bị từ chối {rejected}")


def worker_followup(
    once: bool = typer.Option(False, "--once", help="one round, then stop"),
    interval: float = typer.Option(60, "--interval", min=1, help="seconds between rounds"),
) -> None:
    """Remind late units, escalate to their parents, send the queued notifications; daily, make the
    event partitions ahead (run one of these)."""
    setup_django()
    from dieuhanh.directives.followup import run

    if not once:
        console.print(f"Đang theo dõi chỉ đạo, mỗi {interval:g} giây một lượt (Ctrl+C để dừng)…")
    run(once=once, interval=interval, report=console.print)
