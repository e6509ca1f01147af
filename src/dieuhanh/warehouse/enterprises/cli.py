"""`dieuhanh enterprises` and `dieuhanh units add`: enterprises and industrial parks from a terminal."""

from __future__ import annotations

from pathlib import Path

import typer

from dieuhanh.terminal import acting_user, console, existing, fail, imported, refusals, setup_django

app = typer.Typer(help="Enterprises and industrial parks (KCN).", no_args_is_help=True)


def _acting(username: str, area_of):
    """Who the command acts as (--as) and the area that bounds it (`area_of` the user), or the system
    and every area."""
    from dieuhanh.units.scoping import Area

    if not username:
        return None, Area(True, frozenset())
    actor = acting_user(username)
    return actor, area_of(actor)


def units_add(
    kind: str = typer.Argument(..., help="enterprise (doanh nghiệp) or industrial_park (khu công nghiệp)"),
    tax_code: str = typer.Option(..., "--tax-code", help="mã số thuế; becomes the unit's code"),
    name: str = typer.Option(..., "--name"),
    address: str = typer.Option("", "--address"),
    commune: str = typer.Option("", "--commune", help="EDITION:CODE of its commune (bare code: VN-2025)"),
    park: str = typer.Option("", "--park", help="an enterprise's industrial park, EDITION:CODE"),
    province: str = typer.Option("", "--province", help="a park in no one commune: its province"),
    username: str = typer.Option("", "--as", help="an admin or province operator whose area bounds it"),
) -> None:
    """Register an enterprise (under its park or commune) or a park (under its commune or province)."""
    setup_django()
    from dieuhanh.warehouse.enterprises.services import (
        EnterpriseInput,
        create_enterprise,
        creating_area,
    )

    actor, area = _acting(username, creating_area)
    data = EnterpriseInput(kind, tax_code, name, address, commune, park, province)
    with refusals():
        unit = create_enterprise(actor=actor, data=data, area=area)
    console.print(f"Đã đăng ký {unit.name} ({unit.ref}) dưới {unit.parent.name if unit.parent else ''}.")
    print(unit.ref)


@app.command("import")
def enterprises_import(
    path: Path,
    username: str = typer.Option("", "--as", help="an admin or province operator whose area bounds the file"),
) -> None:
    """Import enterprises and parks (CSV, XLSX): kind, tax_code, name, address, commune, park, province."""
    setup_django()
    from dieuhanh.warehouse.enterprises.services import creating_area, import_enterprises

    existing(path)
    actor, area = _acting(username, creating_area)
    with refusals():
        result = import_enterprises(actor=actor, path=path, area=area)
    imported(
        result.rejected,
        f"Doanh nghiệp, KCN: mới {len(result.created)}, đã có {len(result.existing)}, "
        f"bị từ chối {len(result.rejected)}",
    )


@app.command("roster")
def enterprises_roster(
    path: Path,
    enterprise: str = typer.Option(..., "--enterprise", help="EDITION:CODE (the tax code) of the enterprise"),
    username: str = typer.Option("", "--as", help="a user who may write the enterprise's roster"),
) -> None:
    """Import an enterprise's roster from CSV or XLSX: person_id, start, end (IDs pseudonymised at once)."""
    setup_django()
    from dieuhanh.warehouse.enterprises.services import (
        enterprise_in,
        import_roster,
        roster_area,
        roster_rows,
    )

    existing(path)
    actor, area = _acting(username, roster_area)
    with refusals():
        unit = enterprise_in(enterprise, area, name="--enterprise")
        result = import_roster(actor=actor, enterprise=unit, workers=roster_rows(path))
    imported(
        result.rejected,
        f"Người lao động của {unit.name}: mới {result.added}, cập nhật {result.updated}, "
        f"giữ nguyên {result.unchanged}, bị từ chối {len(result.rejected)}",
    )


@app.command("venue")
def enterprises_venue(
    venue: str,
    enterprise: str = typer.Option("", "--enterprise", help="EDITION:CODE; empty: the venue belongs to none"),
) -> None:
    """Make a venue (gate, canteen) an enterprise's: its check-ins, stored and to come, count for it."""
    setup_django()
    from dieuhanh.units.scoping import Area
    from dieuhanh.warehouse.enterprises.services import enterprise_in, link_venue
    from dieuhanh.warehouse.models import Venue

    found = Venue.objects.filter(code=venue).first()
    if found is None:
        raise fail(f"không có điểm QR '{venue}'")
    with refusals():
        unit = enterprise_in(enterprise, Area(True, frozenset()), name="--enterprise") if enterprise else None
        link_venue(actor=None, venue=found, enterprise=unit)
    console.print(f"Điểm QR {found.code} → {unit.name if unit else 'không thuộc doanh nghiệp nào'}")


@app.command("follow-succession")
def enterprises_follow() -> None:
    """Move enterprises and parks with their communes' succession (also done by `units load`)."""
    setup_django()
    from dieuhanh.warehouse.enterprises.services import follow_succession

    report = follow_succession(actor=None)
    for line in report.moved:
        console.print(f"  {line}")
    moved, skipped = len(report.moved), len(report.skipped)
    console.print(f"Đã chuyển {moved}, sửa đường dẫn {report.repathed}, bỏ qua {skipped}")
