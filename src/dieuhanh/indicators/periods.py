"""Reporting periods by their DHIS2 identifiers, plus year-to-date.

    daily 20210826 · weekly 2021W34 · monthly 202108 · quarterly 2021Q3 · six-monthly 2021S1
    yearly 2021 · year-to-date 2021YTD08 (1 January to the end of August 2021)

Weeks are ISO 8601 weeks, as in DHIS2: Monday to Sunday, numbered within the ISO year, whose
week 1 holds the year's first Thursday; the week number is written without a leading zero
(2021W1), which is DHIS2's form. Year-to-date is not a DHIS2 period type: reports here compare
"8 tháng đầu năm" with the same months of last year, so it is a period like the others.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.translation import gettext_lazy as _

from dieuhanh.errors import lazy_format
from dieuhanh.vnformat import parse_date_text, roman

PERIOD_TYPES = ("daily", "weekly", "monthly", "quarterly", "sixmonthly", "yearly", "ytd")

_ONE_DAY = timedelta(days=1)
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class PeriodError(ValueError):
    """A period identifier that names no period; `message` is the reader's (formatted when read: a
    form tries one reading after another)."""

    def __init__(self, pid: str) -> None:
        self.message = lazy_format(
            _("%(pid)s is not a period: use 20210826, 2021W34, 202108, 2021Q3, 2021S1, 2021 or 2021YTD08"),
            pid=repr(pid),
        )
        super().__init__(self.message)
        self.pid = pid


@dataclass(frozen=True, order=True)
class Period:
    """One period; build it with parse() or period_of(), which keep the four fields consistent."""

    start: date
    end: date  # inclusive
    type: str
    id: str

    def __str__(self) -> str:
        return self.id

    def label(self, language: str = "vi") -> str:
        """How a report names the period: 'quý III/2021', or 'Q3 2021' in English ("en")."""
        return _label_en(self) if language == "en" else _label_vi(self)

    def contains(self, other: Period | date) -> bool:
        """Whether a day, or every day of a period, lies within this period."""
        if isinstance(other, Period):
            return self.start <= other.start and other.end <= self.end
        return self.start <= other <= self.end

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def last_year(self) -> Period:
        """The same period a year earlier (cùng kỳ năm trước)."""
        if self.type == "daily":
            day = self.start
            if (day.month, day.day) == (2, 29):
                day -= _ONE_DAY  # 29 February has no twin in a common year; 28 February stands in for it
            return _day(day.replace(year=day.year - 1))
        if self.type == "weekly":
            year, week, _ = self.start.isocalendar()
            return _week(year - 1, min(week, _weeks_in(year - 1)))
        return period_of(self.type, self.end.replace(year=self.end.year - 1, day=1))

    def previous(self) -> Period:
        """The period of the same type just before: 202101 → 202012, 2021YTD01 → 2020YTD12."""
        # A year-to-date period starts on 1 January whatever its length; it steps back by its last month.
        anchor = self.end.replace(day=1) if self.type == "ytd" else self.start
        return period_of(self.type, anchor - _ONE_DAY)

    def ytd(self) -> Period:
        """The year-to-date period ending with the month that holds this period's last day."""
        return period_of("ytd", self.end)

    def split(self, type: str) -> list[Period]:
        """The periods of `type` lying wholly within this one, in order."""
        _check_type(type)
        # From one period of the type to the next, not day by day (the room's render spent half its time
        # here): the periods of a type follow each other, and a year-to-date one changes with the month,
        # so the day after a period's end is the first day of the next candidate.
        periods, day = [], self.start
        while day <= self.end:
            period = period_of(type, day)
            if self.contains(period):
                periods.append(period)
            day = period.end + _ONE_DAY
        return periods


def parse(pid: str) -> Period:
    """The period an identifier names; PeriodError unless it is a canonical identifier."""
    text = pid.strip()
    for pattern, build in _PARSERS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        try:
            period = build(*(int(group) for group in match.groups()))
        except ValueError as error:  # a month 13, a 30 February, a week 53 of a short year
            raise PeriodError(pid) from error
        if period.id == text:  # the patterns should admit only canonical ids; this keeps parse honest
            return period
    raise PeriodError(pid)


_ROMAN_QUARTERS = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
# What people type for a period, as the reports name it (label()): the canonical ids stay accepted.
_WRITTEN: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Period]], ...] = (
    (
        re.compile(r"(?:tháng |t ?)?([0-9]{1,2}) ?(?:/|năm) ?([0-9]{4})"),
        lambda m: _month(int(m[2]), int(m[1])),
    ),
    (
        re.compile(r"(?:quý|q) ?(i{1,3}|iv|[1-4]) ?(?:/|năm) ?([0-9]{4})"),
        lambda m: _quarter(int(m[2]), _ROMAN_QUARTERS.get(m[1]) or int(m[1])),
    ),
    (re.compile(r"6 tháng (đầu|cuối) năm ([0-9]{4})"), lambda m: _half(int(m[2]), 1 if m[1] == "đầu" else 2)),
    (re.compile(r"([0-9]{1,2}) tháng đầu năm ([0-9]{4})"), lambda m: _ytd(int(m[2]), int(m[1]))),
    (re.compile(r"năm ([0-9]{4})"), lambda m: _year(int(m[1]))),
    (re.compile(r"tuần ([0-9]{1,2}) ?(?:/|năm) ?([0-9]{4})"), lambda m: _week(int(m[2]), int(m[1]))),
)


def read(text: str) -> Period:
    """A period as a person types it in a form: its identifier (202108, 2021Q3…) or the way reports
    name it — 'tháng 8/2021', '8/2021', 'T8/2021', 'quý III/2021', 'quý 3/2021', '6 tháng đầu năm 2021',
    '8 tháng đầu năm 2021', 'năm 2021', 'tuần 34/2021', or a day ('26/8/2021', read by
    vnformat.parse_date_text, the one date parser). PeriodError otherwise."""
    try:
        return parse(text)
    except PeriodError:
        pass
    plain = " ".join(unicodedata.normalize("NFKC", text).lower().split())
    for pattern, build in _WRITTEN:
        match = pattern.fullmatch(plain)
        if match is not None:
            try:
                return build(match)
            except ValueError as error:  # tháng 13, quý 5 (refused by the pattern), tuần 53 of a short year
                raise PeriodError(text) from error
    try:
        return _day(parse_date_text(plain))
    except ValueError:
        raise PeriodError(text) from None


def period_of(type: str, day: date) -> Period:
    """The period of `type` that holds `day`; for "ytd", the year to the end of `day`'s month."""
    _check_type(type)
    year, month = day.year, day.month
    if type == "daily":
        return _day(day)
    if type == "weekly":
        iso_year, week, _ = day.isocalendar()
        return _week(iso_year, week)
    if type == "monthly":
        return _month(year, month)
    if type == "quarterly":
        return _quarter(year, (month + 2) // 3)
    if type == "sixmonthly":
        return _half(year, (month + 5) // 6)
    if type == "yearly":
        return _year(year)
    return _ytd(year, month)


def _check_type(type: str) -> None:
    if type not in PERIOD_TYPES:
        raise ValueError(f"{type!r} is not a period type: use one of {', '.join(PERIOD_TYPES)}")


def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _weeks_in(iso_year: int) -> int:
    # 28 December always falls in the ISO year's last week.
    return date(iso_year, 12, 28).isocalendar().week


def _months(year: int, first: int, last: int, type: str, pid: str) -> Period:
    return Period(date(year, first, 1), date(year, last, _month_length(year, last)), type, pid)


def _day(day: date) -> Period:
    return Period(day, day, "daily", f"{day.year:04d}{day.month:02d}{day.day:02d}")


def _week(iso_year: int, week: int) -> Period:
    start = date.fromisocalendar(iso_year, week, 1)  # ValueError for a week 53 of a 52-week year
    return Period(start, start + timedelta(days=6), "weekly", f"{iso_year:04d}W{week}")


def _month(year: int, month: int) -> Period:
    return _months(year, month, month, "monthly", f"{year:04d}{month:02d}")


def _quarter(year: int, quarter: int) -> Period:
    return _months(year, 3 * quarter - 2, 3 * quarter, "quarterly", f"{year:04d}Q{quarter}")


def _half(year: int, half: int) -> Period:
    return _months(year, 6 * half - 5, 6 * half, "sixmonthly", f"{year:04d}S{half}")


def _year(year: int) -> Period:
    return _months(year, 1, 12, "yearly", f"{year:04d}")


def _ytd(year: int, month: int) -> Period:
    if not 1 <= month <= 12:
        raise ValueError(f"no month {month}")
    return _months(year, 1, month, "ytd", f"{year:04d}YTD{month:02d}")


def _daily_from(year: int, month: int, day: int) -> Period:
    return _day(date(year, month, day))


# The forms differ in length or letters, so at most one pattern matches an identifier.
_PARSERS: tuple[tuple[re.Pattern[str], Callable[..., Period]], ...] = (
    (re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})"), _daily_from),
    (re.compile(r"([0-9]{4})W([1-9][0-9]?)"), _week),
    (re.compile(r"([0-9]{4})([0-9]{2})"), _month),
    (re.compile(r"([0-9]{4})Q([1-4])"), _quarter),
    (re.compile(r"([0-9]{4})S([12])"), _half),
    (re.compile(r"([0-9]{4})"), _year),
    (re.compile(r"([0-9]{4})YTD([0-9]{2})"), _ytd),
)


def _label_vi(period: Period) -> str:
    start, end = period.start, period.end
    if period.type == "daily":
        return f"ngày {start.day}/{start.month}/{start.year}"
    if period.type == "weekly":
        iso_year, week, _ = start.isocalendar()
        return f"tuần {week}/{iso_year}"
    if period.type == "monthly" or (period.type == "ytd" and end.month == 1):
        return f"tháng {end.month}/{end.year}"
    if period.type == "quarterly":
        return f"quý {roman(end.month // 3)}/{end.year}"
    if period.type == "sixmonthly":
        return f"6 tháng {'đầu' if end.month == 6 else 'cuối'} năm {end.year}"
    if period.type == "yearly":
        return f"năm {end.year}"
    return f"{end.month} tháng đầu năm {end.year}"


def _label_en(period: Period) -> str:
    start, end = period.start, period.end
    if period.type == "daily":
        return f"{start.day} {_MONTHS_EN[start.month - 1][:3]} {start.year}"
    if period.type == "weekly":
        iso_year, week, _ = start.isocalendar()
        return f"week {week} of {iso_year}"
    if period.type == "monthly" or (period.type == "ytd" and end.month == 1):
        return f"{_MONTHS_EN[end.month - 1]} {end.year}"
    if period.type == "quarterly":
        return f"Q{end.month // 3} {end.year}"
    if period.type == "sixmonthly":
        return f"{'first' if end.month == 6 else 'second'} half of {end.year}"
    if period.type == "yearly":
        return str(end.year)
    return f"January–{_MONTHS_EN[end.month - 1]} {end.year}"
