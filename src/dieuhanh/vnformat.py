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
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_decimal

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


def parse_local(value: str) -> datetime:
    """An ISO date and time as people type it (a form's datetime-local, a command's option): a time
    without an offset is Vietnam's. ValueError when it is not one."""
    moment = datetime.fromisoformat(value.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


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
