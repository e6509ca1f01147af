"""The command room (/room/): one screen for a unit of the caller's area, kept live by server-sent events.

`?unit=EDITION:CODE` shows a unit inside the caller's area (404 outside it); `?edition=` switches to
the caller's top unit on the other map. The page loads its map from `room/map.json` and follows
`room/stream`; on each event it reloads the map and the panels (`room/parts`), so that the figures
are always read the one way the first render read them.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.commandroom import room
from dieuhanh.live import HUB, area_key
from dieuhanh.units.models import Edition, Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import ancestors


def _unit(request: HttpRequest, user: User) -> Unit:
    try:
        return room.room_unit(user, request.GET.get("unit"), request.GET.get("edition"))
    except Unit.DoesNotExist:
        raise Http404("Không có đơn vị này trong phạm vi của bạn.") from None


def _figure(request: HttpRequest) -> room.RoomFigure:
    return room.BY_CODE.get(request.GET.get("figure", ""), room.FIGURES[0])


@login_required
@area_aware
def room_page(request: HttpRequest) -> HttpResponse:
    user = caller(request)
    if "unit" not in request.GET and not room.room_editions(user):
        return redirect("units-browse")  # no unit of their own to hold a room for (a bare superuser)
    unit = _unit(request, user)
    area = user.area()
    context = {
        "unit": unit,
        "ancestors": [a for a in ancestors(unit) if area.contains(a)],
        "editions": room.room_editions(user),
        "figures": room.FIGURES,
        "figure": _figure(request),
        "tile_url": getattr(settings, "ROOM_TILE_URL", ""),
        "clusters": room.cluster_alerts(user, unit),
        **_parts_context(request, user, unit),
    }
    return render(request, "commandroom/room.html", context)


def _parts_context(request: HttpRequest, user: User, unit: Unit) -> dict[str, Any]:
    """What the live parts of the page show: tiles, alerts, directives, tasks."""
    day = room.latest_day()
    language = request.LANGUAGE_CODE
    rates = room.directive_rates(unit, timezone.now())
    return {
        "day": day,
        "tiles": room.figure_tiles(unit, day, language),
        "indicators": room.indicator_tiles(unit, language),
        "threshold_alerts": room.threshold_alerts(unit, day, language),
        "rates": rates,
        "overdue_directives": [r for r in rates if r.overdue],
        "tasks": room.overdue_tasks(user, unit),
    }


@login_required
@area_aware
def room_parts(request: HttpRequest) -> JsonResponse:
    """The live parts re-rendered, as HTML by part, for the page to put in place."""
    user = caller(request)
    unit = _unit(request, user)
    context = {"unit": unit, **_parts_context(request, user, unit)}
    parts = {
        name: render_to_string(f"commandroom/_room_{name}.html", context, request=request)
        for name in ("tiles", "alerts", "directives")
    }
    return JsonResponse(parts)


@login_required
@area_aware
def room_map(request: HttpRequest) -> JsonResponse:
    """The unit's children with their coordinates and the chosen figure (see room.map_data)."""
    user = caller(request)
    unit = _unit(request, user)
    data = room.map_data(unit, _figure(request), room.latest_day(), request.LANGUAGE_CODE)
    for item in data["items"]:  # drill down: a unit with units below has a room; the bottom, its page
        edition, _sep, code = item["ref"].partition(":")
        item["url"] = (
            f"{reverse('room')}?unit={item['ref']}"
            if item["drill"]
            else reverse("unit", args=[edition, code])
        )
    return JsonResponse(data)


@area_aware
async def room_stream(request: HttpRequest) -> HttpResponseBase:
    """Server-sent events for the room of a unit: `figures` after an ingest below it, `directive`
    after a change of a delivery below it; a keep-alive comment when quiet."""
    user = await request.auser()
    if not user.is_authenticated or not isinstance(user, User):
        return JsonResponse({"detail": "Sign in first."}, status=401)
    try:
        unit = await sync_to_async(room.room_unit)(user, request.GET.get("unit"), request.GET.get("edition"))
    except Unit.DoesNotExist:
        return JsonResponse({"detail": "No such unit in your area."}, status=404)
    if not isinstance(request, ASGIRequest):
        # A WSGI server (Django's test server) would read the endless stream whole, holding a thread
        # for ever: 204 tells the browser's EventSource not to reconnect. `dieuhanh serve` is ASGI.
        return HttpResponse(status=204)
    keys = {area_key(unit.edition_id, unit.path)}
    if unit.level == 0:  # the nation is one place on every map: both maps' events concern it
        keys |= {area_key(edition, unit.path) for edition in await _editions()}
    stream = StreamingHttpResponse(
        HUB.stream(keys, settings.LIVE_HEARTBEAT_SECONDS), content_type="text/event-stream"
    )
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back in its buffer
    return stream


async def _editions() -> list[str]:
    return [code async for code in Edition.objects.values_list("code", flat=True)]
