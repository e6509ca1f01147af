"""Content-Security-Policy and Permissions-Policy on every HTML page.

Scripts come only from our own static files: no inline script, no inline event handler, no eval. A
template that needs server data hands it over in data-* attributes or a <script type="application/json">
that a static script reads. Styles too come only from our own files; scripts may still set an
element's style through the DOM (Leaflet places its markers so), which CSP does not govern.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)


@lru_cache(maxsize=4)
def content_security_policy(tile_url: str = "") -> str:
    images = ["'self'", "data:"]  # data: for the API docs' icons (Swagger UI's stylesheet)
    if tile_url:
        # The room's base map comes from the tile server named in DIEUHANH_ROOM_TILE_URL; Leaflet's
        # {s} placeholder stands for its subdomains.
        parts = urlsplit(tile_url)
        images.append(f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}")
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class SecurityPolicyMiddleware:
    """Adds both headers to HTML answers (pages, the admin site, the API's docs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault(
                "Content-Security-Policy", content_security_policy(getattr(settings, "ROOM_TILE_URL", ""))
            )
            response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
