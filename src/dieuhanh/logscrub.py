"""No citizen ID or phone number in a log line (issue 16).

Django logs every 4xx with its path, uvicorn logs each request line, and an exception's message may
quote what it was given: a raw ID typed into a URL would otherwise sit in the server's log for years.
`ScrubFilter` is on every handler of settings.LOGGING, which `dieuhanh serve` hands to uvicorn as well,
and masks whatever is shaped like a citizen ID (9 or 12 digits) or a Vietnamese mobile number (0, 84
or +84, then 3, 5, 7, 8 or 9 and eight digits) in the message, its arguments and the traceback. The
shapes are those `warehouse.persons.normalise` accepts: single spaces, dots or dashes may stand between
the digits, and digits of any script count (a fullwidth ０ is a 0).

It errs on the side of masking: a 12-digit amount or a 9-digit run inside a token is masked too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

ID_MASK = "[ẩn số định danh]"
PHONE_MASK = "[ẩn số điện thoại]"

_GAP = r"[ .\-]?"
_SHAPES = re.compile(
    r"(?<!\d)(?:"
    rf"(?P<phone>(?:\+84|84|0){_GAP}[35789](?:{_GAP}\d){{8}})"
    rf"|\d(?:{_GAP}\d){{11}}|\d(?:{_GAP}\d){{8}}"
    r")(?!\d)",
    re.ASCII,
)


class _AsciiDigits(dict[int, int]):
    """str.translate table: every decimal digit of any script to its ASCII digit, one character for one,
    so that the positions found in the translated text are those of the original."""

    def __missing__(self, char: int) -> int:
        value = unicodedata.decimal(chr(char), None)
        self[char] = result = char if value is None else ord("0") + value
        return result


_ASCII_DIGITS = _AsciiDigits({ord("＋"): ord("+")})


def scrub(text: str) -> str:
    """`text` with every ID- or phone-shaped run of digits replaced by a mask."""
    view = text if text.isascii() else text.translate(_ASCII_DIGITS)
    parts, last = [], 0
    for match in _SHAPES.finditer(view):
        parts += [text[last : match.start()], PHONE_MASK if match["phone"] else ID_MASK]
        last = match.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _scrub_arg(value: Any) -> Any:
    """A masked copy of an argument that holds a shape; anything else as it was (a %d still gets its int)."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | float):
        return value
    text = str(value)
    clean = scrub(text)
    return value if clean == text else clean


class ScrubFilter(logging.Filter):
    """Masks IDs and phone numbers in a record before any handler writes it (see the module's text).

    The record is changed in place, once: every later handler sees it masked. Arguments are masked one
    by one rather than folded into the message, because formatters such as uvicorn's access log read
    them by position; so a shape glued together from a format's digits and an argument's is not seen
    (no call of ours writes one).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "scrubbed", False):
            return True
        record.scrubbed = True
        try:
            _scrub_record(record)
        except Exception:  # an object whose str() fails must not fail the request that logs it
            record.msg, record.args, record.exc_info, record.exc_text = UNREADABLE, (), None, None
        return True


UNREADABLE = "[dòng nhật ký bỏ đi: không đọc được để che số định danh]"


def _scrub_record(record: logging.LogRecord) -> None:
    msg, args = record.msg, record.args
    record.msg = _scrub_arg(msg)
    if isinstance(args, Mapping):
        record.args = {k: _scrub_arg(v) for k, v in args.items()}
    elif args:
        record.args = tuple(_scrub_arg(a) for a in args)
    try:
        record.getMessage()
    except (TypeError, ValueError, KeyError):
        # A mask where the format wants a number: keep the line, as masked text.
        # (A call broken in itself stays as it is: logging reports it, with the masked arguments.)
        with contextlib.suppress(TypeError, ValueError, KeyError):
            record.msg, record.args = scrub(str(msg) % args if args else str(msg)), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
