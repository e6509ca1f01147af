"""The wall (/wall/): the room on a video wall — one screen without scrolling, dark, large type, the
map in the centre with the figures, charts, directives and a live ticker around it. It turns through
its views (the caller's unit, then each unit below it whose day crossed a threshold) every
WALL_ROTATE_SECONDS (or `?seconds=`), and follows the room's stream (`room/stream`) of its top unit,
which hears every event below it. `?unit=` inside the caller's area, as for the room (404 outside)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from dieuhanh.accounts.guards import caller
from dieuhanh.accounts.models import User
from dieuhanh.commandroom import room
from dieuhanh.commandroom.room_views import _figures_context, _parts_context, _unit, parts_answer, unit_page
from dieuhanh.replica import replica_reads
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import area_aware
from dieuhanh.vnformat import number
from dieuhanh.warehouse.kinds import KINDS

MIN_SECONDS = 5
WALL_PARTS = ("tiles", "alerts", "directives")


def rotate_seconds(request: HttpRequest) -> int:
    asked = request.GET.get("seconds", "")
    seconds = int(asked) if asked.isdigit() else settings.WALL_ROTATE_SECONDS
    return max(MIN_SECONDS, min(seconds, 3600))


def views_of(unit: Unit, language: str) -> list[dict[str, Any]]:
    """The wall's views: the unit, then the units below it over a threshold on the latest day (the
    room's threshold alerts, read from the same shared figures), highest first, each once."""
    figures = room.shared(unit, "figures", language, lambda: _figures_context(unit, language))
    out = [{"ref": unit.ref, "name": unit.name, "reason": ""}]
    seen = {unit.ref}
    for alert in figures["threshold_alerts"]:
        if alert.unit.ref in seen or len(out) > settings.WALL_MAX_VIEWS:  # the unit + at most MAX
            continue
        seen.add(alert.unit.ref)
        reason = _("%(figure)s %(value)s (threshold %(threshold)s)") % {
            "figure": alert.figure.label,
            "value": number(alert.value, language, 0),
            "threshold": number(alert.threshold, language, 1),
        }
        out.append({"ref": alert.unit.ref, "name": alert.unit.name, "reason": reason})
    return out


@login_required
@area_aware
@replica_reads
@unit_page
def wall_page(request: HttpRequest, user: User, unit: Unit) -> HttpResponse:
    language = request.LANGUAGE_CODE
    config = {
        "unit": unit.ref,
        "seconds": rotate_seconds(request),
        "coalesceMs": int(settings.LIVE_COALESCE_SECONDS * 1000),
        "views": views_of(unit, language),
        "urls": {
            "map": reverse("room-map"),
            "parts": reverse("wall-parts"),
            "views": reverse("wall-views"),
            "stream": reverse("room-stream"),
            "room": reverse("room"),
        },
        "kinds": {name: kind.label for name, kind in KINDS.items()},
        "text": {
            "figures": _("New figures: %(kind)s from %(n)s communes"),
            "directive": _("Directive: %(title)s — %(event)s"),
            "feedback": _("New citizen's report: %(title)s — %(unit)s"),
            "feedbackAnswered": _("Citizen's report answered: %(title)s — %(unit)s"),
            "feedbackForwarded": _("Citizen's report forwarded: %(title)s — %(unit)s"),
            "feedbackProgress": _("Progress posted on a citizen's report: %(title)s — %(unit)s"),
            "report": _("Report %(definition)s %(period)s: %(state)s"),
            "events": {
                "issue": _("issued"),
                "update": _("updated"),
                "cancel": _("cancelled"),
                "read": _("read by a unit"),
                "acknowledge": _("acknowledged by a unit"),
                "respond": _("answered by a unit"),
            },
            "live": _("Live"),
            "offline": _("Reconnecting…"),
            "view": _("View %(i)s of %(n)s"),
        },
    }
    context = {
        "unit": unit,
        "figures": room.FIGURES,
        "config": config,
        "seconds": config["seconds"],
        # The room's map with real boundaries (issue 17, point 3) once it is there; else wall_map.js's own.
        "vnmap": bool(finders.find("commandroom/vnmap.js")),
        **_parts_context(request, user, unit),
    }
    return render(request, "commandroom/wall.html", context)


@login_required
@area_aware
@replica_reads
def wall_parts(request: HttpRequest) -> JsonResponse:
    """The wall's live parts for one of its views, as HTML by part (`?parts=` as the room's)."""
    return parts_answer(request, "wall", WALL_PARTS)


@login_required
@area_aware
@replica_reads
def wall_views(request: HttpRequest) -> JsonResponse:
    """The views the wall turns through now (they change as units cross their thresholds)."""
    unit = _unit(request, caller(request))
    return JsonResponse({"views": views_of(unit, request.LANGUAGE_CODE)})
