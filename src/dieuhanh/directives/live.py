"""Live updates of the inbox: an in-process publish/subscribe hub and the server-sent events stream.

`GET /api/v1/inbox/stream` (session or bearer token) streams `text/event-stream`:

    event: delivery
    data: {"id": 12, "directive": 3, "state": "acknowledged", "event": "acknowledge", "cancelled": false}

for each change of a delivery in the caller's own units' inbox (`services.own_units`; a delivery
escalated from a unit below counts for its parent, as in `services.inbox`), `event: notification`
for an in-app notification (new directive, reminder, escalation), and a `: keep-alive` comment every
LIVE_HEARTBEAT_SECONDS (15 s) so that proxies keep the connection open.

Limit: the hub lives in one process. Events reach the clients connected to the process that made the
change; with several web processes, or the follow-up worker in its own process, the others' clients
see the change at their next reload. Beyond one process the hub needs a broker (NATS core subjects,
already in the stack, or PostgreSQL LISTEN/NOTIFY) behind `Hub.publish`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import user_for_token
from dieuhanh.directives.models import Delivery, Directive
from dieuhanh.directives.services import own_units
from dieuhanh.units.scoping import area_aware

logger = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # events a slow client may fall behind by before its stream is closed


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]

    def encode(self) -> str:
        return f"event: {self.name}\ndata: {json.dumps(self.data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Subscription:
    units: frozenset[int]
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
    """Subscribers by unit. Publishing is thread-safe: writes happen in sync code, streams on a loop."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self, units: Iterable[int]) -> Subscription:
        """Call on the loop that will read the subscription."""
        subscription = Subscription(frozenset(units), asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def listening(self) -> set[int]:
        """The units someone is listening for: lets publishers skip the database when nobody is."""
        with self._lock:
            return set().union(*(s.units for s in self._subscriptions))

    def publish(self, units: Iterable[int], name: str, data: dict[str, Any]) -> int:
        """Hand the event to every subscriber of one of the units; returns how many got it."""
        wanted, event = set(units), Event(name, data)
        with self._lock:
            targets = [s for s in self._subscriptions if s.units & wanted]
        for subscription in targets:
            try:
                subscription.loop.call_soon_threadsafe(subscription.offer, event)
            except RuntimeError:  # its loop is closed: the client is gone
                self.unsubscribe(subscription)
        return len(targets)


HUB = Hub()


# Publishing directives' changes (registered with services.on_change in DirectivesConfig.ready)


def on_directive_change(event: str, directive: Directive, delivery_ids: list[int]) -> None:
    """After commit of a directive's verb. Never raises: the change is committed whatever happens here."""
    try:
        listening = HUB.listening()
        if not listening:
            return
        deliveries = Delivery.objects.filter(directive=directive)
        if delivery_ids:
            deliveries = deliveries.filter(pk__in=delivery_ids)
        else:  # issue, update, cancel reach every delivery: only those someone listens for are read
            deliveries = deliveries.filter(
                Q(unit_id__in=listening) | Q(escalated_at__isnull=False, unit__parent_id__in=listening)
            )
        publish_deliveries(deliveries, event)
    except Exception:
        logger.exception("live: publishing %s of directive %s failed", event, directive.pk)


def publish_deliveries(deliveries: QuerySet[Delivery], event: str) -> None:
    """One `delivery` event each, to the unit and, once escalated, to its parent."""
    rows = deliveries.values_list(
        "pk", "directive_id", "unit_id", "unit__parent_id", "state", "escalated_at", "directive__cancelled_at"
    )
    for pk, directive_id, unit, parent, state, escalated_at, cancelled_at in rows:
        units = {unit} | ({parent} if escalated_at and parent else set())
        data = {
            "id": pk,
            "directive": directive_id,
            "state": state,
            "event": event,
            "cancelled": cancelled_at is not None,
        }
        HUB.publish(units, "delivery", data)


# The stream


@area_aware
async def inbox_stream(request: HttpRequest) -> HttpResponseBase:
    """Server-sent events of the caller's own units' inbox (see the module's docstring)."""
    user = await _caller(request)
    if user is None:
        response = _problem(401, "Sign in, or send 'Authorization: Bearer <token>'.")
        response["WWW-Authenticate"] = "Bearer"
        return response
    units = await sync_to_async(own_units)(user)
    if not units:
        return _problem(403, "You act for no unit: there is no inbox to follow.")
    stream = StreamingHttpResponse(_events(frozenset(units)), content_type="text/event-stream")
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back in its buffer
    return stream


async def _caller(request: HttpRequest) -> User | None:
    """The bearer token's user; else the session's. A bad token is never rescued by a cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return await sync_to_async(user_for_token)(token.strip()) if scheme.lower() == "bearer" else None
    user = await request.auser()
    return user if user.is_authenticated and isinstance(user, User) else None


async def _events(units: frozenset[int]) -> AsyncIterator[str]:
    # Subscribed here, not in the view: this is the loop that reads the stream.
    subscription = HUB.subscribe(units)
    heartbeat = settings.LIVE_HEARTBEAT_SECONDS
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
        HUB.unsubscribe(subscription)


def _problem(status: int, detail: str) -> HttpResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": "/api/v1/inbox/stream",
    }
    return JsonResponse(body, status=status, content_type="application/problem+json")
