"""Numbers, figures and dates as Vietnamese readers write them (DESIGN §9), through Babel's vi_VN locale.

One module for pages, exports and periodic reports (Decree 30/2020/NĐ-CP style):
24.500 · 3,46 · 126,34 triệu thuê bao · tăng 3,46% so với cùng kỳ · ngày 05 tháng 01 năm 2020.

Every function rounds half away from zero (0,005 → 0,01), the way people round by hand; Python's
round() and Babel's default (half to even) would write 0,5 as 0 and 2,5 as 2. Rounding is done on the
decimal text of a float (str(0.125) == '0.125'), so what is rounded is the number the reader sees.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from babel.numbers import format_decimal
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from pydantic import AfterValidator

LOCALES = {"vi": "vi_VN", "en": "en_US"}
VN_TZ = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh: UTC+7 all year, no daylight saving

SCALES = (("nghìn tỷ", 10**12), ("tỷ", 10**9), ("triệu", 10**6), ("nghìn", 10**3))
MISSING = "chưa có số liệu"

Number = float | int | Decimal
_FACTORS = dict(SCALES)
_ENGLISH_SCALES = {"nghìn tỷ": "trillion", "tỷ": "billion", "triệu": "million", "nghìn": "thousand"}


def _decimal(value: object) -> Decimal:
    """The value as an exact Decimal; ValueError naming it when it is not a finite number."""
    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not exact.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return exact


def _round(value: Decimal, decimals: int) -> Decimal:
    rounded = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    # -0,001 rounds to -0; a report must not print "-0".
    return rounded.copy_abs() if rounded.is_zero() else rounded


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def number(value: Number | None, language: str = "vi", decimals: int = 2) -> str:
    """24500 → '24.500'; 3.456 → '3,46' (at most `decimals` places, no trailing zeros)."""
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "#" * decimals if decimals else "")
    rounded = _round(_decimal(value), decimals)
    # Already rounded, so Babel's own half-to-even quantizing has nothing left to decide.
    return format_decimal(rounded, format=pattern, locale=LOCALES.get(language, "vi_VN"))


def whole_number(value: int) -> str:
    """A count in the reader's language, for a message: 10.485.760 in Vietnamese, 10,485,760 in English."""
    return number(value, (get_language() or "vi")[:2], 0)


def _choose_scale(amount: Decimal, scale: str | None, decimals: int) -> tuple[str, int]:
    if scale == "":
        return "", 1
    if scale is not None:
        if scale not in _FACTORS:
            raise ValueError(f"{scale!r} is not a scale word (one of {', '.join(_FACTORS)})")
        return scale, _FACTORS[scale]
    for word, factor in SCALES:
        # A word is due once the figure, written at the scale below (each is 1.000 times the next),
        # would round to 1.000 or more: 999.999 reads "1 triệu", not "1.000 nghìn", while 999 stays "999".
        if abs(_round(amount * 1000 / factor, decimals)) >= 1000:
            return word, factor
    return "", 1


def scaled(
    value: Number, unit: str = "", *, scale: str | None = None, decimals: int = 2, language: str = "vi"
) -> str:
    """126_340_000 → '126,34 triệu'; with unit 'thuê bao' → '126,34 triệu thuê bao'.

    scale=None picks the largest scale word the value reaches (none under 1.000: '820'); scale=''
    forces none ('196.762 thuê bao'); a scale word forces it ('24.500 tỷ' rather than '24,5 nghìn tỷ').
    English pages get English scale words ('126.34 million'); the unit is written as given.
    """
    amount = _decimal(value)
    word, factor = _choose_scale(amount, scale, decimals)
    if language != "vi":
        word = _ENGLISH_SCALES.get(word, word)
    return _join(number(amount / factor, language, decimals), word, unit)


def percent(value: Number, decimals: int = 2) -> str:
    """3.456 → '3,46%'; 10 → '10%'; -0.81 → '-0,81%' (Vietnamese sets % against the number)."""
    return number(value, "vi", decimals) + "%"


def change(pct: Number | None, *, against: str = "so với cùng kỳ", decimals: int = 2) -> str:
    """10 → 'tăng 10% so với cùng kỳ'; -0.81 → 'giảm 0,81% so với cùng kỳ'.

    A change that rounds to nothing at `decimals` reads 'bằng cùng kỳ' (keeping the rest of `against`:
    'bằng cùng kỳ năm trước'), or 'không đổi ' + against for other comparisons; None means the base
    period has no figure.
    """
    if pct is None:
        return "chưa có số liệu cùng kỳ"
    rounded = _round(_decimal(pct), decimals)
    if rounded.is_zero():
        if against.startswith("so với cùng kỳ"):
            return "bằng " + against.removeprefix("so với ")
        return _join("không đổi", against)
    return _join("tăng" if rounded > 0 else "giảm", percent(abs(rounded), decimals), against)


def progress(pct: Number | None, of: str = "kế hoạch năm") -> str:
    """43.78 → 'đạt 43,78% kế hoạch năm'; None → 'chưa có kế hoạch'."""
    return "chưa có kế hoạch" if pct is None else _join("đạt", percent(pct), of)


def reached(is_estimate: bool) -> str:
    """Reports write 'ước đạt' for a figure estimated before the period closes, 'đạt' for a final one."""
    return "ước đạt" if is_estimate else "đạt"


# A unit may follow ('1.992 tỷ đồng') but may not begin with a scale word, so that a mistyped scale
# ('126,34 triệu.') is refused instead of being read as a unit and silently dropped.
_NUMBER = re.compile(
    r"(?P<sign>[-−+]?)\s*(?P<digits>[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:,(?P<fraction>[0-9]+))?"
    r"(?:\s*%|(?:\s+(?P<scale>nghìn\s+tỷ|tỷ|triệu|nghìn)(?!\w))?(?:\s+(?!nghìn|tỷ|triệu)[^0-9]+)?)"
)


def parse_number(text: str) -> float:
    """What number(), scaled() and percent() wrote, read back: '24.500' → 24500; '3,46%' → 3.46;
    '126,34 triệu' → 126_340_000; '1.992 tỷ đồng' → 1.992e12 (a trailing unit is allowed and ignored).
    ValueError naming the text when it is not such a number."""
    # Text pasted from documents may carry decomposed diacritics or non-breaking spaces.
    found = _NUMBER.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if found is None:
        raise ValueError(f"{text!r} is not a number as Vietnamese text writes it")
    exact = Decimal(found["digits"].replace(".", "") + "." + (found["fraction"] or "0"))
    if found["scale"]:
        exact *= _FACTORS[" ".join(found["scale"].split())]
    return float(-exact if found["sign"] in ("-", "−") else exact)


def short_date(value: date, language: str = "vi") -> str:
    """26/8/2021 in Vietnamese text (no leading zeros); ISO-like 2021-08-26 in English."""
    return f"{value.day}/{value.month}/{value.year}" if language == "vi" else value.isoformat()


def long_date(value: date) -> str:
    """'ngày 05 tháng 01 năm 2020', '… tháng 3 …', as a document's header writes it.

    Decree 30/2020/NĐ-CP (Appendix I) pads only days below 10 and the months 1 and 2, so that no
    digit can be slipped in front of them (05 → 15, tháng 1 → tháng 11); tháng 3 to 9 cannot be
    altered that way and are written bare. A moment is dated in Vietnam's time.
    """
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(VN_TZ)
    month = f"{value.month:02d}" if value.month < 3 else str(value.month)
    return f"ngày {value.day:02d} tháng {month} năm {value.year}"


def place_date(place: str, value: date) -> str:
    """'Hà Nội, ngày 05 tháng 01 năm 2020': the place-and-date line under a document's national motto."""
    return f"{place}, {long_date(value)}"


def short_datetime(value: datetime, language: str = "vi") -> str:
    """A moment in Vietnam's time: '09:10 26/8/2021'; '2021-08-26 09:10' in English."""
    local = value.astimezone(VN_TZ)
    return f"{local:%H:%M} {short_date(local, language)}" if language == "vi" else f"{local:%Y-%m-%d %H:%M}"


def in_vietnam(moment: datetime) -> datetime:
    """A moment given without an offset is Vietnam's, as a page's field or a typed date is."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


# A date and time an API client sends: without an offset it is Vietnam's (in_vietnam), as the pages
# read one. Left naive it was compared with aware times and failed the request (500).
Moment = Annotated[datetime, AfterValidator(in_vietnam)]


def parse_local(value: str) -> datetime:
    """A date and time as people type it, in a form's field or a command's option: Vietnamese
    ('26/8/2021 14:30') or ISO ('2021-08-26T14:30'); a time without an offset is Vietnam's.
    DateTextError (a ValueError) when it is not one; see parse_datetime_text."""
    return parse_datetime_text(value)


# Dates and times typed into forms (issue 17, point 5). Every page's date field is a text field read
# here, whatever the browser's language: a browser's own date input shows mm/dd/yyyy in English.

INPUT_EXAMPLE = "26/8/2021 14:30"
DATE_EXAMPLE = "26/8/2021"
YEARS = (1900, 2099)
# Words people put around a moment ("ngày 26/8/2021 lúc 14h30"), dropped before reading it.
_FILLER = re.compile(r"(?<!\w)(?:ngày|lúc|vào|hồi)(?!\w)|,", re.IGNORECASE)
_DATE = r"(?P<day>[0-9]{1,2}) ?(?P<sep>[/.-]) ?(?P<month>[0-9]{1,2}) ?(?P=sep) ?(?P<year>[0-9]+)"
_TIME = (
    r"(?P<hour>[0-9]{1,2}) ?(?:[:hg] ?(?P<minute>[0-9]{1,2})?"
    r"|giờ(?: ?(?P<minute_word>[0-9]{1,2})(?: ?phút)?)?)"
    r"(?P<seconds> ?: ?[0-9]{1,2})?"
)
_DATE_ONLY = re.compile(_DATE)
_DATE_TIME = re.compile(_DATE + " " + _TIME, re.IGNORECASE)
_TIME_DATE = re.compile(_TIME + " " + _DATE, re.IGNORECASE)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9:]+)?"
)


class DateTextError(ValueError):
    """A date or time that cannot be read, with the reason in the reader's language.

    for_field(label) names the field for a page: 'Hạn: “32/8/2021 14:30” không phải ngày giờ hợp lệ:
    tháng 8/2021 chỉ có 31 ngày. Hãy viết theo dạng 26/8/2021 14:30.'"""

    def __init__(self, text: str, reason: str, example: str = INPUT_EXAMPLE):
        self.text, self.reason, self.example = text, reason, example
        super().__init__(f"{text!r}: {reason}")

    def describe(self) -> str:
        """The reason alone, for a message that names its field itself (an import's line and column):
        '“32/12/2021” không phải ngày hợp lệ: tháng 12/2021 chỉ có 31 ngày. Hãy viết theo dạng 26/8/2021.'"""
        if not self.text.strip():
            return _("missing. Write it as %(example)s.") % {"example": self.example}
        if self.example == DATE_EXAMPLE:
            message = _("“%(text)s” is not a valid date: %(reason)s. Write it as %(example)s.")
        else:
            message = _("“%(text)s” is not a valid date and time: %(reason)s. Write it as %(example)s.")
        return message % {"text": self.text.strip(), "reason": self.reason, "example": self.example}

    def for_field(self, label: str) -> str:
        if not self.text.strip():
            return _("%(field)s: missing. Write it as %(example)s.") % {
                "field": label,
                "example": self.example,
            }
        if self.example == DATE_EXAMPLE:
            message = _("%(field)s: “%(text)s” is not a valid date: %(reason)s. Write it as %(example)s.")
        else:
            message = _(
                "%(field)s: “%(text)s” is not a valid date and time: %(reason)s. Write it as %(example)s."
            )
        return message % {
            "field": label,
            "text": self.text.strip(),
            "reason": self.reason,
            "example": self.example,
        }


def _checked_date(text: str, day: int, month: int, year_text: str, example: str) -> date:
    if len(year_text) != 4:
        raise DateTextError(text, _("write the year with its four digits"), example)
    year = int(year_text)
    if not YEARS[0] <= year <= YEARS[1]:
        reason = _("the year %(year)d is out of range (%(first)d to %(last)d)")
        raise DateTextError(text, reason % {"year": year, "first": YEARS[0], "last": YEARS[1]}, example)
    if not 1 <= month <= 12:
        if 1 <= day <= 12 and month <= 31:
            reason = _("there is no month %(month)d: write the day first, then the month (%(swapped)s)")
            swapped = f"{month}/{day}/{year}"
            raise DateTextError(text, reason % {"month": month, "swapped": swapped}, example)
        raise DateTextError(text, _("there is no month %(month)d") % {"month": month}, example)
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    if not 1 <= day <= last:
        reason = _("month %(month)d/%(year)d has %(last)d days")
        raise DateTextError(text, reason % {"month": month, "year": year, "last": last}, example)
    return date(year, month, day)


def _checked_time(text: str, hour: int, minute: int) -> time:
    if hour > 23:
        raise DateTextError(text, _("there is no hour %(hour)d (0 to 23)") % {"hour": hour})
    if minute > 59:
        raise DateTextError(text, _("there is no minute %(minute)d (0 to 59)") % {"minute": minute})
    return time(hour, minute)


def _plain(text: str) -> str:
    # Text pasted from documents may carry decomposed diacritics or non-breaking spaces.
    return " ".join(_FILLER.sub(" ", unicodedata.normalize("NFKC", text)).split())


def parse_datetime_text(text: str, *, default_time: time | None = None) -> datetime:
    """A moment as people type it, in Vietnam's time unless it says otherwise.

    '26/8/2021 14:30', '26/08/2021 14:30', '26-8-2021 14h30', '26.8.2021 14 giờ 30', '14:30 26/8/2021'
    (as the pages show a moment), 'ngày 26/8/2021 lúc 14h', and ISO ('2021-08-26T14:30', with or
    without an offset, as an API client or a browser's own date field sends it). A day alone takes
    `default_time` when there is one (a deadline's end of the day) and is refused otherwise.
    DateTextError says what is wrong: a 31st in a 30-day month, the month first, a two-digit year…
    """
    plain = _plain(text)
    if not plain:
        raise DateTextError(text, _("it is empty"))
    if _ISO.fullmatch(plain) or _ISO_DAY.fullmatch(plain):
        try:
            moment = datetime.fromisoformat(plain)
        except ValueError:
            raise DateTextError(text, _("this day does not exist")) from None
        if _ISO_DAY.fullmatch(plain):
            if default_time is None:
                raise DateTextError(text, _("the time is missing"))
            moment = datetime.combine(moment.date(), default_time)
        return in_vietnam(moment)
    found = _DATE_TIME.fullmatch(plain) or _TIME_DATE.fullmatch(plain)
    if found is None:
        alone = _DATE_ONLY.fullmatch(plain)
        if alone is None:
            raise DateTextError(text, _("it is not day/month/year hour:minute"))
        day = _checked_date(text, int(alone["day"]), int(alone["month"]), alone["year"], INPUT_EXAMPLE)
        if default_time is None:
            raise DateTextError(text, _("the time is missing"))
        return datetime.combine(day, default_time, tzinfo=VN_TZ)
    if found["seconds"]:
        raise DateTextError(text, _("give the hour and minutes only"))
    day = _checked_date(text, int(found["day"]), int(found["month"]), found["year"], INPUT_EXAMPLE)
    at = _checked_time(text, int(found["hour"]), int(found["minute"] or found["minute_word"] or 0))
    return datetime.combine(day, at, tzinfo=VN_TZ)


def parse_date_text(text: str) -> date:
    """A day as people type it: '26/8/2021', '26/08/2021', '26-8-2021', 'ngày 26/8/2021', ISO
    '2021-08-26'. DateTextError says what is wrong."""
    plain = _plain(text)
    if not plain:
        raise DateTextError(text, _("it is empty"), DATE_EXAMPLE)
    if _ISO_DAY.fullmatch(plain):
        try:
            return date.fromisoformat(plain)
        except ValueError:
            raise DateTextError(text, _("this day does not exist"), DATE_EXAMPLE) from None
    found = _DATE_ONLY.fullmatch(plain)
    if found is None:
        raise DateTextError(text, _("it is not day/month/year"), DATE_EXAMPLE)
    return _checked_date(text, int(found["day"]), int(found["month"]), found["year"], DATE_EXAMPLE)


def cell_date(value: object) -> date | None:
    """A day from an imported file's cell: a spreadsheet's date, or text read as parse_date_text
    reads it; None for an empty cell. DateTextError says what is wrong."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_date_text(str(value))


def input_datetime(value: datetime | None) -> str:
    """What a form's date-and-time field shows: '26/8/2021 14:30', in Vietnam's time, whatever the
    page's language (the parser reads it back, and ISO too)."""
    if value is None:
        return ""
    local = value.astimezone(VN_TZ) if value.tzinfo is not None else value
    return f"{short_date(local)} {local:%H:%M}"


def input_date(value: date | None) -> str:
    """What a form's date field shows: '26/8/2021'."""
    return "" if value is None else short_date(value)


_ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
          (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]  # fmt: skip


def roman(n: int) -> str:
    """3 → 'III' (quarters, report sections); 1 ≤ n ≤ 3999."""
    if not 1 <= n <= 3999:
        raise ValueError(f"{n} has no Roman numeral (1 to 3999)")
    out = []
    for value, letters in _ROMAN:
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)
