"""`dieuhanh feedback`: citizens' reports from a terminal."""

from __future__ import annotations

import typer

from dieuhanh.terminal import console, setup_django

app = typer.Typer(help="Citizens' reports (phản ánh, kiến nghị).", no_args_is_help=True)


@app.command("import-incidents")
def feedback_import_incidents(batch: int = typer.Option(1000, "--batch", min=1)) -> None:
    """Turn the incident reports that source platforms sent since the last run into feedback items."""
    setup_django()
    from dieuhanh.feedback.services import import_incidents

    read = made = 0
    while True:
        got, new = import_incidents(batch=batch)
        read, made = read + got, made + new
        if not new:  # nothing left, or a batch only of reports without a 2025 commune: stop, not spin
            break
    console.print(f"Đã đọc {read} phản ánh từ các nền tảng nguồn, tạo {made} phản ánh mới.")
