"""NATS JetStream as a 3-node cluster, R=3: the ingest worker loses nothing when a node dies.

Each test starts its own cluster of Debian's nats-server (tests/natscluster.py: free loopback ports, a
store per node, removed afterwards) and runs the real `dieuhanh worker ingest` in a subprocess, with
DIEUHANH_NATS_URL naming the three nodes and DIEUHANH_NATS_REPLICAS=3, on the test's own database: the
PostgreSQL test database, or on SQLite a file (the in-memory test database is copied out to a file for
the worker and back when it has stopped). Without nats-server the tests fail
(as the other NATS tests do: never a skip).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nats
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from dieuhanh.warehouse import worker
from dieuhanh.warehouse.models import CheckIn, HealthDeclaration, Rollup
from tests.factories import record
from tests.natscluster import NatsCluster, Node, cluster_of

# The worker is another process: it sees only committed rows, and the test sees only what it commits.
pytestmark = pytest.mark.django_db(transaction=True)

BUS = worker.DEFAULT_BUS  # the cluster is the test's own: the worker's default stream and subjects
WORKER_NAME = f"dieuhanh worker {worker.DURABLE}"  # the worker's NATS connection name
REPORTS = "TEST_REPORTS"  # a stream the test reads the worker's summaries from
BATCHES, PER_BATCH = 100, 1000
# Seconds a worker may take to stop on SIGTERM. It takes one or two (a pause, the bounded close of its
# NATS connection, the live broker's bounded flush); a worker waiting on NATS would take ten or forever.
STOP_WITHIN = 8.0
# Seconds a batch may take to be ingested once published: a delivery lost with a node or a connection
# comes back after the consumer's ack_wait, and an election may cost that once more.
SETTLE = 2 * worker.ACK_WAIT + 30


# The worker's database: the test's, reachable from another process.


@contextlib.contextmanager
def database_for_a_process(directory: Path) -> Iterator[dict[str, str]]:
    """The environment that points a subprocess at the test database, for the duration of the block.

    PostgreSQL's test database and a file SQLite test database (DIEUHANH_TEST_SQLITE_NAME) are shared as
    they are. The default in-memory SQLite test database is copied to a file for the block and the file
    copied back at its end, so that the test reads what the worker wrote; the block must end after the
    worker has stopped.
    """
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
        where = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
        yield {"DIEUHANH_DATABASE_URL": f"postgresql://{credentials}@{where}/{quote(db['NAME'])}"}
        return
    assert connection.vendor == "sqlite", connection.vendor
    if not connection.is_in_memory_db():  # type: ignore[attr-defined]  # SQLite only
        yield {"DIEUHANH_DATABASE_URL": f"sqlite:///{db['NAME']}"}
        return
    file = directory / "worker.sqlite3"
    connection.ensure_connection()
    with contextlib.closing(sqlite3.connect(file)) as copy:
        connection.connection.backup(copy)
    try:
        yield {"DIEUHANH_DATABASE_URL": f"sqlite:///{file}"}
        with contextlib.closing(sqlite3.connect(file)) as copy:
            copy.backup(connection.connection)
    finally:
        for path in directory.glob(f"{file.name}*"):  # with its -wal and -shm
            path.unlink()


# The worker process.


@dataclass
class IngestWorker:
    process: subprocess.Popen[bytes]
    output: Path

    def log(self, lines: int = 40) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM, as systemd or Kubernetes stops it: the exit code and the seconds it took (None: hung)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started


@dataclass
class Workers:
    """Starts `dieuhanh worker ingest` processes; kills the ones still running when the test ends."""

    directory: Path
    started: list[IngestWorker] = field(default_factory=list)

    def start(self, cluster: NatsCluster, database: dict[str, str]) -> IngestWorker:
        command = shutil.which("dieuhanh", path=str(Path(sys.executable).parent)) or shutil.which("dieuhanh")
        assert command, "the dieuhanh command is not installed (pip install -e .)"
        env = os.environ | database
        env |= {
            "DIEUHANH_HOME": str(settings.HOME),  # the test's keys: tokens, pseudonyms, the vault
            "DIEUHANH_NATS_URL": cluster.url,
            "DIEUHANH_NATS_REPLICAS": "3",
            "PYTHONUNBUFFERED": "1",
        }
        output = self.directory / f"worker-{len(self.started) + 1}.log"
        with output.open("wb") as out:
            process = subprocess.Popen(
                [command, "worker", "ingest"], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.started.append(IngestWorker(process, output))
        return self.started[-1]

    def kill_all(self) -> None:
        for w in self.started:
            if w.running():
                w.process.kill()
                w.process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path) -> Iterator[NatsCluster]:
    with cluster_of(tmp_path / "nats") as started:
        yield started


@pytest.fixture
def workers(tmp_path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


# The test's side of NATS: a platform publishing, and reading what the worker reports.


def checkin_batch(n: int) -> bytes:
    """Batch n: PER_BATCH check-ins numbered from n * PER_BATCH, each its own source_event_id."""
    first = n * PER_BATCH
    return "\n".join(json.dumps(record("checkin", first + i)) for i in range(PER_BATCH)).encode()


def health_batch(name: str, size: int = 50) -> bytes:
    records = (record("health", i, source_event_id=f"health-{name}-{i}") for i in range(size))
    return "\n".join(json.dumps(r) for r in records).encode()


async def connect(cluster: NatsCluster) -> NATS:
    """The test's client: reconnects for as long as the test runs, as a platform's would."""
    return await cluster.connect(max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def until(
    what: str,
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    ingest: IngestWorker,
    js: JetStreamContext | None = None,
) -> None:
    """Until `check()` holds; fails after `timeout` seconds, or at once when the worker has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not ingest.running():
            pytest.fail(f"the worker exited ({ingest.process.returncode}) before {what}:\n{ingest.log()}")
        try:
            if await check():
                return
        except (TimeoutError, nats.errors.Error):
            pass  # an election under way: ask again
        await asyncio.sleep(0.2)
    state = await state_of(js) if js else ""
    pytest.fail(f"not {what} after {timeout:.0f} s{state}; the worker's log ends:\n{ingest.log()}")


async def state_of(js: JetStreamContext) -> str:
    try:
        stream = await js.stream_info(BUS.stream)
        consumer = await js.consumer_info(BUS.stream, worker.DURABLE)
    except (TimeoutError, nats.errors.Error) as e:
        return f" (no stream or consumer info: {e!r})"
    return (
        f" (stream {stream.state}, consumer: pending {consumer.num_pending},"
        f" in hand {consumer.num_ack_pending}, delivered {consumer.delivered}, acked {consumer.ack_floor})"
    )


async def publish(js: JetStreamContext, kind: str, body: bytes, token: str, msg_id: str) -> int:
    """Publish until the cluster gives a receipt, as a platform does; the same id each time stores it once."""
    deadline = time.monotonic() + 60
    while True:
        try:
            ack = await worker.publish_batch(js, kind, body, token, msg_id=msg_id)
            return ack.seq
        except (
            TimeoutError,
            nats.errors.NoRespondersError,
            nats.js.errors.NoStreamResponseError,
            nats.js.errors.ServiceUnavailableError,
        ):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def create_reports_stream(nc: NATS) -> None:
    await nc.jetstream().add_stream(
        StreamConfig(name=REPORTS, subjects=[f"{BUS.prefix}.ingested.>"], num_replicas=3)
    )


async def read_reports(nc: NATS) -> list[dict[str, Any]]:
    js = nc.jetstream(timeout=2)
    last = (await js.stream_info(REPORTS)).state.last_seq
    return [json.loads((await js.get_msg(REPORTS, seq)).data or b"") for seq in range(1, last + 1)]


async def reports_once_stored(nc: NATS, accepted: int, timeout: float = 5) -> list[dict[str, Any]]:
    """The reports, once they account for `accepted` events or after `timeout` seconds: the stream
    stores a report a moment after the worker sent it."""
    deadline = time.monotonic() + timeout
    while True:
        reports = await read_reports(nc)
        if sum(r.get("accepted", 0) for r in reports) >= accepted or time.monotonic() > deadline:
            return reports
        await asyncio.sleep(0.2)


async def settled(js: JetStreamContext, batches: int) -> bool:
    """The consumer has acknowledged the first `batches` batches, and nothing waits or is in hand.

    The consumer's view, not the stream's message count: after every node is killed at once, nats-server
    may find acknowledged batches back in a work-queue stream's files (their deletion was not yet on
    disk), while the consumer, whose acknowledgements were, never delivers them again."""
    consumer = await js.consumer_info(BUS.stream, worker.DURABLE)
    return consumer.ack_floor.stream_seq >= batches and (consumer.num_pending, consumer.num_ack_pending) == (
        0,
        0,
    )


async def stored(js: JetStreamContext) -> int:
    """How many batches the stream ever stored (work-queue retention drops them once acknowledged)."""
    return (await js.stream_info(BUS.stream)).state.last_seq


async def worker_ready(js: JetStreamContext) -> bool:
    await js.consumer_info(BUS.stream, worker.DURABLE)  # the worker made the stream and its consumer
    return True


async def acknowledged(js: JetStreamContext, batches: int) -> bool:
    consumer = await js.consumer_info(BUS.stream, worker.DURABLE)
    return consumer.ack_floor.stream_seq >= batches


async def ingested(js: JetStreamContext, ingest: IngestWorker, sequence: int) -> bool:
    """Batch `sequence` is ingested: the worker says so, and its consumer has nothing waiting or in hand."""
    return f"(sequence {sequence}, delivery" in ingest.log(1000) and await settled(js, sequence)


async def replicas(js: JetStreamContext, n: int) -> bool:
    """The stream is kept by n nodes, every follower caught up."""
    stream = await js.stream_info(BUS.stream)
    followers = (stream.cluster.replicas or []) if stream.cluster else []
    return stream.config.num_replicas == n and len(followers) == n - 1 and all(f.current for f in followers)


async def said(ingest: IngestWorker, text: str, times: int = 1) -> bool:
    return ingest.log(1000).count(text) >= times


def rollup_total(kind: str) -> int:
    return sum(Rollup.objects.filter(kind=kind).values_list("count", flat=True))


def test_killing_the_stream_leader_during_100_000_events_loses_none_and_doubles_none(
    platform, venues, cluster, workers, tmp_path
):
    bodies = [checkin_batch(n) for n in range(BATCHES)]
    cluster.run(create_reports_stream)
    killed: list[Node] = []

    async def send_while_killing_the_leader(ingest: IngestWorker) -> None:
        nc = await connect(cluster)
        try:
            js = nc.jetstream(timeout=2)
            await until("ready", lambda: worker_ready(js), 60, ingest)
            stream = await js.stream_info(BUS.stream)
            assert stream.config.num_replicas == 3 and stream.cluster is not None
            assert len(stream.cluster.replicas or []) == 2  # a leader and two followers: every node
            # The node to kill will lead the stream. The worker's own connection and the reports'
            # stream are kept off it, so that every summary (core NATS: at most once) can be counted;
            # the next test takes the worker's own node away. Arranged before anything is sent: a
            # leader stepping down is an election too.
            (on,) = cluster.client_nodes(WORKER_NAME)
            leader = await cluster.move_leader(nc, BUS.stream, where=lambda node: node is not on)
            await cluster.move_leader(nc, BUS.stream, worker.DURABLE, where=lambda node: node is leader)
            await cluster.move_leader(nc, REPORTS, where=lambda node: node is not leader)
            for n, body in enumerate(bodies):
                if n == BATCHES // 2:
                    # Mid-way: the worker busy with the first half's backlog, the second half unsent.
                    await until("ingesting", lambda: acknowledged(js, 10), 60, ingest)
                    assert await cluster.leader_of(nc, BUS.stream) is leader
                    assert await cluster.leader_of(nc, BUS.stream, worker.DURABLE) is leader
                    cluster.kill(leader)
                    killed.append(leader)
                assert await publish(js, "checkin", body, platform.token, msg_id=f"checkin-batch-{n}") > 0
            await until("all ingested", lambda: settled(js, BATCHES), 60 + SETTLE, ingest, js)
            assert await stored(js) == BATCHES  # each batch stored once, its retries after the kill too
            assert (await js.stream_info(BUS.stream)).state.messages == 0  # and removed once ingested
        finally:
            await nc.close()

    with database_for_a_process(tmp_path) as database:
        ingest = workers.start(cluster, database)
        asyncio.run(send_while_killing_the_leader(ingest))
        assert ingest.running(), ingest.log()  # it rode the election out
        code, _ = ingest.terminate()
    assert code == 0, ingest.log()

    assert len(killed) == 1
    # 0 lost, 0 doubled: every event once, in the rows and in the figures.
    assert CheckIn.objects.count() == BATCHES * PER_BATCH
    assert CheckIn.objects.values("source_event_id").distinct().count() == BATCHES * PER_BATCH
    assert not CheckIn.objects.values("source_event_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(CheckIn.objects.values_list("source_event_id", flat=True)) == {
        f"checkin-{i}" for i in range(BATCHES * PER_BATCH)
    }
    assert rollup_total("checkin") == BATCHES * PER_BATCH

    # The summaries agree: each batch's events accepted once, in one delivery; a batch delivered again
    # (its acknowledgement lost with the leader) is reported all duplicates.
    reports = cluster.run(lambda nc: reports_once_stored(nc, BATCHES * PER_BATCH))
    assert {(r["kind"], r["source"], len(r["rejected"])) for r in reports} == {("checkin", "ncovi", 0)}
    assert all(r["accepted"] + r["duplicates"] == PER_BATCH for r in reports), reports
    accepted_in = sorted(r["sequence"] for r in reports if r["accepted"])
    assert accepted_in == list(range(1, BATCHES + 1)), ingest.log(200)  # each batch once, all of it
    assert sum(r["accepted"] for r in reports) == BATCHES * PER_BATCH


def test_the_worker_rides_out_a_restart_of_its_node_then_of_every_node(
    platform, venues, cluster, workers, tmp_path
):
    async def send_across_restarts(ingest: IngestWorker) -> None:
        nc = await connect(cluster)
        try:
            js = nc.jetstream(timeout=2)
            await until("ready", lambda: worker_ready(js), 60, ingest)
            await until("on three nodes", lambda: replicas(js, 3), 30, ingest)  # it was on one
            await publish(js, "health", health_batch("before"), platform.token, msg_id="before")
            await until("ingested", lambda: ingested(js, ingest, 1), SETTLE, ingest, js)

            (on,) = cluster.client_nodes(WORKER_NAME)
            cluster.restart(on)  # its own node, stopped and started again (an upgrade)
            await publish(js, "health", health_batch("node"), platform.token, msg_id="node")
            await until(
                "ingested after the node's restart", lambda: ingested(js, ingest, 2), SETTLE, ingest, js
            )

            for node in cluster.nodes:  # every node at once, without warning (a power cut)…
                cluster.kill(node)
            await until("disconnected", lambda: said(ingest, "NATS: disconnected", 2), 30, ingest)
            assert ingest.running(), ingest.log()
            cluster.start()  # …and back, on their stores
            await publish(js, "health", health_batch("cluster"), platform.token, msg_id="cluster")
            await until(
                "ingested after the cluster's restart", lambda: ingested(js, ingest, 3), SETTLE, ingest, js
            )
            assert await stored(js) == 3
        finally:
            await nc.close()

    # The stream as a single server left it: the worker gives it DIEUHANH_NATS_REPLICAS, 3.
    cluster.run(lambda nc: worker.ensure_stream(nc.jetstream(), BUS, replicas=1))
    with database_for_a_process(tmp_path) as database:
        ingest = workers.start(cluster, database)
        asyncio.run(send_across_restarts(ingest))
        assert ingest.running(), ingest.log()  # the same process throughout
        code, _ = ingest.terminate()
    assert code == 0, ingest.log()
    assert ingest.log(1000).count("NATS: reconnected") >= 2, ingest.log()  # cut off twice, came back
    names = set(HealthDeclaration.objects.values_list("source_event_id", flat=True))
    expected = {f"health-{batch}-{i}" for batch in ("before", "node", "cluster") for i in range(50)}
    assert names == expected, ingest.log()
    assert rollup_total("health") == 150


def test_sigterm_stops_the_worker_within_seconds_while_every_node_is_down(
    platform, venues, cluster, workers, tmp_path
):
    async def ingest_then_lose_every_node(ingest: IngestWorker) -> None:
        nc = await connect(cluster)
        try:
            js = nc.jetstream(timeout=2)
            await until("ready", lambda: worker_ready(js), 60, ingest)
            await publish(js, "health", health_batch("one"), platform.token, msg_id="one")
            await until(
                "ingested", lambda: ingested(js, ingest, 1), SETTLE, ingest, js
            )  # it used the database
        finally:
            await nc.close()
        for node in cluster.nodes:
            cluster.kill(node)
        await until("disconnected", lambda: said(ingest, "NATS: disconnected"), 30, ingest)

    with database_for_a_process(tmp_path) as database:
        ingest = workers.start(cluster, database)
        asyncio.run(ingest_then_lose_every_node(ingest))
        assert ingest.running(), ingest.log()
        code, seconds = ingest.terminate()
        # And one started while no node answers, waiting for NATS to come: SIGTERM stops it as well.
        waiting = workers.start(cluster, database)
        asyncio.run(until("trying to connect", lambda: said(waiting, "Connect call failed", 3), 60, waiting))
        waiting_code, waiting_seconds = waiting.terminate()

    assert (code, waiting_code) == (0, 0), ingest.log() + waiting.log()
    assert seconds < STOP_WITHIN and waiting_seconds < STOP_WITHIN, (seconds, waiting_seconds)
    assert "Traceback" not in ingest.log(1000) + waiting.log(1000)
    assert HealthDeclaration.objects.count() == 50
