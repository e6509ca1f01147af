"""Date and time fields, read the Vietnamese way on every page (issue 17, point 5).

Every date field is a text field ('26/8/2021 14:30') read by dieuhanh.vnformat's one parser, whatever
the browser's language. Views read a field with `moment_field`; the fields' script (vndate.js) asks
`check_date` how the parser reads what was typed, so that the check in the browser is the server's own.
"""

from __future__ import annotations

from datetime import datetime, time

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from dieuhanh.units.scoping import public
from dieuhanh.vnformat import VN_TZ, DateTextError, input_datetime, parse_datetime_text

END_OF_DAY = time(23, 59)
START_OF_DAY = time(0, 0)


class FieldError(ValueError):
    """A field's value that cannot be read; the message names the field, in the page's language."""


def moment_field(label: str, text: str, *, default_time: time | None = None) -> datetime:
    """A date-and-time field's value as a moment (Vietnam's time); FieldError naming `label`."""
    try:
        return parse_datetime_text(text, default_time=default_time)
    except DateTextError as e:
        raise FieldError(e.for_field(label)) from None


def _default_time(value: str) -> time | None:
    try:
        return time.fromisoformat(value) if value else None
    except ValueError:
        return None


@public  # no area data: it reads text the way the forms do, for anyone's form (the login page has none)
@require_GET
def check_date(request: HttpRequest) -> JsonResponse:
    """?text=…&label=…&default=23:59 → {"ok": true, "text": "26/8/2021 14:30", "local": "2021-08-26T14:30"} or
    {"ok": false, "error": "<label>: … Viết theo dạng 26/8/2021 14:30."}."""
    text = request.GET.get("text", "")[:100]
    label = request.GET.get("label", "")[:200]
    try:
        moment = parse_datetime_text(text, default_time=_default_time(request.GET.get("default", "")))
    except DateTextError as e:
        return JsonResponse({"ok": False, "error": e.for_field(label)})
    local = moment.astimezone(VN_TZ)
    return JsonResponse({"ok": True, "text": input_datetime(moment), "local": f"{local:%Y-%m-%dT%H:%M}"})
