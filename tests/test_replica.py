"""Reads on a real PostgreSQL 15 streaming replica (dieuhanh.replica, docs/replica.md).

The tests make a primary and a replica cluster of their own with Debian's tools (pg_createcluster,
pg_basebackup -R, pg_ctlcluster), on free ports, named for this run, and drop both at the end, failed or
not. Django's settings are fixed at import, so the application runs in subprocesses of this very file
(`python -m tests.test_replica SCENARIO`) with DIEUHANH_DATABASE_URL and DIEUHANH_DATABASE_REPLICA_URL
pointed at the clusters; each scenario makes its requests with Django's test client, records for every
query the port of the server that answered it (the live connection's own), and prints what it saw as
JSON for the tests here to judge.

Without PostgreSQL's tools (or as a user who may not make clusters) the tests fail, saying why. They
make their own clusters whatever database the pass uses, so they run once per `make test`: in the
SQLite pass (marked out of the PostgreSQL pass).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

# The clusters are the tests' own, whatever the pass's database: once per `make test`, in the SQLite pass.
# (tests.factories.ONCE_IN_THE_SQLITE_PASS says the same, but this module also runs as the scenarios'
# process, before Django is set up: it cannot import the test world at its top.)
pytestmark = pytest.mark.skipif(
    os.environ.get("DIEUHANH_DATABASE_URL", "").startswith("postgres"),
    reason="the replica tests make their own clusters: they run once, in the SQLite pass of `make test`",
)

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "psql", "runuser")
HBA = (
    "local all all trust\n"
    "local replication all trust\n"
    "host all all 127.0.0.1/32 trust\n"
    "host replication all 127.0.0.1/32 trust\n"
)
# Both clusters; durability off, they live for one test run.
CONF = """
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
full_page_writes = off
ssl = off
shared_buffers = '32MB'
max_connections = 40
# No commit but the scenarios' own: an autovacuum's or autoanalyze's commit, replayed during the idle
# test's wait, made its replica look 1.8 s behind, not the 3 s it waited (a loaded machine's failure).
autovacuum = off
"""
# Tables whose reads always go to the primary (ALWAYS_PRIMARY in dieuhanh.replica): who is signed in and
# what they may see. Every other table read in a scope is area data.
ACCESS_TABLES = re.compile(r"^(accounts_|auth_|django_session|django_admin_log)")
TASK_TITLE = "Nhiệm vụ kiểm tra bản sao {}"


# The clusters (this process) ---------------------------------------------------------------------


def _missing_tools() -> str | None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    missing += [str(PG_BIN / b) for b in ("pg_basebackup", "postgres") if not (PG_BIN / b).exists()]
    if missing:
        return (
            f"PostgreSQL {PG_VERSION}'s tools are missing ({', '.join(missing)}): apt-get install postgresql"
        )
    if os.geteuid() != 0:
        return "making PostgreSQL clusters needs root (pg_createcluster, files owned by postgres)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sh(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Clusters:
    primary: str
    replica: str
    primary_port: int
    replica_port: int
    home: Path
    database: str = "dieuhanh"

    def url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{self.database}"

    def env(self, max_lag: float) -> dict[str, str]:
        return os.environ | {
            "DIEUHANH_DATABASE_URL": self.url(self.primary_port),
            "DIEUHANH_DATABASE_REPLICA_URL": self.url(self.replica_port),
            "DIEUHANH_REPLICA_MAX_LAG": str(max_lag),
            "DIEUHANH_HOME": str(self.home),  # one secret key for every process: signed cookies cross
            "DIEUHANH_LIVE": "local",
            "DIEUHANH_LOG_LEVEL": "WARNING",
            "DIEUHANH_DB_POOL_SIZE": "4",
            "DJANGO_SETTINGS_MODULE": "dieuhanh.settings",
            "SCENARIO_CLUSTERS": json.dumps({**asdict(self), "home": str(self.home)}),
        }

    def psql(self, port: int, sql: str) -> str:
        return _sh("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-XAtc", sql).strip()

    def resume(self) -> None:
        """Replay resumed, and caught up with the primary."""
        self.psql(self.replica_port, "SELECT pg_wal_replay_resume()")
        target = self.psql(self.primary_port, "SELECT pg_current_wal_flush_lsn()")
        deadline = time.monotonic() + 30
        while self.psql(self.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{target}'") != "t":
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.1)

    def run(self, scenario: str, *, max_lag: float, **args: Any) -> dict[str, Any]:
        """Run a scenario in a fresh process; its JSON answer (its log lines under 'log')."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.test_replica", scenario, json.dumps(args)],
            cwd=ROOT,
            env=self.env(max_lag),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        answer = [line for line in done.stdout.splitlines() if line.startswith("ANSWER ")]
        if done.returncode != 0 or not answer:
            pytest.fail(f"scenario {scenario} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return json.loads(answer[-1][len("ANSWER ") :]) | {"log": done.stderr}


def _create(name: str, port: int) -> Path:
    _sh("pg_createcluster", PG_VERSION, name, "-p", str(port), "--start-conf=manual", "--", "--auth=trust")
    config = Path(f"/etc/postgresql/{PG_VERSION}/{name}")
    (config / "pg_hba.conf").write_text(HBA)
    with (config / "postgresql.conf").open("a") as conf:  # the last setting of a name wins
        conf.write(CONF)
    return Path(f"/var/lib/postgresql/{PG_VERSION}/{name}")


def _start(name: str) -> None:
    _sh("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, "start")


@pytest.fixture(scope="module")
def clusters(tmp_path_factory) -> Iterator[Clusters]:
    why = _missing_tools()
    if why:
        pytest.fail(why)
    base = f"dhtest_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    found = Clusters(f"{base}_p", f"{base}_r", _free_port(), _free_port(), tmp_path_factory.mktemp("home"))
    made: list[str] = []
    try:
        made.append(found.primary)
        _create(found.primary, found.primary_port)
        _start(found.primary)
        made.append(found.replica)
        data = _create(found.replica, found.replica_port)
        for entry in data.iterdir():  # its data is the primary's, copied and told to follow it
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        _sh(
            "runuser", "-u", "postgres", "--", str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1",
            "-p", str(found.primary_port), "-U", "postgres", "-D", str(data), "-R", "-X", "stream",
            "-c", "fast",
        )  # fmt: skip
        _start(found.replica)
        found.psql(found.primary_port, f"CREATE DATABASE {found.database}")
        yield found
    finally:
        for name in reversed(made):
            subprocess.run(
                ["pg_dropcluster", "--stop", PG_VERSION, name], capture_output=True, timeout=60, check=False
            )
            shutil.rmtree(f"/etc/postgresql/{PG_VERSION}/{name}", ignore_errors=True)  # anything left


@pytest.fixture(scope="module")
def prepared(clusters) -> Clusters:
    """The schema migrated on the primary (the replica follows), the units, the ICT catalogue and its
    report definitions, and the users of the scenarios."""
    clusters.run("prepare", max_lag=30)
    return clusters


# The tests ---------------------------------------------------------------------------------------


def _on_replica(seen: dict) -> None:
    shown = json.dumps(seen, indent=1)
    assert seen["status"] == 200, shown
    assert seen["replica_reads"] > 0, shown
    assert seen["primary_area_reads"] == [], shown
    assert seen["replica_writes"] == 0, shown


def _on_primary(seen: dict) -> None:
    shown = json.dumps(seen, indent=1)
    assert seen["status"] == 200, shown
    assert seen["replica_reads"] == 0, shown
    assert seen["primary_area_reads"], shown  # it did read area data, from the primary


@pytest.fixture(scope="module")
def routing(prepared) -> dict[str, Any]:
    return prepared.run("routing", max_lag=30)


def test_scoped_reads_go_to_the_replica_and_writes_to_the_primary(prepared, routing):
    seen = routing
    assert seen["servers"] == {
        "default": [prepared.primary_port, False],
        "replica": [prepared.replica_port, True],
    }
    for name in ("room", "room parts", "room map", "unit page", "units browse", "units api", "unit api",
                 "predecessors api", "analytics api"):  # fmt: skip
        _on_replica(seen[name])
    # Report generation: its reads on the replica, the archive row written on the primary.
    report = seen["report"]
    assert report["status"] == 302 and report["state"] == "done", report
    assert report["replica_reads"] > 0, report
    # On the primary, only the request's checks before the reads start: the definition asked for, and
    # its unit through the one checked look-up (units.services.unit_in_area).
    checks = ('SELECT "reports_reportdefinition"', 'SELECT "units_unit"')
    assert all(sql.startswith(checks) for sql in report["primary_area_reads"]), json.dumps(
        report["primary_area_reads"]
    )
    assert report["primary_writes"] > 0 and report["replica_writes"] == 0, report
    # Unscoped pages (the inbox) stay on the primary.
    assert seen["inbox"]["replica_reads"] == 0, seen["inbox"]
    # A write, and the writer's reads right after it (token: the shared pin; browser: the signed cookie),
    # go to the primary; another user's reads still go to the replica.
    post = seen["task by token"]
    assert post["status"] == 201 and post["primary_writes"] > 0 and post["replica_reads"] == 0, post
    _on_primary(seen["token writer's unit api"])
    _on_replica(seen["other user's unit api"])
    post = seen["task by browser"]
    assert post["status"] == 201 and post["primary_writes"] > 0 and post["replica_reads"] == 0, post
    assert post["pin cookie"], post
    _on_primary(seen["browser writer's unit page"])
    _on_replica(seen["other user's unit page"])
    # A service call in `with replica_reads(...)`, outside any request.
    assert seen["service block"]["replica_reads"] == 1 and not seen["service block"]["primary_area_reads"]
    # Through Django's ASGI handler (the middleware in its async form): the same.
    _on_replica(seen["asgi unit page"])
    post = seen["asgi task"]
    assert post["status"] == 201 and post["pin cookie"] and post["replica_reads"] == 0, post
    _on_primary(seen["asgi writer's unit page"])
    assert "replica down" not in seen["log"] and "replica lagging" not in seen["log"], seen["log"]


def test_analytics_event_counts_read_the_replica(routing):
    _on_replica(routing["analytics events api"])


def test_writers_read_their_writes_in_another_process(prepared):
    """The replica's replay is paused, so a new task is on the primary only: the writer, served by a
    fresh process, sees it (pinned to the primary); another user, from the replica, does not yet."""
    try:
        # A generous limit: the paused replica must stay "healthy" for the other user however slowly
        # the next process starts on a loaded machine.
        wrote = prepared.run("write task", max_lag=120, pause=True)
        seen = prepared.run("read task", max_lag=120, title=wrote["title"], cookies=wrote["cookies"])
        _on_primary(seen["writer's unit page"])
        assert seen["writer's unit page"]["has task"], seen
        _on_primary(seen["writer's unit api"])  # the bearer token's shared pin, found in the database
        _on_replica(seen["other user's unit page"])
        assert not seen["other user's unit page"]["has task"], seen  # the replica has not replayed it
    finally:
        prepared.resume()


def test_lagging_replica_falls_back_to_the_primary(prepared):
    seen = prepared.run("lagging", max_lag=2)
    # An idle primary: the replica's last replayed commit is older than the lag allowed, yet it is
    # caught up, and measured so.
    assert seen["idle"]["replay_age"] > 2, seen["idle"]
    assert seen["idle"]["status"] == {"state": "healthy", "lag": 0.0, "detail": "caught up"}, seen["idle"]
    # Replay paused, a write on the primary, then longer than the lag allowed: the primary answers.
    assert seen["paused"]["status"]["state"] == "lagging", seen["paused"]
    assert seen["paused"]["status"]["lag"] > 2, seen["paused"]
    for page in seen["paused"]["pages"]:
        _on_primary(page)
    # Replay resumed: back to the replica.
    assert seen["resumed"]["status"]["state"] == "healthy", seen["resumed"]
    _on_replica(seen["resumed"]["page"])
    assert seen["log"].count("replica lagging") == 1, seen["log"]  # once per change of state
    assert seen["log"].count("replica healthy") == 1, seen["log"]


def test_stopped_replica_falls_back_to_the_primary_quickly(prepared):
    try:
        seen = prepared.run("stopped", max_lag=30)
    finally:
        _start(prepared.replica)
    before = seen["before"]
    _on_replica(before)
    # "Quickly": no wait for a timeout (the pool's 5 s, a connect's 2 s) on top of a normal page. The
    # first page of the process (before) is the slowest normal one; the machine may be loaded.
    # Stopped under a healthy verdict: the pooled connection breaks, the page is read again on the primary.
    first = seen["just stopped"]
    assert first["replica_reads"] == 1, first  # its first query, on the dead connection
    assert first["status"] == 200 and first["primary_area_reads"], first  # then all of it again
    assert first["seconds"] < before["seconds"] + 1.5, (first, before)
    for page in seen["after"]:  # the "down" verdict is cached: no more attempts on the replica
        assert page["status"] == 200 and page["replica_reads"] == 0 and page["primary_area_reads"], page
        assert page["seconds"] < before["seconds"] + 1, (page, before)
    assert seen["status"]["state"] == "down", seen
    assert seen["log"].count("replica down") == 1, seen["log"]


# The scenarios (a subprocess with Django set up on the clusters) ---------------------------------


@dataclass
class Seen:
    """The queries of one request, by the port of the server that answered each."""

    name: str
    ports: tuple[int, int]  # primary, replica
    started: float = field(default_factory=time.monotonic)
    queries: list[tuple[int | None, str]] = field(default_factory=list)
    finished: float = 0.0

    def __call__(self, execute, sql, params, many, context):
        conn = context["connection"].connection
        self.queries.append((int(conn.info.port) if conn is not None else None, sql))
        return execute(sql, params, many, context)

    def summary(self, response, **more: Any) -> dict[str, Any]:
        primary, replica = self.ports
        area = [sql for port, sql in self.queries if port == primary and _reads_area(sql)]
        return {
            "name": self.name,
            "status": getattr(response, "status_code", None),
            "seconds": round(self.finished - self.started, 3),
            "replica_reads": sum(1 for port, sql in self.queries if port == replica and _is_read(sql)),
            "replica_writes": sum(1 for port, sql in self.queries if port == replica and not _is_read(sql)),
            "primary_writes": sum(1 for port, sql in self.queries if port == primary and not _is_read(sql)),
            "primary_area_reads": [sql[:300] for sql in area],
            **more,
        }


def _is_read(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))


def _reads_area(sql: str) -> bool:
    """A read of area data: its main table (the first FROM; the router routes by model) is not one of
    the access tables, whatever those join."""
    table = re.search(r'FROM\s+"(\w+)"', sql)
    return _is_read(sql) and table is not None and not ACCESS_TABLES.match(table.group(1))


class Scenario:
    def __init__(self) -> None:
        import django

        django.setup()
        from django.conf import settings
        from django.test.utils import override_settings

        self.clusters = json.loads(os.environ["SCENARIO_CLUSTERS"])
        self.ports = (self.clusters["primary_port"], self.clusters["replica_port"])
        self.users_file = Path(self.clusters["home"]) / "scenario-users.json"
        self.stack = ExitStack()
        # PinMiddleware where settings.MIDDLEWARE is to have it: right after authentication.
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(
            middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
            "dieuhanh.replica.PinMiddleware",
        )
        self.stack.enter_context(
            override_settings(
                MIDDLEWARE=middleware, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
            )
        )

    def request(self, name: str, client, method: str, path: str, **kw: Any) -> tuple[Any, Seen]:
        from django.db import connections

        seen = Seen(name, self.ports)
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(seen))
            response = getattr(client, method)(path, **kw)
        seen.finished = time.monotonic()
        return response, seen

    def page(self, name: str, client, path: str, **more: Any) -> dict[str, Any]:
        response, seen = self.request(name, client, "get", path)
        return seen.summary(response, **more)

    # Helpers

    def users(self) -> dict[str, Any]:
        return json.loads(self.users_file.read_text())

    def browser(self, username: str):
        from django.test import Client

        from dieuhanh.accounts.models import User

        client = Client()
        client.force_login(User.objects.get(username=username))
        return client

    def bearer(self, username: str):
        from django.test import Client

        return Client(headers={"Authorization": f"Bearer {self.users()[username]}"})

    def replica_sql(self, sql: str):
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.ports[1]}/postgres", autocommit=True
        ) as conn:
            return conn.execute(sql).fetchone()

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary has written."""
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.ports[0]}/postgres") as conn:
            target = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]
        deadline = time.monotonic() + timeout
        while True:
            (done,) = self.replica_sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not catch up")
            time.sleep(0.1)

    def fresh_commit(self) -> None:
        """A commit on the primary, replayed: the replica's last replay is now."""
        from dieuhanh.accounts.services import audit

        audit(None, "test.replica.tick")
        self.wait_replayed()

    def new_task(self, client, name: str) -> tuple[dict[str, Any], str]:
        title = TASK_TITLE.format(uuid.uuid4().hex[:8])
        body = {"title": title, "owner": "VN-2025:79", "due": "2031-12-31"}
        response, seen = self.request(
            name, client, "post", "/api/v1/tasks", data=body, content_type="application/json"
        )
        more = {"pin cookie": bool(response.cookies.get("dieuhanh_pin"))}
        return seen.summary(response, **more), title

    # Scenarios

    def prepare(self) -> dict[str, Any]:
        from django.core.management import call_command

        from dieuhanh.indicators.catalog import load as load_catalog
        from dieuhanh.reports.services import load_shipped
        from dieuhanh.units.services import get_unit, load_units
        from tests.factories import make_caller

        call_command("migrate", verbosity=0)
        load_units()
        load_catalog("ict", actor=None, with_seed_values=True)
        nation, province = get_unit("VN-2025:VN"), get_unit("VN-2025:79")
        callers = {
            "leader": make_caller("leader", nation, "leader"),
            "leader2": make_caller("leader2", nation, "leader"),
            "hcm-leader": make_caller("hcm-leader", province, "leader"),
            "hcm-leader2": make_caller("hcm-leader2", province, "leader"),
            "asgi-leader": make_caller("asgi-leader", province, "leader"),
        }
        load_shipped(owner=callers["leader"].user)
        self.users_file.write_text(json.dumps({name: c.token for name, c in callers.items()}))
        self.wait_replayed()
        return {"users": sorted(callers)}

    def routing(self) -> dict[str, Any]:
        from django.db import connections

        from dieuhanh.reports.models import Report

        out: dict[str, Any] = {"servers": {}}
        for alias in ("default", "replica"):
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
                out["servers"][alias] = list(cursor.fetchone())
            connections[alias].close()
        browser, token = self.browser("leader"), self.bearer("leader")
        for name, path in [
            ("room", "/room/"),
            ("room parts", "/room/parts"),
            ("room map", "/room/map.json"),
            ("unit page", "/units/VN-2025/79/"),
            ("units browse", "/units/?q=ben%20thanh"),
            ("inbox", "/inbox/"),
        ]:
            out[name] = self.page(name, browser, path)
        for name, path in [
            ("units api", "/api/v1/units?parent=VN-2025:79&page_size=20"),
            ("unit api", "/api/v1/units/VN-2025/79"),
            ("predecessors api", "/api/v1/units/VN-2025/79/predecessors"),
            ("analytics api", "/api/v1/analytics?dx=postal_revenue&pe=2021YTD08&ou=VN-2025:VN"),
            ("analytics events api", "/api/v1/analytics?dx=ev.checkin&pe=202108&ou=VN-2025:79"),
        ]:
            out[name] = self.page(name, token, path)
        form = {"definition": "ict_monthly", "period": "202108", "unit": "", "format": "md"}
        response, seen = self.request("report", browser, "post", "/reports/generate/", data=form)
        report = Report.objects.order_by("-pk").first()
        out["report"] = seen.summary(response, state=report and report.state)

        # Read-your-writes in one process: a token's writer, then a browser's.
        writer, other = self.bearer("hcm-leader"), self.bearer("leader2")
        out["task by token"], _ = self.new_task(writer, "task by token")
        out["token writer's unit api"] = self.page(
            "token writer's unit api", writer, "/api/v1/units/VN-2025/79"
        )
        out["other user's unit api"] = self.page("other user's unit api", other, "/api/v1/units/VN-2025/79")
        writer, other = self.browser("hcm-leader2"), self.browser("leader2")
        out["task by browser"], _ = self.new_task(writer, "task by browser")
        out["browser writer's unit page"] = self.page(
            "browser writer's unit page", writer, "/units/VN-2025/79/"
        )
        out["other user's unit page"] = self.page("other user's unit page", other, "/units/VN-2025/79/")

        # Around a service call, outside any request.
        from dieuhanh.replica import replica_reads
        from dieuhanh.units.models import Unit

        seen = Seen("service block", self.ports)
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(seen))
            with replica_reads(user=None):
                Unit.objects.filter(level=1).count()
        seen.finished = time.monotonic()
        out["service block"] = seen.summary(None)

        # The same through Django's ASGI handler (`dieuhanh serve` is ASGI): the middleware async.
        out.update(asyncio.run(self.asgi_round()))
        return out

    async def asgi_round(self) -> dict[str, Any]:
        from django.db.backends.signals import connection_created
        from django.test import AsyncClient

        from dieuhanh.accounts.models import User

        # The sync views run in asgiref's thread, on connections of their own: the recorder is put on
        # each as it connects.
        current: list[Seen] = []

        def forward(execute, sql, params, many, context):
            return (
                current[-1](execute, sql, params, many, context)
                if current
                else execute(sql, params, many, context)
            )

        def hook(sender, connection, **kwargs):
            if forward not in connection.execute_wrappers:
                connection.execute_wrappers.append(forward)

        connection_created.connect(hook)
        client = AsyncClient()
        await client.aforce_login(await User.objects.aget(username="asgi-leader"))
        out = {}
        for name, method, path, kw in [
            ("asgi unit page", "get", "/units/VN-2025/79/", {}),
            ("asgi task", "post", "/api/v1/tasks", {"content_type": "application/json", "data": {
                "title": TASK_TITLE.format("asgi"), "owner": "VN-2025:79"}}),
            ("asgi writer's unit page", "get", "/units/VN-2025/79/", {}),
        ]:  # fmt: skip
            current.append(Seen(name, self.ports))
            response = await getattr(client, method)(path, **kw)
            seen = current.pop()
            seen.finished = time.monotonic()
            out[name] = seen.summary(response, **{"pin cookie": bool(response.cookies.get("dieuhanh_pin"))})
        connection_created.disconnect(hook)
        return out

    def write_task(self, pause: bool = False) -> dict[str, Any]:
        if pause:
            self.fresh_commit()  # the next process's first measure of the lag starts from a recent replay
            self.replica_sql("SELECT pg_wal_replay_pause()")
        browser = self.browser("hcm-leader")
        seen, title = self.new_task(browser, "task by browser")
        assert seen["status"] == 201, seen
        token = self.bearer("hcm-leader")
        seen, _ = self.new_task(token, "task by token")
        assert seen["status"] == 201, seen
        cookies = {k: m.value for k, m in browser.cookies.items()}
        return {"title": title, "cookies": cookies}

    def read_task(self, title: str, cookies: dict[str, str]) -> dict[str, Any]:
        from django.test import Client

        writer = Client()
        for key, value in cookies.items():
            writer.cookies[key] = value
        response, seen = self.request("writer's unit page", writer, "get", "/units/VN-2025/79/")
        out = {
            "writer's unit page": seen.summary(response, **{"has task": title in response.content.decode()})
        }
        out["writer's unit api"] = self.page(
            "writer's unit api", self.bearer("hcm-leader"), "/api/v1/units/VN-2025/79"
        )
        other = self.browser("hcm-leader2")
        response, seen = self.request("other user's unit page", other, "get", "/units/VN-2025/79/")
        out["other user's unit page"] = seen.summary(
            response, **{"has task": title in response.content.decode()}
        )
        return out

    def lagging(self) -> dict[str, Any]:
        from dieuhanh.replica import CHECK_SECONDS, status

        out: dict[str, Any] = {}
        self.fresh_commit()
        time.sleep(3)  # longer than the lag allowed (2 s), nothing written
        (age,) = self.replica_sql(
            "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
        )
        out["idle"] = {"replay_age": age, "status": status()}
        self.replica_sql("SELECT pg_wal_replay_pause()")
        try:
            from dieuhanh.accounts.services import audit

            audit(None, "test.replica.lag")  # on the primary only, now
            time.sleep(2 + CHECK_SECONDS + 1)
            browser = self.browser("hcm-leader2")
            pages = [self.page(f"paused {i}", browser, "/units/VN-2025/79/") for i in range(3)]
            out["paused"] = {"status": status(), "pages": pages}
        finally:
            self.replica_sql("SELECT pg_wal_replay_resume()")
        self.wait_replayed()
        time.sleep(CHECK_SECONDS + 0.2)
        page = self.page("resumed", self.browser("hcm-leader2"), "/units/VN-2025/79/")
        out["resumed"] = {"status": status(), "page": page}
        return out

    def stopped(self) -> dict[str, Any]:
        from dieuhanh import replica

        # The healthy verdict of the first page outlives the stop, whatever the stop's time: the second
        # page meets a dead replica through the pool, not through a health check.
        replica.CHECK_SECONDS = 60.0
        browser = self.browser("hcm-leader2")
        out: dict[str, Any] = {"before": self.page("before", browser, "/units/VN-2025/79/")}
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.clusters["replica"], "stop"],
            check=True,
            capture_output=True,
        )
        out["just stopped"] = self.page("just stopped", browser, "/units/VN-2025/79/")
        out["after"] = [self.page(f"after {i}", browser, "/units/VN-2025/79/") for i in range(3)]
        out["status"] = replica.status()
        return out


def main(scenario: str, args: dict[str, Any]) -> None:
    runner = Scenario()
    with runner.stack:
        answer = getattr(runner, scenario.replace(" ", "_"))(**args)
    print("ANSWER " + json.dumps(answer, default=str))


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
