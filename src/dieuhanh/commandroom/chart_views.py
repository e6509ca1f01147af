"""The charts' data (commandroom.charts) for the room, the unit page and the wall: `room/charts/NAME.json`
for the page to draw, `room/charts/NAME.csv` to download; `?unit=` inside the caller's area (404
outside it, as the room answers), `?figure=` for the ranking's figure, `?dx=` for the series' choice."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from dieuhanh.accounts.guards import caller
from dieuhanh.commandroom import charts, room
from dieuhanh.commandroom.room_views import _figure, _unit
from dieuhanh.replica import replica_reads
from dieuhanh.units.scoping import area_aware


def _chart(request: HttpRequest, name: str) -> charts.Chart:
    if name not in charts.CHARTS:
        raise Http404(_("No such chart."))
    unit = _unit(request, caller(request))
    figure, language, dx = _figure(request), request.LANGUAGE_CODE, request.GET.get("dx", "")[:100]
    # Only the ranking depends on the figure, only the series on dx: the others are one answer each.
    key = f"chart:{name}:{figure.code if name == 'rank' else ''}:{dx if name == 'series' else ''}"
    return room.shared(
        unit, key, language, lambda: charts.build(name, unit, figure=figure, language=language, dx=dx)
    )


@login_required
@area_aware
@replica_reads
def chart_json(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(_chart(request, name).as_json(request.LANGUAGE_CODE))


@login_required
@area_aware
@replica_reads
def chart_csv(request: HttpRequest, name: str) -> HttpResponse:
    chart = _chart(request, name)
    unit = request.GET.get("unit", "").replace(":", "-") or "phong-dieu-hanh"
    response = HttpResponse(chart.as_csv(), content_type="text/csv; charset=utf-8")
    safe = "".join(c for c in unit if c.isascii() and (c.isalnum() or c in "-_"))
    response["Content-Disposition"] = f'attachment; filename="bieu-do-{name}-{safe}.csv"'
    return response
