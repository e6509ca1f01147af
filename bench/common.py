"""The benchmarks' harness: what every script under bench/ shares, so that each keeps only its
workload, its baseline and its goals.

A script that measures per database runs each in a child process of itself, with a scratch database
and its own DIEUHANH_* environment (so that Django reads its settings fresh):

    parser = common.options(__doc__, both=True, reuse="keep the loaded database; use it when it matches")
    args = parser.parse_args()
    if args.child:                          # in the child: Django on the scratch database
        common.child_django(args)
        ...                                 # the workload and its baseline
        common.child_output(result)         # one JSON line for the parent
    else:
        runs = common.run_databases(args, "tracing", params=..., meta_table=...)
        ...                                 # the table and the goals
        common.write_run("tracing", args, runs, goals=met)

The parent: `run_databases` makes the scratch database of each database of --db (PostgreSQL
`dieuhanh_bench_<name>` on --pg-url's server; SQLite a DIEUHANH_HOME folder), runs the script again
with the same arguments and `--child DB` (and `--load` when the data is to be loaded), and reads the
child's last stdout line as its figures. `--reuse`, for a script whose load takes long: the scratch
database is kept after the run, and used again when the parameters its load noted (`note_load`) equal
this run's; the child then checks the rows are still there (`reused_load`).

For a load that bypasses the application (its rows written by `dieuhanh.db.insert_rows`: COPY on
PostgreSQL, executemany on SQLite): `TimeText` (an instant → the text the database stores),
`drop_indexes` / `finish_tables` (the indexes dropped for the load, recreated from the catalog's own
definitions, checked, and the tables analysed).

A benchmark that measures in its own process (one database a run) takes its scratch database from
`scratch_here`.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = os.environ.get("DIEUHANH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DAY = 86_400


def machine(pg_server: str | None) -> dict:
    import django

    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), None)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_server,
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def child_env(home: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIEUHANH_", "DJANGO_"))}
    env.update({"DIEUHANH_HOME": home, "DJANGO_SETTINGS_MODULE": "dieuhanh.settings"})
    if database_url:
        env["DIEUHANH_DATABASE_URL"] = database_url
    return env


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pg_version(admin_url: str) -> str | None:
    """The server's version, or None (with the reason on stderr) when PostgreSQL does not answer."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as e:
        log(f"PostgreSQL does not answer at {shown(admin_url)}: {str(e).strip()}")
        return None


def setup_django() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dieuhanh.settings")
    import django

    django.setup()


def shown(url: str) -> str:
    """The URL without its password, for messages and the JSON."""
    parts = urlsplit(url)
    return (
        parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
        if parts.password
        else url
    )


def render_table(grid: list[list[str]]) -> str:
    """A benchmark's table: labels left-aligned, one right-aligned column per database, a rule under
    the header row."""
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])
        for row in grid
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def peak_python_memory(fn, *args, **kwargs):
    """(result, bytes): one call and Python's peak allocation during it (tracemalloc, which slows
    Python while it traces: time such a call apart)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux gives ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50_s": percentile(seconds, 0.5),
        "p95_s": percentile(seconds, 0.95),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "all_s": seconds,
    }


def pg_loaded_params(admin_url: str, url: str, database: str, meta_table: str) -> dict | None:
    """The arguments a scratch database was loaded from (kept in `meta_table`), or None if none is."""
    import psycopg

    with psycopg.connect(admin_url) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return None
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", [meta_table]).fetchone()[0] is None:
            return None
        return json.loads(conn.execute(f"SELECT params FROM {meta_table}").fetchone()[0])


def sqlite_loaded_params(path: Path, meta_table: str) -> dict | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [meta_table]).fetchone()
        return json.loads(conn.execute(f"SELECT params FROM {meta_table}").fetchone()[0]) if found else None


def write_results(name: str, document: dict) -> Path:
    """bench/results/<name>.json, and a line saying where."""
    path = ROOT / "bench" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return path


def reused_load(meta_table: str, table: str, expected_rows: int) -> dict:
    """The note a benchmark's load left in `meta_table`, after checking `table` still holds the rows it
    wrote (a --reuse run must not time a database someone changed)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT report FROM {meta_table}")
        report = json.loads(cursor.fetchone()[0])
        cursor.execute(f"SELECT count(*) FROM {table}")
        (rows,) = cursor.fetchone()
    if rows != expected_rows:
        raise SystemExit(
            f"FAIL: --reuse: {table} holds {rows:,} rows, not {expected_rows:,}: rerun without it"
        )
    return report | {"reused": True}


class GcWatch:
    """Python's garbage collections during a block: how many of each generation, and their pauses."""

    def __enter__(self) -> GcWatch:
        self.count: Counter = Counter()
        self.seconds = 0.0
        self.longest = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)
        return self

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        self.count[info["generation"]] += 1
        self.seconds += pause
        self.longest = max(self.longest, pause)

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)

    def report(self) -> dict:
        return {
            "collections": {f"gen{g}": n for g, n in sorted(self.count.items())},
            "pause_s": self.seconds,
            "longest_s": self.longest,
        }


def session_cookie(user) -> str:
    """A signed-in session of the user (what a browser holds): its key, for the sessionid cookie."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def stop_server(server: subprocess.Popen) -> None:
    """End a server the benchmark started: asked first, killed if it has not gone in 30 s."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def free_port() -> int:
    """A loopback port nothing listens on now, for a server the benchmark starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def migrated_communes(limit: int | None = None) -> list:
    """In a child: the scratch database migrated, the units loaded once, and the 2025 communes in path
    order (the first `limit` of them, for a smaller run)."""
    from django.core.management import call_command

    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import load_units

    call_command("migrate", verbosity=0)
    if not Unit.objects.filter(edition_id="VN-2025", kind="commune").exists():
        load_units()
    communes = list(Unit.objects.filter(edition_id="VN-2025", kind="commune").order_by("path"))
    return communes[:limit] if limit else communes


# ---------------------------------------------------------------- options, scratch databases, children


def options(doc: str | None, *, default: str = "pg", both: bool = False, reuse: str | None = None):
    """A benchmark's parser with the options every one has: --db (sqlite or pg, and `both` when the
    script compares them in one run), --pg-url (a server allowed to create databases), --reuse (when
    the script can keep its loaded database; `reuse` is its help), and the hidden --child and --load
    the parent passes to its children."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "pg", *(["both"] if both else [])], default=default)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a PostgreSQL allowed to create databases")
    if reuse:
        parser.add_argument("--reuse", action="store_true", help=reuse)
    parser.add_argument("--child", choices=["sqlite", "pg"], help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    return parser


def scratch_name(name: str) -> str:
    """The scratch database of benchmark `name` on PostgreSQL."""
    return f"dieuhanh_bench_{name}"


def scratch_url(admin_url: str, database: str) -> str:
    """The URL of `database` on the server of `admin_url`."""
    return urlsplit(admin_url)._replace(path=f"/{database}").geturl()


def drop_pg(admin_url: str, database: str, *, create: bool = False) -> None:
    """`database` dropped (its sessions ended), and made again empty when `create`."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {database}")


def pg_exists(admin_url: str, database: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone())


@contextmanager
def scratch_here(
    args: argparse.Namespace, name: str, env: dict[str, str] | None = None
) -> Iterator[str | None]:
    """For a benchmark that measures in its own process (one database a run): the scratch database
    of --db made empty (PostgreSQL `dieuhanh_bench_<name>`; SQLite a DIEUHANH_HOME folder) — with
    --reuse, kept as the last run left it — the environment set for it (and `env`), Django set up.
    Yields PostgreSQL's version (None on SQLite). Afterwards the database is dropped unless --reuse."""
    keep = getattr(args, "reuse", False)
    folder = Path(tempfile.gettempdir()) / f"dieuhanh-bench-{name}-{args.db}"
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    url, server, database = None, None, scratch_name(name)
    if args.db == "pg":
        server = pg_version(args.pg_url)
        if server is None:
            raise SystemExit("The PostgreSQL run was NOT done.")
        url = scratch_url(args.pg_url, database)
        if not (keep and pg_exists(args.pg_url, database)):
            drop_pg(args.pg_url, database, create=True)
    for key in [k for k in os.environ if k.startswith(("DIEUHANH_", "DJANGO_"))]:
        del os.environ[key]
    os.environ.update(child_env(str(folder), url) | (env or {}))
    setup_django()
    try:
        yield server
    finally:
        from django.db import connections

        connections.close_all()
        if keep:
            log(f"kept: {shown(url) if url else folder} (--reuse uses it again)")
        else:
            if url:
                drop_pg(args.pg_url, database)
            shutil.rmtree(folder, ignore_errors=True)


class Runs(NamedTuple):
    """What `run_databases` gives the parent: each database's figures, PostgreSQL's version (None
    when it was not asked or did not answer), and the databases not run with the reason."""

    results: dict[str, dict]
    pg_server: str | None
    skipped: dict[str, str]


def run_databases(
    args: argparse.Namespace,
    name: str,
    *,
    params: dict | None = None,
    meta_table: str | None = None,
    env: dict[str, str] | None = None,
    watch_load: bool = False,
) -> Runs:
    """Parent: this script run again as a child for each database of --db (both: SQLite first), each
    in its scratch database. `params` and `meta_table` (with --reuse): what the load depends on, and
    the table its note is kept in (`note_load`): a kept database is used when they match, and the
    child is told to load (--load) otherwise. `env`: more environment for the child. `watch_load`:
    the machine's load while the child ran, in its figures as `concurrent_load` (`MachineLoad`)."""
    wanted = ["sqlite", "pg"] if args.db == "both" else [args.db]
    pg_server = pg_version(args.pg_url) if "pg" in wanted else None
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for db in wanted:
        if db == "pg" and pg_server is None:
            skipped["pg"] = f"PostgreSQL does not answer at {shown(args.pg_url)}"
            log("The PostgreSQL run was NOT done.")
            continue
        results[db] = _run_database(args, db, name, params, meta_table, env or {}, watch_load)
    if not results:
        raise SystemExit("nothing was measured")
    return Runs(results, pg_server, skipped)


def _run_database(
    args, db: str, name: str, params: dict | None, meta: str | None, env: dict, watch: bool
) -> dict:
    keep = getattr(args, "reuse", False)
    if db == "pg":
        database = scratch_name(name)
        url = scratch_url(args.pg_url, database)
        reuse = keep and meta is not None and pg_loaded_params(args.pg_url, url, database, meta) == params
        if not reuse:
            drop_pg(args.pg_url, database, create=True)
        try:
            with tempfile.TemporaryDirectory(prefix=f"dieuhanh-bench-{name}-pg-") as home:
                return spawn("pg", home, url, load=not reuse, env=env, watch_load=watch, pg_url=args.pg_url)
        finally:
            if keep:
                log(f"kept: {shown(url)} (--reuse uses it again)")
            else:
                drop_pg(args.pg_url, database)
    if not hasattr(args, "reuse"):
        with tempfile.TemporaryDirectory(prefix=f"dieuhanh-bench-{name}-sqlite-") as home:
            return spawn("sqlite", home, None, env=env, watch_load=watch, pg_url=args.pg_url)
    # Fixed rather than a TemporaryDirectory: --reuse finds the SQLite file here again.
    folder = Path(tempfile.gettempdir()) / f"dieuhanh-bench-{name}-sqlite"
    reuse = keep and meta is not None and sqlite_loaded_params(folder / "dieuhanh.sqlite3", meta) == params
    if not reuse:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return spawn(
            "sqlite", str(folder), None, load=not reuse, env=env, watch_load=watch, pg_url=args.pg_url
        )
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def spawn(
    db: str,
    home: str,
    database_url: str | None,
    *,
    load: bool = False,
    env: dict[str, str] | None = None,
    watch_load: bool = False,
    pg_url: str | None = None,
) -> dict:
    """This script run again with the parent's own arguments and `--child DB` (and `--load`): its
    last stdout line, read as JSON, with `wall_s` (and `concurrent_load`, watched against `pg_url`)."""
    script = str(Path(sys.modules["__main__"].__file__).resolve())
    command = [sys.executable, script, *sys.argv[1:], "--child", db, *(["--load"] if load else [])]
    watcher = MachineLoad(pg_url, database_url) if watch_load else None
    if watcher:
        watcher.start()
    began = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this script again, with the arguments it was given
        command,
        env=child_env(home, database_url) | (env or {}),
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    figures = {"wall_s": time.perf_counter() - began}
    if watcher:
        figures["concurrent_load"] = watcher.summary()
    if done.returncode:
        raise SystemExit(f"the {db} run failed (exit {done.returncode}); see above")
    return json.loads(done.stdout.strip().splitlines()[-1]) | figures


class MachineLoad(threading.Thread):
    """The load average, and PostgreSQL's active sessions in other databases than the benchmark's,
    every few seconds (another benchmark or a test run may share the machine)."""

    EVERY_S = 5.0

    def __init__(self, pg_url: str | None, database_url: str | None):
        super().__init__(daemon=True)
        self.pg_url, self.samples, self.stopping = pg_url, [], threading.Event()
        self.database = urlsplit(database_url).path.lstrip("/") if database_url else None

    def run(self) -> None:
        while not self.stopping.wait(self.EVERY_S):
            self.samples.append({"load_1m": os.getloadavg()[0], "pg_active_elsewhere": self._pg()})

    def _pg(self) -> dict[str, int] | None:
        if not self.pg_url:
            return None
        import psycopg

        try:
            with psycopg.connect(self.pg_url, connect_timeout=3) as conn:
                rows = conn.execute(
                    "SELECT datname, count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    " AND datname IS DISTINCT FROM %s GROUP BY datname",
                    [self.database],
                ).fetchall()
        except psycopg.Error:
            return None
        return {name or "?": n for name, n in rows}

    def summary(self) -> dict:
        self.stopping.set()
        self.join()
        busy: Counter = Counter()
        for s in self.samples:
            for name in s["pg_active_elsewhere"] or {}:
                busy[name] += 1
        n = len(self.samples)
        return {
            "samples": n,
            "load_1m_max": max((s["load_1m"] for s in self.samples), default=None),
            "load_1m_median": percentile([s["load_1m"] for s in self.samples], 0.5) if n else None,
            "pg_active_elsewhere_share": {name: c / n for name, c in busy.most_common()},
        }


def child_django(args: argparse.Namespace) -> bool:
    """In a child: Django set up on the scratch database (named on stderr); True on PostgreSQL."""
    setup_django()
    from django.db import connection

    log(f"[{args.child}] {connection.settings_dict['NAME']}")
    return connection.vendor == "postgresql"


def child_output(result: dict) -> None:
    """In a child: its figures, as the one JSON line the parent reads."""
    print(json.dumps(result, default=str))


def loaded(args: argparse.Namespace, load: Callable[[], dict], params: dict, meta_table: str, table: str,
           rows: int) -> dict:  # fmt: skip
    """In a child: the load's report — `load()` run and noted when the parent asked (--load), else
    the kept database's note, once its schema is brought up to the code's and `table` is checked to
    hold its `rows`."""
    if args.load:
        report = load()
        note_load(meta_table, params, report)
        return report
    from django.core.management import call_command

    log("  --reuse: the database loaded before, made from the same arguments")
    call_command("migrate", verbosity=0)
    return reused_load(meta_table, table, rows)


def note_load(meta_table: str, params: dict, report: dict) -> None:
    """What a load was made from and what it found, in `meta_table`, for a later --reuse."""
    from django.db import connection

    report["loaded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {meta_table} (params TEXT NOT NULL, report TEXT NOT NULL)")
        cursor.execute(f"INSERT INTO {meta_table} VALUES (%s, %s)", [json.dumps(params), json.dumps(report)])


def driver_cursor(connection):
    """The driver's own cursor on Django's connection, without Django's wrapper, for a baseline. On
    PostgreSQL a plain psycopg cursor (Django's binds client-side): it binds on the server and
    pipelines executemany."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        import psycopg

        return psycopg.Cursor(connection.connection)
    return connection.connection.cursor()


def pg_settings(*names: str) -> dict[str, str]:
    """In a child on PostgreSQL: the server's settings that explain its figures."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for name in names:
            cursor.execute(f"SHOW {name}")
            found[name] = cursor.fetchone()[0]
    return found


def goals_text(met: dict[str, dict[str, bool]]) -> str:
    """Each database's goals, met or not, as the table's footer."""
    lines = ["\ngoals (the issue's, on this machine):"]
    for name, checks in met.items():
        lines.append(
            f"  {name}: " + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in checks.items())
        )
    return "\n".join(lines)


def print_skipped(runs: Runs) -> None:
    for name, reason in runs.skipped.items():
        print(f"{name}: NOT run ({reason})")


def write_run(name: str, args: argparse.Namespace, runs: Runs, **parts) -> Path:
    """bench/results/<name>.json: the arguments (the password hidden), the machine, `parts` and each
    database's figures."""
    document = {
        "benchmark": name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": {k: v for k, v in vars(args).items() if k not in ("child", "load")}
        | {"pg_url": shown(args.pg_url)},
        "machine": machine(runs.pg_server),
        **parts,
        "databases": runs.results,
        "skipped": runs.skipped,
    }
    return write_results(name, document)


# ---------------------------------------------------------------- loading rows past the application


class TimeText:
    """Seconds → the UTC text a database stores for that instant ('2025-06-30 17:00:05' + suffix:
    '+00' on PostgreSQL), looked up by day and second rather than formatted. `t + zero` is the
    seconds since UTC midnight of `first`; `days` bounds the days looked up."""

    def __init__(self, first: date, days: int, suffix: str, zero: int = 0):
        from dieuhanh.warehouse.synth import clock_faces

        self.zero = zero
        self.dates = [(first + timedelta(days=d)).isoformat() + " " for d in range(days)]
        self.faces, self.suffix = clock_faces(), suffix

    def __call__(self, t: int) -> str:
        day, second = divmod(t + self.zero, DAY)
        return self.dates[day] + self.faces[second] + self.suffix


class IndexDef(NamedTuple):
    table: str
    name: str
    drop: str
    create: str


def table_indexes(cursor, table: str, postgres: bool) -> list[IndexDef]:
    """A table's indexes as the catalog defines them: PostgreSQL's primary key and unique constraints
    as constraints (they own their index), the rest as CREATE INDEX statements."""
    if not postgres:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL"
            " ORDER BY name",
            [table],
        )
        return [IndexDef(table, name, f'DROP INDEX "{name}"', sql) for name, sql in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
        [table],
    )
    found = [
        IndexDef(
            table,
            name,
            f'ALTER TABLE {table} DROP CONSTRAINT "{name}"',
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}',
        )
        for name, definition in cursor.fetchall()
    ]
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        " ORDER BY i.relname",
        [table],
    )
    # On a partitioned table the definition reads "ON ONLY", which would index the parent alone.
    return found + [
        IndexDef(table, name, f'DROP INDEX "{name}"', sql.replace(" ON ONLY ", " ON "))
        for name, sql in cursor.fetchall()
    ]


def drop_indexes(tables: Iterable[str], postgres: bool) -> list[IndexDef]:
    """The tables' indexes (and key constraints) read from the catalog, then dropped for a load."""
    from django.db import connection

    with connection.cursor() as cursor:
        indexes = [index for table in tables for index in table_indexes(cursor, table, postgres)]
        for index in indexes:
            cursor.execute(index.drop)
    return indexes


def recreate_indexes(indexes: list[IndexDef], postgres: bool) -> dict[str, float]:
    """Seconds per index; fails unless the catalog then holds exactly the definitions read before
    (a unique constraint recreated also proves the rows loaded are unique)."""
    from django.db import connection

    seconds = {}
    with connection.cursor() as cursor:
        for index in indexes:
            log(f"  index {index.name} …")
            _, seconds[index.name] = timed(cursor.execute, index.create)
        tables = dict.fromkeys(index.table for index in indexes)
        again = [index for table in tables for index in table_indexes(cursor, table, postgres)]
    if sorted(again) != sorted(indexes):
        raise SystemExit(f"FAIL: the indexes recreated differ from those dropped:\n{again}\n{indexes}")
    return seconds


def finish_tables(indexes: list[IndexDef], postgres: bool, tables: Iterable[str], ids: int) -> dict:
    """After a load: the indexes back, the first table's id sequence past the `ids` written,
    statistics (and, on PostgreSQL, the visibility map and hint bits autovacuum would otherwise set
    while the clock runs)."""
    from django.db import connection

    tables = list(tables)
    with connection.cursor() as cursor:
        if postgres:  # a session setting, reset below: sorts for the index builds in memory
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{tables[0]}', 'id'), %s)", [ids])
    index_s, began = recreate_indexes(indexes, postgres), time.perf_counter()
    log("  VACUUM ANALYZE …" if postgres else "  ANALYZE …")
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}" if postgres else f"ANALYZE {table}")
        if postgres:
            cursor.execute("RESET maintenance_work_mem")
    return {
        "index_s": index_s,
        "indexes_total_s": sum(index_s.values()),
        "analyze_s": time.perf_counter() - began,
    }


def table_sizes(tables: Iterable[str]) -> dict:
    """The database's size, and on PostgreSQL each table's heap and indexes (`<table>_bytes`)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {"database_bytes": Path(connection.settings_dict["NAME"]).stat().st_size}
    found: dict = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", [table, table]
            )
            found[f"{table}_bytes"] = list(cursor.fetchone())
        cursor.execute("SELECT pg_database_size(current_database())")
        found["database_bytes"] = cursor.fetchone()[0]
    return found
