"""Numbers and dates as Vietnamese readers write them (DESIGN §9), through Babel's vi_VN locale.

One module for pages, exports and reports: 24.500 · 3,46 · 26/8/2021.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from babel.numbers import format_decimal

LOCALES = {"vi": "vi_VN", "en": "en_US"}
VN_TZ = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh: UTC+7 all year, no daylight saving


def number(value: float | int | None, language: str = "vi", decimals: int = 2) -> str:
    """24500 → '24.500'; 3.456 → '3,46' (at most `decimals` places, no trailing zeros)."""
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=LOCALES.get(language, "vi_VN"))


def short_date(value: date, language: str = "vi") -> str:
    """26/8/2021 in Vietnamese text (no leading zeros); ISO-like 2021-08-26 in English."""
    return f"{value.day}/{value.month}/{value.year}" if language == "vi" else value.isoformat()


def short_datetime(value: datetime, language: str = "vi") -> str:
    """A moment in Vietnam's time: '09:10 26/8/2021'; '2021-08-26 09:10' in English."""
    local = value.astimezone(VN_TZ)
    return f"{local:%H:%M} {short_date(local, language)}" if language == "vi" else f"{local:%Y-%m-%d %H:%M}"


def parse_local(value: str) -> datetime:
    """An ISO date and time as people type it (a form's datetime-local, a command's option): a time
    without an offset is Vietnam's. ValueError when it is not one."""
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)
