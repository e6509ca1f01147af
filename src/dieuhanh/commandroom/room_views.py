"""The command room (/room/): one screen for a unit of the caller's area, kept live by server-sent events.

`?unit=EDITION:CODE` shows a unit inside the caller's area (404 outside it); `?edition=` switches to
the caller's top unit on the other map. The page loads its map from `room/map.json` and follows
`room/stream`, which sends at most one message per kind of event every LIVE_COALESCE_SECONDS. A
`figures` event reloads the map and the figures' parts, a `directive` event the directives' part
(`room/parts?parts=directives`), so that the figures are always read the one way the first render read
them; what every screen of an area shares is computed once per change (room.shared).

The stream lives with the inbox's, in dieuhanh.streams.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.commandroom import room
from dieuhanh.errors import DomainError, not_found
from dieuhanh.feedback import room as feedback_room
from dieuhanh.replica import replica_reads
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.units.services import ancestors


def _unit(request: HttpRequest, user: User) -> Unit:
    """`?unit=` inside the caller's area; `?edition=` their root on that map, or, with `&from=REF`,
    the same place on it as REF (the map's 2021/2025 toggle keeps the place)."""
    with not_found(Unit.DoesNotExist, DomainError, message=_("No such unit in your area.")):
        edition, origin = request.GET.get("edition"), request.GET.get("from")
        if origin and edition and "unit" not in request.GET:
            return room.counterpart(user, room.room_unit(user, origin, None), edition)
        return room.room_unit(user, request.GET.get("unit"), edition)


def unit_page(
    view: Callable[[HttpRequest, User, Unit], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """A page of one unit's screen (the room, the wall): called with the caller and the unit `?unit=`
    names inside their area (404 outside it); a caller with no unit of their own to hold one for (a bare
    superuser) is sent to browse the units instead."""

    @wraps(view)
    def page(request: HttpRequest) -> HttpResponse:
        user = caller(request)
        if "unit" not in request.GET and not room.room_editions(user):
            return redirect("units-browse")
        return view(request, user, _unit(request, user))

    return page


def _figure(request: HttpRequest) -> room.RoomFigure:
    return room.BY_CODE.get(request.GET.get("figure", ""), room.FIGURES[0])


@login_required
@area_aware
@replica_reads
@unit_page
def room_page(request: HttpRequest, user: User, unit: Unit) -> HttpResponse:
    area = user.area()
    context = {
        "unit": unit,
        "ancestors": [a for a in ancestors(unit) if area.contains(a)],
        "editions": room.room_editions(user),
        "figures": room.FIGURES,
        "figure": _figure(request),
        "tile_url": getattr(settings, "ROOM_TILE_URL", ""),
        "coalesce_ms": int(settings.LIVE_COALESCE_SECONDS * 1000),
        "clusters": room.cluster_alerts(user, unit),
        "feedback_panel": feedback_room.panel(unit),
        **_parts_context(request, user, unit),
    }
    return render(request, "commandroom/room.html", context)


PARTS = ("tiles", "alerts", "directives")


def _parts_context(
    request: HttpRequest, user: User, unit: Unit, parts: tuple[str, ...] = PARTS
) -> dict[str, Any]:
    """What the live parts of the page show: tiles, alerts, directives, tasks. The area's figures are
    shared by every screen on it (room.shared); only the tasks are the caller's own."""
    language = request.LANGUAGE_CODE
    context: dict[str, Any] = {}
    if "tiles" in parts or "alerts" in parts:
        context |= room.shared(unit, "figures", language, lambda: _figures_context(unit, language))
    if "directives" in parts or "alerts" in parts:
        rates = room.shared(unit, "rates", language, lambda: room.directive_rates(unit, timezone.now()))
        context |= {"rates": rates, "overdue_directives": [r for r in rates if r.overdue]}
    if "directives" in parts:
        context["tasks"] = room.overdue_tasks(user, unit)
    return context


def _figures_context(unit: Unit, language: str) -> dict[str, Any]:
    day = room.latest_day()
    return {
        "day": day,
        "tiles": room.figure_tiles(unit, day, language),
        "indicators": room.indicator_tiles(unit, language),
        "threshold_alerts": room.threshold_alerts(unit, day, language),
    }


@login_required
@area_aware
@replica_reads
def room_parts(request: HttpRequest) -> JsonResponse:
    return parts_answer(request, "room", PARTS)


def parts_answer(request: HttpRequest, page: str, known: tuple[str, ...]) -> JsonResponse:
    """A page's live parts re-rendered (commandroom/_{page}_{part}.html), as HTML by part, for the page
    to put in place: `?parts=tiles,alerts` for those only (an event names what changed), all of the
    page's `known` parts by default. One answer for the room and the wall."""
    user = caller(request)
    unit = _unit(request, user)
    asked = tuple(p for p in request.GET.get("parts", "").split(",") if p in known) or known
    context = {"unit": unit, **_parts_context(request, user, unit, asked)}
    return JsonResponse(
        {name: render_to_string(f"commandroom/_{page}_{name}.html", context, request) for name in asked}
    )


@login_required
@area_aware
@replica_reads
def room_map(request: HttpRequest) -> JsonResponse:
    """The unit's children with their coordinates and the chosen figure (see room.map_data)."""
    user = caller(request)
    unit = _unit(request, user)
    figure, language = _figure(request), request.LANGUAGE_CODE
    data = room.shared(
        unit, f"map:{figure.code}", language, lambda: room.map_data(unit, figure, room.latest_day(), language)
    )
    data = {**data, "items": [dict(item) for item in data["items"]]}  # the cached answer stays as it was
    for item in data["items"]:  # drill down: a unit with units below has a room; the bottom, its page
        edition, _sep, code = item["ref"].partition(":")
        item["url"] = (
            f"{reverse('room')}?unit={item['ref']}"
            if item["drill"]
            else reverse("unit", args=[edition, code])
        )
    return JsonResponse(data)
