"""Live events across processes: two `dieuhanh serve` web processes and `dieuhanh worker ingest`, each
a process of its own on the real NATS server, and every change reaching the streams held by the others.

The processes share a database of their own (a SQLite file, or a PostgreSQL database made and dropped
here on the pass's server) and a live subject prefix of their own, so that nothing else on the broker
hears them or is heard. The test removes what it made: its processes, its database, its NATS stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from dieuhanh.warehouse.worker import Bus, publish_batch
from tests.factories import record

pytestmark = pytest.mark.django_db
DIEUHANH = str(Path(sys.executable).with_name("dieuhanh"))
PASSWORD = "mat-khau-thu-nghiem"
HEARD_WITHIN = 15.0  # generous: the test asserts delivery, bench/load.py measures its time


# What the deployment starts from, as `dieuhanh init` and `users create`, `token create` and `sources
# create` would make it (argv[1]: the users' password).
INIT = """
import json, sys
from dieuhanh.cli import init
init(demo=False)
from dieuhanh.accounts.services import create_token, create_user
from dieuhanh.units.services import get_unit
from dieuhanh.warehouse.services import create_source
tokens = {}
for name, unit, role in (("lanhdao", "VN-2025:VN", "leader"), ("benthanh", "VN-2025:26743", "operator")):
    user = create_user(actor=None, username=name, password=sys.argv[1], grants=[(get_unit(unit), role)])
    tokens[name] = create_token(actor=None, user=user, name="cli")[1]
tokens["xetnghiem"] = create_source(actor=None, name="xetnghiem", kinds=["test"], edition="VN-2025")[1]
print(json.dumps(tokens))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    """The processes of a small deployment, on this machine's loopback."""

    def __init__(self, home: Path, database_url: str, run_id: str):
        self.run_id = run_id
        self.bus = Bus(prefix=f"t{run_id}", stream=f"T{run_id}_EVENTS")
        self.env = os.environ | {
            "DIEUHANH_HOME": str(home),
            "DIEUHANH_DATABASE_URL": database_url,
            "DIEUHANH_LIVE": "nats",
            "DIEUHANH_LIVE_SUBJECT": f"t{run_id}.live",
            "DIEUHANH_LIVE_COALESCE_SECONDS": "0.2",
            "DIEUHANH_NATS_URL": settings.NATS_URL,
        }
        self.processes: list[subprocess.Popen] = []

    def init(self) -> dict[str, str]:
        """`dieuhanh init`, then the users, their tokens and the source, in that one process: each
        `dieuhanh` command of their own paid Django's start again (the commands are tested in
        tests/test_cli.py). The tokens by name, as JSON on the last line."""
        done = subprocess.run(
            [sys.executable, "-c", INIT, PASSWORD],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"init: {done.stdout}\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [DIEUHANH, *args], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.processes.append(process)
        return process

    def serve(self) -> str:
        port = _free_port()
        self.start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2):  # noqa: S310 - loopback
                    return base
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Stream:
    """A screen's event stream, read by a thread of its own into a queue of (event, data)."""

    def __init__(self, url: str, token: str):
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
        self.response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - loopback
        assert self.response.status == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.events: queue.Queue[tuple[str, dict]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        name = None
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: ") and name:
                    self.events.put((name, json.loads(line[len("data: ") :])))
                    name = None
        except (OSError, ValueError, AttributeError):
            return  # closed by the test (http.client drops its file: AttributeError)

    def next(self, name: str) -> dict:
        deadline = time.monotonic() + HEARD_WITHIN
        while (left := deadline - time.monotonic()) > 0:
            try:
                heard, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if heard == name:
                return data
        raise AssertionError(f"no {name!r} event within {HEARD_WITHIN} s")

    def close(self) -> None:
        self.response.close()


def _post(url: str, token: str, body: bytes, content_type: str = "application/x-ndjson") -> dict:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.load(response)


def _ndjson(records: list[dict]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """A database of the deployment's own, of the pass's kind."""
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'dieuhanh.sqlite3'}"
        return
    params = connection.get_connection_params()
    name = f"dieuhanh_live_{os.getpid()}"
    server = {k: v for k, v in params.items() if k in {"host", "port", "user", "password"}}
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    user = params.get("user") or "postgres"
    yield f"postgresql://{user}@{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}/{name}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _nats_publish(deployment: Deployment, body: bytes, token: str) -> None:
    nc = await nats.connect(settings.NATS_URL, connect_timeout=2, max_reconnect_attempts=1)
    try:
        await publish_batch(nc, "test", body, token, bus=deployment.bus)
    finally:
        await nc.close()


async def _remove_stream(deployment: Deployment) -> None:
    nc = await nats.connect(settings.NATS_URL, connect_timeout=2, max_reconnect_attempts=1)
    try:
        await nc.jetstream().delete_stream(deployment.bus.stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


def test_every_process_s_events_reach_the_streams_of_the_others(tmp_path, database_url):
    run_id = uuid.uuid4().hex[:8]
    deployment = Deployment(tmp_path, database_url, run_id)
    streams: list[Stream] = []
    try:
        tokens = deployment.init()
        leader, operator, source_token = tokens["lanhdao"], tokens["benthanh"], tokens["xetnghiem"]

        web = [deployment.serve(), deployment.serve()]
        worker = deployment.start(
            "worker", "ingest", "--prefix", deployment.bus.prefix, "--stream", deployment.bus.stream,
            "--durable", f"ingest-{run_id}",
        )  # fmt: skip
        # Each web process holds the national room and the ward's inbox of one screen.
        rooms = [Stream(f"{base}/room/stream", leader) for base in web]
        inboxes = [Stream(f"{base}/api/v1/inbox/stream", operator) for base in web]
        streams += rooms + inboxes

        # A batch taken by each web process reaches the rooms of both.
        for n, base in enumerate(web):
            records = [record("test", n * 10 + i, commune="26743") for i in range(3)]
            summary = _post(f"{base}/api/v1/events/test", source_token, _ndjson(records))
            assert summary["accepted"] == 3, summary
            for room in rooms:
                assert room.next("figures")["kind"] == "test"

        # A batch sent over NATS JetStream, taken by the worker process, reaches both too.
        records = [record("test", 100 + i, commune="26740") for i in range(4)]
        deadline = time.monotonic() + 30
        while True:  # the worker makes its stream when it starts
            try:
                asyncio.run(_nats_publish(deployment, _ndjson(records), source_token))
                break
            except nats.js.errors.NoStreamResponseError:
                assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
                assert time.monotonic() < deadline, "the worker never made its stream"
                time.sleep(0.3)
        for room in rooms:
            heard = room.next("figures")
            assert heard["kind"] == "test"

        # A directive issued through one process reaches the ward's inbox on both.
        directive = {
            "title": "Báo cáo số mẫu xét nghiệm",
            "priority": "urgent",
            "targets": {"units": ["VN-2025:26743"]},
            "deadline": "2030-12-01T17:00:00+07:00",
        }
        issued = _post(
            f"{web[1]}/api/v1/directives", leader, json.dumps(directive).encode(), "application/json"
        )
        deliveries = [inbox.next("delivery") for inbox in inboxes]
        assert {d["directive"] for d in deliveries} == {issued["id"]}
        # ... and its acknowledgement, made through the other, reaches the rooms of both.
        acknowledged = _post(f"{web[0]}/api/v1/deliveries/{deliveries[0]['id']}/ack", operator, b"")
        assert acknowledged["state"] == "acknowledged", acknowledged
        for room in rooms:
            assert room.next("directive")["directive"] == issued["id"]
    finally:
        for stream in streams:
            stream.close()
        deployment.stop()
        asyncio.run(_remove_stream(deployment))
