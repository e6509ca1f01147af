"""`dieuhanh trace`: the API's tracing from a terminal, for a tracer on the server."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder
from rich.console import Console
from rich.table import Table

from dieuhanh.accounts.models import User
from dieuhanh.tracing import services
from dieuhanh.tracing.exports import list_csv, list_xlsx
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.present import list_rows, local, minutes, trace_out
from dieuhanh.vnformat import parse_local


def run_trace(
    person_id: str | None,
    *,
    case_id: int | None,
    depth: int,
    username: str,
    confirmed_at: str | None,
    output: Path | None,
    split: Path | None,
    as_json: bool,
    console: Console,
) -> None:
    actor = User.objects.filter(username=username, is_active=True).first()
    if actor is None:
        raise ValueError(f"no active user '{username}'")
    if (person_id is None) == (case_id is None):
        raise ValueError("give either a person's ID or --case N")
    case = (
        services.case_for(actor, case_id) if case_id else _case(actor, person_id or "", confirmed_at, console)
    )
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
        _write_per_commune(rows, split, console)


def _case(actor: User, person_id: str, confirmed_at: str | None, console: Console) -> Case:
    case = services.find_case(actor, person_id)
    if case is not None:
        return case
    if not confirmed_at:
        raise ValueError("this person is not a registered case: add --confirmed-at to register them")
    try:
        confirmed = parse_local(confirmed_at)
    except ValueError:
        raise ValueError(f"--confirmed-at: not an ISO date and time: {confirmed_at}") from None
    data = services.CaseInput(confirmed_at=confirmed)
    case = services.register_case(actor=actor, person_id=person_id, data=data)
    console.print(
        f"Đã đăng ký ca #{case.pk}, lây nhiễm từ {local(int(case.window_start.timestamp())):%d/%m/%Y %H:%M}"
    )
    return case


def _table(view: services.TraceView) -> Table:
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


def _write_per_commune(rows: list[dict], folder: Path, console: Console) -> None:
    """Each commune's own people in its own file: what "send to communes" hands over until directives
    carry it."""
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["commune"] or "chua-khai-bao", []).append(row)
    for commune, members in groups.items():
        (folder / f"{commune.replace(':', '-')}.csv").write_bytes(list_csv(members))
    console.print(f"Đã ghi {len(groups)} danh sách theo xã vào {folder}")
