import math
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dieuhanh.vnformat import (
    MISSING,
    SCALES,
    VN_TZ,
    change,
    long_date,
    number,
    parse_number,
    percent,
    place_date,
    progress,
    reached,
    roman,
    scaled,
    short_date,
)


def half_up(x: float, places: int = 2) -> float:
    """The module's rounding, spelt out independently: half away from zero, on the decimal text."""
    return float(Decimal(str(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def test_the_seeds_own_numbers():
    assert number(24500) == "24.500"
    assert number(126.34) == "126,34"
    assert number(3.456) == "3,46"
    assert number(1992) == "1.992"
    assert number(0.5, decimals=0) == "1"  # half away from zero, as people round (Babel alone gives "0")
    assert number(24500, "en") == "24,500"
    assert number(None) == ""


def test_dates_in_text():
    assert short_date(date(2021, 8, 26)) == "26/8/2021"
    assert short_date(date(2020, 1, 5)) == "5/1/2020"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_read_back(n):
    assert int(number(n).replace(".", "")) == n


SEED_PHRASES = [
    (partial(scaled, 24_500e9, scale="tỷ"), "24.500 tỷ"),
    (partial(scaled, 820e6, "bưu gửi"), "820 triệu bưu gửi"),
    (partial(scaled, 76.53e12), "76,53 nghìn tỷ"),
    (partial(change, 3.46, against="so với cùng kỳ năm trước"), "tăng 3,46% so với cùng kỳ năm trước"),
    (partial(scaled, 126_340_000), "126,34 triệu"),
    (partial(change, -0.81, against="so với cùng kỳ năm trước"), "giảm 0,81% so với cùng kỳ năm trước"),
    (partial(scaled, 10_200_000, "SIM"), "10,2 triệu SIM"),
    (partial(scaled, 65_170_000), "65,17 triệu"),
    (partial(scaled, 196_762, "thuê bao", scale=""), "196.762 thuê bao"),
    (partial(number, 5082), "5.082"),
    (partial(change, 25.82, against="so với cùng kỳ năm 2020"), "tăng 25,82% so với cùng kỳ năm 2020"),
    (partial(scaled, 1_992e9, "đồng", scale="tỷ"), "1.992 tỷ đồng"),
    (partial(change, 10), "tăng 10% so với cùng kỳ"),
    (partial(progress, 43.78), "đạt 43,78% kế hoạch năm"),
    (partial(long_date, date(2020, 1, 5)), "ngày 05 tháng 01 năm 2020"),
    (lambda: f"quý {roman(3)}", "quý III"),
]


@pytest.mark.parametrize(("render", "phrase"), SEED_PHRASES, ids=[phrase for _, phrase in SEED_PHRASES])
def test_the_seeds_own_phrases(render, phrase):
    assert render() == phrase


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("24.500", 24_500),
        ("3,46", 3.46),
        ("126,34 triệu", 126_340_000),
        ("1.992 tỷ đồng", 1.992e12),
        ("3,46%", 3.46),
        ("-0,81", -0.81),
        ("  5.082 ", 5082),
        ("76,53 nghìn tỷ", 76.53e12),
        ("820 triệu bưu gửi", 820e6),
        ("196.762 thuê bao", 196_762),
        ("−1.200", -1200),  # a typographic minus, as word processors write it
        ("24.500\u00a0tỷ", 24.5e12),  # a non-breaking space, as pasted from a document
        ("0", 0),
    ],
)
def test_parse_number_reads_what_reports_write(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "1.5", "3,4,5", "12 34", "nan", "126,34 triệu.", "1,5 tỷđồng", "24,500.5"]
)
def test_parse_number_refuses_what_is_not_a_number(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_number(text)


def test_rounding_is_half_away_from_zero_everywhere():
    assert number(2.5, decimals=0) == "3"
    assert number(-2.5, decimals=0) == "-3"
    assert number(0.125) == "0,13"  # round(0.125, 2) == 0.12 in Python
    assert percent(0.125) == "0,13%"
    assert scaled(1_125_000) == "1,13 triệu"
    assert change(0.005) == "tăng 0,01% so với cùng kỳ"
    assert change(-0.005) == "giảm 0,01% so với cùng kỳ"


def test_signs_and_zero():
    assert number(-1200) == "-1.200"
    assert number(0) == "0"
    assert number(-0.001) == "0"  # not "-0"
    assert number(Decimal("1234.5")) == "1.234,5"
    assert number(3.10) == "3,1"
    assert scaled(0) == "0"
    assert scaled(-1_200_000) == "-1,2 triệu"
    assert percent(-0.81) == "-0,81%"
    assert percent(10) == "10%"


def test_scale_words():
    assert scaled(820) == "820"
    assert scaled(999) == "999"
    assert scaled(1000) == "1 nghìn"
    assert scaled(999_999) == "1 triệu"  # not "1.000 nghìn"
    assert scaled(999_994) == "999,99 nghìn"
    assert scaled(999.996) == "1 nghìn"  # not "1.000"
    assert scaled(24_500e9) == "24,5 nghìn tỷ"
    assert scaled(126_340_000, "thuê bao") == "126,34 triệu thuê bao"
    assert scaled(126_340_000, decimals=1) == "126,3 triệu"
    assert scaled(126_340_000, language="en") == "126.34 million"
    with pytest.raises(ValueError, match="'mega'"):
        scaled(1, scale="mega")


@pytest.mark.parametrize("render", [number, scaled, percent, change, progress], ids=lambda f: f.__name__)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_not_finite_is_refused_by_name(render, bad):
    with pytest.raises(ValueError, match=str(bad)):
        render(bad)


def test_change_without_a_difference_or_a_base():
    assert change(0) == "bằng cùng kỳ"
    assert change(0.004, against="so với cùng kỳ năm trước") == "bằng cùng kỳ năm trước"
    assert change(0.04, decimals=1) == "bằng cùng kỳ"
    assert change(0, against="so với tháng trước") == "không đổi so với tháng trước"
    assert change(None) == "chưa có số liệu cùng kỳ"


def test_progress_reached_and_missing():
    assert progress(None) == "chưa có kế hoạch"
    assert progress(100, of="kế hoạch quý") == "đạt 100% kế hoạch quý"
    assert f"{reached(True)} {progress(43.78).removeprefix('đạt ')}" == "ước đạt 43,78% kế hoạch năm"
    assert reached(False) == "đạt"
    assert MISSING == "chưa có số liệu"


def test_dates_in_document_headers():
    # Decree 30/2020/NĐ-CP: zero before days under 10 and months 1 and 2 only.
    assert long_date(date(2023, 2, 28)) == "ngày 28 tháng 02 năm 2023"
    assert long_date(date(2023, 3, 12)) == "ngày 12 tháng 3 năm 2023"
    assert long_date(date(2023, 12, 1)) == "ngày 01 tháng 12 năm 2023"
    assert place_date("Hà Nội", date(2020, 1, 5)) == "Hà Nội, ngày 05 tháng 01 năm 2020"
    assert long_date(datetime(2020, 1, 4, 23, 0, tzinfo=VN_TZ)) == "ngày 04 tháng 01 năm 2020"
    assert long_date(datetime.fromisoformat("2020-01-04T18:00:00+00:00")) == "ngày 05 tháng 01 năm 2020"


BIG = 10**15
two_place_floats = st.integers(min_value=-(BIG * 100) + 1, max_value=BIG * 100 - 1).map(lambda c: c / 100)
floats = st.floats(min_value=-BIG, max_value=BIG, allow_nan=False, exclude_min=True, exclude_max=True)


@given(st.integers(min_value=-BIG + 1, max_value=BIG - 1))
def test_any_integer_reads_back(n):
    assert parse_number(number(n)) == n


@given(two_place_floats)
def test_any_two_place_float_reads_back(x):
    assert parse_number(number(x)) == x


@given(floats)
def test_any_float_reads_back_within_rounding(x):
    assert parse_number(number(x)) == half_up(x)


@given(floats, st.sampled_from([None, "", *(word for word, _ in SCALES)]))
def test_scaled_reads_back_within_its_scale(x, scale):
    text = scaled(x, "thuê bao", scale=scale)
    factor = next((f for word, f in SCALES if f" {word} " in f"{text} "), 1)
    error = abs(Decimal(parse_number(text)) - Decimal(x))
    assert error <= Decimal("0.005") * factor + Decimal(math.ulp(x)), text


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_change_says_which_way(pct):
    text = change(pct, against="so với cùng kỳ năm trước")
    shown = Decimal(str(pct))  # the module rounds the decimal text of a float, as a reader would
    if shown >= Decimal("0.005"):
        assert text.startswith("tăng ")
    elif shown <= Decimal("-0.005"):
        assert text.startswith("giảm ")
    else:
        assert text == "bằng cùng kỳ năm trước"


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))
def test_percent_reads_back(x):
    assert parse_number(percent(x)) == half_up(x)
