"""The two live streams, together: `/room/stream` (a unit's command room) and `/api/v1/inbox/stream`
(the caller's units' inbox). What they carry is published by the write verbs (`dieuhanh.live.
publish_on_commit`); this module says who may open which, what it listens for, and how a refusal is
answered.

Both are opened alike. The caller is the bearer token's user, else the session's; a bad token is
never rescued by a cookie. Both refuse alike, as problem+json (`dieuhanh.errors`):

- 401 `unauthenticated`, with `WWW-Authenticate: Bearer`, for no caller;
- 404 `not_found` on `unit` for a room outside the caller's area, as every route of the room answers;
- 403 `forbidden` for an inbox when the caller acts for no unit.

In production (`dieuhanh serve`) dieuhanh.asgi answers both with `OPENERS`, before Django's handler, so
that a stream holds no thread and no database connection while it waits (docs/live.md). The views
below serve the same streams, with the same answers, to Django's own ASGI handler (tests). Under WSGI
(`runserver`) they answer 204 once the caller may open the stream: a WSGI server would read the endless
stream whole and hold a thread for ever, and 204 tells the browser's EventSource not to reconnect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import user_for_token
from dieuhanh.commandroom import room
from dieuhanh.directives.services import own_units
from dieuhanh.errors import PROBLEM_TYPE, DomainError, problem_body
from dieuhanh.live import HUB, Key
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware

Opened = tuple[set[Key], float]  # the keys the stream listens for, and its coalescing window (s)
Opener = Callable[[HttpRequest], Opened]

SIGN_IN = _("sign in, or send 'Authorization: Bearer <token>'")
NO_UNIT = _("no such unit in your area")
NO_INBOX = _("you act for no unit: there is no inbox to follow")


def stream_user(request: HttpRequest) -> User | None:
    """The bearer token's user, else the session's; a bad token is never rescued by a cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _sep, token = header.partition(" ")
        return user_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if not hasattr(request, "session"):  # the front, before (instead of) Django's middleware
        engine = import_module(settings.SESSION_ENGINE)
        request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(request)
    return user if user.is_authenticated and isinstance(user, User) else None


def _caller(request: HttpRequest) -> User:
    user = stream_user(request)
    if user is None:
        raise DomainError(None, SIGN_IN, status=401)
    return user


def open_room(request: HttpRequest) -> Opened:
    """The room of `?unit=` (or the caller's own, on `?edition=`): its unit's area keys."""
    user = _caller(request)
    try:
        unit = room.room_unit(user, request.GET.get("unit"), request.GET.get("edition"))
    except Unit.DoesNotExist:
        raise DomainError("unit", NO_UNIT, status=404) from None
    return room.room_keys(unit), settings.LIVE_COALESCE_SECONDS


def open_inbox(request: HttpRequest) -> Opened:
    """The caller's own units (not those below: an escalated delivery is published to its parent)."""
    keys: set[Key] = set(own_units(_caller(request)))
    if not keys:
        raise DomainError(None, NO_INBOX, status=403)
    return keys, 0.0


# By URL name: the front resolves them once.
OPENERS: dict[str, Opener] = {"room-stream": open_room, "inbox-stream": open_inbox}


def refusal(path: str, error: DomainError) -> tuple[int, dict[str, str], bytes]:
    """A refused stream's status, headers and body, the same from the front and from the views."""
    headers = {"Content-Type": PROBLEM_TYPE}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return error.status, headers, json.dumps(problem_body(path, error), ensure_ascii=False).encode()


async def _serve(opener: Opener, request: HttpRequest) -> HttpResponseBase:
    try:
        keys, coalesce = await sync_to_async(opener)(request)
    except DomainError as error:
        status, headers, body = refusal(request.path, error)
        return HttpResponse(body, status=status, headers=headers)
    if not isinstance(request, ASGIRequest):
        return HttpResponse(status=204)
    stream = StreamingHttpResponse(
        HUB.stream(keys, settings.LIVE_HEARTBEAT_SECONDS, coalesce), content_type="text/event-stream"
    )
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back in its buffer
    return stream


@area_aware
async def room_stream(request: HttpRequest) -> HttpResponseBase:
    """`figures` after an ingest below the unit, `directive` after a change of a delivery below it,
    `report`, `approval`, `feedback`; a keep-alive comment when quiet."""
    return await _serve(open_room, request)


@area_aware
async def inbox_stream(request: HttpRequest) -> HttpResponseBase:
    """`delivery` for each change of a delivery in the caller's own units' inbox (and of one escalated
    to them from below), `notification` for an in-app notification; a keep-alive comment when quiet."""
    return await _serve(open_inbox, request)
