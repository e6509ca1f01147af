"""The warehouse's reasons for refusing a value, in the reader's language, said once for its apps.

Why msgspec refused a record: its common reasons are translated, with the types, bounds and values as
msgspec names them (`str`, `int`, `<= 100`); a reason not known here stays as msgspec wrote it. Called
only for rejected records, so the ingest path pays nothing. Then the checks venues and enterprises
share (a place's coordinates, a file's columns, a number)."""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

_LENGTH = re.compile(r"Expected `(\w+)` of length ([<>]=?) (\d+)")
_TYPE = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")
_BOUND = re.compile(r"Expected `(\w+)` ([<>]=?) (\S+)")
_ENUM = re.compile(r"Invalid enum value (.+)")
_BYTE = re.compile(r"\(byte (\d+)\)")
_LIMIT = re.compile(r"field larger than field limit \((\d+)\)")


def decode_reason(text: str) -> str | Promise:
    """A msgspec validation message (without its " - at `$.field`" tail)."""
    if m := _LENGTH.fullmatch(text):
        return _("must be `%(type)s` of length %(op)s %(n)s") % {"type": m[1], "op": m[2], "n": m[3]}
    if m := _TYPE.fullmatch(text):
        return _("expected `%(expected)s`, got `%(got)s`") % {"expected": m[1], "got": m[2]}
    if m := _BOUND.fullmatch(text):
        return _("must be `%(type)s` %(op)s %(n)s") % {"type": m[1], "op": m[2], "n": m[3]}
    if m := _ENUM.fullmatch(text):
        return _("%(value)s is not one of the allowed values") % {"value": m[1]}
    if text.startswith("Invalid RFC3339 encoded"):
        return _("is not a date and time as RFC 3339 writes them")
    return text


def json_reason(text: str) -> str | Promise:
    """A msgspec decode error: the line is not JSON (where, when msgspec says)."""
    if text.startswith("Input data was truncated"):
        return _("not valid JSON: the line ends too soon")
    if m := _BYTE.search(text):
        return _("not valid JSON (at byte %(n)s)") % {"n": m[1]}
    return _("not valid JSON")


def csv_reason(error: Exception) -> str | Promise:
    """Why the CSV reader could not read a row."""
    if m := _LIMIT.search(str(error)):
        return _("not valid CSV: a cell is longer than %(n)s characters") % {"n": m[1]}
    return _("not valid CSV")


NOT_A_NUMBER = _("'%(value)s' is not a number")
LACKS_COLUMNS = _("%(file)s: the header lacks column(s) %(columns)s")


def lat_lon_fault(lat: float | None, lon: float | None) -> tuple[str, Promise] | None:
    """The field at fault and why, when a place's coordinates cannot be stored; None when they can."""
    if (lat is None) != (lon is None):
        return ("lat" if lat is None else "lon"), _("lat and lon go together")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "lat", _("lat and lon are degrees (-90…90, -180…180)")
    return None
