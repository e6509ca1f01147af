"""The `dieuhanh` command."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Điều hành: the command room's platform.", no_args_is_help=True)
units_app = typer.Typer(help="Administrative units.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their grants.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(units_app, name="units")
app.add_typer(users_app, name="users")
app.add_typer(token_app, name="token")
sources_app = typer.Typer(help="Source platforms that send events.", no_args_is_help=True)
venues_app = typer.Typer(help="QR venues (điểm QR).", no_args_is_help=True)
worker_app = typer.Typer(help="Background workers.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(venues_app, name="venues")
app.add_typer(worker_app, name="worker")
tasks_app = typer.Typer(help="Tasks (nhiệm vụ).", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
catalog_app = typer.Typer(help="Indicator catalogues (hệ thống chỉ tiêu).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
values_app = typer.Typer(help="Data values (số liệu chỉ tiêu).", no_args_is_help=True)
app.add_typer(values_app, name="datavalues")
report_app = typer.Typer(help="Periodic reports (báo cáo định kỳ).", no_args_is_help=True)
app.add_typer(report_app, name="report")
feedback_app = typer.Typer(help="Citizens' reports (phản ánh, kiến nghị).", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")
enterprises_app = typer.Typer(help="Enterprises and industrial parks (KCN).", no_args_is_help=True)
app.add_typer(enterprises_app, name="enterprises")
console = Console(stderr=True)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()


def fail(message: str) -> typer.Exit:
    console.print(f"[red]Lỗi:[/red] {message}")
    return typer.Exit(code=1)


@contextmanager
def progress_bar() -> Iterator:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def tick(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield tick


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


@units_app.command("load")
def units_load() -> None:
    """Load VN-2021, VN-2025 and their succession from the packages (idempotent)."""
    _django()
    migrate()
    _load_units()


def _load_units() -> None:
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


def _unit(ref: str):
    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import get_unit

    try:
        return get_unit(ref)
    except ValueError as e:
        raise fail(str(e)) from None
    except Unit.DoesNotExist:
        raise fail(f"không có đơn vị '{ref}' (unknown unit; run `dieuhanh units load` first?)") from None


@users_app.command("create")
def users_create(
    name: str,
    password: str = typer.Option(..., "--password", "-p", help="at least 8 characters"),
    unit: list[str] = typer.Option([], "--unit", help="EDITION:CODE, e.g. VN-2025:79; repeat with --role"),
    role: list[str] = typer.Option([], "--role", help="leader, analyst, operator, tracer, enterprise, admin"),
    full_name: str = typer.Option("", "--full-name"),
) -> None:
    """Create a user with (unit, role) grants given as repeated --unit/--role pairs."""
    _django()
    from django.core.exceptions import ValidationError

    from dieuhanh.accounts.services import create_user

    if len(unit) != len(role):
        raise fail(f"{len(unit)} --unit but {len(role)} --role: give them in pairs")
    grants = [(_unit(u), r) for u, r in zip(unit, role, strict=True)]
    try:
        user = create_user(actor=None, username=name, password=password, grants=grants, full_name=full_name)
    except ValidationError as e:
        raise fail("; ".join(e.messages)) from None
    except ValueError as e:
        raise fail(str(e)) from None
    console.print(f"Đã tạo người dùng {user.username} với {len(grants)} quyền.")


@users_app.command("unlock")
def users_unlock(
    name: str = typer.Argument("", help="the user name locked out after failed logins"),
    client: str = typer.Option("", "--client", help="instead, a client IP address locked out"),
) -> None:
    """End a failed-login lock (of user NAME, or of a client address) before its time; audited."""
    _django()
    from dieuhanh.accounts.lockout import unlock
    from dieuhanh.accounts.models import LoginThrottle

    if bool(name) == bool(client):
        raise fail("cho tên người dùng NAME hoặc --client ĐỊA_CHỈ_IP (một trong hai)")
    scope, key = (LoginThrottle.Scope.CLIENT, client) if client else (LoginThrottle.Scope.ACCOUNT, name)
    if unlock(actor=None, scope=scope, key=key):
        console.print(f"Đã mở khóa đăng nhập cho {key}.")
    else:
        console.print(f"{key} không bị khóa đăng nhập; số lần sai (nếu có) đã được xóa.")


@token_app.command("create")
def token_create(
    name: str, label: str = typer.Option("cli", "--label", help="what the token is for")
) -> None:
    """Create an API token for user NAME; the token is printed once, alone on the last line."""
    _django()
    from dieuhanh.accounts.models import User
    from dieuhanh.accounts.services import create_token

    user = User.objects.filter(username=name).first()
    if user is None:
        raise fail(f"không có người dùng '{name}'")
    _, raw = create_token(actor=None, user=user, name=label)
    console.print(f"Token cho {name} (chỉ hiện một lần; store it now):")
    print(raw)


@sources_app.command("create")
def sources_create(
    name: str,
    kinds: str = typer.Option(
        ..., "--kinds", help="comma-separated: checkin,health,travel,test,vaccination,..."
    ),
    edition: str = typer.Option("VN-2025", "--edition", help="how its bare commune codes are read"),
) -> None:
    """Register a source platform; its token is printed once, alone on the last line."""
    _django()
    from dieuhanh.warehouse.services import WarehouseError, create_source

    try:
        source, raw = create_source(actor=None, name=name, kinds=kinds.split(","), edition=edition)
    except WarehouseError as e:
        raise fail(str(e)) from None
    console.print(f"Đã đăng ký nguồn {source.name} ({', '.join(source.kinds)}; {source.edition_id}). Token:")
    print(raw)


@venues_app.command("import")
def venues_import(path: Path, edition: str = typer.Option("VN-2025", "--edition")) -> None:
    """Import venues from CSV: code,name,kind,commune,lat,lon,dwell_minutes."""
    _django()
    from dieuhanh.warehouse.services import WarehouseError, import_venues

    if not path.exists():
        raise fail(f"không có tệp {path}")
    try:
        result = import_venues(actor=None, path=path, edition=edition)
    except WarehouseError as e:
        raise fail(str(e)) from None
    for line, field, error in result.rejected[:50]:
        console.print(f"  dòng {line}, {field}: {error}")
    console.print(
        f"Điểm QR: mới {result.created}, cập nhật {result.updated}, bị từ chối {len(result.rejected)}"
    )
    if result.rejected:
        raise typer.Exit(code=2)


@venues_app.command("qr")
def venues_qr(
    code: str, output: Path = typer.Option(..., "-o", "--output", help="PNG file to write")
) -> None:
    """Write the QR image of a venue (payload signed, so forged codes are refused)."""
    _django()
    from dieuhanh.warehouse.models import Venue
    from dieuhanh.warehouse.qr import payload, write_png

    if not Venue.objects.filter(code=code).exists():
        raise fail(f"không có điểm QR '{code}'")
    write_png(code, output)
    console.print(f"Đã ghi {output} ({payload(code)})")


def _enterprise_actor(username: str | None):
    """The user whose area bounds the command (--as), or the system (every area)."""
    from dieuhanh.accounts.models import User
    from dieuhanh.units.scoping import Area

    if not username:
        return None, Area(True, frozenset())
    actor = User.objects.filter(username=username, is_active=True).first()
    if actor is None:
        raise fail(f"không có người dùng '{username}'")
    return actor, actor.area()


@units_app.command("add")
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
    _django()
    from dieuhanh.warehouse.enterprises.services import (
        EnterpriseError,
        EnterpriseInput,
        create_enterprise,
        creating_area,
    )

    actor, area = _enterprise_actor(username)
    if actor is not None:
        area = creating_area(actor)
    data = EnterpriseInput(kind, tax_code, name, address, commune, park, province)
    try:
        unit = create_enterprise(actor=actor, data=data, area=area)
    except EnterpriseError as e:
        raise fail(str(e)) from None
    console.print(f"Đã đăng ký {unit.name} ({unit.ref}) dưới {unit.parent.name if unit.parent else ''}.")
    print(unit.ref)


@enterprises_app.command("import")
def enterprises_import(
    path: Path,
    username: str = typer.Option("", "--as", help="an admin or province operator whose area bounds the file"),
) -> None:
    """Import enterprises and parks (CSV, XLSX): kind, tax_code, name, address, commune, park, province."""
    _django()
    from dieuhanh.warehouse.enterprises.services import EnterpriseError, creating_area, import_enterprises

    if not path.exists():
        raise fail(f"không có tệp {path}")
    actor, area = _enterprise_actor(username)
    if actor is not None:
        area = creating_area(actor)
    try:
        result = import_enterprises(actor=actor, path=path, area=area)
    except EnterpriseError as e:
        raise fail(str(e)) from None
    for line, column, why in result.rejected[:50]:
        console.print(f"  dòng {line}, cột {column}: {why}", markup=False)
    console.print(
        f"Doanh nghiệp, KCN: mới {len(result.created)}, đã có {len(result.existing)}, "
        f"bị từ chối {len(result.rejected)}"
    )
    if result.rejected:
        raise typer.Exit(code=2)


@enterprises_app.command("roster")
def enterprises_roster(
    path: Path,
    enterprise: str = typer.Option(..., "--enterprise", help="EDITION:CODE (the tax code) of the enterprise"),
    username: str = typer.Option("", "--as", help="a user who may write the enterprise's roster"),
) -> None:
    """Import an enterprise's roster from CSV or XLSX: person_id, start, end (IDs pseudonymised at once)."""
    _django()
    from dieuhanh.warehouse.enterprises.services import (
        EnterpriseError,
        enterprise_in,
        import_roster,
        roster_area,
        roster_rows,
    )

    if not path.exists():
        raise fail(f"không có tệp {path}")
    actor, area = _enterprise_actor(username)
    if actor is not None:
        area = roster_area(actor)
    try:
        unit = enterprise_in(enterprise, area, name="--enterprise")
        result = import_roster(actor=actor, enterprise=unit, workers=roster_rows(path))
    except EnterpriseError as e:
        raise fail(str(e)) from None
    for line, column, why in result.rejected[:50]:
        console.print(f"  dòng {line}, cột {column}: {why}", markup=False)
    console.print(
        f"Người lao động của {unit.name}: mới {result.added}, cập nhật {result.updated}, "
        f"giữ nguyên {result.unchanged}, bị từ chối {len(result.rejected)}"
    )
    if result.rejected:
        raise typer.Exit(code=2)


@enterprises_app.command("venue")
def enterprises_venue(
    venue: str,
    enterprise: str = typer.Option("", "--enterprise", help="EDITION:CODE; empty: the venue belongs to none"),
) -> None:
    """Make a venue (gate, canteen) an enterprise's: its check-ins, stored and to come, count for it."""
    _django()
    from dieuhanh.units.scoping import Area
    from dieuhanh.warehouse.enterprises.services import EnterpriseError, enterprise_in, link_venue
    from dieuhanh.warehouse.models import Venue

    found = Venue.objects.filter(code=venue).first()
    if found is None:
        raise fail(f"không có điểm QR '{venue}'")
    try:
        unit = enterprise_in(enterprise, Area(True, frozenset()), name="--enterprise") if enterprise else None
        link_venue(actor=None, venue=found, enterprise=unit)
    except EnterpriseError as e:
        raise fail(str(e)) from None
    console.print(f"Điểm QR {found.code} → {unit.name if unit else 'không thuộc doanh nghiệp nào'}")


@enterprises_app.command("follow-succession")
def enterprises_follow() -> None:
    """Move enterprises and parks with their communes' succession (also done by `units load`)."""
    _django()
    from dieuhanh.warehouse.enterprises.services import follow_succession

    report = follow_succession(actor=None)
    for line in report.moved:
        console.print(f"  {line}")
    moved, skipped = len(report.moved), len(report.skipped)
    console.print(f"Đã chuyển {moved}, sửa đường dẫn {report.repathed}, bỏ qua {skipped}")


@tasks_app.command("import")
def tasks_import(
    path: Path,
    username: str = typer.Option(..., "--as", help="a leader or analyst over the tasks' owner units"),
) -> None:
    """Import tasks from CSV or XLSX: title, basis, owner, co_owners, due; bad lines are listed."""
    _django()
    from dieuhanh.accounts.models import User
    from dieuhanh.directives.assignments import AssignmentError, import_tasks

    if not path.exists():
        raise fail(f"không có tệp {path}")
    actor = User.objects.filter(username=username, is_active=True).first()
    if actor is None:
        raise fail(f"không có người dùng '{username}'")
    try:
        result = import_tasks(actor=actor, path=path)
    except AssignmentError as e:
        raise fail(str(e)) from None
    for line, column, why in result.rejected[:50]:
        console.print(f"  dòng {line}, cột {column}: {why}", markup=False)
    created, known, rejected = len(result.created), len(result.duplicates), len(result.rejected)
    console.print(f"Nhiệm vụ: mới {created}, đã có {known}, bị từ chối {rejected}")
    if result.rejected:
        raise typer.Exit(code=2)


@app.command()
def ingest(
    path: Path,
    kind: str = typer.Option(
        ..., "--kind", help="checkin, health, travel, test, vaccination, quarantine, report"
    ),
    source: str = typer.Option(..., "--source", help="the registered source's name"),
    show: int = typer.Option(20, "--show", help="rejected lines to print"),
    from_line: int = typer.Option(
        1, "--from-line", min=1, help="start at this line of the file (where a stopped run says to resume)"
    ),
) -> None:
    """Ingest an NDJSON, CSV or Parquet file of events through the same pipeline as the API.

    Each batch commits on its own; a run that stops (an error, Ctrl-C, SIGTERM) says the line to
    resume from with --from-line. Resuming earlier than that is harmless: stored lines count as
    duplicates."""
    _django()
    from dieuhanh.warehouse.ingest import Summary, csv_records, ndjson_records, parquet_records
    from dieuhanh.warehouse.models import Source
    from dieuhanh.warehouse.services import WarehouseError
    from dieuhanh.warehouse.services import ingest as run

    found = Source.objects.filter(name=source).first()
    if found is None:
        raise fail(f"không có nguồn '{source}' (dieuhanh sources create …)")
    if not path.exists():
        raise fail(f"không có tệp {path}")
    total, summary = _count_lines(path), Summary()
    settled = from_line - 1  # every line up to this one is stored, a duplicate, or rejected
    stopped: BaseException | None = None
    with path.open("rb") as f, progress_bar() as tick, _sigterm_as_interrupt():

        def committed(line: int, batch: Summary) -> None:
            nonlocal settled
            settled = line
            summary.add(batch)
            tick(f"Nạp {path.name}, đã lưu đến dòng", line, total)

        if path.suffix == ".parquet":
            records = parquet_records(str(path))
        elif path.suffix == ".csv":
            records = csv_records(f)
        else:
            records = ndjson_records(f)
        if from_line > 1:
            records = (item for item in records if item[0] >= from_line)
        try:
            # Files go in 100,000 records a transaction: on SQLite a commit rewrites every index page
            # the batch touched, so fewer, larger commits write much less.
            run(found, kind, records, batch_size=FILE_BATCH, progress=committed)
        except WarehouseError as e:
            raise fail(str(e)) from None
        except (Exception, KeyboardInterrupt) as e:  # an official reads where to resume, not a traceback
            stopped = e
    for r in summary.rejected[:show]:
        console.print(f"  dòng {r.line}, {r.field or '-'}: {r.error}", markup=False, soft_wrap=True)
    console.print_json(
        data={k: v for k, v in summary.as_dict().items() if k != "rejected"}
        | {"rejected": len(summary.rejected)}
    )
    if stopped is not None:
        why = "bị ngắt" if isinstance(stopped, KeyboardInterrupt) else f"{type(stopped).__name__}: {stopped}"
        console.print(
            f"Dừng lại ({why}). Đã xong đến dòng {settled}; tiếp tục từ dòng {settled + 1}:\n"
            f"  dieuhanh ingest {path} --kind {kind} --source {source} --from-line {settled + 1}",
            markup=False,
            soft_wrap=True,  # the command is copied as it is: never cut across lines
        )
        raise typer.Exit(code=1)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a long command as Ctrl-C does: the batch in hand rolls back, and it reports."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


FILE_BATCH = 100_000


def _count_lines(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(str(path)).metadata.num_rows
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


@app.command()
def purge() -> None:
    """Delete person-level events past their kind's retention (DIEUHANH_RETENTION); rollups stay.

    On PostgreSQL, partitions wholly past it are dropped whole."""
    _django()
    from dieuhanh.warehouse.services import purge as run

    report = run(actor=None)
    for kind, n in report.deleted.items():
        dropped = report.dropped.get(kind)
        whole = f" (bỏ nguyên {len(dropped)} phân vùng: {', '.join(dropped)})" if dropped else ""
        console.print(f"{kind}: xóa {n} sự kiện trước {report.cutoffs[kind]:%d/%m/%Y %H:%M}{whole}")


@app.command()
def partitions(
    months: int = typer.Option(3, "--months", min=0, help="monthly partitions ahead of the current month"),
    weeks: int = typer.Option(8, "--weeks", min=0, help="weekly (check-in) partitions ahead of this week"),
) -> None:
    """Create the event tables' partitions ahead, and the default ones (PostgreSQL; idempotent, daily)."""
    _django()
    from django.db import connection

    from dieuhanh.warehouse.partitions import ensure

    if connection.vendor != "postgresql":
        console.print("SQLite: các bảng sự kiện là bảng thường, không chia phân vùng; không có gì để làm.")
        return
    made = ensure(months=months, weeks=weeks)
    for part in made:
        moved = f" (chuyển {part.moved} sự kiện từ phân vùng mặc định)" if part.moved else ""
        console.print(f"Đã tạo phân vùng {part.name}{moved}")
    console.print(
        f"Đã tạo {len(made)} phân vùng." if made else "Không cần tạo phân vùng nào: đã có đủ (nothing to do)."
    )


@app.command()
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
    _django()
    from dieuhanh.tracing.cli import run_trace

    try:
        run_trace(
            person_id,
            case_id=case,
            depth=depth,
            username=user,
            confirmed_at=confirmed_at,
            output=output,
            split=split,
            as_json=as_json,
            console=console,
        )
    except (ValueError, PermissionError) as e:
        raise fail(str(e)) from None


@app.command()
def synth(
    scale: int = typer.Option(2000, "--scale", help="people simulated"),
    days: int = typer.Option(7, "--days"),
    edition: str = typer.Option("VN-2025", "--edition"),
    output: Path = typer.Option(..., "-o", "--output", help="folder to write into"),
    seed: int = typer.Option(1, "--seed"),
    start: str = typer.Option(None, "--start", help="first day, YYYY-MM-DD (default: the edition's)"),
) -> None:
    """Write realistic synthetic venues and events (NDJSON per kind) for demos, tests and benchmarks."""
    _django()
    from dieuhanh.warehouse.synth import generate

    output.mkdir(parents=True, exist_ok=True)
    with progress_bar() as tick:
        first = date.fromisoformat(start) if start else None
        written = generate(
            output, scale=scale, days=days, edition=edition, seed=seed, start=first, progress=tick
        )
    for name, n in written.items():
        console.print(f"{name}: {n}")


@worker_app.command("ingest")
def worker_ingest(
    url: str = typer.Option(
        None, "--url", help="NATS server, or a cluster's servers comma-separated (default DIEUHANH_NATS_URL)"
    ),
    durable: str = typer.Option("dieuhanh-ingest", "--durable", help="durable consumer name"),
    prefix: str = typer.Option("dieuhanh", "--prefix", help="subjects' prefix: <prefix>.events.<kind>"),
    stream: str = typer.Option("DIEUHANH_EVENTS", "--stream", help="JetStream stream name"),
) -> None:
    """Consume dieuhanh.events.<kind> from NATS JetStream; acknowledge each batch after its commit."""
    _django()
    import logging

    from dieuhanh.warehouse.worker import Bus, run

    logging.getLogger("dieuhanh.warehouse.worker").setLevel(logging.INFO)
    console.print("Đang nhận sự kiện từ NATS JetStream (Ctrl+C để dừng)…")
    run(url=url, durable=durable, bus=Bus(prefix=prefix, stream=stream))


@worker_app.command("followup")
def worker_followup(
    once: bool = typer.Option(False, "--once", help="one round, then stop"),
    interval: float = typer.Option(60, "--interval", min=1, help="seconds between rounds"),
) -> None:
    """Remind late units, escalate to their parents, send the queued notifications; daily, make the
    event partitions ahead (run one of these)."""
    _django()
    from dieuhanh.directives.followup import run

    if not once:
        console.print(f"Đang theo dõi chỉ đạo, mỗi {interval:g} giây một lượt (Ctrl+C để dừng)…")
    run(once=once, interval=interval, report=console.print)


@catalog_app.command("load")
def catalog_load(
    name: str = typer.Argument(..., help="a shipped catalogue (ict) or a JSON file"),
    with_seed_values: bool = typer.Option(
        False, "--with-seed-values", help="also the figures the seeds state"
    ),
) -> None:
    """Create or update a catalogue's data elements, data sets, indicators and targets (idempotent)."""
    _django()
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


@catalog_app.command("list")
def catalog_list() -> None:
    """The shipped catalogues."""
    _django()
    from dieuhanh.indicators.catalog import shipped

    for name in shipped():
        typer.echo(name)


@values_app.command("import")
def values_import(
    path: Path,
    username: str = typer.Option(..., "--as", help="an operator (or admin) of the values' units"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check only; write nothing"),
    edition: str = typer.Option("VN-2025", "--edition", help="the map of bare unit codes"),
) -> None:
    """Import a DHIS2 dataValueSets file (JSON or CSV); prints the import summary, bad rows by line."""
    _django()
    import json

    from dieuhanh.accounts.models import User
    from dieuhanh.indicators.datavalues import ImportFormatError, import_values, records_of
    from dieuhanh.indicators.services import writable_area

    actor = User.objects.filter(username=username, is_active=True).first()
    if actor is None:
        raise fail(f"không có người dùng '{username}'")
    if not path.exists():
        raise fail(f"không có tệp {path}")
    kind = "text/csv" if path.suffix.lower() == ".csv" else "application/json"
    try:
        records = records_of(path.read_bytes(), kind)
    except ImportFormatError as e:
        raise fail(str(e)) from None
    summary = import_values(records, actor=actor, area=writable_area(actor), edition=edition, dry_run=dry_run)
    typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False, indent=2))
    if summary.status == "ERROR":
        raise typer.Exit(code=2)


def _report_actor(username: str | None, definition: str):
    """The person whose area the report reads: --as, else the definition's owner, else a superuser."""
    from dieuhanh.accounts.models import User
    from dieuhanh.reports.models import ReportDefinition

    if username:
        actor = User.objects.filter(username=username, is_active=True).first()
        if actor is None:
            raise fail(f"không có người dùng '{username}'")
        return actor
    found = ReportDefinition.objects.filter(code=definition).select_related("owner").first()
    actor = (found.owner if found else None) or User.objects.filter(is_superuser=True, is_active=True).first()
    if actor is None:
        raise fail("chưa có người dùng nào để đọc số liệu: dùng --as USER")
    return actor


@report_app.command("generate")
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
    _django()
    import shutil

    from dieuhanh.reports import services
    from dieuhanh.reports.definition import DefinitionError

    actor = _report_actor(username, definition)
    try:
        request = services.prepare(actor=actor, definition=definition, period=period, unit=unit, fmt=fmt)
        report = services.generate(actor=actor, request=request, number=number)
    except (services.ReportError, DefinitionError) as e:
        raise fail(str(e)) from None
    if output is not None:
        shutil.copyfile(services.file_path(report), output)
    console.print(f"Đã lập báo cáo số {report.pk}: {output or services.file_path(report)}")
    for line in report.missing:
        console.print(f"  chưa có số liệu: {line}")


@report_app.command("list")
def report_list() -> None:
    """The report definitions and their schedules."""
    _django()
    from dieuhanh.reports.models import ReportDefinition

    for d in ReportDefinition.objects.select_related("unit").order_by("code"):
        due = f", lập ngày {d.schedule_day} hằng kỳ" if d.schedule_day else ""
        typer.echo(f"{d.code}\t{d.period_type}\t{d.unit.ref}\t{d.name}{due}")


@report_app.command("load")
def report_load() -> None:
    """Create or update the shipped definitions (ICT monthly, half-year)."""
    _django()
    from dieuhanh.reports.services import load_shipped

    for d in load_shipped():
        console.print(f"  {d.code}: {d.name}")


@report_app.command("replay")
def report_replay(
    report_id: int,
    output: Path = typer.Option(..., "-o", "--output"),
    fmt: str | None = typer.Option(None, "--format"),
    username: str | None = typer.Option(None, "--as"),
) -> None:
    """Make an archived report again from its snapshot (same text, same figures)."""
    _django()
    import shutil

    from dieuhanh.reports import services
    from dieuhanh.reports.models import Report

    original = Report.objects.select_related("definition", "unit").filter(pk=report_id).first()
    if original is None:
        raise fail(f"không có báo cáo số {report_id}")
    actor = _report_actor(username, original.definition.code)
    try:
        report = services.replay(actor=actor, original=original, fmt=fmt)
    except services.ReportError as e:
        raise fail(str(e)) from None
    shutil.copyfile(services.file_path(report), output)
    same = "giống hệt bản gốc" if report.sha256 == original.sha256 else "khác định dạng bản gốc"
    console.print(f"Đã lập lại báo cáo số {report_id} thành số {report.pk} ({same}): {output}")


@report_app.command("schedule")
def report_schedule(
    today: str | None = typer.Option(None, "--today", help="YYYY-MM-DD, to run the schedule as of that day"),
) -> None:
    """Generate the reports the schedule says are due (idempotent; run it daily, or use the worker)."""
    _django()
    from datetime import date

    from dieuhanh.reports.services import run_schedule

    made = run_schedule(date.fromisoformat(today) if today else None)
    for r in made:
        console.print(f"  {r.definition.code} {r.period} {r.format}: {r.state} {r.error}")
    console.print(f"Đã lập {len(made)} báo cáo đến hạn." if made else "Không có báo cáo nào đến hạn.")


@worker_app.command("reports")
def worker_reports(
    once: bool = typer.Option(False, "--once", help="one round, then stop"),
    interval: float = typer.Option(300, "--interval", min=1, help="seconds between rounds"),
) -> None:
    """Generate reports due by schedule and any queued report a restart left unmade."""
    _django()
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


@app.command()
def init(demo: bool = typer.Option(False, "--demo", help="also create the demo users")) -> None:
    """Create or upgrade the database, load the units, and (with --demo) the demo users."""
    _django()
    migrate()
    _load_units()
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


@feedback_app.command("import-incidents")
def feedback_import_incidents(batch: int = typer.Option(1000, "--batch", min=1)) -> None:
    """Turn the incident reports that source platforms sent since the last run into feedback items."""
    _django()
    from dieuhanh.feedback.services import import_incidents

    read = made = 0
    while True:
        got, new = import_incidents(batch=batch)
        read, made = read + got, made + new
        if not new:  # nothing left, or a batch only of reports without a 2025 commune: stop, not spin
            break
    console.print(f"Đã đọc {read} phản ánh từ các nền tảng nguồn, tạo {made} phản ánh mới.")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(
        0, "--workers", min=0, help="web processes (default: one per core with NATS, else one)"
    ),
) -> None:
    """Serve the command room (ASGI, uvicorn): one web process per core when live events go through NATS."""
    _django()
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
