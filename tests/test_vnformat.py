from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from dieuhanh.vnformat import number, short_date


def test_the_seeds_own_numbers():
    assert number(24500) == "24.500"
    assert number(126.34) == "126,34"
    assert number(3.456) == "3,46"
    assert number(1992) == "1.992"
    assert number(0.5, decimals=0) == "0"  # banker's rounding of Babel: half to even
    assert number(24500, "en") == "24,500"
    assert number(None) == ""


def test_dates_in_text():
    assert short_date(date(2021, 8, 26)) == "26/8/2021"
    assert short_date(date(2020, 1, 5)) == "5/1/2020"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_read_back(n):
    assert int(number(n).replace(".", "")) == n
