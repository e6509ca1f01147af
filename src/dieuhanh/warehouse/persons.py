"""Person IDs: normalised, then pseudonymised. The raw value never reaches the database."""

from __future__ import annotations

import hmac
import unicodedata

from django.conf import settings
from django.utils.translation import gettext_lazy as _

_SEPARATORS = str.maketrans("", "", " .-()/")
_MOBILE_FIRST_DIGITS = "35789"


class PersonIdError(ValueError):
    pass


def normalise(raw: str) -> str:
    """A 12-digit CCCD as it is; a mobile number as +84 and its 9 digits ('0912 345 678' → '+84912345678').

    Digits of any script count as the ASCII ones ('０７９…' typed on a fullwidth keyboard, or '٠٧٩…'):
    else one person would have two keys, and the same ID two pseudonyms."""
    value = _ascii_digits(raw).strip().translate(_SEPARATORS)
    if len(value) == 12 and _digits(value):
        return value
    if value.startswith("+84"):
        value = value[3:]
    elif value.startswith("84") and len(value) == 11:
        value = value[2:]
    elif value.startswith("0"):
        value = value[1:]
    if len(value) == 9 and _digits(value) and value[0] in _MOBILE_FIRST_DIGITS:
        return "+84" + value
    raise PersonIdError(_("not a 12-digit citizen ID (CCCD) nor a Vietnamese mobile number"))


def _ascii_digits(raw: str) -> str:
    if raw.isascii():  # nearly every ID: skip the work on the ingest path
        return raw
    # NFKC folds fullwidth digits, signs and spaces ('＋８４', '　'); the map then takes every other
    # script's decimal digits, which NFKC leaves as they are.
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in folded)


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()  # str.isdigit alone takes '²' and other scripts' digits


def person_key(raw: str, key: bytes | None = None) -> bytes:
    """HMAC-SHA256 of the normalised ID: the same person always gets the same 32 bytes."""
    return hmac.digest(key or settings.PSEUDONYM_KEY, normalise(raw).encode(), "sha256")


def short(key: bytes) -> str:
    """A key's first hex digits, for audit rows and logs (never the raw ID)."""
    return key[:6].hex()
