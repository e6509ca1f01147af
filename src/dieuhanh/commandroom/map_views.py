"""The province shapes of a map (/room/shapes/VN-2025.json), for the room's and the wall's maps.

`make assets` builds them (dieuhanh.units.shapes) into the static files' vendor folder: build
output, never committed. They are the same for everyone and change only with a new build, so they
are served once read with an ETag, a day of browser caching and gzip when the browser takes it; a
browser asks again only after a day, and then gets a 304.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from dieuhanh.units.scoping import public
from dieuhanh.units.shapes import EDITIONS

SHAPES = "vendor/vnmap"
MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class _Served:
    mtime: float
    body: bytes
    gzipped: bytes
    etag: str


_served: dict[str, _Served] = {}
_lock = threading.Lock()


def shapes_file(edition: str) -> Path | None:
    found = finders.find(f"{SHAPES}/{edition}.json")
    return Path(found) if isinstance(found, str) else None


def _read(edition: str) -> _Served | None:
    path = shapes_file(edition)
    if path is None:
        return None
    mtime = path.stat().st_mtime
    with _lock:
        served = _served.get(edition)
        if served is None or served.mtime != mtime:
            body = path.read_bytes()
            etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
            served = _Served(mtime, body, gzip.compress(body, 9, mtime=0), etag)
            _served[edition] = served
    return served


@login_required
@public  # the same boundaries for every signed-in user: no data of any area
def room_shapes(request: HttpRequest, edition: str) -> HttpResponse:
    if edition not in EDITIONS:
        raise Http404(_("No such map."))
    served = _read(edition)
    if served is None:
        return JsonResponse(
            {
                "title": _("The province boundaries have not been built"),
                "detail": _("Run `make assets` on the server to build them from their package."),
                "status": 503,
            },
            status=503,
            content_type="application/problem+json",
        )
    headers = {
        "ETag": served.etag,
        "Cache-Control": f"private, max-age={MAX_AGE}",
        "Vary": "Accept-Encoding, Cookie",
    }
    if served.etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return HttpResponse(
            served.gzipped,
            content_type="application/geo+json",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return HttpResponse(served.body, content_type="application/geo+json", headers=headers)
