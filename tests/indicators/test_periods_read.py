"""A period typed into a form as the reports name it (issue 17, point 5): periods.read."""

from __future__ import annotations

import pytest

from dieuhanh.indicators.periods import PeriodError, parse, read


@pytest.mark.parametrize(
    ("typed", "pid"),
    [
        ("202108", "202108"),
        ("tháng 8/2021", "202108"),
        ("Tháng 08/2021", "202108"),
        ("tháng 8 năm 2021", "202108"),
        ("8/2021", "202108"),
        ("T8/2021", "202108"),
        ("quý III/2021", "2021Q3"),
        ("Quý 3/2021", "2021Q3"),
        ("Q3/2021", "2021Q3"),
        ("quý IV năm 2020", "2020Q4"),
        ("6 tháng đầu năm 2021", "2021S1"),
        ("6 tháng cuối năm 2021", "2021S2"),
        ("8 tháng đầu năm 2021", "2021YTD08"),
        ("năm 2021", "2021"),
        ("tuần 34/2021", "2021W34"),
        ("26/8/2021", "20210826"),
        ("ngày 26/08/2021", "20210826"),
        ("  tháng\u00a08/2021 ", "202108"),
    ],
)
def test_what_people_type_is_the_period_reports_name(typed, pid):
    assert read(typed).id == pid


@pytest.mark.parametrize(
    "pid", ["20210826", "2021W34", "202108", "2021Q3", "2021S1", "2021", "2021YTD08", "2024W1", "20240229"]
)
def test_every_period_is_read_back_from_its_label(pid):
    period = parse(pid)
    assert read(period.label()) == period and read(pid) == period


@pytest.mark.parametrize(
    "typed",
    [
        "tháng 13/2021",
        "0/2021",
        "quý V/2021",
        "quý 5/2021",
        "tuần 53/2021",
        "31/2/2021",
        "8/21",
        "sắp tới",
        "",
    ],
)
def test_what_names_no_period_is_refused(typed):
    with pytest.raises(PeriodError):
        read(typed)
