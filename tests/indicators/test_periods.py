from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dieuhanh.indicators.periods import PERIOD_TYPES, Period, PeriodError, parse, period_of

ONE_DAY = timedelta(days=1)
DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
PERIODS = st.builds(period_of, st.sampled_from(PERIOD_TYPES), DAYS)
MONTHLY_WHOLES = ("quarterly", "sixmonthly", "yearly", "ytd")


def is_long_iso_year(year: int) -> bool:
    """An ISO year has 53 weeks when it starts on a Thursday, or on a Wednesday in a leap year."""
    first = date(year, 1, 1).isoweekday()
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return first == 4 or (leap and first == 3)


EXAMPLES = [
    # id, type, first day, last day, Vietnamese label, English label
    ("20210826", "daily", "2021-08-26", "2021-08-26", "ngày 26/8/2021", "26 Aug 2021"),
    ("20200229", "daily", "2020-02-29", "2020-02-29", "ngày 29/2/2020", "29 Feb 2020"),
    ("2021W34", "weekly", "2021-08-23", "2021-08-29", "tuần 34/2021", "week 34 of 2021"),
    ("2021W1", "weekly", "2021-01-04", "2021-01-10", "tuần 1/2021", "week 1 of 2021"),
    ("2020W53", "weekly", "2020-12-28", "2021-01-03", "tuần 53/2020", "week 53 of 2020"),
    ("202108", "monthly", "2021-08-01", "2021-08-31", "tháng 8/2021", "August 2021"),
    ("202402", "monthly", "2024-02-01", "2024-02-29", "tháng 2/2024", "February 2024"),
    ("2021Q3", "quarterly", "2021-07-01", "2021-09-30", "quý III/2021", "Q3 2021"),
    ("2021Q4", "quarterly", "2021-10-01", "2021-12-31", "quý IV/2021", "Q4 2021"),
    ("2021S1", "sixmonthly", "2021-01-01", "2021-06-30", "6 tháng đầu năm 2021", "first half of 2021"),
    ("2021S2", "sixmonthly", "2021-07-01", "2021-12-31", "6 tháng cuối năm 2021", "second half of 2021"),
    ("2021", "yearly", "2021-01-01", "2021-12-31", "năm 2021", "2021"),
    ("2021YTD08", "ytd", "2021-01-01", "2021-08-31", "8 tháng đầu năm 2021", "January–August 2021"),
    ("2021YTD01", "ytd", "2021-01-01", "2021-01-31", "tháng 1/2021", "January 2021"),
    ("2021YTD12", "ytd", "2021-01-01", "2021-12-31", "12 tháng đầu năm 2021", "January–December 2021"),
]  # fmt: skip


@pytest.mark.parametrize(("pid", "type_", "first", "last", "vi", "en"), EXAMPLES)
def test_examples(pid: str, type_: str, first: str, last: str, vi: str, en: str) -> None:
    period = parse(pid)
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    assert (period.type, period.start, period.end, period.id, str(period)) == (type_, start, end, pid, pid)
    assert period.label() == period.label("vi") == vi
    assert period.label("en") == en
    assert period_of(type_, end) == period
    assert type_ == "ytd" or period_of(type_, start) == period  # a year-to-date period holds shorter ones


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse("  2021Q3\n") == parse("2021Q3")


BAD_IDS = [
    "2021Q5", "2021Q0", "202113", "202100", "20210230", "20211301", "2021W54", "2021W53", "2021W0",
    "2021W01", "2021S3", "2021YTD13", "2021YTD00", "2021YTD8", "0000", "", " ", "abc", "2021q3",
    "2021-08", "21Q3", "2021Q3x", "２０２１",
]  # fmt: skip


@pytest.mark.parametrize("pid", BAD_IDS)
def test_bad_ids(pid: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse(pid)
    assert repr(pid) in str(caught.value)


def test_error_message() -> None:
    with pytest.raises(PeriodError) as caught:
        parse("2021Q5")
    assert str(caught.value) == (
        "'2021Q5' không phải là kỳ báo cáo: hãy viết theo dạng 20210826, 2021W34, 202108, 2021Q3, 2021S1, "
        "2021 hoặc 2021YTD08"
    )
    assert isinstance(caught.value, ValueError)


def test_week_53_only_in_long_iso_years() -> None:
    assert parse("2020W53").end == date(2021, 1, 3)
    assert parse("2026W53").start == date(2026, 12, 28)
    for pid in ("2021W53", "2022W53", "2025W53"):
        with pytest.raises(PeriodError):
            parse(pid)


def test_unknown_type() -> None:
    with pytest.raises(ValueError, match="not a period type"):
        period_of("fortnightly", date(2021, 8, 26))
    with pytest.raises(ValueError, match="not a period type"):
        parse("2021").split("decade")


def test_ordering() -> None:
    ids = ["2021", "202101", "2021Q1", "20201231", "2021W34"]
    assert [p.id for p in sorted(parse(pid) for pid in ids)] == [
        "20201231", "202101", "2021Q1", "2021", "2021W34",
    ]  # fmt: skip


def test_contains() -> None:
    quarter = parse("2021Q3")
    assert quarter.contains(parse("202108"))
    assert quarter.contains(parse("2021W35"))  # 30 August to 5 September
    assert not quarter.contains(parse("2021W26"))  # 28 June to 4 July
    assert quarter.contains(date(2021, 9, 30))
    assert not quarter.contains(date(2021, 10, 1))
    assert not quarter.contains(parse("2021"))


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("20210826", "20200826"),
        ("20200229", "20190228"),
        ("2021W34", "2020W34"),
        ("2020W53", "2019W52"),
        ("2021W52", "2020W52"),
        ("2026W53", "2025W52"),
        ("202108", "202008"),
        ("2021Q3", "2020Q3"),
        ("2021S2", "2020S2"),
        ("2021", "2020"),
        ("2021YTD08", "2020YTD08"),
        ("2021YTD02", "2020YTD02"),
    ],
)
def test_last_year_examples(pid: str, expected: str) -> None:
    assert parse(pid).last_year() == parse(expected)


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("20210301", "20210228"),
        ("20210101", "20201231"),
        ("2021W34", "2021W33"),
        ("2021W1", "2020W53"),
        ("2022W1", "2021W52"),
        ("202101", "202012"),
        ("2021Q1", "2020Q4"),
        ("2021S1", "2020S2"),
        ("2021S2", "2021S1"),
        ("2021", "2020"),
        ("2021YTD08", "2021YTD07"),
        ("2021YTD01", "2020YTD12"),
    ],
)
def test_previous_examples(pid: str, expected: str) -> None:
    assert parse(pid).previous() == parse(expected)


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("20210826", "2021YTD08"),
        ("2021W34", "2021YTD08"),
        ("2020W53", "2021YTD01"),  # ends on 3 January 2021
        ("202108", "2021YTD08"),
        ("2021Q3", "2021YTD09"),
        ("2021S1", "2021YTD06"),
        ("2021", "2021YTD12"),
        ("2021YTD08", "2021YTD08"),
    ],
)
def test_ytd_examples(pid: str, expected: str) -> None:
    assert parse(pid).ytd() == parse(expected)


def ids(periods: list[Period]) -> list[str]:
    return [p.id for p in periods]


def test_split() -> None:
    assert ids(parse("2021Q3").split("monthly")) == ["202107", "202108", "202109"]
    assert ids(parse("2021YTD08").split("monthly")) == [f"2021{m:02d}" for m in range(1, 9)]
    assert ids(parse("2021YTD03").split("ytd")) == ["2021YTD01", "2021YTD02", "2021YTD03"]
    assert ids(parse("2021").split("quarterly")) == ["2021Q1", "2021Q2", "2021Q3", "2021Q4"]
    assert ids(parse("2021").split("sixmonthly")) == ["2021S1", "2021S2"]
    # August 2021 runs Sunday to Tuesday: weeks 30 and 35 reach outside it.
    assert ids(parse("202108").split("weekly")) == ["2021W31", "2021W32", "2021W33", "2021W34"]
    # 2021 starts on a Friday and its week 52 ends on 2 January 2022.
    assert ids(parse("2021").split("weekly")) == [f"2021W{w}" for w in range(1, 52)]
    assert parse("202108").split("quarterly") == []
    assert parse("2021Q3").split("ytd") == []
    assert ids(parse("2021W34").split("weekly")) == ["2021W34"]


# Properties, over periods of every type from 1990 to 2100.


@given(PERIODS)
def test_id_round_trip(period: Period) -> None:
    assert period.type in PERIOD_TYPES
    assert parse(period.id) == period
    assert parse(f" {period.id}\t") == period
    assert period.label("vi") and period.label("en")


@given(st.integers(1990, 2100), st.integers(0, 54))
def test_weeks_follow_iso_8601(year: int, week: int) -> None:
    pid = f"{year}W{week}"
    if not 1 <= week <= (53 if is_long_iso_year(year) else 52):
        with pytest.raises(PeriodError):
            parse(pid)
        return
    period = parse(pid)
    assert period.start.isoweekday() == 1 and period.end.isoweekday() == 7
    assert (period.end - period.start).days == 6
    # Week 1 holds the year's first Thursday.
    first_thursday = date(year, 1, 1) + timedelta(days=(4 - date(year, 1, 1).isoweekday()) % 7)
    assert period.start == first_thursday - timedelta(days=3) + timedelta(weeks=week - 1)


@given(st.integers(1990, 2100), st.integers(0, 13))
def test_months_and_ytd_ids(year: int, month: int) -> None:
    for pid in (f"{year}{month:02d}", f"{year}YTD{month:02d}"):
        if 1 <= month <= 12:
            assert parse(pid).end.month == month
        else:
            with pytest.raises(PeriodError):
                parse(pid)


@given(PERIODS)
def test_days(period: Period) -> None:
    days = period.days()
    assert len(days) == (period.end - period.start).days + 1
    assert days[0] == period.start and days[-1] == period.end
    assert all(period.contains(day) for day in days)
    assert not period.contains(period.start - ONE_DAY)
    assert not period.contains(period.end + ONE_DAY)
    assert period.contains(period)


@given(PERIODS)
def test_last_year(period: Period) -> None:
    before = period.last_year()
    assert before.type == period.type
    if period.type == "weekly":
        # 52 weeks back, or 53 when the earlier year is long; a week 53 lands on week 52.
        assert (period.start - before.start).days in (364, 371)
        week, before_week = period.start.isocalendar().week, before.start.isocalendar().week
        assert before_week == week or (week, before_week) == (53, 52)
        return
    assert before.start.year == period.start.year - 1
    assert (before.start.month, before.end.month) == (period.start.month, period.end.month)
    if period.type == "daily":
        feb_29 = (period.start.month, period.start.day) == (2, 29)
        assert before.start.day == (28 if feb_29 else period.start.day)
    else:
        assert before.id == f"{period.start.year - 1}{period.id[4:]}"


@given(PERIODS)
def test_previous(period: Period) -> None:
    before = period.previous()
    assert before.type == period.type
    if period.type == "ytd":
        assert before.start == date(before.end.year, 1, 1)
        assert before.end + ONE_DAY == period.end.replace(day=1)
    else:
        assert before.end + ONE_DAY == period.start


@given(PERIODS)
def test_split_daily_is_days(period: Period) -> None:
    split = period.split("daily")
    assert [p.start for p in split] == period.days()
    assert all(p.type == "daily" for p in split)


@given(PERIODS, st.sampled_from(PERIOD_TYPES))
def test_split_lies_inside_in_order(period: Period, type_: str) -> None:
    split = period.split(type_)
    assert all(p.type == type_ and period.contains(p) for p in split)
    assert split == sorted(split) and len(set(split)) == len(split)
    if type_ != "ytd":  # year-to-date periods overlap by design; the others tile time
        assert all(a.end + ONE_DAY == b.start for a, b in pairwise(split))


@given(PERIODS.filter(lambda p: p.type in MONTHLY_WHOLES))
def test_split_monthly_tiles_the_period(period: Period) -> None:
    months = period.split("monthly")
    assert [day for month in months for day in month.days()] == period.days()


@given(DAYS)
def test_quarter_contains_its_months(day: date) -> None:
    quarter = period_of("quarterly", day)
    months = quarter.split("monthly")
    assert len(months) == 3
    assert all(quarter.contains(m) and period_of("quarterly", m.start) == quarter for m in months)
    assert quarter.contains(period_of("monthly", day))


@given(DAYS)
def test_period_of_holds_the_day(day: date) -> None:
    for type_ in PERIOD_TYPES:
        period = period_of(type_, day)
        assert period.type == type_
        assert period.contains(day)


@given(PERIODS)
def test_ytd_runs_from_january_to_a_month_end(period: Period) -> None:
    ytd = period.ytd()
    assert ytd.type == "ytd"
    assert ytd.start == date(ytd.end.year, 1, 1)
    assert (ytd.end + ONE_DAY).day == 1
    assert (ytd.end.year, ytd.end.month) == (period.end.year, period.end.month)
