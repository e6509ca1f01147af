"""`dieuhanh worker ingest`: source platforms' batches from NATS JetStream into the warehouse.

A platform publishes one batch per message on `dieuhanh.events.<kind>`:

- the body is NDJSON, or CSV when the `Content-Type` header says `text/csv` (as over HTTP);
- the `Authorization: Bearer <token>` header carries the platform's API token, the same token and the
  same checks as `POST /api/v1/events/{kind}`;
- an optional `Reply-To` header names a subject for the summary. JetStream keeps no reply subject of
  the publisher (a delivered message's reply is its acknowledgement subject), so the summary goes to
  `Reply-To` when given, else to `dieuhanh.ingested.<kind>`.

The stream `DIEUHANH_EVENTS` keeps each message until the durable consumer `dieuhanh-ingest`
acknowledges it, and the worker acknowledges only after the batch is committed. A crash before the
acknowledgement makes the server deliver the message again; the warehouse then finds every record
already stored under its (source, source_event_id) and counts it as a duplicate. So delivery is at
least once and the effect exactly once: a crash loses nothing and re-delivery counts nothing twice.

A message that can never succeed (unknown kind, bad token, a kind the source may not send, an
oversized body) is terminated and reported, not retried; a database failure is retried with a delay.
A bad line (not JSON, not UTF-8, a bad value) is not the message's failure: it is rejected by its
line number in the summary, as over HTTP, and the message's other lines are stored, all in one
transaction.

On a cluster (DIEUHANH_NATS_URL naming several servers, DIEUHANH_NATS_REPLICAS=3) the stream keeps
each batch on three nodes, so the loss of one node, even the stream's leader, loses nothing. The worker
rides out elections and restarts: it reconnects forever, waits while no server answers, retries a
fetch that fails, and confirms each acknowledgement (retrying it across an election); an
acknowledgement that never arrives means a re-delivery, counted as duplicates. SIGTERM stops it within
seconds even when no server answers: every wait on NATS at the end is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils.translation import gettext_lazy as _
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from dieuhanh.accounts.services import user_for_token
from dieuhanh.warehouse import services
from dieuhanh.warehouse.ingest import Summary, body_records
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.models import Source

log = logging.getLogger(__name__)

DURABLE = "dieuhanh-ingest"
ACK_WAIT = 30.0  # seconds a delivered message may stay unacknowledged before the server re-delivers it
# Large but finite: a message failing for weeks ends up in the server's MAX_DELIVERIES advisory
# instead of cycling forever.
MAX_DELIVER = 10_000
MAX_RETRY_DELAY = 60.0
FETCH_WAIT = 1.0  # seconds an idle fetch waits: also how soon a stop request is noticed when idle
RETRY_WAIT = 1.0  # seconds between attempts while the cluster elects a leader or no server answers
ACK_TIMEOUT = 2.0  # seconds one confirmed acknowledgement waits for the server's answer
ACK_TRIES_FOR = 15.0  # seconds an acknowledgement is retried (an election) before re-delivery is left to do
CLOSE_WAIT = 2  # seconds the last flush and the close may take when stopping (no server may answer)

T = TypeVar("T")


@dataclass(frozen=True)
class Bus:
    """The subjects and stream the worker uses; tests give each run its own prefix and stream."""

    prefix: str = "dieuhanh"
    stream: str = "DIEUHANH_EVENTS"

    def events(self, kind: str = "*") -> str:
        return f"{self.prefix}.events.{kind}"

    def ingested(self, kind: str) -> str:
        return f"{self.prefix}.ingested.{kind}"


DEFAULT_BUS = Bus()


class Refused(Exception):
    """A message that can never succeed: it is terminated and reported, never retried."""


# The batch itself: plain Django, run in the worker's database thread.


def ingest_message(kind: str, body: bytes, headers: Mapping[str, str]) -> tuple[Source, Summary]:
    """One message's batch, with the checks of POST /api/v1/events/{kind}; Refused when hopeless."""
    if kind not in KINDS:
        raise Refused(services.UNKNOWN_KIND % {"kind": kind, "kinds": ", ".join(KINDS)})
    if len(body) > settings.MAX_BATCH_BYTES:
        raise Refused(
            _("body of %(size)s bytes is over the limit of %(limit)s; split it")
            % {"size": len(body), "limit": settings.MAX_BATCH_BYTES}
        )
    source = _source_for(_bearer(headers))
    try:
        # One transaction, as over HTTP: a retried message never finds half of itself stored.
        records = body_records(body, header(headers, "Content-Type"))
        return source, services.ingest(source, kind, records, atomic=True)
    except services.WarehouseError as e:
        raise Refused(str(e)) from None


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value by case-insensitive name (NATS keeps header names as the publisher wrote them)."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _sep, token = header(headers, "Authorization").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(_("missing header 'Authorization: Bearer <token>'"))
    return token.strip()


def _source_for(token: str) -> Source:
    user = user_for_token(token)
    if user is None:
        raise Refused(_("unknown, revoked or inactive token"))
    source = services.source_of(user)
    if source is None:
        raise Refused(services.ONLY_SOURCES)
    return source


def _in_fresh_connection(work: Callable[[], T]) -> T:
    # As Django does around each request: drop a connection that broke or outlived CONN_MAX_AGE, so that
    # a database restart costs one failed batch (retried), not a worker stuck on a dead connection.
    close_old_connections()
    try:
        return work()
    finally:
        close_old_connections()


def servers_of(url: str | Sequence[str] | None) -> list[str]:
    """The server URLs of `url`: a list, or one string of comma-separated URLs; settings' when None."""
    if url is None:
        return list(settings.NATS_SERVERS)
    urls = url.split(",") if isinstance(url, str) else url
    return [u.strip() for u in urls if u.strip()]


def _transient(e: Exception) -> bool:
    """A NATS failure that passes by itself: no answer yet, no leader yet, a reconnect under way."""
    return isinstance(
        e,
        TimeoutError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.OutboundBufferLimitError
        | nats.js.errors.NoStreamResponseError
        | nats.js.errors.ServiceUnavailableError,
    )


def retry_delay(deliveries: int) -> float:
    """Seconds before a failed message comes back: 1, 2, 4, … up to a minute."""
    return float(min(2 ** max(deliveries - 1, 0), MAX_RETRY_DELAY))


# The NATS side.


async def ensure_stream(js: JetStreamContext, bus: Bus = DEFAULT_BUS, replicas: int | None = None) -> None:
    """Create the stream, or give an existing one our subjects and replicas; idempotent, for several workers.

    Work-queue retention keeps a message until it is acknowledged and drops it then: nothing unacked is
    ever aged out, and the disk holds only the backlog. `replicas` (default DIEUHANH_NATS_REPLICAS) is
    how many nodes of a cluster keep each message: 3 on a 3-node cluster.
    """
    replicas = settings.NATS_REPLICAS if replicas is None else replicas
    subjects = [bus.events()]
    try:
        info = await js.stream_info(bus.stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=bus.stream,
                description="batches of events from source platforms, kept until ingested",
                subjects=subjects,
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                num_replicas=replicas,
            )
        )
        log.info("created stream %s on %s with %d replica(s)", bus.stream, subjects[0], replicas)
        return
    # An existing stream keeps its operator's limits; only the subjects and the replicas are ours to set.
    # The server moves a stream to more or fewer replicas in place (the stored batches are copied).
    if info.config.subjects != subjects or (info.config.num_replicas or 1) != replicas:
        await js.update_stream(info.config.evolve(subjects=subjects, num_replicas=replicas))
        if (info.config.num_replicas or 1) != replicas:
            log.info("stream %s: %d replica(s), was %d", bus.stream, replicas, info.config.num_replicas or 1)
    if info.config.retention != RetentionPolicy.WORK_QUEUE:
        log.warning(
            "stream %s has retention %s: acknowledged batches stay stored", bus.stream, info.config.retention
        )


async def ensure_consumer(js: JetStreamContext, bus: Bus, durable: str, ack_wait: float) -> None:
    """Create the durable pull consumer, or update its settings (the server allows it in place)."""
    await js.add_consumer(
        bus.stream,
        ConsumerConfig(
            name=durable,
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=MAX_DELIVER,
            filter_subject=bus.events(),
        ),
    )


async def publish_batch(
    nc_or_js: NATS | JetStreamContext,
    kind: str,
    body: bytes,
    token: str,
    *,
    content_type: str = "application/x-ndjson",
    reply_to: str | None = None,
    msg_id: str | None = None,
    bus: Bus = DEFAULT_BUS,
) -> PubAck:
    """Send one batch as a source platform does; returns the stream's receipt (its sequence number).

    The receipt means the batch is stored, not yet ingested: the summary follows on `reply_to`, or on
    `dieuhanh.ingested.<kind>`. The stream must exist (the worker creates it when it starts).

    `msg_id` names the batch (`Nats-Msg-Id`): a platform that sends it again with the same id because no
    receipt came (a cluster electing a leader, a lost connection) has it stored once, if the retry comes
    within the stream's duplicate window (two minutes by default). The receipt says `duplicate` then.
    """
    js = nc_or_js.jetstream() if isinstance(nc_or_js, NATS) else nc_or_js
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if reply_to:
        headers["Reply-To"] = reply_to
    if msg_id:
        headers["Nats-Msg-Id"] = msg_id
    return await js.publish(bus.events(kind), body, headers=headers)


@dataclass
class Worker:
    bus: Bus = DEFAULT_BUS
    durable: str = DURABLE
    batch: int = 10
    ack_wait: float = ACK_WAIT
    stop_after: float | None = None
    stop_when_drained: bool = False
    on_committed: Callable[[Msg], None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        # One thread for every database call: Django's ORM is synchronous and its connections belong to
        # the thread that opened them, so a single thread lets the worker close its connection on exit.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dieuhanh-ingest-db")
        self._nc: NATS | None = None
        self._closing = False

    async def serve(self, url: str | Sequence[str] | None = None) -> None:
        """Ingest until stopped; `url` is one server, several (a list or comma-separated), or settings'."""
        nc = self._nc = NATS()
        try:
            with self._stop_on_signals():
                sub = await self._unless_stopped(self._start(nc, servers_of(url)))
                if sub is not None:
                    await self._consume(nc, sub)
            # Flush, not drain: the acknowledgements and reports must reach the server before we close,
            # while draining the pull subscription would wait out its timeout for status messages
            # of the last fetch that no one reads. Bounded: no server may be answering.
            if nc.is_connected:
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    await nc.flush(timeout=CLOSE_WAIT)
        finally:
            await self._close_database()
            self._closing = True
            if not nc.is_closed:
                await _stop_reconnecting(nc)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(nc.close(), CLOSE_WAIT)

    async def _start(self, nc: NATS, servers: list[str]) -> JetStreamContext.PullSubscription:
        await nc.connect(
            servers=servers,
            name=f"dieuhanh worker {self.durable}",
            # A worker outlives NATS restarts: it keeps trying (a warning each time) rather than exiting.
            # This holds for the first connection too, so a worker started before NATS waits for it.
            max_reconnect_attempts=-1,
            error_cb=_log_nats_error,
            disconnected_cb=self._log_disconnected,
            reconnected_cb=_log_reconnected,
        )
        js = nc.jetstream()
        while True:
            try:
                await ensure_stream(js, self.bus)
                await ensure_consumer(js, self.bus, self.durable, self.ack_wait)
                sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.bus.stream)
            except Exception as e:
                if not _transient(e):
                    raise
                # A cluster electing its leaders answers nothing, or "unavailable", for a few seconds.
                log.warning("NATS: stream %s not ready (%s); trying again", self.bus.stream, _describe(e))
                await self._pause(RETRY_WAIT)
                continue
            log.info("ingesting %s as consumer %s on %s", self.bus.events(), self.durable, ", ".join(servers))
            return sub

    async def _unless_stopped(self, work: Awaitable[T]) -> T | None:
        """The work's result, or None (the work cancelled) if a stop is asked for first."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        return None if task.cancelled() else task.result()

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short by a stop request."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _consume(self, nc: NATS, sub: JetStreamContext.PullSubscription) -> None:
        deadline = None if self.stop_after is None else _now() + self.stop_after
        while not self._should_stop(deadline):
            if not nc.is_connected:
                # Reconnecting: a fetch now would only pile pull requests up in the client's buffer.
                await self._pause(_fetch_wait(deadline))
                continue
            try:
                messages = await sub.fetch(self.batch, timeout=_fetch_wait(deadline))
            except TimeoutError:
                messages = []
            except nats.errors.Error as e:  # an election or a lost connection: soon over
                log.warning("NATS: fetch failed (%s); trying again", _describe(e))
                await self._pause(RETRY_WAIT)
                continue
            for i, msg in enumerate(messages):
                if self._should_stop(deadline):
                    await _give_back(messages[i:])
                    return
                await self.handle(msg)
            if self.stop_when_drained and await self._drained(sub):
                return

    async def _drained(self, sub: JetStreamContext.PullSubscription) -> bool:
        """Nothing waiting and nothing delivered but unacknowledged (including messages waiting to retry)."""
        assert self._nc is not None
        try:
            await self._nc.flush()  # our acknowledgements reach the server before we ask it
            info = await sub.consumer_info()
        except (TimeoutError, nats.errors.Error):
            return False
        return info.num_pending == 0 and info.num_ack_pending == 0

    def _should_stop(self, deadline: float | None) -> bool:
        return self.stopping.is_set() or (deadline is not None and _now() >= deadline)

    async def handle(self, msg: Msg) -> None:
        """Ingest one message, then acknowledge, terminate or hand it back for a later retry."""
        kind = msg.subject.rpartition(".")[2]
        try:
            source, summary = await self._ingest_keeping_lease(msg, kind)
        except Refused as e:
            await self._tell(msg, "terminate", msg.term())
            log.warning("refused %s: %s (%s)", kind, e, _where(msg))
            await self._report(msg, kind, {"error": str(e)})
            return
        except DatabaseError as e:
            await self._retry_later(msg, kind, f"database error: {e}")
            return
        except Exception as e:  # a bug must not lose the batch: it stays in the stream, retried slowly
            log.exception("failed to ingest %s (%s)", kind, _where(msg))
            await self._retry_later(msg, kind, f"{type(e).__name__}: {e}")
            return
        # Deliberately outside the handlers above: a failure here is a crash between the commit and the
        # acknowledgement, and the server's re-delivery after ack_wait is what recovers from it.
        if self.on_committed is not None:
            self.on_committed(msg)
        await self._acknowledge(msg)
        log.info(
            "ingested %s from %s: %d accepted, %d duplicates, %d rejected (%s)",
            kind,
            source.name,
            summary.accepted,
            summary.duplicates,
            len(summary.rejected),
            _where(msg),
        )
        await self._report(msg, kind, {"source": source.name, **summary.as_dict()})

    async def _acknowledge(self, msg: Msg) -> None:
        """Acknowledge and wait for the server to confirm it, retrying while a cluster elects a leader.

        An acknowledgement lost with a failing node would cost a re-delivery after ack_wait (a batch of
        duplicates, correct but slow); one that never gets through leaves exactly that to happen.
        """
        give_up = _now() + ACK_TRIES_FOR
        while True:
            try:
                await msg.ack_sync(timeout=ACK_TIMEOUT)
                return
            except nats.errors.Error as e:
                if not _transient(e) or self.stopping.is_set() or _now() >= give_up:
                    log.warning(
                        "could not acknowledge (%s): the batch will come again and count as duplicates (%s)",
                        _describe(e),
                        _where(msg),
                    )
                    return
                await self._pause(min(RETRY_WAIT, max(give_up - _now(), 0)))

    async def _tell(self, msg: Msg, what: str, action: Awaitable[None]) -> None:
        """A terminate or a hand-back; failing (no connection), the server re-delivers after ack_wait."""
        try:
            await action
        except nats.errors.Error as e:
            log.warning("could not %s (%s): the batch will come again (%s)", what, _describe(e), _where(msg))

    async def _ingest_keeping_lease(self, msg: Msg, kind: str) -> tuple[Source, Summary]:
        headers = dict(msg.headers or {})
        work = asyncio.get_running_loop().run_in_executor(
            self._db, _in_fresh_connection, lambda: ingest_message(kind, msg.data, headers)
        )
        lease = asyncio.create_task(_keep_lease(msg, self.ack_wait))
        try:
            return await work
        finally:
            lease.cancel()

    async def _retry_later(self, msg: Msg, kind: str, reason: str) -> None:
        delay = retry_delay(msg.metadata.num_delivered)
        await self._tell(msg, "hand back", msg.nak(delay=delay))
        log.warning("will retry %s in %.0f s: %s (%s)", kind, delay, reason, _where(msg))

    async def _report(self, msg: Msg, kind: str, outcome: dict[str, Any]) -> None:
        """Tell the platform what became of its batch; the sequence is the one its publish receipt gave."""
        assert self._nc is not None
        subject = self._report_subject(msg, kind)
        report = {"kind": kind, "sequence": msg.metadata.sequence.stream, **outcome}
        try:
            await self._nc.publish(subject, json.dumps(report, ensure_ascii=False).encode())
        except nats.errors.Error as e:  # the batch is done: only its summary is lost
            log.warning("could not report to %s (%s): %s", subject, _describe(e), report)

    def _report_subject(self, msg: Msg, kind: str) -> str:
        # The worker publishes with its own NATS permissions, so a platform may only name an inbox or a
        # summary subject: never `$JS.API.…` (stream administration) nor the events it consumes.
        wanted = header(msg.headers or {}, "Reply-To").strip()
        allowed = (wanted.startswith(("_INBOX.", f"{self.bus.prefix}.ingested."))) and _plain_subject(wanted)
        if wanted and not allowed:
            log.warning(
                "ignored Reply-To %r: not an _INBOX.… nor a %s subject", wanted, self.bus.ingested("…")
            )
        return wanted if allowed else self.bus.ingested(kind)

    async def _log_disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS: disconnected, reconnecting")

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: finish the message in hand, then stop. A second signal acts as usual."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; an embedding caller stops us by stop_after
            return
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def stop(signum: int) -> None:
            log.warning("%s: stopping after the message in hand", signal.Signals(signum).name)
            self.stopping.set()
            for s in signals:
                loop.remove_signal_handler(s)

        for s in signals:
            loop.add_signal_handler(s, stop, s)
        try:
            yield
        finally:
            for s in signals:
                loop.remove_signal_handler(s)

    async def _close_database(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.get_running_loop().run_in_executor(self._db, connections.close_all)
        self._db.shutdown(wait=True)


async def _keep_lease(msg: Msg, ack_wait: float) -> None:
    """Tell the server, while a big batch is still being written, not to re-deliver it yet."""
    while True:
        await asyncio.sleep(ack_wait / 2)
        try:
            await msg.in_progress()
        except nats.errors.Error:  # connection lost: the server re-delivers, the dedupe absorbs it
            return


async def _give_back(messages: list[Msg]) -> None:
    """Fetched but not started when asked to stop: re-delivered at once instead of after ack_wait."""
    for msg in messages:
        with contextlib.suppress(nats.errors.Error):  # lost: re-delivered after ack_wait instead
            await msg.nak()


def _plain_subject(subject: str) -> bool:
    """No wildcards, no whitespace, no empty token."""
    return all(token and token not in ("*", ">") for token in subject.split(".")) and not any(
        c.isspace() for c in subject
    )


def _fetch_wait(deadline: float | None) -> float:
    return FETCH_WAIT if deadline is None else max(0.05, min(FETCH_WAIT, deadline - _now()))


def _now() -> float:
    return asyncio.get_running_loop().time()


def _where(msg: Msg) -> str:
    meta = msg.metadata
    return f"sequence {meta.sequence.stream}, delivery {meta.num_delivered}"


def _describe(e: Exception) -> str:
    return str(e) or type(e).__name__


async def _stop_reconnecting(nc: NATS) -> None:
    """End the client's reconnect loop, if one runs, before closing the client, and read how it ended.

    nats-py (2.16, `Client._attempt_reconnect`) keeps one `_reconnection_task_future` on the client for
    whichever reconnect loop runs. When a loop's fresh connection fails in turn (a cluster losing its
    nodes one after another), the client cancels that loop and starts another, which puts a new future
    there; the cancelled loop, ending, settles the new one. On close the new loop is cancelled and
    settles it again: its task dies of InvalidStateError, which nobody awaits, and asyncio prints the
    traceback when the task is collected. Ending the loop here, and reading its end ourselves, keeps
    that one library error out of the log; any other error of the loop is still logged, as a warning."""
    task = getattr(nc, "_reconnection_task", None)  # the client has no public handle on the loop
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=CLOSE_WAIT)
    if not task.done() or task.cancelled():
        return
    error = task.exception()  # read: asyncio no longer reports it as never retrieved
    if error is not None and not isinstance(error, asyncio.InvalidStateError):
        log.warning("NATS: the reconnect loop ended with %s", _describe(error))


async def _log_nats_error(e: Exception) -> None:
    log.warning("NATS: %s", _describe(e))


async def _log_reconnected() -> None:
    log.warning("NATS: reconnected")


def run(
    *,
    url: str | Sequence[str] | None = None,
    durable: str = DURABLE,
    batch: int = 10,
    stop_after: float | None = None,
    on_committed: Callable[[Msg], None] | None = None,
    ack_wait: float = ACK_WAIT,
    bus: Bus = DEFAULT_BUS,
    stop_when_drained: bool = False,
) -> None:
    """Ingest batches from NATS until SIGINT/SIGTERM, after `stop_after` seconds, or once drained (tests).

    `on_committed(msg)` runs after a batch is committed and before it is acknowledged; an exception from
    it escapes `run` like a crash would (the message stays unacknowledged and the server re-delivers it).
    Django must be set up by the caller.
    """
    worker = Worker(
        bus=bus,
        durable=durable,
        batch=batch,
        ack_wait=ack_wait,
        stop_after=stop_after,
        stop_when_drained=stop_when_drained,
        on_committed=on_committed,
    )
    asyncio.run(worker.serve(url or None))
