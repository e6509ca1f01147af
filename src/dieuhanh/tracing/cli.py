"""`dieuhanh trace`: the API's tracing from a terminal, for a tracer on the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from django.utils.translation import gettext_lazy as _

from dieuhanh.terminal import acting_user, console, fail, setup_django

if TYPE_CHECKING:
    from rich.table import Table

    from dieuhanh.accounts.models import User
    from dieuhanh.tracing import services
    from dieuhanh.tracing.models import Case


def trace(
    person_id: str = typer.Argument(None, help="the case's CCCD or phone number"),
    case: int = typer.Option(None, "--case", help="or: the case's number"),
    depth: int = typer.Option(1, "--depth", min=1, max=2, help="1: F1; 2: F1 and F2"),
    user: str = typer.Option(..., "--as", help="the tracer running it (area and audit log)"),
    confirmed_at: str = typer.Option(
        None, "--confirmed-at", help="register the person as a case first (ISO time)"
    ),
    output: Path = typer.Option(None, "-o", "--output", help="write the list per commune: .csv or .xlsx"),
    split: Path = typer.Option(None, "--split-dir", help="one CSV per commune of residence, in this folder"),
    as_json: bool = typer.Option(False, "--json", help="print the API's JSON instead of a table"),
) -> None:
    """Trace a confirmed case's contacts (F1, F2) from the check-ins, as the API does; audited."""
    setup_django()
    try:
        run_trace(
            person_id,
            case_id=case,
            depth=depth,
            actor=acting_user(user),
            confirmed_at=confirmed_at,
            output=output,
            split=split,
            as_json=as_json,
        )
    except (ValueError, PermissionError) as e:
        raise fail(str(e)) from None


def run_trace(
    person_id: str | None,
    *,
    case_id: int | None,
    depth: int,
    actor: User,
    confirmed_at: str | None,
    output: Path | None,
    split: Path | None,
    as_json: bool,
) -> None:
    from django.core.serializers.json import DjangoJSONEncoder

    from dieuhanh.tracing import services
    from dieuhanh.tracing.exports import list_csv, list_xlsx
    from dieuhanh.tracing.present import list_rows, trace_out

    if (person_id is None) == (case_id is None):
        raise ValueError(_("give either a person's ID or --case N"))
    case = services.case_for(actor, case_id) if case_id else _case(actor, person_id or "", confirmed_at)
    view = services.contacts(actor=actor, case=case, depth=depth, rule=services.Rule())
    if as_json:
        print(json.dumps(trace_out(view), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))
    else:
        console.print(_table(view))
    console.print(
        f"Ca #{case.pk}: {view.counts.get(1, 0)} F1, {view.counts.get(2, 0)} F2, "
        f"{len(view.edges)} lần tiếp xúc, tính trong {view.millis:.0f} ms"
    )
    rows = list_rows(view)
    if output:
        title = f"Danh sách tiếp xúc của ca bệnh #{case.pk} (đến F{depth})"
        output.write_bytes(list_xlsx(rows, title) if output.suffix == ".xlsx" else list_csv(rows))
        console.print(f"Đã ghi {output}")
    if split:
        _write_per_commune(rows, split)


def _case(actor: User, person_id: str, confirmed_at: str | None) -> Case:
    from dieuhanh.tracing import services
    from dieuhanh.tracing.present import local
    from dieuhanh.vnformat import parse_local

    case = services.find_case(actor, person_id)
    if case is not None:
        return case
    if not confirmed_at:
        raise ValueError(_("this person is not a registered case: add --confirmed-at to register them"))
    try:
        confirmed = parse_local(confirmed_at)
    except ValueError:
        raise ValueError(
            _("--confirmed-at: not an ISO date and time: %(value)s") % {"value": confirmed_at}
        ) from None
    data = services.CaseInput(confirmed_at=confirmed)
    case = services.register_case(actor=actor, person_id=person_id, data=data)
    console.print(
        f"Đã đăng ký ca #{case.pk}, lây nhiễm từ {local(int(case.window_start.timestamp())):%d/%m/%Y %H:%M}"
    )
    return case


def _table(view: services.TraceView) -> Table:
    from rich.table import Table

    from dieuhanh.tracing.present import local, minutes

    table = Table("F", "Mã ẩn danh", "Nơi ở", "Tiếp xúc đầu", "Phút", "Địa điểm", "Ca bệnh")
    for c in view.contacts:
        table.add_row(
            str(c.generation),
            c.person[:6].hex(),
            c.residence.name if c.residence else "—",
            f"{local(c.first_exposure):%d/%m %H:%M}",
            f"{minutes(c.seconds):g}",
            ", ".join(sorted({view.venues[e.venue].code for e in c.edges})),
            "có" if c.is_case else "",
        )
    return table


def _write_per_commune(rows: list[dict], folder: Path) -> None:
    """Each commune's own people in its own file: what "send to communes" hands over until directives
    carry it."""
    from dieuhanh.tracing.exports import list_csv

    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["commune"] or "chua-khai-bao", []).append(row)
    for commune, members in groups.items():
        (folder / f"{commune.replace(':', '-')}.csv").write_bytes(list_csv(members))
    console.print(f"Đã ghi {len(groups)} danh sách theo xã vào {folder}")
