"""Live events behind every live page (server-sent events), across every process of the platform.

One call publishes: `publish_on_commit(keys, name, data)`, made by the write verb itself (as Zulip's
`send_event_on_commit`), from any process (a web worker, `worker ingest`, `worker followup`, a report's
thread). Inside a transaction the event leaves when it commits, and never if it rolls back (or if the
savepoint it was published in does); outside one it leaves at once. It leaves once, for every process.
A publisher names the keys an event concerns; every screen listening for one of them gets it once.
Two kinds of key are in use:

- a unit's id (int): that unit's inbox (directives.live);
- `area_key(edition, path)`: everything inside that unit's subtree on that map (the command room).
  A change at a unit is published to `area_keys(edition, path)`, the keys of the unit and of every
  unit above it, so that the commune's, the province's and the nation's rooms all hear of it.

Beyond one process the events go through NATS core subjects (docs/live.md gives the scheme):

    dieuhanh.live.inbox.<unit id>                 an inbox's event
    dieuhanh.live.area.<EDITION>.<path tokens>    a room's event, on the subject of the deepest unit
                                                  above all the units it concerns (VN-2025.VN.79)

Each message carries its keys and an id; each web process subscribes once (`BUS.relay()`) and hands
the events to its own subscribers through the in-process `Hub`, which is only that relay. An event
published to several subjects reaches a subscriber once (the id). With no NATS answering at start
(the embedded default of `make demo` on a laptop) the events stay in the process, and the log says so
once: `DIEUHANH_LIVE=local` asks for that, `nats` insists on the broker.

It imports nothing of the project's apps, so that every layer may publish.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from os.path import commonprefix
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # events a slow client may fall behind by before its stream is closed
RECENT_IDS = 256  # event ids a subscription remembers, so that an event sent on two subjects counts once
CONNECT_WAIT = 2.0  # seconds `auto` waits for NATS at start before keeping events in the process
AREA = "area"
# Merged when a stream coalesces a burst of events of one name: summed, not listed.
SUMMED = frozenset({"communes", "deliveries"})

Key = Hashable


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]
    id: str = ""

    def encode(self) -> str:
        return f"event: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Subscription:
    units: frozenset[Key]  # the keys listened for (named units: the inbox's were the first)
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS))

    def offer(self, event: Event) -> None:
        """Runs on the subscriber's loop. A client that cannot keep up is dropped, to reconnect afresh."""
        if event.id:
            if event.id in self.recent:
                return
            self.recent.append(event.id)
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    """This process's subscribers by key. Thread-safe: the relay and local publishers run in threads,
    each stream on its server's loop."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        # Bumped by every event concerning a key: a cache of an area's figures is good while its
        # keys' versions stand (commandroom.room), whichever process made the change.
        self._versions: defaultdict[Key, int] = defaultdict(int)

    def subscribe(self, keys: Iterable[Key]) -> Subscription:
        """Call on the loop that will read the subscription."""
        subscription = Subscription(frozenset(keys), asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def listening(self) -> set[Key]:
        """The keys this process's screens listen for."""
        with self._lock:
            return set().union(*(s.units for s in self._subscriptions))

    def version(self, keys: Iterable[Key]) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._versions[key] for key in keys)

    def deliver(self, keys: Iterable[Key], name: str, data: dict[str, Any], event_id: str = "") -> int:
        """Hand the event to this process's subscribers of one of the keys; returns how many got it.

        Not a way to publish: publishers call `publish_on_commit`, which reaches every process and
        ends here in each (through the relay, or at once without a broker)."""
        wanted, event = set(keys), Event(name, data, event_id)
        with self._lock:
            for key in wanted:
                self._versions[key] += 1
            targets = [s for s in self._subscriptions if s.units & wanted]
        for subscription in targets:
            try:
                subscription.loop.call_soon_threadsafe(subscription.offer, event)
            except RuntimeError:  # its loop is closed: the client is gone
                self.unsubscribe(subscription)
        return len(targets)

    async def stream(
        self, keys: Iterable[Key], heartbeat: float, coalesce: float = 0
    ) -> AsyncGenerator[str, None]:
        """The text/event-stream body for these keys, with a keep-alive comment every `heartbeat` s.

        With `coalesce`, a burst costs the screen one message per name every `coalesce` seconds: an
        event whose name was not sent within the window goes at once, those behind it wait for their
        name's window and are merged (`merge`). Names have windows of their own, so that new figures
        never wait behind a flood of acknowledgements. It holds no thread and no database connection
        while it waits."""
        BUS.relay()
        # Subscribed here, not in the view: this is the loop that reads the stream.
        subscription = self.subscribe(keys)
        loop = asyncio.get_running_loop()
        sent_at: dict[str, float] = {}
        held: list[Event] = []
        try:
            yield "retry: 5000\n: connected\n\n"
            while not subscription.overflowed:
                due = min((sent_at[e.name] + coalesce for e in held), default=None)
                wait = heartbeat if due is None else max(due - loop.time(), 0)
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), wait)
                except TimeoutError:
                    if due is None:
                        yield ": keep-alive\n\n"
                        continue
                else:
                    if not coalesce:
                        yield event.encode()
                        continue
                    held.append(event)
                    while not subscription.queue.empty():
                        held.append(subscription.queue.get_nowait())
                now = loop.time()
                ready = [e for e in held if now >= sent_at.get(e.name, -coalesce) + coalesce]
                if ready:
                    held = [e for e in held if now < sent_at.get(e.name, -coalesce) + coalesce]
                    sent_at |= dict.fromkeys((e.name for e in ready), now)
                    yield "".join(e.encode() for e in merge(ready))
        finally:
            self.unsubscribe(subscription)


def merge(events: list[Event]) -> list[Event]:
    """One event per name, in the order the names first came: a lone event as it was; several as the
    last one's fields, with `count`, counts (SUMMED) added up and other fields that differ listed."""
    by_name: dict[str, list[Event]] = {}
    for event in events:
        by_name.setdefault(event.name, []).append(event)
    merged = []
    for name, group in by_name.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        data: dict[str, Any] = {"count": len(group)}
        for key in group[-1].data:
            values = [e.data.get(key) for e in group]
            if key in SUMMED:
                data[key] = sum(v for v in values if isinstance(v, int | float))
                continue
            distinct = list({json.dumps(v, sort_keys=True): v for v in values}.values())
            data[key] = distinct[0] if len(distinct) == 1 else distinct
        merged.append(Event(name, data))
    return merged


HUB = Hub()


class Bus:
    """This process's way to every process's screens: NATS core subjects, or the process itself."""

    def __init__(self, mode: str | None = None, servers: list[str] | None = None, subject: str | None = None):
        self._wanted, self._servers, self._subject = mode, servers, subject
        self._mode: str | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: Any = None  # the future of the NATS client (concurrent.futures)
        self._relaying: Any = None  # the subscription's future, once this process relays
        self._outbox: deque[tuple[set[Key], str]] = deque()  # each event's keys and head (`_head`)
        self._draining = False

    # Settings are read at first use, not at import: live is imported before Django is set up.
    def _setting(self, name: str) -> Any:
        from django.conf import settings

        return getattr(settings, name)

    @property
    def subject(self) -> str:
        return self._subject or self._setting("LIVE_SUBJECT")

    @property
    def mode(self) -> str:
        """ "nats" or "local", decided once per process (connecting when it must)."""
        if self._mode is None:
            with self._lock:
                if self._mode is None:
                    self._mode = self._start()
        return self._mode

    def keep_local(self) -> None:
        """Keep this process's events in it, whatever the settings say (the test suite: one process,
        and another suite may share the broker's subjects)."""
        with self._lock:
            self._wanted = self._mode = "local"

    def publish_on_commit(self, keys: Iterable[Key], name: str, data: dict[str, Any]) -> None:
        """After commit (at once outside a transaction), to every screen listening for one of the keys."""
        keys = set(keys)
        if not keys:
            return
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(partial(self._send, keys, name, data), robust=True)
        else:  # nothing to wait for (and no connection to open for asking)
            self._send(keys, name, data)

    def listening(self) -> set[Key] | None:
        """The keys someone listens for, when this process can know it (None: anyone may listen), so
        that a publisher may skip reading what nobody will see."""
        return HUB.listening() if self.mode == "local" else None

    def listening_to_areas(self) -> bool:
        keys = self.listening()
        return keys is None or any(is_area_key(key) for key in keys)

    def relay(self) -> None:
        """Hand every process's events to this process's subscribers: once per process (web workers
        call it when they start and when a stream opens)."""
        if self.mode != "nats" or self._relaying is not None:
            return
        with self._lock:
            if self._relaying is None and self._loop is not None:
                self._relaying = asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop)

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (a bounded time) until what was published has left: before a command-line process exits."""
        if self._mode != "nats" or self._loop is None or self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._flush(), self._loop).result(timeout)
        except Exception:  # leaving anyway: the events are best-effort, the data committed
            log.warning("live: %d events not sent before exit", len(self._outbox))

    # Below: the NATS side, on a thread of its own with its own loop, so that sync code in any thread
    # publishes without waiting and the web server's loop never blocks on the broker.

    def _send(self, keys: set[Key], name: str, data: dict[str, Any]) -> None:
        if self.mode == "local":
            HUB.deliver(keys, name, data)
            return
        # The data are written now, as the publisher may change them once this returns (the keys are
        # publish_on_commit's own set). The subjects and the keys' text are left to the NATS thread, in
        # the order the events came: for an ingest batch's thousands of keys they took the ingest's
        # thread milliseconds after each commit, with the database waiting for it.
        head = _head(uuid.uuid4().hex, name, data)
        assert self._loop is not None
        with self._lock:
            self._outbox.append((keys, head))
            if self._draining:
                return
            self._draining = True
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain()))

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._outbox:
                    self._draining = False
                    return
                batch = list(self._outbox)
                self._outbox.clear()
            nc = await asyncio.wrap_future(self._connected)
            prefix = self.subject
            for keys, head in batch:
                try:
                    messages = [
                        (f"{prefix}.{s}", _payload(head, group)) for s, group in subjects(keys).items()
                    ]
                except Exception:  # one event's bad keys must not stop the others
                    log.exception("live: an event for %d keys could not be written", len(keys))
                    continue
                for subject, payload in messages:
                    try:
                        await nc.publish(subject, payload)
                    except Exception:  # a closed or full connection: live events are best-effort
                        log.exception("live: publishing on %s failed", subject)

    async def _flush(self) -> None:
        while self._draining:
            await asyncio.sleep(0.01)
        nc = await asyncio.wrap_future(self._connected)
        await nc.flush(timeout=1)

    def _start(self) -> str:
        wanted = self._wanted or self._setting("LIVE_BROKER")
        if wanted == "local":
            return "local"
        servers = self._servers or self._setting("NATS_SERVERS")
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="dieuhanh-live", daemon=True).start()
        self._connected = asyncio.run_coroutine_threadsafe(self._connect(servers), loop)
        try:
            self._connected.result(CONNECT_WAIT)
        except Exception:  # any failure to connect means the same here: no broker yet
            if wanted == "nats":  # insisting: events wait in the outbox while the client keeps trying
                log.warning("live: NATS does not answer at %s yet: still trying", ", ".join(servers))
            else:
                asyncio.run_coroutine_threadsafe(_give_up(), loop)
                log.warning(
                    "live: no NATS answers at %s: live events reach only the screens of this process",
                    ", ".join(servers),
                )
                return "local"
        self._loop = loop
        atexit.register(self.flush)
        log.info("live: events go through NATS at %s (%s.>)", ", ".join(servers), self.subject)
        return "nats"

    async def _connect(self, servers: list[str]) -> Any:
        import nats

        return await nats.connect(
            servers,
            name="dieuhanh live",
            max_reconnect_attempts=-1,  # a web process outlives NATS restarts; screens miss what passed
            error_cb=_quiet,
            disconnected_cb=partial(_note, "live: NATS connection lost, reconnecting"),
            reconnected_cb=partial(_note, "live: NATS connection back"),
        )

    async def _subscribe(self) -> None:
        nc = await asyncio.wrap_future(self._connected)
        await nc.subscribe(f"{self.subject}.>", cb=self._deliver)

    async def _deliver(self, msg: Any) -> None:
        try:
            body = json.loads(msg.data)
            keys = [tuple(key) if isinstance(key, list) else key for key in body["keys"]]
            HUB.deliver(keys, body["name"], body["data"], body["id"])
        except Exception:  # one bad message must not stop the relay
            log.exception("live: a message on %s could not be relayed", msg.subject)


async def _give_up() -> None:
    """End the connecting client's tasks, then the loop (the thread ends with it)."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    asyncio.get_running_loop().stop()


async def _quiet(error: Exception) -> None:
    log.debug("live: NATS: %s", error)


async def _note(text: str) -> None:
    log.warning(text)


class _Memo(dict):
    """What `make` gives for each key (a unit's path, a room key), made once per process: every event
    of the unit's rooms needs it again, and an ingest batch over the country names ~3,400 rooms, whose
    paths split and keys written afresh were most of the 14 ms its event cost. Emptied when it outgrows
    every unit of both maps several times over, so that keys of other kinds cannot make it grow without
    end."""

    LIMIT = 1 << 16

    def __init__(self, make: Any) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[key] = self._make(key)
        return value


def _parent(path: Any) -> str:
    """The path of the unit above, for a path as units have them ("/VN/79/"); "" for any other."""
    if type(path) is str and len(path) > 1 and path[0] == "/" and path[-1] == "/" and "//" not in path:
        return path[: path.rindex("/", 0, -1) + 1]
    return ""


def _encoded_key(key: Any) -> str:
    """A room key as `json.dumps` writes it in a message; its parts must be plain strings, as only then
    do equal keys write alike (1 and True are equal keys that write differently)."""
    if type(key) is not tuple or not all(type(part) is str for part in key):
        raise _NotMemoized
    return json.dumps(key, ensure_ascii=False)


class _NotMemoized(Exception):
    pass


_PARENTS = _Memo(_parent)
_ENCODED = _Memo(_encoded_key)


def _head(event_id: str, name: str, data: dict[str, Any]) -> str:
    """A message's text before its keys (`_payload`)."""
    return json.dumps({"id": event_id, "name": name, "data": data}, ensure_ascii=False)[:-1]


def _payload(head: str, keys: list[Key]) -> bytes:
    """The message on one subject: the bytes `json.dumps({"id", "name", "data", "keys"},
    ensure_ascii=False)` gives, each room key's text written once per process (what the relay and
    outside consumers read is unchanged)."""
    try:
        written = ", ".join(map(_ENCODED.__getitem__, keys))
    except _NotMemoized:
        written = json.dumps(keys, ensure_ascii=False)[1:-1]
    return f'{head}, "keys": [{written}]}}'.encode()


def subjects(keys: Iterable[Key]) -> dict[str, list[Key]]:
    """The subjects (below the prefix) an event's keys go out on, with the keys each carries: one per
    inbox, and per map one of the deepest unit above every unit concerned."""
    out: dict[str, list[Key]] = {}
    areas: defaultdict[str, list[Any]] = defaultdict(list)
    for key in keys:  # is_area_key's test, inline: a call per key was a tenth of the cost
        if isinstance(key, tuple) and len(key) == 3 and key[0] == AREA:
            areas[key[1]].append(key)
        else:
            out[f"inbox.{_token(str(key))}"] = [key]
    for edition, group in areas.items():
        common = _common_parts(group)
        out[".".join(["area", _token(edition), *map(_token, common)])] = group
    return out


def _common_parts(group: list[tuple[str, str, str]]) -> list[str]:
    """The path parts of the deepest unit above all the units concerned. Those are the deepest keys (the
    others are their ancestors, named for the rooms): the keys whose unit is no key's parent."""
    paths = set(map(itemgetter(2), group))
    parents = set(map(_PARENTS.__getitem__, paths))
    if "" not in parents:
        # Paths as units have them: the deepest units' common path is the text common to the first and
        # the last of them in sorted order, up to its last "/" (strings compared in C, not part by part).
        leaves = paths - parents
        common = commonprefix([min(leaves), max(leaves)])  # noqa: RUF071 (cut at a "/" below)
        common = common[: common.rindex("/") + 1]
        return common[1:-1].split("/") if common != "/" else []
    tokens = {path: tuple(p for p in path.split("/") if p) for path in paths}
    above = {parts[:-1] for parts in tokens.values()}
    deepest = [parts for parts in tokens.values() if parts not in above]
    out: list[str] = []
    for parts in zip(*deepest, strict=False):
        if len(set(parts)) > 1:
            break
        out.append(parts[0])
    return out


def _token(text: str) -> str:
    """A NATS subject token: no dots, wildcards or spaces."""
    return "".join("_" if c in ".*> \t\r\n" else c for c in text) or "_"


BUS = Bus()


def publish_on_commit(keys: Iterable[Key], name: str, data: dict[str, Any]) -> None:
    """The one call that publishes a live event, made by the write verb inside its transaction: after
    commit (nothing if it rolls back), once, to every process's screens listening for one of the keys."""
    BUS.publish_on_commit(keys, name, data)


def area_key(edition: str, path: str) -> tuple[str, str, str]:
    """What a room on the unit at `path` listens for."""
    return (AREA, edition, path)


def area_keys(edition: str, path: str) -> set[tuple[str, str, str]]:
    """The rooms a change at the unit at `path` concerns: its own and each of its ancestors'."""
    parts = [p for p in path.split("/") if p]
    return {area_key(edition, "/" + "/".join(parts[:n]) + "/") for n in range(1, len(parts) + 1)}


def is_area_key(key: Key) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[0] == AREA
