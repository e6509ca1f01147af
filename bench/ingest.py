"""Benchmark: check-in events per second through the CLI path and through HTTP (DESIGN.md §6).

    .venv/bin/python bench/ingest.py [--db sqlite|pg|both] [--events N] [--http-events N] [--profile]
                                     [--sizes N,N,…] [--no-command]

Each database runs in a child process of this script (`--child sqlite|pg`) with its own scratch
database (PostgreSQL: `dieuhanh_bench_ingest`, dropped after the run; SQLite: a temporary folder) and
DIEUHANH_* environment, so Django reads its settings fresh; the child prints its figures as one JSON
line and the parent prints the table and writes bench/results/ingest.json.

In each child, on a database migrated, with the units loaded, the venues imported and one source:
- CLI path: `services.ingest(source, "checkin", ndjson_records(file), batch_size=cli.FILE_BATCH)`,
  what `dieuhanh ingest` runs, over N check-in lines (synth.checkins_only: written once per run, shared
  by the children); then the check-in rollups must add up to N. The time at each batch's commit gives
  the growth: the seconds to the first 100k, 300k, … events (--sizes), and the process's peak RSS then;
- baseline, in the same process on the same rows: the N rows the CLI path wrote (every column but the
  id, which the database assigns, as it does for the pipeline), read back, then inserted with the
  driver's `executemany` (SQLite) or COPY (PostgreSQL: binary, as the pipeline copies, and text as a
  second row, the baseline before issue 18) into warehouse_checkin itself, emptied first —
  the same table, with its indexes, and on PostgreSQL its partitions and the trigger that writes the
  dedupe keys — in transactions of cli.FILE_BATCH rows (the CLI's batch), timed at the same sizes; on
  PostgreSQL also into a plain copy of the table with the unique constraint (the table before it was
  partitioned), so that what the partitions and the key table cost shows;
- memory: one batch of cli.FILE_BATCH new lines through the CLI path again under tracemalloc (Python's
  peak allocation during it), into emptied tables;
- the command itself (unless --no-command): `dieuhanh ingest FILE --kind checkin --source bench` run as
  a process on emptied tables, timed from its start to its exit (Django's start and the line count
  included);
- HTTP path: the check-ins and their rollups emptied, `dieuhanh serve` started on a free loopback port
  with the same database, and the lines POSTed to /api/v1/events/checkin in bodies of BATCH_SIZE lines
  over one keep-alive connection (the bodies are cut before the clock starts);
- with --profile: cProfile over a PROFILE_EVENTS-line CLI ingest into emptied tables, the top functions
  by cumulative and by own time, and the share of the pipeline's steps.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import itertools
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from common import (  # bench/ is on sys.path
    child_django,
    child_output,
    driver_cursor,
    free_port,
    goals_text,
    log,
    max_rss_bytes,
    options,
    peak_python_memory,
    pg_settings,
    print_skipped,
    render_table,
    run_databases,
    stop_server,
    timed,
    write_run,
)

# The folder of the check-in lines, written once per run and read by each child.
DATA_ENV = "BENCH_INGEST_DATA"
TABLE, SCRATCH_TABLE = "warehouse_checkin", "bench_checkin"
EDITION = "VN-2025"
VENUES = 5_000
PROFILE_EVENTS = 200_000
PROFILE_TOP = 25
SERVER_START_TIMEOUT_S = 120
# The goals the issues set (issue 18: 0.8 of the raw insert on both databases, 100k/s on PostgreSQL).
GOAL_CLI_PER_S, GOAL_CLI_VS_BASELINE, GOAL_HTTP_PER_S = 100_000, 0.8, 50_000
# The pipeline's steps, for the profile's headline: (label, file suffix, function name).
STEPS = [
    ("whole ingest", "warehouse/services.py", "ingest"),
    ("one batch (Pipeline.ingest)", "warehouse/ingest.py", "ingest"),
    ("  parse + validate (Pipeline._prepare)", "warehouse/ingest.py", "_prepare"),
    ("    JSON decode (Pipeline._decode)", "warehouse/ingest.py", "_decode"),
    ("    check-in rules (kinds._checkin)", "warehouse/kinds.py", "_checkin"),
    ("      person key (Context.person)", "warehouse/ingest.py", "person"),
    ("      times (Context.time)", "warehouse/ingest.py", "time"),
    ("      venue (Context.venue)", "warehouse/ingest.py", "venue"),
    ("    time → the db's form (_time_adapter's lambda)", "warehouse/ingest.py", "<lambda>"),
    ("    local day (local_day)", "warehouse/ingest.py", "local_day"),
    ("  duplicate check (Pipeline._stored)", "warehouse/ingest.py", "_stored"),
    ("  write (Pipeline._write)", "warehouse/ingest.py", "_write"),
    ("    event rows (db.insert_rows)", "dieuhanh/db.py", "insert_rows"),
    ("    rollups (_add_to_rollups)", "warehouse/ingest.py", "_add_to_rollups"),
    ("  audit row (accounts.audit)", "accounts/services.py", "audit"),
    ("  commit (atomic.__exit__)", "django/db/transaction.py", "__exit__"),
]


# ---------------------------------------------------------------- child: one database, Django set up


def prepare_database(data: Path, events: int) -> tuple[dict, object, str]:
    """Migrate, load the units, write the check-ins (once per run), import the venues, create a source."""
    from django.core.management import call_command

    from dieuhanh.units.services import load_units
    from dieuhanh.warehouse import services

    _, migrate_s = timed(call_command, "migrate", verbosity=0)
    log("  load_units() …")
    _, units_s = timed(load_units)
    checkins = data / "checkins.ndjson"
    synth_s = None
    if not checkins.exists():
        from dieuhanh.warehouse.synth import checkins_only

        log(f"  writing {events:,} check-in lines and {VENUES:,} venues (synth.checkins_only) …")
        _, synth_s = timed(checkins_only, checkins, n=events, venues=VENUES, edition=EDITION, seed=1)
    lines = count_lines(checkins)
    if lines != events:
        raise SystemExit(f"FAIL: {checkins} has {lines:,} lines, not {events:,}")
    log("  import_venues() …")
    venues, venues_s = timed(services.import_venues, actor=None, path=data / "venues.csv", edition=EDITION)
    if venues.rejected:
        raise SystemExit(f"FAIL: venues rejected: {venues.rejected[:5]}")
    source, token = services.create_source(actor=None, name="bench", kinds=["checkin"], edition=EDITION)
    setup = {
        "migrate_s": migrate_s,
        "load_units_s": units_s,
        "synth_s": synth_s,
        "venues": venues.created,
        "import_venues_s": venues_s,
        "file_bytes": checkins.stat().st_size,
    }
    return setup, source, token


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def bench_cli(source, path: Path, events: int, sizes: list[int]) -> dict:
    """What `dieuhanh ingest FILE --kind checkin --source bench` runs (its batch size too), timed from
    opening the file; the time and the peak RSS at each batch's commit give the growth."""
    from dieuhanh.warehouse.cli import FILE_BATCH
    from dieuhanh.warehouse.ingest import ndjson_records
    from dieuhanh.warehouse.services import ingest

    log(f"  CLI path: {events:,} lines in batches of {FILE_BATCH:,} …")
    marks: list[tuple[int, float, int]] = []
    start = time.perf_counter()

    def committed(line: int, _batch) -> None:
        marks.append((line, time.perf_counter() - start, max_rss_bytes()))

    with path.open("rb") as f:
        summary = ingest(source, "checkin", ndjson_records(f), batch_size=FILE_BATCH, progress=committed)
    seconds = time.perf_counter() - start
    expect_all_new(summary.accepted, summary.duplicates, len(summary.rejected), events, "CLI path")
    stored, rolled = stored_and_rolled_up()
    if stored != events or rolled != events:
        raise SystemExit(f"FAIL: after the CLI path {stored:,} rows and a rollup total of {rolled:,}")
    return {
        "cli_s": seconds,
        "cli_per_s": events / seconds,
        "cli_rollup_total": rolled,
        "cli_batch_size": FILE_BATCH,
        "cli_max_rss_bytes": max_rss_bytes(),
        "cli_growth": at_sizes(marks, sizes),
    }


def at_sizes(marks: list[tuple], sizes: list[int]) -> list[dict]:
    """Of (events done, seconds, …) marks taken at each commit: the first mark at or past each size."""
    found = []
    for size in sizes:
        mark = next((m for m in marks if m[0] >= size), None)
        if mark is not None and not (found and found[-1]["events"] == mark[0]):
            found.append({"events": mark[0], "s": mark[1], "per_s": mark[0] / mark[1]})
            if len(mark) > 2:
                found[-1]["max_rss_bytes"] = mark[2]
    return found


def bench_memory(source, path: Path, events: int) -> dict:
    """One CLI batch of new lines into emptied tables, under tracemalloc: Python's peak allocation."""
    from dieuhanh.warehouse.cli import FILE_BATCH

    lines = min(FILE_BATCH, events)
    empty_checkins()
    log(f"  memory: one batch of {lines:,} lines under tracemalloc …")
    (seconds, _), peak = peak_python_memory(ingest_lines, source, path, lines, batch_size=FILE_BATCH)
    return {"batch_peak_bytes": peak, "batch_traced_s": seconds, "batch_events": lines}


def bench_command(path: Path, events: int) -> dict:
    """`dieuhanh ingest` itself, as an official runs it, on emptied tables: start to exit."""
    from django.db import connection

    empty_checkins()
    connection.close()  # the command has the database to itself
    command = [str(Path(sys.executable).with_name("dieuhanh")), "ingest", str(path)]
    log(f"  the command: dieuhanh ingest {path.name} --kind checkin --source bench …")
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - the project's own command, fixed arguments
        [*command, "--kind", "checkin", "--source", "bench"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(
            f"FAIL: dieuhanh ingest exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    stored, rolled = stored_and_rolled_up()
    if stored != events or rolled != events:
        raise SystemExit(f"FAIL: after the command {stored:,} rows and a rollup total of {rolled:,}")
    return {"command_s": seconds, "command_per_s": events / seconds}


def expect_all_new(accepted: int, duplicates: int, rejected: int, events: int, path: str) -> None:
    if (accepted, duplicates, rejected) != (events, 0, 0):
        raise SystemExit(
            f"FAIL: {path}: accepted {accepted:,}, duplicates {duplicates:,}, rejected {rejected:,}"
            f" of {events:,}"
        )


def stored_and_rolled_up() -> tuple[int, int]:
    from django.db.models import Sum

    from dieuhanh.warehouse.models import CheckIn, Rollup

    rolled = Rollup.objects.filter(kind="checkin").aggregate(n=Sum("count"))["n"] or 0
    return CheckIn.objects.count(), rolled


def empty_checkins() -> None:
    """No check-ins and no check-in rollups, as before the CLI path (the venues and source stay)."""
    from django.db import connection

    from dieuhanh.warehouse.models import Rollup, RollupMonth

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {TABLE}")
        else:
            cursor.execute(f"DELETE FROM {TABLE}")
    for rollups in (Rollup, RollupMonth):
        rollups.objects.filter(kind="checkin").delete()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {rollups._meta.db_table}")


# -------------------------------------------------- baseline: the driver's executemany / COPY, same rows


def bench_baseline(batch: int, sizes: list[int]) -> dict:
    """The rows the CLI path wrote, read back and inserted raw: into warehouse_checkin itself, emptied
    first (the issue's baseline: the same table, its indexes, on PostgreSQL its partitions and the
    dedupe keys' trigger), and on PostgreSQL also into a plain copy with the unique constraint (`plain`:
    the table before partitioning, so that what partitions and the key table cost shows)."""
    from django.db import connection

    postgres = connection.vendor == "postgresql"
    log("  baseline: reading the rows back …")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} ORDER BY id")
        columns = [c[0] for c in cursor.description if c[0] != "id"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {TABLE} ORDER BY id")
        rows = cursor.fetchall()
    method = "COPY (binary)" if postgres else "executemany"
    result: dict = {"baseline_method": method, "baseline_columns": columns}
    # PostgreSQL: binary COPY, the pipeline's own format, is the baseline; text COPY (the driver's
    # default, the baseline before the pipeline went binary) is shown beside it.
    runs = [("baseline", TABLE, postgres)]
    if postgres:
        runs += [("text", TABLE, False), ("plain", SCRATCH_TABLE, True)]
    for name, table, binary in runs:
        log(f"  {name}: {'binary ' if binary else ''}{method} of {len(rows):,} rows into {table} …")
        with connection.cursor() as cursor:
            if table == TABLE:
                cursor.execute(f"TRUNCATE {TABLE}" if postgres else f"DELETE FROM {TABLE}")
            else:
                create_scratch_table(cursor, connection.vendor)
        seconds, marks = insert_baseline(table, columns, rows, batch, binary=binary)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")
            (copied,) = cursor.fetchone()
            if table == SCRATCH_TABLE:
                cursor.execute(f"DROP TABLE {SCRATCH_TABLE}")
        if copied != len(rows):
            raise SystemExit(f"FAIL: the {name} stored {copied:,} of {len(rows):,} rows")
        result |= {
            f"{name}_rows": copied,
            f"{name}_s": seconds,
            f"{name}_per_s": copied / seconds,
            f"{name}_growth": at_sizes(marks, sizes),
        }
    return result


def insert_baseline(
    table: str, columns: list[str], rows: list[tuple], batch: int, *, binary: bool = False
) -> tuple[float, list[tuple]]:
    """Seconds to insert the rows in transactions of `batch` rows, commits included, and (rows done,
    seconds) after each transaction. `binary`: a binary COPY typed as db.insert_rows types it."""
    from django.db import connection, transaction

    from dieuhanh.db import _copy_type
    from dieuhanh.warehouse.models import CheckIn

    by_column = {f.column: f for f in CheckIn._meta.concrete_fields}

    column_list = ", ".join(columns)
    postgres = connection.vendor == "postgresql"
    insert = f"INSERT INTO {table} ({column_list}) VALUES ({', '.join(['?'] * len(columns))})"
    copy_sql = f"COPY {table} ({column_list}) FROM STDIN" + (" (FORMAT binary)" if binary else "")
    marks = []
    start = time.perf_counter()
    for first in range(0, len(rows), batch):
        chunk = rows[first : first + batch]
        with transaction.atomic(), closing(driver_cursor(connection)) as cursor:
            if postgres:
                with cursor.copy(copy_sql) as copy:
                    if binary:
                        copy.set_types([_copy_type(by_column[c]) for c in columns])
                    for row in chunk:
                        copy.write_row(row)
            else:
                cursor.executemany(insert, chunk)
        marks.append((first + len(chunk), time.perf_counter() - start))
    return time.perf_counter() - start, marks


def create_scratch_table(cursor, vendor: str) -> None:
    """A copy of warehouse_checkin: same columns, indexes and unique constraint (no foreign keys: the
    event tables have none, see warehouse/models.py). On PostgreSQL a plain table, as the check-ins were
    before partitioning: the dedupe key, kept there in a table of its own (warehouse.partitions), is its
    unique constraint here, so the ratio shows what partitions and the key table cost."""
    if vendor == "postgresql":
        cursor.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE {TABLE} INCLUDING ALL)")
        cursor.execute(f"ALTER TABLE {SCRATCH_TABLE} ADD UNIQUE (source_id, source_event_id)")
        return
    cursor.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL ORDER BY type DESC", [TABLE]
    )  # the table before its indexes
    for (sql,) in cursor.fetchall():
        sql = re.sub(r'INDEX "(\w+)"', r'INDEX "bench_\1"', sql)
        sql = re.sub(r'CONSTRAINT "(\w+)"', r'CONSTRAINT "bench_\1"', sql)
        cursor.execute(sql.replace(f'"{TABLE}"', f'"{SCRATCH_TABLE}"'))


def scratch_indexes() -> list[str]:
    """The indexes of warehouse_checkin, as the database lists them (for the JSON)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [TABLE])
        else:
            cursor.execute(
                "SELECT coalesce(sql, name) FROM sqlite_master WHERE type = 'index' AND tbl_name = %s"
                " ORDER BY name",
                [TABLE],
            )
        return [r[0] for r in cursor.fetchall()]


def sqlite_pragmas() -> dict[str, object]:
    """The settings of Django's SQLite connection that bear on insert speed (for the JSON)."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for name in ("journal_mode", "synchronous", "cache_size", "page_size", "wal_autocheckpoint"):
            cursor.execute(f"PRAGMA {name}")
            found[name] = cursor.fetchone()[0]
        return found


# ---------------------------------------------------------------- HTTP: dieuhanh serve on loopback


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("dieuhanh")), "serve", "--host", "127.0.0.1"]
    with log_path.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603 - the project's own command, fixed arguments
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy()
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"FAIL: dieuhanh serve exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit(f"FAIL: dieuhanh serve did not answer in {SERVER_START_TIMEOUT_S} s")


def http_bodies(path: Path, events: int, batch: int) -> list[bytes]:
    with path.open("rb") as f:
        lines = list(itertools.islice(f, events))
    if len(lines) != events:
        raise SystemExit(f"FAIL: {path} has {len(lines):,} lines, fewer than {events:,}")
    return [b"".join(lines[i : i + batch]) for i in range(0, len(lines), batch)]


def bench_http(token: str, path: Path, events: int, batch: int, home: Path) -> dict:
    from django.conf import settings
    from django.db import connection

    bodies = http_bodies(path, events, batch)
    largest = max(len(b) for b in bodies)
    if largest > settings.MAX_BATCH_BYTES:
        raise SystemExit(f"FAIL: a body of {largest:,} bytes is over MAX_BATCH_BYTES")
    connection.close()  # the server has the database to itself
    port = free_port()
    server = start_server(port, home / "serve.log")
    log(f"  HTTP path: {events:,} lines in {len(bodies)} POSTs to 127.0.0.1:{port} …")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    accepted = duplicates = rejected = 0
    latencies = []
    try:
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=600)) as conn:
            start = time.perf_counter()
            for body in bodies:
                sent = time.perf_counter()
                conn.request("POST", "/api/v1/events/checkin", body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                latencies.append(time.perf_counter() - sent)
                if response.status != 200:
                    raise SystemExit(f"FAIL: HTTP {response.status}: {answer[:500]!r}")
                summary = json.loads(answer)
                accepted += summary["accepted"]
                duplicates += summary["duplicates"]
                rejected += len(summary["rejected"])
            seconds = time.perf_counter() - start
    finally:
        stop_server(server)
    expect_all_new(accepted, duplicates, rejected, events, "HTTP path")
    stored, rolled = stored_and_rolled_up()
    if stored != events or rolled != events:
        raise SystemExit(f"FAIL: after the HTTP path {stored:,} rows and a rollup total of {rolled:,}")
    return {
        "http_events": events,
        "http_posts": len(bodies),
        "http_body_bytes_max": largest,
        "http_s": seconds,
        "http_per_s": events / seconds,
        "http_post_ms_median": sorted(latencies)[len(latencies) // 2] * 1e3,
        "http_rollup_total": rolled,
    }


# ---------------------------------------------------------------- profile


def bench_profile(source, path: Path, events: int) -> dict:
    """The same ingest twice into emptied tables: once with the per-batch steps timed (no profiler,
    so the shares are true), once under cProfile (every call, so Python's own steps show)."""
    empty_checkins()
    log(f"  profile: the steps of a {events:,}-line CLI ingest, timed per batch …")
    steps = timed_steps(source, path, events)
    empty_checkins()
    log(f"  profile: cProfile over a {events:,}-line CLI ingest …")
    profiler = cProfile.Profile()
    seconds, _ = ingest_lines(source, path, events, profiler.runcall)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    return {
        "profile_events": events,
        "profile_timed_steps": steps,
        "profile_s": seconds,
        "profile_per_s": events / seconds,
        "profile_total_tt_s": total,
        "profile_steps": profile_steps(stats, total),
        "profile_top_cumulative": top_functions(stats, "cumulative", total),
        "profile_top_tottime": top_functions(stats, "tottime", total),
        "profile_text_cumulative": stats_text(profiler, "cumulative"),
        "profile_text_tottime": stats_text(profiler, "tottime"),
    }


def ingest_lines(
    source, path: Path, events: int, call=lambda fn, *a, **k: fn(*a, **k), batch_size: int | None = None
) -> tuple[float, object]:
    """(seconds, summary) of services.ingest over the first `events` lines of the file, run by `call`
    (in batches of `batch_size`, the CLI's when None)."""
    from dieuhanh.warehouse.cli import FILE_BATCH
    from dieuhanh.warehouse.ingest import ndjson_records
    from dieuhanh.warehouse.services import ingest

    with path.open("rb") as f:
        start = time.perf_counter()
        records = ndjson_records(itertools.islice(f, events))
        summary = call(ingest, source, "checkin", records, batch_size=batch_size or FILE_BATCH)
        seconds = time.perf_counter() - start
    expect_all_new(summary.accepted, summary.duplicates, len(summary.rejected), events, "profiled ingest")
    return seconds, summary


# (label, module, attribute) of the calls made once or a few times per batch; what is left of the
# whole is reading, parsing, validating, pseudonymising and de-duplicating in memory (per record).
TIMED_STEPS = [
    ("duplicate check (Pipeline._stored)", "dieuhanh.warehouse.ingest", "Pipeline._stored"),
    # On PostgreSQL the batch's validation runs inside it (Pipeline.stream: validated as it is copied);
    # SQLite writes with INSERT OR IGNORE, in no savepoint (Pipeline._write_new_sqlite).
    ("event rows (db.insert_rows)", "dieuhanh.warehouse.ingest", "insert_rows"),
    ("rollups (_add_to_rollups)", "dieuhanh.warehouse.ingest", "_add_to_rollups"),
    # The rest of a batch's tail, where Python and the server take turns (docs/decisions.md, Warehouse).
    ("gates (enterprises.rollups.on_ingest)", "dieuhanh.warehouse.enterprises.rollups", "on_ingest"),
    ("rooms (ingest.announce)", "dieuhanh.warehouse.ingest", "announce"),
    ("audit row (accounts.audit)", "dieuhanh.warehouse.ingest", "audit"),
    ("source lock (Pipeline._lock_source)", "dieuhanh.warehouse.ingest", "Pipeline._lock_source"),
]


def timed_steps(source, path: Path, events: int) -> list[dict]:
    """Seconds in each per-batch step, by wrapping it for the run (restored after); commits included."""
    import importlib

    from django.db import connection

    spent: dict[str, float] = dict.fromkeys([label for label, _, _ in TIMED_STEPS] + ["commit"], 0.0)

    def timer(label: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        return wrapper

    patched = []
    for label, module_name, attribute in TIMED_STEPS:
        owner = importlib.import_module(module_name)
        *path_to, name = attribute.split(".")
        for part in path_to:
            owner = getattr(owner, part)
        original = owner.__dict__[name]
        setattr(owner, name, timer(label, original))
        patched.append((owner, name, original))
    connection.ensure_connection()
    connection.commit = timer("commit", connection.commit)  # what atomic() calls at its end
    try:
        seconds, _ = ingest_lines(source, path, events)
    finally:
        del connection.commit
        for owner, name, original in patched:
            setattr(owner, name, original)
    rest = seconds - sum(spent.values())
    steps = [{"step": "whole ingest (services.ingest)", "s": seconds, "share": 1.0}]
    steps.append(
        {"step": "read + parse + validate + pseudonymise (the rest)", "s": rest, "share": rest / seconds}
    )
    steps += [{"step": label, "s": s, "share": s / seconds} for label, s in spent.items()]
    return steps


def function_name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    parts = Path(filename).parts
    short = "/".join(parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-3:])
    return f"{short}:{line}({name})"


def top_functions(stats: pstats.Stats, order: str, total: float) -> list[dict]:
    column = 3 if order == "cumulative" else 2
    entries = sorted(stats.stats.items(), key=lambda item: item[1][column], reverse=True)  # type: ignore[attr-defined]
    return [
        {
            "function": function_name(key),
            "calls": nc,
            "tottime_s": tt,
            "cumtime_s": ct,
            "share": (ct if order == "cumulative" else tt) / total,
        }
        for key, (_cc, nc, tt, ct, _callers) in entries[:PROFILE_TOP]
    ]


def profile_steps(stats: pstats.Stats, total: float) -> list[dict]:
    """Cumulative time of the pipeline's steps (the largest entry when a name matches several)."""
    steps = []
    for label, suffix, name in STEPS:
        found = [
            (ct, nc)
            for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
            if func == name and filename.endswith(suffix)
        ]
        if found:
            ct, nc = max(found)
            steps.append({"step": label, "calls": nc, "cumtime_s": ct, "share": ct / total})
    return steps


def stats_text(profiler: cProfile.Profile, order: str) -> str:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(PROFILE_TOP)
    text = out.getvalue()
    return text[text.index("ncalls") :] if "ncalls" in text else text


# ---------------------------------------------------------------- child entry


def growth_sizes(args: argparse.Namespace) -> list[int]:
    return sorted({*(int(n) for n in args.sizes.split(",") if int(n) < args.events), args.events})


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    from django.db import connection

    from dieuhanh.warehouse.ingest import BATCH_SIZE

    data, home = Path(os.environ[DATA_ENV]), Path(os.environ["DIEUHANH_HOME"])
    setup, source, token = prepare_database(data, args.events)
    path = data / "checkins.ndjson"
    result: dict = {"vendor": connection.vendor, "events": args.events, "batch_size": BATCH_SIZE, **setup}
    if postgres:
        result["pg_settings"] = pg_settings(
            "shared_buffers", "synchronous_commit", "wal_level", "max_wal_size", "fsync"
        )
    result["indexes"] = scratch_indexes()
    if connection.vendor == "sqlite":
        result["sqlite_pragmas"] = sqlite_pragmas()
    from dieuhanh.warehouse.cli import FILE_BATCH

    sizes = growth_sizes(args)
    result |= bench_cli(source, path, args.events, sizes)
    result |= bench_baseline(FILE_BATCH, sizes)
    result["cli_vs_baseline"] = result["cli_per_s"] / result["baseline_per_s"]
    for name in ("plain", "text"):
        if f"{name}_per_s" in result:
            result[f"cli_vs_{name}"] = result["cli_per_s"] / result[f"{name}_per_s"]
    result |= bench_memory(source, path, args.events)
    if args.command:
        result |= bench_command(path, args.events)
    if args.http_events:
        empty_checkins()
        result |= bench_http(token, path, args.http_events, BATCH_SIZE, home)
        result["http_vs_baseline"] = result["http_per_s"] / result["baseline_per_s"]
    if args.profile:
        result |= bench_profile(source, path, min(PROFILE_EVENTS, args.events))
    child_output(result)


# ---------------------------------------------------------------- parent: the table, the goals, JSON


ROWS = [  # (label, key, format)
    ("check-in lines (file, MB)", "", ""),
    ("setup: migrate / load units / import venues, s", "", ""),
    ("CLI path: services.ingest over ndjson_records, s", "cli_s", "{:.2f}"),
    ("  events/s", "cli_per_s", "{:,.0f}"),
    ("HTTP path: POST /api/v1/events/checkin, s", "http_s", "{:.2f}"),
    ("  events/s", "http_per_s", "{:,.0f}"),
    ("  POSTs × lines, median ms per POST", "", ""),
    ("baseline: executemany / COPY into warehouse_checkin, s", "baseline_s", "{:.2f}"),
    ("  rows/s", "baseline_per_s", "{:,.0f}"),
    ("ratio CLI/baseline (events/s ÷ rows/s)", "cli_vs_baseline", "{:.2f}×"),
    ("text COPY into warehouse_checkin (PostgreSQL), s", "text_s", "{:.2f}"),
    ("  rows/s", "text_per_s", "{:,.0f}"),
    ("ratio CLI/text COPY", "cli_vs_text", "{:.2f}×"),
    ("plain table (PostgreSQL: no partitions, no key table), s", "plain_s", "{:.2f}"),
    ("  rows/s", "plain_per_s", "{:,.0f}"),
    ("ratio CLI/plain table", "cli_vs_plain", "{:.2f}×"),
    ("the command: dieuhanh ingest FILE, s (start to exit)", "command_s", "{:.2f}"),
    ("  events/s", "command_per_s", "{:,.0f}"),
    ("peak Python memory of one CLI batch, MB", "", ""),
    ("peak RSS after the CLI path, MB", "", ""),
    ("ratio HTTP/baseline", "http_vs_baseline", "{:.2f}×"),
    ("rollup total after CLI / after HTTP", "", ""),
]


def cell(result: dict, label: str, key: str, fmt: str) -> str:
    if key:
        return fmt.format(result[key]) if key in result else "—"
    if label.startswith("check-in lines"):
        return f"{result['events']:,} ({result['file_bytes'] / 1e6:.0f})"
    if label.startswith("peak Python"):
        return f"{result['batch_peak_bytes'] / 1e6:,.1f} ({result['batch_events']:,} lines)"
    if label.startswith("peak RSS"):
        return f"{result['cli_max_rss_bytes'] / 1e6:,.0f}"
    if label.startswith("setup"):
        return f"{result['migrate_s']:.1f} / {result['load_units_s']:.1f} / {result['import_venues_s']:.1f}"
    if label.startswith("  POSTs"):
        if "http_posts" not in result:
            return "—"
        return f"{result['http_posts']} × {result['batch_size']:,}, {result['http_post_ms_median']:.0f}"
    http = result.get("http_rollup_total")
    return f"{result['cli_rollup_total']:,} / " + ("—" if http is None else f"{http:,}")


def table(results: dict[str, dict]) -> str:
    names = list(results)
    grid = [["ingest benchmark", *names]]
    grid += [[label, *(cell(results[n], label, key, fmt) for n in names)] for label, key, fmt in ROWS]
    return render_table(grid)


def growth_table(results: dict[str, dict]) -> str:
    """Time to the first N events through the CLI path and through the baseline, per database: events/s
    per size, and the time's growth against the size's (1.00: linear), the CLI's and the baseline's: the
    raw insert's own growth (its B-tree indexes) is the floor the CLI path's is read against."""
    grid = [
        [
            "growth",
            "events",
            "CLI s",
            "events/s",
            "baseline s",
            "rows/s",
            "ratio",
            "RSS MB",
            "time ÷ size",
            "baseline's",
        ]
    ]
    for name, r in results.items():
        cli, base = r["cli_growth"], {g["events"]: g for g in r["baseline_growth"]}
        first = cli[0] if cli else None
        base_first = base.get(first["events"]) if first else None
        for g in cli:
            b = base.get(g["events"])
            scale = (g["s"] / first["s"]) / (g["events"] / first["events"]) if first else None
            base_scale = (
                None
                if b is None or base_first is None
                else (b["s"] / base_first["s"]) / (b["events"] / base_first["events"])
            )
            grid.append(
                [
                    name,
                    f"{g['events']:,}",
                    f"{g['s']:.2f}",
                    f"{g['per_s']:,.0f}",
                    "—" if b is None else f"{b['s']:.2f}",
                    "—" if b is None else f"{b['per_s']:,.0f}",
                    "—" if b is None else f"{g['per_s'] / b['per_s']:.2f}×",
                    f"{g['max_rss_bytes'] / 1e6:,.0f}",
                    f"{scale:.2f}",
                    "—" if base_scale is None else f"{base_scale:.2f}",
                ]
            )
    return render_table(grid)


def goals(results: dict[str, dict]) -> dict[str, dict]:
    """The issue's goals, met or not, per database measured (set for SQLite; shown for both)."""
    met = {}
    for name, r in results.items():
        met[name] = {
            f"CLI ≥ {GOAL_CLI_PER_S:,} events/s": r["cli_per_s"] >= GOAL_CLI_PER_S,
            f"CLI/baseline ≥ {GOAL_CLI_VS_BASELINE}": r["cli_vs_baseline"] >= GOAL_CLI_VS_BASELINE,
        }
        if "command_per_s" in r:
            met[name][f"the command ≥ {GOAL_CLI_PER_S:,} events/s"] = r["command_per_s"] >= GOAL_CLI_PER_S
        growth = r["cli_growth"]
        if len(growth) >= 2:  # no faster than linear: the largest size's rate within 10% of the smallest's
            met[name]["growth linear (events/s at the largest size ≥ 0.9× the smallest's)"] = (
                growth[-1]["per_s"] >= 0.9 * growth[0]["per_s"]
            )
        if "http_per_s" in r:
            met[name][f"HTTP ≥ {GOAL_HTTP_PER_S:,} events/s"] = r["http_per_s"] >= GOAL_HTTP_PER_S
    return met


def profile_text(name: str, r: dict) -> str:
    lines = [
        f"\nprofile ({name}): a {r['profile_events']:,}-line CLI ingest into emptied tables",
        "  the pipeline's steps, timed per batch without the profiler:",
    ]
    if name == "sqlite":  # cProfile sees one process: the second one's validation shows as waiting
        lines.insert(
            1,
            "  (SQLite: a file's batches are validated in a second process, which cProfile and the peak RSS"
            " do not see; its validation steps show near zero, and the wait for it as recv)",
        )
    lines += [f"    {s['step']:<52} {s['s']:7.2f} s  {s['share']:6.1%}" for s in r["profile_timed_steps"]]
    lines.append(
        f"  the same under cProfile: {r['profile_s']:.2f} s ({r['profile_per_s']:,.0f} events/s); cumulative"
        f" time, share of the profiled {r['profile_total_tt_s']:.2f} s (the profiler inflates Python calls):"
    )
    lines += [f"    {s['step']:<52} {s['cumtime_s']:7.2f} s  {s['share']:6.1%}" for s in r["profile_steps"]]
    lines.append(f"\n  top {PROFILE_TOP} by cumulative time:")
    lines += ["    " + line for line in r["profile_text_cumulative"].rstrip().splitlines()]
    lines.append(f"\n  top {PROFILE_TOP} by own time (tottime):")
    lines += ["    " + line for line in r["profile_text_tottime"].rstrip().splitlines()]
    return "\n".join(lines)


def run_parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dieuhanh-bench-ingest-data-") as data:
        runs = run_databases(args, "ingest", env={DATA_ENV: data})
    results = runs.results
    met = goals(results)
    print(table(results))
    print()
    print(growth_table(results))
    print(goals_text(met))
    print_skipped(runs)
    for name, r in results.items():
        if "profile_steps" in r:
            print(profile_text(name, r))
    write_run("ingest", args, runs, events=args.events, http_events=args.http_events, goals=met)


def main() -> None:
    parser = options(__doc__, default="both", both=True)
    parser.add_argument("--events", type=int, default=1_000_000, help="lines through the CLI path")
    parser.add_argument(
        "--http-events", type=int, default=None, help="lines through HTTP (default: --events; 0: skip)"
    )
    parser.add_argument("--profile", action="store_true", help=f"cProfile a {PROFILE_EVENTS:,}-line ingest")
    parser.add_argument(
        "--sizes", default="100000,300000,1000000", help="event counts the growth is read at (up to --events)"
    )
    parser.add_argument(
        "--no-command", dest="command", action="store_false", help="do not run the dieuhanh ingest command"
    )
    args = parser.parse_args()
    if args.http_events is None:
        args.http_events = args.events
    if args.events < 1 or not 0 <= args.http_events <= args.events:
        parser.error("--events must be at least 1, and --http-events between 0 and --events")
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
