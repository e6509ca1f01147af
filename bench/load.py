"""Benchmark: a national morning — every commune opens its inbox, opens the urgent directive and
acknowledges it, while the national leaders watch the room live and sources send events (DESIGN.md §6–§7).

    .venv/bin/python bench/load.py [--communes K] [--connections C] [--workers 1,2] [--replica both]
                                   [--refresh extra] [--max-seconds S] [--me-seconds S] [--streams N]
                                   [--leaders L] [--reuse] [--no-baseline]

Needs PostgreSQL (--pg-url: a server that lets us create databases), NATS at --nats-url, and `wrk`
(Debian: `apt-get install -y wrk`; for this benchmark only). The replica runs need PostgreSQL 15's
cluster tools and root (pg_createcluster, pg_basebackup); without them they are skipped and the output
says why. docs/load-bench.md explains the figures and holds the last full run.

Setup, in a database of its own (`dieuhanh_load`, dropped at the end unless --reuse; with --reuse a
later run uses it again): `dieuhanh init` (migrations and the real units) in a DIEUHANH_HOME of its own;
one operator per commune of the VN-2021 map (10,035), each with an API token, created in bulk (no
password hashing: tokens only); --leaders national leaders with tokens (and a session each, for the
screens' refreshes); one urgent directive (priority "urgent") issued by a national leader to every
commune through `issue_directive`; two health-declaration sources (HTTP and NATS) with tokens. The
statements each of our calls sends are captured once (Django's test client, this process) for the JSON.

Each configuration — web workers (--workers) × database (the main server, primary only; a primary and
a streaming replica of our own, made with pg_createcluster/pg_basebackup with the main server's memory
and durability settings and a copy of the database) — runs with `dieuhanh worker ingest` beside
`dieuhanh serve --workers N`, on NATS subjects and a stream of this run's own:
- the morning: `wrk` (bench/load.lua) with --connections connections, one wrk thread each, so that
  each connection runs its communes' three calls strictly in order: GET /api/v1/inbox, GET
  /api/v1/deliveries/{id} (opening the urgent directive, which marks it read), POST
  /api/v1/deliveries/{id}/ack, each with the commune's own token. A non-2xx answer is an error
  (after a 503 the connection waits its Retry-After, 2 s, then tries the step again, at most
  MAX_TRIES times). Every delivery is made unread again and every token unused before a morning.
  Measured: requests/s over the three calls (requests / time from the first request's start to the
  last one's end), latency p50/p95/p99 of every request (clock_gettime in the Lua script), per call
  too, the errors by status, the time from the first request to the last acknowledgement, and the
  CPU used meanwhile (cores: the web processes, PostgreSQL, wrk, and the rest of the machine's busy
  time: other work sharing it). The database must then hold an acknowledgement of each commune by
  its own user. A morning is ended after --max-seconds (or STALL_S without progress); the time for
  all is then projected from the rate until then, and the table says so;
- meanwhile, --leaders screens hold the national room's stream (`/room/stream`, bearer token), and
  the sources send a batch of --batch-records health declarations at a time, alternately over HTTP
  (`POST /api/v1/events/health`) and over NATS JetStream (`publish_batch`, taken by `worker ingest`),
  one batch at a time (the next when every screen got the last one's event, after 0.5–1.5 s):
  measured, the time from the batch's commit (HTTP: its answer received; NATS: the worker's summary
  on the batch's reply subject) to each screen receiving its `figures` event (negative when the
  event, published on commit, beats the answer). With --refresh the screens also do what room.js
  does on each `figures` or `directive` event: fetch the room's parts and map (session cookie), at
  most once per 2-s window; by default (--refresh extra) one more configuration per database runs
  so, with the most workers, ours only;
- `/api/v1/me` for --me-seconds with the communes' tokens, each connection cycling through its own.

At the end, on the main server, one web process (`--workers 1`) holds --streams inbox streams
(`/api/v1/inbox/stream`, distinct communes' tokens) opened over raw asyncio sockets, 50 at a time;
each must get its 200 and text/event-stream headers; the process's RSS (/proc/<pid>/status) before,
with them open, and after they closed.

Baseline, in the same run for each worker count and database: bench/load_baseline.py, a one-module
Django app (no apps, no middleware) served by uvicorn with the same workers, loop, HTTP parser,
connection pool and bound on concurrent requests, whose views send by hand the statements the same
answers need — the token by its hash (and the same once-a-minute last-used write), the grants, the
inbox's count and page (one query), the delivery's read or acknowledgement (guarded UPDATE and the
same audit row) and the delivery (one query) — and nothing else: no live events, no replica routing,
no schema validation. The morning and /me run against it as against ours.

Goals (this 2-core machine, 200 clients): 10,000 communes acknowledged within 60 s, ≥ 500 req/s over
the three calls, p95 < 500 ms, 0 errors; figures on the leaders' screens < 2 s p95; /api/v1/me
> 1,000 req/s; 1,000 open streams < 300 MB RSS on one web process.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from common import (  # bench/ is on sys.path
    ROOT,
    child_env,
    free_port,
    log,
    machine,
    percentile,
    pg_version,
    render_table,
    session_cookie,
    setup_django,
    shown,
    write_results,
)

BENCH = ROOT / "bench"
DIEUHANH = str(ROOT / ".venv" / "bin" / "dieuhanh")
UVICORN = str(ROOT / ".venv" / "bin" / "uvicorn")
DEFAULT_PG_URL = os.environ.get("DIEUHANH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCRATCH_DB = "dieuhanh_load"
META = "bench_load_meta"
TOKENS = "bench_load_tokens"
SETUP_VERSION = 1  # bump when the setup changes: a kept database of another version is made again
EDITION, NATION = "VN-2021", "VN-2021:VN"
MAX_TRIES = 3  # tries of one call before the connection gives its commune up (counted)
STALL_S = 30.0  # no acknowledgement for this long ends the morning (reported as incomplete)
FIGURES_WAIT_S = 15.0  # a batch's figures event not on every screen by then is counted as missed
PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
GOALS = {
    "communes_within_s": 60.0,
    "req_per_s": 500.0,
    "p95_ms": 500.0,
    "errors": 0,
    "figures_p95_s": 2.0,
    "me_req_per_s": 1000.0,
    "stream_rss_mb": 300.0,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--communes", type=int, default=0, help="communes in the morning (0: all 10,035)")
    parser.add_argument("--leaders", type=int, default=20)
    parser.add_argument("--connections", type=int, default=200, help="wrk connections (one thread each)")
    parser.add_argument("--workers", default="1,2", help="web workers of each configuration, e.g. 1,2")
    parser.add_argument("--replica", choices=["no", "yes", "both"], default="both")
    parser.add_argument(
        "--refresh",
        choices=["no", "yes", "extra"],
        default="extra",
        help="screens also fetch the room's parts on events: never; in every configuration; or (default) in "
        "one more configuration per database server, with the most workers (ours only)",
    )
    parser.add_argument("--batch-records", type=int, default=100, help="health declarations a batch")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=180.0,
        help="a morning still running after this long is ended (the time for all is then projected)",
    )
    parser.add_argument("--me-seconds", type=float, default=20.0, help="0: no /api/v1/me run")
    parser.add_argument("--streams", type=int, default=1000, help="0: no open-streams run")
    parser.add_argument("--no-baseline", action="store_true", help="ours only (trial runs)")
    parser.add_argument("--reuse", action="store_true", help=f"keep the database {SCRATCH_DB}; use it again")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a PostgreSQL allowed to create databases")
    parser.add_argument("--nats-url", default=os.environ.get("DIEUHANH_NATS_URL", "nats://127.0.0.1:4222"))
    args = parser.parse_args()
    args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if not args.worker_counts or min(args.worker_counts) < 1:
        parser.error("--workers: a comma-separated list of counts ≥ 1")
    if args.connections < 1 or args.leaders < 1:
        parser.error("--connections and --leaders must be at least 1")
    return args


# ---------------------------------------------------------------- small helpers


def db_url(server_url: str, database: str) -> str:
    return urlsplit(server_url)._replace(path=f"/{database}").geturl()


def sh(*command: str, timeout: float = 600) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- setup


def prepare_database(args: argparse.Namespace, url: str, home: str) -> tuple[bool, dict | None]:
    """The scratch database: (reused, meta). Made afresh unless --reuse finds one of this setup."""
    import psycopg

    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [SCRATCH_DB]).fetchone()
    if exists and args.reuse:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT to_regclass(%s)", [META]).fetchone()[0] is not None:
                meta = json.loads(conn.execute(f"SELECT params FROM {META}").fetchone()[0])
                if meta.get("version") == SETUP_VERSION:
                    log(f"reusing the database {SCRATCH_DB} (--reuse); its schema brought up to date …")
                    _init(url, home)  # the code may have new migrations since it was made
                    return True, meta
    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{SCRATCH_DB}"')
    log("dieuhanh init (migrations, the real units) …")
    began = time.perf_counter()
    _init(url, home)
    log(f"  {time.perf_counter() - began:.0f} s")
    return False, None


def _init(url: str, home: str) -> None:
    """`dieuhanh init`: the migrations and the real units (nothing changes when they are there)."""
    done = subprocess.run(  # noqa: S603 - the project's own command
        [DIEUHANH, "init"], env=child_env(home, url), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"dieuhanh init failed:\n{done.stdout}\n{done.stderr}")


def populate(leaders: int) -> dict:
    """The communes' operators and their tokens (in bulk), the leaders, the directive, the sources."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from dieuhanh.accounts.models import ApiToken, Grant, User
    from dieuhanh.accounts.services import TOKEN_PREFIX, audit, create_token, create_user
    from dieuhanh.directives.models import Delivery
    from dieuhanh.directives.services import DirectiveInput, Targets, issue_directive
    from dieuhanh.units.models import Unit
    from dieuhanh.warehouse.services import create_source

    began = time.perf_counter()
    communes = list(
        Unit.objects.filter(edition_id=EDITION, kind="commune")
        .order_by("path")
        .values_list("id", "code", "name")
    )
    unusable = make_password(None)  # service-style users: tokens only, no login, no hashing per user
    rows: list[tuple[str, str, int, str]] = []  # (role, username, unit id, raw token)
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(username=f"load-xa-{code}", full_name=f"Cán bộ {name}", password=unusable)
                for _, code, name in communes
            ],
            batch_size=2000,
        )  # fmt: skip
        Grant.objects.bulk_create(
            [
                Grant(user=u, unit_id=unit_id, role="operator")
                for u, (unit_id, _, _) in zip(users, communes, strict=True)
            ],
            batch_size=2000,
        )  # fmt: skip
        tokens = []
        for user, (unit_id, _, _) in zip(users, communes, strict=True):
            raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
            tokens.append(ApiToken(user=user, name="load", prefix=raw[:10], key_hash=sha256(raw)))
            rows.append(("commune", user.username, unit_id, raw))
        ApiToken.objects.bulk_create(tokens, batch_size=2000)
        audit(None, "bench.load.population", "communes", rows=len(users))
    log(f"  {len(users):,} commune operators with tokens in {time.perf_counter() - began:.1f} s")
    nation = Unit.objects.ref(NATION)
    issuer = create_user(
        actor=None, username="load-thutuong", password=None, grants=[(nation, "leader")], validate=False
    )
    for i in range(leaders):
        leader = create_user(
            actor=None, username=f"load-lanhdao-{i + 1}", password=None, grants=[(nation, "leader")],
            validate=False,
        )  # fmt: skip
        rows.append(
            ("leader", leader.username, nation.pk, create_token(actor=None, user=leader, name="load")[1])
        )
    for name in ("http", "nats"):
        _, raw = create_source(actor=None, name=f"load-khaibaoyte-{name}", kinds=["health"], edition=EDITION)
        rows.append((f"source-{name}", f"source:load-khaibaoyte-{name}", nation.pk, raw))
    began = time.perf_counter()
    directive = issue_directive(
        actor=issuer,
        data=DirectiveInput(
            title="Công điện khẩn: triển khai ngay các biện pháp phòng, chống dịch",
            body="Đề nghị Chủ tịch Ủy ban nhân dân các xã, phường, thị trấn xác nhận đã nhận công điện.",
            number="01/CĐ-TTg", priority="urgent", targets=Targets(units=(NATION,), level="commune"),
            deadline=datetime.now(UTC) + timedelta(days=365),
        ),
    )  # fmt: skip
    issued_s = time.perf_counter() - began
    deliveries = dict(Delivery.objects.filter(directive=directive).values_list("unit_id", "id"))
    missed = [code for unit_id, code, _ in communes if unit_id not in deliveries]
    if missed:
        raise SystemExit(f"FAIL: the directive did not reach {len(missed):,} communes ({missed[:5]} …)")
    # Its targets are the map's leaves: the communes, and the island districts that have none.
    log(f"  the urgent directive to {len(deliveries):,} units in {issued_s:.2f} s")
    meta = {
        "version": SETUP_VERSION, "directive": directive.pk, "communes": len(communes),
        "deliveries": len(deliveries), "issue_s": issued_s,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {TOKENS} (role text, username text, unit_id bigint, token text)")
        with cursor.cursor.copy(f"COPY {TOKENS} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"CREATE TABLE {META} (params text)")
        cursor.execute(f"INSERT INTO {META} VALUES (%s)", [json.dumps(meta)])
    return meta


@dataclass
class People:
    communes: list[tuple[str, int, int]]  # (token, delivery id, user id), by username (the commune's code)
    leaders: list[tuple[str, int, str]]  # (token, user id, session key)
    sources: dict[str, str]  # "http"/"nats" → token


def people(directive: int, leaders: int) -> People:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT t.role, t.token, d.id, u.id FROM {TOKENS} t
                JOIN accounts_user u ON u.username = t.username
                LEFT JOIN directives_delivery d ON d.unit_id = t.unit_id AND d.directive_id = %s
                ORDER BY t.role, t.username""",
            [directive],
        )
        rows = cursor.fetchall()
    communes = [(token, delivery, uid) for role, token, delivery, uid in rows if role == "commune"]
    found = [(token, uid) for role, token, _, uid in rows if role == "leader"]
    if len(found) < leaders:
        raise SystemExit(f"the kept database has {len(found)} leaders, not {leaders}: rerun without --reuse")
    sources = {
        role.removeprefix("source-"): token for role, token, _, _ in rows if role.startswith("source-")
    }
    return People(communes, [(t, uid, session_for(uid)) for t, uid in found[:leaders]], sources)


def session_for(user_id: int) -> str:
    """A signed-in session of the user (what a leader's browser holds), for the screens' refreshes."""
    from dieuhanh.accounts.models import User

    return session_cookie(User.objects.get(pk=user_id))


# ---------------------------------------------------------------- what one commune's calls run (diagnosis)


def capture_queries(token: str, delivery: int) -> dict:
    """The SQL statements our three calls and /me send, through Django's test client in this process
    (the same middleware and API stack as the server, without a socket); the delivery is reset after."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    calls = {
        "inbox": ("get", "/api/v1/inbox"),
        "open": ("get", f"/api/v1/deliveries/{delivery}"),
        "ack": ("post", f"/api/v1/deliveries/{delivery}/ack"),
        "me": ("get", "/api/v1/me"),
    }
    found = {}
    for name, (method, path) in calls.items():
        with CaptureQueriesContext(connection) as captured:
            response = getattr(client, method)(path)
        if response.status_code != 200:
            raise SystemExit(
                f"FAIL: {method.upper()} {path}: {response.status_code} {response.content[:300]!r}"
            )
        found[name] = [shape(q["sql"]) for q in captured.captured_queries]
    return found


def shape(sql: str) -> str:
    """A statement without its literals, for counting by shape."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "?", sql)
    return re.sub(r"\s+", " ", sql)[:400]


# ---------------------------------------------------------------- a streaming replica (clusters of our own)


PG_SETTINGS = ("shared_buffers", "fsync", "synchronous_commit", "full_page_writes", "max_connections")
HBA = (
    "local all all trust\n"
    "local replication all trust\n"
    "host all all 127.0.0.1/32 trust\n"
    "host replication all 127.0.0.1/32 trust\n"
)


def replica_unavailable() -> str | None:
    tools = ["pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "runuser", "pg_dump", "pg_restore"]
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [str(PG_BIN / b) for b in ("pg_basebackup", "postgres") if not (PG_BIN / b).exists()]
    if missing:
        return f"PostgreSQL {PG_VERSION}'s cluster tools are missing ({', '.join(missing)})"
    if os.geteuid() != 0:
        return "making PostgreSQL clusters needs root (pg_createcluster, files owned by postgres)"
    return None


@dataclass
class Clusters:
    """A primary and its streaming replica, made for this run on free ports (Debian's tools), with the
    main server's memory and durability settings, the scratch database copied in; dropped at the end."""

    base: str
    primary_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    made: list[str] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, str]:
        return f"{self.base}_p", f"{self.base}_r"

    def url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{SCRATCH_DB}"

    def create(self, main_url: str, source_url: str) -> dict:
        import psycopg

        with psycopg.connect(main_url) as conn:
            found = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in PG_SETTINGS}
        conf = "\n".join(
            [
                "listen_addresses = '127.0.0.1'",
                "wal_level = replica",
                "max_wal_senders = 5",
                "hot_standby = on",
                "ssl = off",
                *(f"{name} = '{value}'" for name, value in found.items()),
            ]
        )
        primary, replica = self.names
        began = time.perf_counter()
        self._cluster(primary, self.primary_port, conf)
        sh("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, primary, "start")
        sh("psql", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres", "-qc",
           f"CREATE DATABASE {SCRATCH_DB}")  # fmt: skip
        dump = subprocess.Popen(["pg_dump", "-Fc", "-d", source_url], stdout=subprocess.PIPE)  # noqa: S603, S607
        restore = subprocess.run(  # noqa: S603
            ["pg_restore", "--no-owner", "-d", self.url(self.primary_port)],  # noqa: S607
            stdin=dump.stdout, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if dump.wait() != 0 or restore.returncode != 0:
            raise RuntimeError(f"copying the database failed: {restore.stderr[-2000:]}")
        sh("psql", "-d", self.url(self.primary_port), "-qc", "VACUUM ANALYZE")
        data = self._cluster(replica, self.replica_port, conf)
        # The replica's data is the primary's, copied and told to follow it: emptied here, the folder
        # kept (postgres owns it; its parent may be root's).
        for entry in data.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        sh(
            "runuser", "-u", "postgres", "--", str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1",
            "-p", str(self.primary_port), "-U", "postgres", "-D", str(data), "-R", "-X", "stream",
            "-c", "fast",
        )  # fmt: skip
        sh("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, replica, "start")
        with psycopg.connect(self.url(self.replica_port)) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                raise RuntimeError("the replica is not in recovery")
        return {"settings": found, "made_s": time.perf_counter() - began}

    def _cluster(self, name: str, port: int, conf: str) -> Path:
        sh("pg_createcluster", PG_VERSION, name, "-p", str(port), "--start-conf=manual", "--", "--auth=trust")
        self.made.append(name)
        config = Path(f"/etc/postgresql/{PG_VERSION}/{name}")
        (config / "pg_hba.conf").write_text(HBA)
        (config / "conf.d" / "bench_load.conf").write_text(conf + "\n")
        return Path(f"/var/lib/postgresql/{PG_VERSION}/{name}")

    def drop(self) -> None:
        for name in reversed(self.made):
            subprocess.run(  # noqa: S603
                ["pg_dropcluster", "--stop", PG_VERSION, name],  # noqa: S607
                capture_output=True, timeout=120, check=False,
            )  # fmt: skip
            # pg_dropcluster leaves the files it did not write (our conf.d file, so the folder too).
            shutil.rmtree(Path(f"/etc/postgresql/{PG_VERSION}/{name}"), ignore_errors=True)
        self.made.clear()


def replica_caught_up(primary_url: str, replica_url: str, timeout: float = 60) -> float:
    """Wait until the replica has replayed what the primary wrote; seconds waited."""
    import psycopg

    began = time.monotonic()
    with psycopg.connect(primary_url, autocommit=True) as primary:
        lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(replica_url, autocommit=True) as replica:
        while time.monotonic() - began < timeout:
            behind = replica.execute(
                "SELECT pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn())", [lsn]
            ).fetchone()[0]
            if behind <= 0:
                return time.monotonic() - began
            time.sleep(0.1)
    raise RuntimeError("the replica did not catch up within a minute")


# ---------------------------------------------------------------- processes


class Processes:
    """Every process this run starts, stopped by their own pids (SIGTERM, then SIGKILL)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        err = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(command, env=env, stdout=err, stderr=err)  # noqa: S603
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.running)):
            self.stop(process)


def web_pids(process: subprocess.Popen, workers: int) -> list[int]:
    """The web processes: the server itself with one worker; its children (uvicorn's) with more."""
    if workers == 1:
        return [process.pid]
    return [pid for pid in children_of(process.pid) if "resource_tracker" not in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def wait_ready(
    port: int, process: subprocess.Popen, log_file: Path, workers: int, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited ({process.returncode}):\n{log_file.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                if len(web_pids(process, workers)) >= workers:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the server did not answer within {timeout:.0f} s:\n{log_file.read_text()[-3000:]}"
            )
        time.sleep(0.3)


def warm_up(port: int, tokens: list[str], n: int = 200) -> None:
    """Some /api/v1/me calls from several threads: the pools open their connections, the code is loaded."""

    def call(token: str) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    threads = [
        threading.Thread(target=lambda i=i: [call(tokens[(i + k) % len(tokens)]) for k in range(n // 16)])
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def alone(port: int, tokens: list[str], n: int = 30) -> dict:
    """Latency (ms) of one call at a time, nothing else asked of the server: GET /api/v1/inbox and GET
    /api/v1/me with communes' tokens (read-only; the morning's data is reset before it anyway)."""
    import http.client

    out = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for name, path in (("inbox", "/api/v1/inbox"), ("me", "/api/v1/me")):
            seconds = []
            for i in range(n):
                began = time.monotonic()
                conn.request("GET", path, headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"})
                response = conn.getresponse()
                response.read()
                seconds.append(time.monotonic() - began)
                if response.status != 200:
                    raise SystemExit(f"GET {path}: {response.status}")
            out[name] = {"p50_ms": percentile(seconds, 0.5) * 1e3, "min_ms": min(seconds) * 1e3}
    finally:
        conn.close()
    return out


class CpuWatch:
    """CPU seconds used during a block, by group of processes, and the machine's busy share."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups

    @staticmethod
    def _machine() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values[:8]) - idle, sum(values[:8])

    def _snap(self) -> dict[int, float]:
        seen = {}
        for pid in {p for pids in self.groups.values() for p in pids} | set(postgres_pids()):
            try:
                seen[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return seen

    def __enter__(self) -> CpuWatch:
        self._began, self._start, self._machine_start = time.monotonic(), self._snap(), self._machine()
        return self

    def stop(self, extra: dict[str, list[int]]) -> dict:
        wall = time.monotonic() - self._began
        self.groups = self.groups | extra | {"postgres": postgres_pids()}
        end, (busy, total) = self._snap(), self._machine()
        used = {
            name: sum(end.get(p, 0.0) - self._start.get(p, 0.0) for p in pids if p in end) / wall
            for name, pids in self.groups.items()
        }
        busy_share = (busy - self._machine_start[0]) / max(1, total - self._machine_start[1])
        cpus = os.cpu_count() or 1
        # What the machine spent beyond the groups watched: other work sharing it (tests, other benches).
        used["others"] = max(0.0, busy_share * cpus - sum(used.values()))
        return {
            "cores": used,
            "machine_busy": busy_share,
            "cpus": cpus,
            "wall_s": wall,
            "loadavg": os.getloadavg(),
        }

    def __exit__(self, *exc) -> None:
        return None


def postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# ---------------------------------------------------------------- the database between runs


def reset_morning(url: str, directive: int) -> None:
    """Every delivery of the directive unread again, every token unused: the same morning again."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE directives_delivery SET state = 'sent', read_at = NULL, read_by_id = NULL, "
            "acknowledged_at = NULL, acknowledged_by_id = NULL WHERE directive_id = %s AND state <> 'sent'",
            [directive],
        )
        conn.execute("UPDATE accounts_apitoken SET last_used_at = NULL WHERE last_used_at IS NOT NULL")
        conn.execute("VACUUM ANALYZE directives_delivery")
        conn.execute("VACUUM ANALYZE accounts_apitoken")


def acknowledged(conn, directive: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM directives_delivery WHERE directive_id = %s AND acknowledged_at IS NOT NULL",
        [directive],
    ).fetchone()[0]


def acknowledged_by_their_own(url: str, directive: int, deliveries: list[int]) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM directives_delivery d JOIN accounts_grant g "
            "ON g.unit_id = d.unit_id AND g.user_id = d.acknowledged_by_id AND g.role = 'operator' "
            "WHERE d.directive_id = %s AND d.id = ANY(%s) AND d.state = 'acknowledged'",
            [directive, deliveries],
        ).fetchone()[0]


# ---------------------------------------------------------------- wrk


def wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    return (done.stdout + done.stderr).splitlines()[0].strip()


def run_wrk(
    mode: str,
    port: int,
    data: Path,
    connections: int,
    out: Path,
    *,
    duration: float = 600,
    until=None,
    watch: dict[str, list[int]] | None = None,
) -> dict:
    """Run wrk with bench/load.lua; `until()` (polled every half second) ends it early when true.
    Returns the requests (call, status, start, end) and the CPU used meanwhile."""
    command = [
        "wrk", "-t", str(connections), "-c", str(connections), "-d", f"{duration:.0f}s", "--timeout", "60s",
        "-s", str(BENCH / "load.lua"), f"http://127.0.0.1:{port}",
        "--", mode, str(data), str(out), str(connections),
    ]  # fmt: skip
    out.unlink(missing_ok=True)
    with CpuWatch(watch or {}) as cpu:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
        ended_by = "duration"
        while process.poll() is None:
            time.sleep(0.5)
            if until is not None and (why := until()):
                ended_by = why
                break
        used = cpu.stop({"wrk": [process.pid]})
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # wrk then stops its threads, prints and calls done()
    output, _ = process.communicate(timeout=120)
    if not out.exists():
        raise SystemExit(f"wrk wrote nothing ({process.returncode}):\n{output}")
    requests, given_up, summary = [], 0, None
    for line in out.read_text().splitlines():
        parts = line.split()
        if parts[0] == "given-up":
            given_up = int(parts[1])
        elif parts[0] == "wrk":
            summary = [int(p) for p in parts[1:]]
        else:
            requests.append((parts[0], int(parts[1]), int(parts[2]) / 1e6, int(parts[3]) / 1e6))
    return {"requests": requests, "given_up": given_up, "wrk": summary, "ended_by": ended_by, "cpu": used}


def summarise(run: dict, calls: tuple[str, ...]) -> dict:
    """Requests/s, latencies (ms) and errors of a wrk run, overall and per call."""
    requests = run["requests"]
    if not requests:
        return {"requests": 0}
    first = min(r[2] for r in requests)
    last = max(r[3] for r in requests)
    ms = [(r[3] - r[2]) * 1e3 for r in requests]
    out = {
        "requests": len(requests),
        "seconds": last - first,
        "req_per_s": len(requests) / (last - first),
        "p50_ms": percentile(ms, 0.5),
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms),
        "errors": sum(1 for r in requests if not 200 <= r[1] < 300),
        "statuses": dict(Counter(str(r[1]) for r in requests)),
        "given_up": run["given_up"],
        "ended_by": run["ended_by"],
        "cpu": run["cpu"],
        "calls": {},
    }
    for call in calls:
        mine = [r for r in requests if r[0] == call]
        if mine:
            lat = [(r[3] - r[2]) * 1e3 for r in mine]
            out["calls"][call] = {
                "n": len(mine),
                "p50_ms": percentile(lat, 0.5),
                "p95_ms": percentile(lat, 0.95),
                "p99_ms": percentile(lat, 0.99),
                "errors": sum(1 for r in mine if not 200 <= r[1] < 300),
            }
    acks = [r[3] for r in requests if r[0] == "ack" and 200 <= r[1] < 300]
    if acks:
        out["acknowledged"] = len(acks)
        out["all_acknowledged_s"] = max(acks) - first
    return out


def morning(
    port: int, primary_url: str, directive: int, communes: list[tuple[str, int, int]], args, work: Path, watch
) -> dict:
    """Every commune's three calls; ends when all are acknowledged, or nothing moved for STALL_S."""
    import psycopg

    data = work / "morning.txt"
    data.write_text("".join(f"{token} {delivery}\n" for token, delivery, _ in communes))
    reset_morning(primary_url, directive)
    with psycopg.connect(primary_url, autocommit=True) as conn:
        began = time.monotonic()
        progress = {"n": 0, "at": began}

        def until() -> str | None:
            n = acknowledged(conn, directive)
            if n >= len(communes):
                return "all acknowledged"
            if time.monotonic() - began > args.max_seconds:
                return f"ended after --max-seconds {args.max_seconds:.0f}"
            if n != progress["n"]:
                progress.update(n=n, at=time.monotonic())
            elif time.monotonic() - progress["at"] > STALL_S:
                return f"stalled at {n:,} acknowledged"
            return None

        run = run_wrk("morning", port, data, args.connections, work / "morning.out", until=until, watch=watch)
    found = summarise(run, ("inbox", "open", "ack"))
    found["checked_acknowledged"] = acknowledged_by_their_own(
        primary_url, directive, [d for _, d, _ in communes]
    )
    found["communes"] = len(communes)
    return found


def me_run(
    port: int, primary_url: str, communes: list[tuple[str, int, int]], args, work: Path, watch
) -> dict:
    import psycopg

    data = work / "me.txt"
    data.write_text("".join(f"{token} 0\n" for token, _, _ in communes))
    with psycopg.connect(primary_url, autocommit=True) as conn:
        conn.execute("UPDATE accounts_apitoken SET last_used_at = NULL WHERE last_used_at IS NOT NULL")
    run = run_wrk("me", port, data, args.connections, work / "me.out", duration=args.me_seconds, watch=watch)
    return summarise(run, ("me",))


# ---------------------------------------------------------------- the leaders' screens and the sources


def http_call(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"", timeout: float = 600
) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body); status 0 when no answer came."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body or None, headers)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as e:
        return 0, repr(e).encode()
    finally:
        conn.close()


class Live:
    """The leaders' screens on /room/stream and the sources' batches, on a loop in a thread of its own."""

    ROOM = NATION
    PARTS = {"figures": ("tiles", "alerts", "map"), "directive": ("directives", "alerts")}

    def __init__(self, port: int, who: People, bus, codes: list[str], args, refresh: bool):
        self.port, self.leaders, self.sources, self.bus, self.codes = (
            port,
            who.leaders,
            who.sources,
            bus,
            codes,
        )
        self.nats_url, self.batch_records, self.refresh = args.nats_url, args.batch_records, refresh
        self.window = 2.0  # the screens' refresh window: DIEUHANH_LIVE_COALESCE_SECONDS, as room.js reads it
        self.figures: list[list[float]] = [[] for _ in who.leaders]  # arrival times of `figures` per screen
        self.events: list[Counter] = [Counter() for _ in who.leaders]
        self.rounds: list[dict] = []
        self.fetches: list[tuple[str, int, float]] = []  # (part, status, seconds) of the screens' refreshes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-live", daemon=True)
        # Threads of their own for the blocking HTTP calls: the sources' never wait behind the screens'
        # refreshes, and every screen can have both of its fetches under way.
        self.posting = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-source")
        self.fetching = concurrent.futures.ThreadPoolExecutor(
            2 * len(who.leaders), thread_name_prefix="bench-screen"
        )
        self.sending: asyncio.Task | None = None
        self.screens: list[asyncio.Task] = []
        self.run_id = secrets.token_hex(3)

    def _do(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def open(self) -> None:
        self.thread.start()
        self._do(self._open())

    async def _open(self) -> None:
        opened = [self.loop.create_future() for _ in self.leaders]
        self.screens = [
            asyncio.ensure_future(self._screen(i, token, session, opened[i]))
            for i, (token, _, session) in enumerate(self.leaders)
        ]
        await asyncio.wait_for(asyncio.gather(*opened), 60)

    async def _screen(self, i: int, token: str, session: str, opened: asyncio.Future) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            f"GET /room/stream?unit={self.ROOM} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or b"text/event-stream" not in head.lower():
            opened.set_exception(RuntimeError(f"screen {i}: {head[:200]!r}"))
            return
        opened.set_result(True)
        wanted: set[str] = set()
        state = {"pending": False, "last": 0.0}
        refreshing: set[asyncio.Task] = set()
        try:
            while line := await reader.readline():
                if not line.startswith(b"event: "):
                    continue
                name = line[7:].strip().decode()
                now = time.monotonic()
                self.events[i][name] += 1
                if name == "figures":
                    self.figures[i].append(now)
                if self.refresh and name in self.PARTS:
                    wanted.update(self.PARTS[name])
                    if not state["pending"]:
                        state["pending"] = True
                        task = asyncio.ensure_future(self._refresh(session, wanted, state))
                        refreshing.add(task)
                        task.add_done_callback(refreshing.discard)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for task in refreshing:
                task.cancel()
            writer.close()

    async def _refresh(self, session: str, wanted: set[str], state: dict) -> None:
        """What room.js does on events: at most once per window, the parts that changed and the map."""
        await asyncio.sleep(max(0.0, state["last"] + self.window - time.monotonic()))
        state.update(pending=False, last=time.monotonic())
        names = sorted(wanted)
        wanted.clear()
        headers = {"Cookie": f"sessionid={session}"}
        parts = [n for n in names if n != "map"]
        asks = []
        if parts:
            asks.append(("parts", f"/room/parts?unit={self.ROOM}&parts={','.join(parts)}"))
        if "map" in names:
            asks.append(("map", f"/room/map.json?unit={self.ROOM}"))

        async def fetch(what: str, path: str) -> None:
            began = time.monotonic()
            status, _ = await self.loop.run_in_executor(
                self.fetching, http_call, self.port, "GET", path, headers
            )
            self.fetches.append((what, status, time.monotonic() - began))

        await asyncio.gather(*(fetch(w, p) for w, p in asks))

    def start_sources(self) -> None:
        self.sending = asyncio.run_coroutine_threadsafe(self._sources(), self.loop)

    def _batch(self, n: int) -> bytes:
        at = datetime.now(UTC).isoformat()
        lines = []
        for j in range(self.batch_records):
            lines.append(json.dumps({
                "source_event_id": f"load-{self.run_id}-{n}-{j}", "commune": random.choice(self.codes),
                "declared_at": at, "person_id": f"0{random.randrange(10**10, 10**11)}",
                "symptoms": ["fever"] if j % 3 == 0 else [], "exposure": j % 7 == 0,
            }))  # fmt: skip
        return "\n".join(lines).encode()

    async def _sources(self) -> None:
        import nats

        from dieuhanh.warehouse.worker import publish_batch

        nc = await nats.connect(self.nats_url, connect_timeout=5)
        reply = nc.new_inbox()
        summaries = await nc.subscribe(reply)
        n = 0
        try:
            while True:
                via = "http" if n % 2 == 0 else "nats"
                body = self._batch(n)
                marks = [len(f) for f in self.figures]
                sent = time.monotonic()
                if via == "http":
                    status, answer = await self.loop.run_in_executor(
                        self.posting, http_call, self.port, "POST", "/api/v1/events/health",
                        {
                            "Authorization": f"Bearer {self.sources['http']}",
                            "Content-Type": "application/x-ndjson",
                        },
                        body,
                    )  # fmt: skip
                    committed = time.monotonic()
                    summary = (
                        json.loads(answer) if status == 200 else {"status": status, "body": answer[:300]}
                    )
                else:
                    await publish_batch(
                        nc, "health", body, self.sources["nats"], reply_to=reply, bus=self.bus
                    )
                    message = await summaries.next_msg(timeout=60)
                    committed = time.monotonic()
                    summary = json.loads(message.data)
                accepted = summary.get("accepted")
                if accepted is None:  # refused (HTTP 503 when every slot stayed taken): nothing to see
                    self.rounds.append({"via": via, "refused": summary, "commit_s": committed - sent})
                    n += 1
                    await asyncio.sleep(random.uniform(0.5, 1.5))
                    continue
                deadline = committed + FIGURES_WAIT_S
                while any(len(f) <= m for f, m in zip(self.figures, marks, strict=True)):
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.005)
                seen = [
                    f[m] - committed if len(f) > m else None for f, m in zip(self.figures, marks, strict=True)
                ]
                self.rounds.append({
                    "via": via, "accepted": accepted, "commit_s": committed - sent, "to_screens_s": seen,
                })  # fmt: skip
                n += 1
                await asyncio.sleep(random.uniform(0.5, 1.5))
        finally:
            await nc.close()

    def stop(self) -> dict:
        if self.sending is not None:
            self.sending.cancel()
            try:
                self.sending.result(30)
            except concurrent.futures.CancelledError:
                pass  # as asked
            except Exception as e:
                log(f"  the sources stopped on an error: {e!r}")

        async def close() -> None:
            for task in self.screens:
                task.cancel()
            await asyncio.gather(*self.screens, return_exceptions=True)

        self._do(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.posting.shutdown(wait=False, cancel_futures=True)
        self.fetching.shutdown(wait=False, cancel_futures=True)
        return self.report()

    def report(self) -> dict:
        out: dict = {"batches": len(self.rounds), "events": [dict(c) for c in self.events]}
        for via in ("http", "nats", None):
            sent = [r for r in self.rounds if via is None or r["via"] == via]
            rounds = [r for r in sent if "refused" not in r]
            seen = [s for r in rounds for s in r["to_screens_s"] if s is not None]
            missed = sum(1 for r in rounds for s in r["to_screens_s"] if s is None)
            key = via or "all"
            out[key] = {
                "batches": len(sent),
                "refused": [r["refused"] for r in sent if "refused" in r],
                "accepted": sum(r["accepted"] or 0 for r in rounds),
                "deliveries": len(seen),
                "missed": missed,
                "commit_p50_s": percentile([r["commit_s"] for r in rounds], 0.5) if rounds else None,
                "commit_p95_s": percentile([r["commit_s"] for r in rounds], 0.95) if rounds else None,
                "p50_s": percentile(seen, 0.5) if seen else None,
                "p95_s": percentile(seen, 0.95) if seen else None,
                "max_s": max(seen) if seen else None,
            }
        if self.fetches:
            out["refresh"] = {}
            for what in ("parts", "map"):
                mine = [f for f in self.fetches if f[0] == what]
                if mine:
                    out["refresh"][what] = {
                        "n": len(mine),
                        "errors": sum(1 for f in mine if f[1] != 200),
                        "p50_ms": percentile([f[2] * 1e3 for f in mine], 0.5),
                        "p95_ms": percentile([f[2] * 1e3 for f in mine], 0.95),
                    }
        return out


# ---------------------------------------------------------------- open streams on one web process


def hold_streams(port: int, pid: int, tokens: list[str]) -> dict:
    async def run() -> dict:
        before = rss_mb(pid)
        gate = asyncio.Semaphore(50)
        held: list[asyncio.StreamWriter] = []

        async def open_one(token: str) -> bool:
            async with gate:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                held.append(writer)
                writer.write(
                    "GET /api/v1/inbox/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode()
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
                return head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()

        began = time.monotonic()
        answers = await asyncio.gather(*(open_one(t) for t in tokens), return_exceptions=True)
        opened_s = time.monotonic() - began
        await asyncio.sleep(3)
        during = rss_mb(pid)
        for writer in held:
            writer.close()
        await asyncio.sleep(3)
        return {
            "streams": len(tokens),
            "with_headers": sum(1 for a in answers if a is True),
            "failed": [repr(a)[:200] for a in answers if a is not True][:5],
            "open_s": opened_s,
            "rss_before_mb": before,
            "rss_open_mb": during,
            "rss_after_close_mb": rss_mb(pid),
        }

    return asyncio.run(run())


# ---------------------------------------------------------------- the runs


@dataclass
class Run:
    """What every configuration shares."""

    args: argparse.Namespace
    home: str
    work: Path
    processes: Processes
    who: People
    communes: list[tuple[str, int, int]]
    directive: int
    codes: list[str]
    run_id: str

    @property
    def bus(self):
        from dieuhanh.warehouse.worker import Bus

        return Bus(prefix=f"load{self.run_id}", stream=f"LOAD{self.run_id}_EVENTS")

    def env(self, primary_url: str, replica_url: str | None) -> dict[str, str]:
        env = child_env(self.home, primary_url) | {
            "DIEUHANH_LIVE": "nats",
            "DIEUHANH_LIVE_SUBJECT": f"load{self.run_id}.live",
            "DIEUHANH_NATS_URL": self.args.nats_url,
            "DIEUHANH_LOG_LEVEL": "WARNING",
        }
        if replica_url:
            env["DIEUHANH_DATABASE_REPLICA_URL"] = replica_url
        return env


def serve_ours(run: Run, name: str, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [DIEUHANH, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    process = run.processes.start(name, command, env)
    wait_ready(port, process, run.work / f"{name}.log", workers)
    return process, port


def serve_baseline(run: Run, name: str, env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [
        UVICORN, "load_baseline:application", "--app-dir", str(BENCH),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--lifespan", "off",
        "--log-level", "warning", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    process = run.processes.start(name, command, env)
    wait_ready(port, process, run.work / f"{name}.log", workers)
    return process, port


def start_ingest_worker(run: Run, env: dict[str, str]) -> subprocess.Popen:
    bus = run.bus
    command = [DIEUHANH, "worker", "ingest", "--prefix", bus.prefix, "--stream", bus.stream,
               "--durable", f"load-{run.run_id}"]  # fmt: skip
    worker = run.processes.start("worker-ingest", command, env)

    async def stream_made() -> None:
        import nats

        nc = await nats.connect(run.args.nats_url, connect_timeout=5)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    await nc.jetstream().consumer_info(bus.stream, f"load-{run.run_id}")
                    return
                except Exception:  # not there yet
                    if worker.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the ingest worker did not make its stream") from None
                    await asyncio.sleep(0.3)
        finally:
            await nc.close()

    asyncio.run(stream_made())
    return worker


def remove_stream(run: Run) -> None:
    async def remove() -> None:
        import nats

        nc = await nats.connect(run.args.nats_url, connect_timeout=5)
        try:
            await nc.jetstream().delete_stream(run.bus.stream)
        except nats.js.errors.NotFoundError:
            pass  # never made
        finally:
            await nc.close()

    asyncio.run(remove())


def configuration(
    run: Run, label: str, primary_url: str, replica_url: str | None, workers: int, refresh: bool
) -> dict:
    """Ours, then the baseline (unless the configuration only adds the screens' refreshes)."""
    args = run.args
    env = run.env(primary_url, replica_url)
    tag = f"{'replica' if replica_url else 'primary'}-{workers}{'-refresh' if refresh else ''}"
    label += ", screens refreshing" if refresh else ""
    extra = refresh and args.refresh == "extra"
    log(f"[{workers} web worker(s), {label}] ours: morning of {len(run.communes):,} communes …")
    found: dict = {"server": label, "workers": workers, "replica": bool(replica_url), "refresh": refresh}
    worker = start_ingest_worker(run, env)
    server, port = serve_ours(run, f"ours-{tag}", env, workers)
    try:
        warm_up(port, [t for t, _, _ in run.who.leaders])
        single = alone(port, [t for t, _, _ in run.communes[-30:]])
        live = Live(port, run.who, run.bus, run.codes, args, refresh)
        live.open()
        live.start_sources()
        watch = {"web": web_pids(server, workers), "ingest worker": [worker.pid], "bench": [os.getpid()]}
        try:
            ours = {
                "alone": single,
                "morning": morning(port, primary_url, run.directive, run.communes, args, run.work, watch),
            }
        finally:
            ours["live"] = live.stop()
        log("  " + one_line(ours["morning"]) + f"; figures p95 {fmt_s(ours['live']['all']['p95_s'])}")
        if args.me_seconds and not extra:
            ours["me"] = me_run(port, primary_url, run.communes, args, run.work, watch)
            log(f"  /api/v1/me: {ours['me']['req_per_s']:,.0f} req/s, p95 {ours['me']['p95_ms']:,.0f} ms")
        if replica_url:
            ours["replica_lag_s"] = replica_caught_up(primary_url, replica_url)
    finally:
        run.processes.stop(server)
        run.processes.stop(worker)
    found["ours"] = ours
    if args.no_baseline or extra:
        return found
    log(f"[{workers} web worker(s), {label}] baseline …")
    server, port = serve_baseline(run, f"baseline-{tag}", env, workers)
    try:
        warm_up(port, [t for t, _, _ in run.who.leaders])
        single = alone(port, [t for t, _, _ in run.communes[-30:]])
        watch = {"web": web_pids(server, workers), "bench": [os.getpid()]}
        base = {
            "alone": single,
            "morning": morning(port, primary_url, run.directive, run.communes, args, run.work, watch),
        }
        log("  " + one_line(base["morning"]))
        if args.me_seconds:
            base["me"] = me_run(port, primary_url, run.communes, args, run.work, watch)
            log(f"  /api/v1/me: {base['me']['req_per_s']:,.0f} req/s, p95 {base['me']['p95_ms']:,.0f} ms")
    finally:
        run.processes.stop(server)
    found["baseline"] = base
    return found


def streams_run(run: Run, url: str) -> dict:
    n = run.args.streams
    log(f"[1 web worker] {n:,} open inbox streams …")
    env = run.env(url, None)
    server, port = serve_ours(run, "ours-streams", env, 1)
    try:
        warm_up(port, [t for t, _, _ in run.who.leaders], n=50)
        tokens = [t for t, _, _ in run.who.communes[:n]]
        if len(tokens) < n:
            raise SystemExit(f"--streams {n}: only {len(tokens):,} communes' tokens")
        found = hold_streams(port, server.pid, tokens)
    finally:
        run.processes.stop(server)
    log(
        f"  {found['with_headers']:,}/{n:,} with headers; "
        f"RSS {found['rss_before_mb']:.0f} → {found['rss_open_mb']:.0f} MB"
    )
    return found


# ---------------------------------------------------------------- the table


def fmt_s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:,.2f} s"


def one_line(m: dict) -> str:
    if not m.get("requests"):
        return "no requests"
    done = m.get("all_acknowledged_s")
    return (
        f"{m['req_per_s']:,.0f} req/s, p50/p95/p99 {_lat(m)} ms, "
        f"{m['errors']:,} errors, {m.get('checked_acknowledged', 0):,}/{m['communes']:,} acknowledged"
        + (f" in {done:,.1f} s" if done else "")
        + ("" if m["ended_by"] == "all acknowledged" else f" ({m['ended_by']})")
    )


def ratio(ours: float | None, base: float | None) -> str:
    return "–" if not ours or not base else f"{ours / base:.2f}×"


def verdict(value: float | None, goal: float, higher_is_better: bool) -> str:
    if value is None:
        return "–"
    met = value >= goal if higher_is_better else value <= goal
    if met:
        return "met"
    return f"missed ({value / goal:.0%} of it)" if higher_is_better else f"missed ({value / goal:.1f}× it)"


def _lat(m: dict) -> str:
    return f"{m['p50_ms']:,.0f} / {m['p95_ms']:,.0f} / {m['p99_ms']:,.0f}" if m else "–"


def _errors(m: dict) -> str:
    if not m:
        return "–"
    bad = {status: n for status, n in sorted(m["statuses"].items()) if not status.startswith("2")}
    return f"{m['errors']:,}" + (f" ({', '.join(f'{n:,}× {s}' for s, n in bad.items())})" if bad else "")


def _alone(one: dict | None) -> str:
    return f"{one['inbox']['p50_ms']:,.1f} / {one['me']['p50_ms']:,.1f}" if one else "–"


def _missed(v: dict) -> str:
    notes = [f"{v['missed']} missed"] if v["missed"] else []
    if v["refused"]:
        notes.append(f"{len(v['refused'])} of {v['batches']} batches refused")
    return f" ({', '.join(notes)})" if notes else ""


def _me_lat(m: dict | None) -> str:
    return f"{m['p50_ms']:,.0f} / {m['p95_ms']:,.0f}, {m['errors']}" if m else "–"


def _calls_p95(m: dict) -> str:
    found = [f"{m['calls'][c]['p95_ms']:,.0f}" for c in ("inbox", "open", "ack") if c in m.get("calls", {})]
    return " / ".join(found) or "–"


def _cores(m: dict) -> str:
    if not m:
        return "–"
    cores = m["cpu"]["cores"]
    return " / ".join(f"{cores.get(name, 0):.2f}" for name in ("web", "postgres", "wrk", "others"))


def all_acknowledged(m: dict) -> tuple[float | None, bool]:
    """(seconds until every commune acknowledged, projected?): measured when every one did (checked in
    the database), else projected from the rate of the ones that did before the run was ended."""
    if not m:
        return None, False
    got = m.get("checked_acknowledged", 0)
    if got == m["communes"] and m.get("all_acknowledged_s"):
        return m["all_acknowledged_s"], False
    return (m["seconds"] * m["communes"] / got if got else None), True


def _acknowledged(m: dict) -> str:
    seconds, projected = all_acknowledged(m)
    if seconds is None:
        return "–"
    if projected:
        return f"≈ {seconds:,.0f} s ({m.get('checked_acknowledged', 0):,} in {m['seconds']:,.0f} s)"
    return fmt_s(seconds)


def table(configs: list[dict], streams: dict | None, k: int) -> str:
    grid = [["", "ours", "baseline", "ours / baseline", "goal"]]
    for c in configs:
        plural = "s" if c["workers"] > 1 else ""
        grid.append([f"{c['workers']} web worker{plural}, {c['server']}", "", "", "", ""])
        m, b = c["ours"]["morning"], c.get("baseline", {}).get("morning", {})
        rate, base_rate = m["req_per_s"], b.get("req_per_s")
        grid.append(
            ["  morning: req/s over the 3 calls", f"{rate:,.0f}", f"{base_rate:,.0f}" if b else "–",
             ratio(rate, base_rate), f"≥ 500: {verdict(rate, 500, True)}"]
        )  # fmt: skip
        grid.append(
            ["  latency p50 / p95 / p99 (ms)", _lat(m), _lat(b),
             ratio(m["p95_ms"], b.get("p95_ms")) + " (p95)", f"p95 < 500: {verdict(m['p95_ms'], 500, False)}"]
        )  # fmt: skip
        grid.append(["  p95 of inbox / open / ack (ms)", _calls_p95(m), _calls_p95(b), "", ""])
        grid.append(
            ["  errors (non-2xx)", _errors(m), _errors(b), "",
             "0: met" if m["errors"] == 0 else "0: missed"]
        )  # fmt: skip
        (done, _), (base_done, _) = all_acknowledged(m), all_acknowledged(b)
        goal = 60 * k / 10_000  # 10,000 communes in a minute
        grid.append(
            [f"  {k:,} communes acknowledged in", _acknowledged(m), _acknowledged(b), ratio(done, base_done),
             f"≤ {goal:,.0f} s: {verdict(done, goal, False)}"]
        )  # fmt: skip
        live = c["ours"]["live"]
        for via, name in (("http", "HTTP"), ("nats", "NATS")):
            v = live[via]
            grid.append(
                [f"  {name} batch → figures on screens p50 / p95",
                 f"{fmt_s(v['p50_s'])} / {fmt_s(v['p95_s'])}" + _missed(v), "", "",
                 f"p95 < 2 s: {verdict(v['p95_s'], 2.0, False)}"]
            )  # fmt: skip
        answered = " / ".join(fmt_s(live[via]["commit_p50_s"]) for via in ("http", "nats"))
        grid.append(["  a batch stored (answer; summary) p50: HTTP / NATS", answered, "", "", ""])
        if live.get("refresh"):
            r = live["refresh"]
            text = " / ".join(f"{r[x]['p95_ms']:,.0f}" for x in ("parts", "map") if x in r)
            grid.append(["  screens' refreshes p95, parts / map (ms)", text, "", "", ""])
        grid.append(["  cores busy: web / postgres / wrk / others", _cores(m), _cores(b), "", ""])
        one, base_one = c["ours"].get("alone"), c.get("baseline", {}).get("alone")
        if one:
            grid.append(
                ["  one call alone, p50: inbox / me (ms)", _alone(one), _alone(base_one),
                 ratio(one["inbox"]["p50_ms"], base_one and base_one["inbox"]["p50_ms"]) + " (inbox)", ""]
            )  # fmt: skip
        me, base_me = c["ours"].get("me"), c.get("baseline", {}).get("me")
        if me:
            grid.append(
                ["  /api/v1/me: req/s", f"{me['req_per_s']:,.0f}",
                 f"{base_me['req_per_s']:,.0f}" if base_me else "–",
                 ratio(me["req_per_s"], base_me and base_me["req_per_s"]),
                 f"> 1,000: {verdict(me['req_per_s'], 1000, True)}"]
            )  # fmt: skip
            grid.append(
                ["  /api/v1/me: p50 / p95 (ms), errors", _me_lat(me), _me_lat(base_me), "", ""]
            )  # fmt: skip
    if streams:
        grid.append([f"{streams['streams']:,} open streams, 1 web process", "", "", "", ""])
        grid.append(
            ["  RSS before → streams open (MB)",
             f"{streams['rss_before_mb']:,.0f} → {streams['rss_open_mb']:,.0f}", "", "",
             f"< 300 MB: {verdict(streams['rss_open_mb'], 300, False)}"]
        )  # fmt: skip
        everyone = streams["with_headers"] == streams["streams"]
        grid.append(
            ["  with their headers / opened in", f"{streams['with_headers']:,} / {streams['open_s']:.1f} s",
             "", "", "all: met" if everyone else "all: missed"]
        )  # fmt: skip
    return render_table(grid)


# ---------------------------------------------------------------- main


def code_version() -> dict:
    """The commit measured, and how many files of the working tree differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607
        return done.stdout.strip()

    return {"head": git("rev-parse", "HEAD"), "changed_files": len(git("status", "--porcelain").splitlines())}


def check_nats(url: str) -> None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=3):
            return
    except OSError as e:
        raise SystemExit(f"NATS does not answer at {url}: {e}") from None


def main() -> None:
    args = parse_args()
    server_version = pg_version(args.pg_url)
    if server_version is None:
        sys.exit(1)
    wrk = wrk_version()
    if wrk is None:
        raise SystemExit(
            "wrk is missing: `apt-get install -y wrk` (Debian's package; used by this benchmark only)"
        )
    check_nats(args.nats_url)
    run_id = secrets.token_hex(4)
    home = tempfile.mkdtemp(prefix="dieuhanh-bench-load-")
    work = Path(home) / "bench"
    work.mkdir()
    url = db_url(args.pg_url, SCRATCH_DB)
    processes = Processes(work)
    clusters: Clusters | None = None
    run: Run | None = None
    try:
        reused, meta = prepare_database(args, url, home)
        # This process publishes only when capturing the queries: on a subject nobody listens to.
        os.environ.update(child_env(home, url) | {
            "DIEUHANH_LIVE": "nats", "DIEUHANH_LIVE_SUBJECT": f"load{run_id}.capture",
            "DIEUHANH_NATS_URL": args.nats_url,
        })  # fmt: skip
        setup_django()
        if meta is None:
            log(f"population: {args.leaders} leaders, every commune's operator, the urgent directive …")
            meta = populate(args.leaders)
        from dieuhanh.units.models import Unit

        who = people(meta["directive"], args.leaders)
        communes = who.communes[: args.communes or None]
        codes = list(Unit.objects.filter(edition_id=EDITION, kind="commune").values_list("code", flat=True))
        reset_morning(url, meta["directive"])
        queries = capture_queries(communes[0][0], communes[0][1])
        run = Run(args, home, work, processes, who, communes, meta["directive"], codes, run_id)
        configs: list[dict] = []
        replica_note = None
        servers: list[tuple[str, str, str | None]] = []
        if args.replica in ("no", "both"):
            servers.append(("primary only", url, None))
        if args.replica in ("yes", "both"):
            replica_note = replica_unavailable()
            if replica_note is None:
                log("a primary and a streaming replica of our own (pg_createcluster, pg_basebackup) …")
                clusters = Clusters(f"dhload_{os.getpid()}")
                try:
                    made = clusters.create(args.pg_url, url)
                    log(f"  made in {made['made_s']:.0f} s, settings of the main server: {made['settings']}")
                    servers.append(
                        (
                            "with replica",
                            clusters.url(clusters.primary_port),
                            clusters.url(clusters.replica_port),
                        )
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    replica_note = f"making the replica failed: {e}"
            if replica_note:
                log(f"NO REPLICA RUNS: {replica_note}")
        for label, primary_url, replica_url in servers:
            for workers in args.worker_counts:
                configs.append(
                    configuration(run, label, primary_url, replica_url, workers, args.refresh == "yes")
                )
            if args.refresh == "extra":
                most = max(args.worker_counts)
                configs.append(configuration(run, label, primary_url, replica_url, most, True))
        streams = streams_run(run, url) if args.streams else None
        print(
            f"\nA national morning: {len(communes):,} communes × 3 calls, {args.connections} connections; "
            f"{args.leaders} leaders' screens on the national room; batches of {args.batch_records} health "
            f"declarations over HTTP and NATS. Ratios: ours / baseline.\n"
        )
        print(table(configs, streams, len(communes)))
        if replica_note:
            print(f"\nNo runs with a replica: {replica_note}")
        write_results("load", {
            "args": {k: v for k, v in vars(args).items() if k != "worker_counts"}
            | {"pg_url": shown(args.pg_url)},
            "machine": machine(server_version) | {"wrk": wrk, "nats": args.nats_url},
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "code": code_version(),
            "setup": meta | {"reused": reused},
            "queries": {name: {"count": len(q), "statements": q} for name, q in queries.items()},
            "configurations": configs, "streams": streams, "replica_note": replica_note, "goals": GOALS,
        })  # fmt: skip
    finally:
        processes.stop_all()
        if clusters is not None:
            clusters.drop()
        if run is not None:
            remove_stream(run)
        if not args.reuse:
            import psycopg
            from django.db import connections

            connections.close_all()
            with psycopg.connect(args.pg_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
