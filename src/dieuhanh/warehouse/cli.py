"""`dieuhanh sources`, `venues`, `ingest`, `purge`, `partitions`, `synth` and `worker ingest`: the
warehouse from a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import typer

from dieuhanh.terminal import console, existing, fail, progress_bar, refusals, setup_django

sources = typer.Typer(help="Source platforms that send events.", no_args_is_help=True)
venues = typer.Typer(help="QR venues (điểm QR).", no_args_is_help=True)
FILE_BATCH = 100_000


@sources.command("create")
def sources_create(
    name: str,
    kinds: str = typer.Option(
        ..., "--kinds", help="comma-separated: checkin,health,travel,test,vaccination,..."
    ),
    edition: str = typer.Option("VN-2025", "--edition", help="how its bare commune codes are read"),
) -> None:
    """Register a source platform; its token is printed once, alone on the last line."""
    setup_django()
    from dieuhanh.warehouse.services import create_source

    with refusals():
        source, raw = create_source(actor=None, name=name, kinds=kinds.split(","), edition=edition)
    console.print(f"Đã đăng ký nguồn {source.name} ({', '.join(source.kinds)}; {source.edition_id}). Token:")
    print(raw)


@venues.command("import")
def venues_import(path: Path, edition: str = typer.Option("VN-2025", "--edition")) -> None:
    """Import venues from CSV: code,name,kind,commune,lat,lon,dwell_minutes."""
    setup_django()
    from dieuhanh.warehouse.services import import_venues

    existing(path)
    with refusals():
        result = import_venues(actor=None, path=path, edition=edition)
    for line, field, error in result.rejected[:50]:
        console.print(f"  dòng {line}, {field}: {error}")
    console.print(
        f"Điểm QR: mới {result.created}, cập nhật {result.updated}, bị từ chối {len(result.rejected)}"
    )
    if result.rejected:
        raise typer.Exit(code=2)


@venues.command("qr")
def venues_qr(
    code: str, output: Path = typer.Option(..., "-o", "--output", help="PNG file to write")
) -> None:
    """Write the QR image of a venue (payload signed, so forged codes are refused)."""
    setup_django()
    from dieuhanh.warehouse.models import Venue
    from dieuhanh.warehouse.qr import payload, write_png

    if not Venue.objects.filter(code=code).exists():
        raise fail(f"không có điểm QR '{code}'")
    write_png(code, output)
    console.print(f"Đã ghi {output} ({payload(code)})")


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
    setup_django()
    from dieuhanh.warehouse.ingest import Summary, csv_records, ndjson_records, parquet_records
    from dieuhanh.warehouse.models import Source
    from dieuhanh.warehouse.services import WarehouseError
    from dieuhanh.warehouse.services import ingest as run

    found = Source.objects.filter(name=source).first()
    if found is None:
        raise fail(f"không có nguồn '{source}' (dieuhanh sources create …)")
    existing(path)
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


def _count_lines(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(str(path)).metadata.num_rows
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def purge() -> None:
    """Delete person-level events past their kind's retention (DIEUHANH_RETENTION); rollups stay.

    On PostgreSQL, partitions wholly past it are dropped whole."""
    setup_django()
    from dieuhanh.warehouse.services import purge as run

    report = run(actor=None)
    for kind, n in report.deleted.items():
        dropped = report.dropped.get(kind)
        whole = f" (bỏ nguyên {len(dropped)} phân vùng: {', '.join(dropped)})" if dropped else ""
        console.print(f"{kind}: xóa {n} sự kiện trước {report.cutoffs[kind]:%d/%m/%Y %H:%M}{whole}")


def partitions(
    months: int = typer.Option(3, "--months", min=0, help="monthly partitions ahead of the current month"),
    weeks: int = typer.Option(8, "--weeks", min=0, help="weekly (check-in) partitions ahead of this week"),
) -> None:
    """Create the event tables' partitions ahead, and the default ones (PostgreSQL; idempotent, daily)."""
    setup_django()
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


def synth(
    scale: int = typer.Option(2000, "--scale", help="people simulated"),
    days: int = typer.Option(7, "--days"),
    edition: str = typer.Option("VN-2025", "--edition"),
    output: Path = typer.Option(..., "-o", "--output", help="folder to write into"),
    seed: int = typer.Option(1, "--seed"),
    start: str = typer.Option(None, "--start", help="first day, YYYY-MM-DD (default: the edition's)"),
) -> None:
    """Write realistic synthetic venues and events (NDJSON per kind) for demos, tests and benchmarks."""
    setup_django()
    from dieuhanh.warehouse.synth import generate

    output.mkdir(parents=True, exist_ok=True)
    with progress_bar() as tick:
        first = date.fromisoformat(start) if start else None
        written = generate(
            output, scale=scale, days=days, edition=edition, seed=seed, start=first, progress=tick
        )
    for name, n in written.items():
        console.print(f"{name}: {n}")


def worker_ingest(
    url: str = typer.Option(
        None, "--url", help="NATS server, or a cluster's servers comma-separated (default DIEUHANH_NATS_URL)"
    ),
    durable: str = typer.Option("dieuhanh-ingest", "--durable", help="durable consumer name"),
    prefix: str = typer.Option("dieuhanh", "--prefix", help="subjects' prefix: <prefix>.events.<kind>"),
    stream: str = typer.Option("DIEUHANH_EVENTS", "--stream", help="JetStream stream name"),
) -> None:
    """Consume dieuhanh.events.<kind> from NATS JetStream; acknowledge each batch after its commit."""
    setup_django()
    import logging

    from dieuhanh.warehouse.worker import Bus, run

    logging.getLogger("dieuhanh.warehouse.worker").setLevel(logging.INFO)
    console.print("Đang nhận sự kiện từ NATS JetStream (Ctrl+C để dừng)…")
    run(url=url, durable=durable, bus=Bus(prefix=prefix, stream=stream))
