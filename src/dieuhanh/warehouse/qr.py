"""Venue QR codes: the payload carries the venue code and a signature, so a forged code is refused."""

from __future__ import annotations

import base64
import hmac
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext_lazy as _

PREFIX = "DHQR1"
_SIG_BYTES = 10  # 80 bits: forging one by guessing is out of reach, and the code stays small


class QrError(ValueError):
    pass


def _signature(code: str) -> str:
    digest = hmac.digest(settings.QR_SIGNING_KEY, f"venue:{code}".encode(), "sha256")[:_SIG_BYTES]
    return base64.b32encode(digest).decode().rstrip("=")


def payload(code: str) -> str:
    """'DHQR1:V79-000123:K5QX…' — what the QR image holds."""
    return f"{PREFIX}:{code}:{_signature(code)}"


def is_payload(value: str) -> bool:
    return value.startswith(PREFIX + ":")


def venue_code(value: str) -> str:
    """The venue code of a scanned payload; QrError when it was not signed by this platform."""
    prefix, _sep, rest = value.strip().partition(":")
    code, _sep, signature = rest.rpartition(":")
    if prefix != PREFIX or not code or not hmac.compare_digest(signature, _signature(code)):
        raise QrError(_("forged or damaged QR code: its signature does not match"))
    return code


def write_png(code: str, path: Path) -> Path:
    import qrcode

    image = qrcode.make(
        payload(code), error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4
    )
    image.save(str(path))
    return path
