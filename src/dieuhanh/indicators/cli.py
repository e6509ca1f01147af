"""`dieuhanh catalog` and `dieuhanh datavalues`: indicators from a terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from dieuhanh.terminal import acting_user, console, existing, fail, setup_django

catalog = typer.Typer(help="Indicator catalogues (hệ thống chỉ tiêu).", no_args_is_help=True)
datavalues = typer.Typer(help="Data values (số liệu chỉ tiêu).", no_args_is_help=True)


@catalog.command("load")
def catalog_load(
    name: str = typer.Argument(..., help="a shipped catalogue (ict) or a JSON file"),
    with_seed_values: bool = typer.Option(
        False, "--with-seed-values", help="also the figures the seeds state"
    ),
) -> None:
    """Create or update a catalogue's data elements, data sets, indicators and targets (idempotent)."""
    setup_django()
    from dieuhanh.indicators.catalog import CatalogError, load

    try:
        report = load(name, actor=None, with_seed_values=with_seed_values)
    except CatalogError as e:
        raise fail(str(e)) from None
    words = {"created": "mới", "updated": "cập nhật", "unchanged": "không đổi"}
    for (what, how), n in sorted(report.counts.items()):
        console.print(f"  {what}: {words[how]} {n}")
    if report.values is not None:
        counts = report.values.as_dict()["importCount"]
        new, updated, same = counts["imported"], counts["updated"], counts["ignored"]
        console.print(f"  số liệu: mới {new}, cập nhật {updated}, không đổi {same}")
    console.print("Đã nạp danh mục." if report.changed else "Không có thay đổi.")


@catalog.command("list")
def catalog_list() -> None:
    """The shipped catalogues."""
    setup_django()
    from dieuhanh.indicators.catalog import shipped

    for name in shipped():
        typer.echo(name)


@datavalues.command("import")
def values_import(
    path: Path,
    username: str = typer.Option(..., "--as", help="an operator (or admin) of the values' units"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check only; write nothing"),
    edition: str = typer.Option("VN-2025", "--edition", help="the map of bare unit codes"),
) -> None:
    """Import a DHIS2 dataValueSets file (JSON or CSV); prints the import summary, bad rows by line."""
    setup_django()
    import json

    from dieuhanh.indicators.datavalues import ImportFormatError, import_values, records_of
    from dieuhanh.indicators.services import writable_area

    actor = acting_user(username)
    existing(path)
    kind = "text/csv" if path.suffix.lower() == ".csv" else "application/json"
    try:
        records = records_of(path.read_bytes(), kind)
    except ImportFormatError as e:
        raise fail(str(e)) from None
    summary = import_values(records, actor=actor, area=writable_area(actor), edition=edition, dry_run=dry_run)
    typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    if summary.status == "ERROR":
        raise typer.Exit(code=2)
