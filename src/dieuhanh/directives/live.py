"""Live updates of the inbox: an in-process publish/subscribe hub and the server-sent events stream.

`GET /api/v1/inbox/stream` (session or bearer token) streams `text/event-stream`:

    event: delivery
    data: {"id": 12, "directive": 3, "state": "acknowledged", "event": "acknowledge", "cancelled": false}

for each change of a delivery in the caller's own units' inbox (`services.own_units`; a delivery
escalated from a unit below counts for its parent, as in `services.inbox`), `event: notification`
for an in-app notification (new directive, reminder, escalation), and a `: keep-alive` comment every
LIVE_HEARTBEAT_SECONDS (15 s) so that proxies keep the connection open.

Every change of a delivery is also published, as one `directive` event, to the rooms of the
delivery's unit and of the units above it. Events go through `dieuhanh.live.publish`, so they reach
the screens of every web process, whichever process (web, `worker followup`) made the change.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import user_for_token
from dieuhanh.directives.models import Delivery, Directive
from dieuhanh.directives.services import own_units
from dieuhanh.live import BUS, HUB, QUEUE_SIZE, Event, Hub, Subscription, area_keys, publish
from dieuhanh.units.scoping import area_aware

__all__ = [
    "HUB",
    "QUEUE_SIZE",
    "Event",
    "Hub",
    "Subscription",
    "inbox_keys",
    "inbox_stream",
    "on_directive_change",
    "publish",
]

logger = logging.getLogger(__name__)


# Publishing directives' changes (registered with services.on_change in DirectivesConfig.ready)


def on_directive_change(event: str, directive: Directive, changed: list[Delivery]) -> None:
    """After commit of a directive's verb. Never raises: the change is committed whatever happens here.

    `changed` is the delivery a unit's verb changed, in hand with its unit (read, acknowledge, respond):
    its events are sent without a query, which matters when 10,000 communes acknowledge at once. A
    directive's own verbs (issue, update, cancel) change every delivery, and name none."""
    try:
        listening = BUS.listening()  # None beyond one process: anyone may listen
        inboxes = None if listening is None else {key for key in listening if isinstance(key, int)}
        if changed:
            if BUS.listening_to_areas():
                keys = set().union(*(area_keys(d.unit.edition_id, d.unit.path) for d in changed))
                publish(keys, "directive", _room_data(directive, event, len(changed)))
            cancelled = directive.cancelled_at
            for d in changed:
                row = (d.pk, directive.pk, d.unit_id, d.unit.parent_id, d.state, d.escalated_at, cancelled)
                _publish_delivery(row, event)
            return
        if BUS.listening_to_areas():
            publish_to_rooms(directive, event)
        if inboxes is not None and not inboxes:
            return
        deliveries = Delivery.objects.filter(directive=directive)
        if inboxes is not None:  # issue, update, cancel reach every delivery: only those listened for
            deliveries = deliveries.filter(
                Q(unit_id__in=inboxes) | Q(escalated_at__isnull=False, unit__parent_id__in=inboxes)
            )
        publish_deliveries(deliveries, event)
    except Exception:
        logger.exception("live: publishing %s of directive %s failed", event, directive.pk)


def publish_to_rooms(directive: Directive, event: str) -> None:
    """One `directive` event to every room above the directive's deliveries' units."""
    places = Delivery.objects.filter(directive=directive).values_list("unit__edition_id", "unit__path")
    keys = set().union(*(area_keys(edition, path) for edition, path in places.distinct()))
    publish(keys, "directive", _room_data(directive, event, 0))


def _room_data(directive: Directive, event: str, deliveries: int) -> dict:
    return {"directive": directive.pk, "event": event, "deliveries": deliveries}


def publish_deliveries(deliveries: QuerySet[Delivery], event: str) -> None:
    """One `delivery` event each, to the unit and, once escalated, to its parent."""
    rows = deliveries.values_list(
        "pk", "directive_id", "unit_id", "unit__parent_id", "state", "escalated_at", "directive__cancelled_at"
    )
    for row in rows:
        _publish_delivery(row, event)


def _publish_delivery(row: tuple, event: str) -> None:
    pk, directive_id, unit, parent, state, escalated_at, cancelled_at = row
    units = {unit} | ({parent} if escalated_at and parent else set())
    data = {
        "id": pk,
        "directive": directive_id,
        "state": state,
        "event": event,
        "cancelled": cancelled_at is not None,
    }
    publish(units, "delivery", data)


# The stream


@area_aware
async def inbox_stream(request: HttpRequest) -> HttpResponseBase:
    """Server-sent events of the caller's own units' inbox (see the module's docstring)."""
    user = await _caller(request)
    if user is None:
        response = _problem(401, "Sign in, or send 'Authorization: Bearer <token>'.")
        response["WWW-Authenticate"] = "Bearer"
        return response
    units = await sync_to_async(inbox_keys)(user)
    if not units:
        return _problem(403, NO_INBOX)
    stream = StreamingHttpResponse(
        HUB.stream(units, settings.LIVE_HEARTBEAT_SECONDS), content_type="text/event-stream"
    )
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back in its buffer
    return stream


NO_INBOX = "You act for no unit: there is no inbox to follow."


def inbox_keys(user: User) -> set[int]:
    """What the caller's inbox stream listens for: their own units (empty: no inbox to follow)."""
    return set(own_units(user))


async def _caller(request: HttpRequest) -> User | None:
    """The bearer token's user; else the session's. A bad token is never rescued by a cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return await sync_to_async(user_for_token)(token.strip()) if scheme.lower() == "bearer" else None
    user = await request.auser()
    return user if user.is_authenticated and isinstance(user, User) else None


def _problem(status: int, detail: str) -> HttpResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": "/api/v1/inbox/stream",
    }
    return JsonResponse(body, status=status, content_type="application/problem+json")
