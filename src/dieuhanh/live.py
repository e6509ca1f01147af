"""The in-process publish/subscribe hub behind every live page (server-sent events).

A subscriber listens for a set of keys; a publisher names the keys an event concerns, and every
subscriber holding one of them gets the event once. Two kinds of key are in use:

- a unit's id (int): that unit's inbox (directives.live);
- `area_key(edition, path)`: everything inside that unit's subtree on that map (the command room).
  A change at a unit is published to `area_keys(edition, path)`, the keys of the unit and of every
  unit above it, so that the commune's, the province's and the nation's rooms all hear of it.

It imports nothing of the project's apps, so that every layer may publish (the warehouse's ingest as
much as the directives). Limit: one process; see directives.live for what it takes beyond.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 1000  # events a slow client may fall behind by before its stream is closed
AREA = "area"

Key = Hashable


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]

    def encode(self) -> str:
        return f"event: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Subscription:
    units: frozenset[Key]  # the keys listened for (named units: the inbox's were the first)
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        """Runs on the subscriber's loop. A client that cannot keep up is dropped, to reconnect afresh."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    """Subscribers by key. Publishing is thread-safe: writes happen in sync code, streams on a loop."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

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
        """The keys someone is listening for: lets publishers skip the database when nobody is."""
        with self._lock:
            return set().union(*(s.units for s in self._subscriptions))

    def listening_to_areas(self) -> bool:
        return any(is_area_key(key) for key in self.listening())

    def publish(self, keys: Iterable[Key], name: str, data: dict[str, Any]) -> int:
        """Hand the event to every subscriber of one of the keys; returns how many got it."""
        wanted, event = set(keys), Event(name, data)
        with self._lock:
            targets = [s for s in self._subscriptions if s.units & wanted]
        for subscription in targets:
            try:
                subscription.loop.call_soon_threadsafe(subscription.offer, event)
            except RuntimeError:  # its loop is closed: the client is gone
                self.unsubscribe(subscription)
        return len(targets)

    async def stream(self, keys: Iterable[Key], heartbeat: float) -> AsyncIterator[str]:
        """The text/event-stream body for these keys, with a keep-alive comment every `heartbeat` s."""
        # Subscribed here, not in the view: this is the loop that reads the stream.
        subscription = self.subscribe(keys)
        try:
            yield "retry: 5000\n: connected\n\n"
            while not subscription.overflowed:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield event.encode()
        finally:
            self.unsubscribe(subscription)


HUB = Hub()


def area_key(edition: str, path: str) -> tuple[str, str, str]:
    """What a room on the unit at `path` listens for."""
    return (AREA, edition, path)


def area_keys(edition: str, path: str) -> set[tuple[str, str, str]]:
    """The rooms a change at the unit at `path` concerns: its own and each of its ancestors'."""
    parts = [p for p in path.split("/") if p]
    return {area_key(edition, "/" + "/".join(parts[:n]) + "/") for n in range(1, len(parts) + 1)}


def is_area_key(key: Key) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and key[0] == AREA
