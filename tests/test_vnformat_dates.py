"""Dates and times typed into forms, read by vnformat's one parser (issue 17, point 5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from django.utils import translation

from dieuhanh.vnformat import (
    VN_TZ,
    DateTextError,
    input_date,
    input_datetime,
    parse_date_text,
    parse_datetime_text,
    parse_local,
)

AUG_26 = datetime(2021, 8, 26, 14, 30, tzinfo=VN_TZ)


@pytest.fixture(autouse=True)
def _vietnamese():
    with translation.override("vi"):
        yield


@pytest.mark.parametrize(
    "text",
    [
        "26/8/2021 14:30",
        "26/08/2021 14:30",
        " 26 / 8 / 2021   14:30 ",
        "26-8-2021 14:30",
        "26.8.2021 14:30",
        "26/8/2021 14h30",
        "26/8/2021 14g30",
        "26/8/2021 14 giờ 30",
        "26/8/2021 14 giờ 30 phút",
        "14:30 26/8/2021",  # as the pages show a moment (vn_datetime)
        "ngày 26/8/2021 lúc 14h30",
        "26/8/2021, 14:30",
        "26/8/2021\u00a014:30",  # a non-breaking space pasted from a document
        "2021-08-26T14:30",  # a browser's own picker, an API client, an older page
        "2021-08-26 14:30",
        "2021-08-26T07:30:00+00:00",
        "2021-08-26T07:30Z",
    ],
)
def test_the_forms_people_write_a_moment_in(text):
    assert parse_datetime_text(text) == AUG_26


def test_hours_alone_and_midnight():
    assert parse_datetime_text("26/8/2021 9h") == datetime(2021, 8, 26, 9, 0, tzinfo=VN_TZ)
    assert parse_datetime_text("26/8/2021 14 giờ") == datetime(2021, 8, 26, 14, 0, tzinfo=VN_TZ)
    assert parse_datetime_text("1/1/2026 0:00") == datetime(2026, 1, 1, tzinfo=VN_TZ)
    assert parse_datetime_text("29/2/2024 23:59") == datetime(2024, 2, 29, 23, 59, tzinfo=VN_TZ)


def test_a_day_alone_takes_the_fields_time_or_is_refused():
    assert parse_datetime_text("26/8/2021", default_time=time(23, 59)) == datetime(
        2021, 8, 26, 23, 59, tzinfo=VN_TZ
    )
    assert parse_datetime_text("2021-08-26", default_time=time(0, 0)) == datetime(2021, 8, 26, tzinfo=VN_TZ)
    with pytest.raises(DateTextError) as refused:
        parse_datetime_text("26/8/2021")
    assert refused.value.for_field("Hạn") == (
        "Hạn: “26/8/2021” không phải ngày giờ hợp lệ: thiếu giờ. Hãy viết theo dạng 26/8/2021 14:30."
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("32/8/2021 14:30", "tháng 8/2021 chỉ có 31 ngày"),
        ("31/9/2021 14:30", "tháng 9/2021 chỉ có 30 ngày"),
        ("29/2/2021 10:00", "tháng 2/2021 chỉ có 28 ngày"),
        ("0/8/2021 10:00", "tháng 8/2021 chỉ có 31 ngày"),
        ("8/26/2021 14:30", "không có tháng 26: viết ngày trước, tháng sau (26/8/2021)"),  # month first
        ("26/13/2021 14:30", "không có tháng 13"),
        ("26/8/21 14:30", "năm phải viết đủ bốn chữ số"),
        ("26/8/1021 14:30", "năm 1021 nằm ngoài khoảng 1900–2099"),
        ("26/8/2021 24:00", "không có giờ 24 (giờ từ 0 đến 23)"),
        ("26/8/2021 14:60", "không có phút 60 (phút từ 0 đến 59)"),
        ("26/8/2021 14:30:15", "chỉ ghi giờ và phút"),
        ("mai", "không theo dạng ngày/tháng/năm giờ:phút"),
        ("26/8-2021 14:30", "không theo dạng ngày/tháng/năm giờ:phút"),  # mixed separators
        ("08/26/2021 2:30 PM", "không theo dạng ngày/tháng/năm giờ:phút"),  # the American form
        ("2021-02-30T10:00", "không có ngày này"),
    ],
)
def test_bad_moments_say_why_and_name_the_field(text, reason):
    with pytest.raises(DateTextError) as refused:
        parse_datetime_text(text)
    assert refused.value.reason == reason
    assert refused.value.for_field("Hạn") == (
        f"Hạn: “{text}” không phải ngày giờ hợp lệ: {reason}. Hãy viết theo dạng 26/8/2021 14:30."
    )
    assert isinstance(refused.value, ValueError)  # callers that catch ValueError still do


def test_an_empty_field_is_named_as_missing():
    with pytest.raises(DateTextError) as refused:
        parse_datetime_text("   ")
    assert refused.value.for_field("Hạn") == "Hạn: chưa nhập. Hãy viết theo dạng 26/8/2021 14:30."


def test_english_pages_get_the_reason_in_english():
    with translation.override("en"):
        with pytest.raises(DateTextError) as refused:
            parse_datetime_text("31/4/2021 10:00")
        assert refused.value.for_field("Deadline") == (
            "Deadline: “31/4/2021 10:00” is not a valid date and time: month 4/2021 has 30 days. "
            "Write it as 26/8/2021 14:30."
        )


def test_days():
    for text in ("26/8/2021", "26/08/2021", "26-8-2021", "26.08.2021", "ngày 26/8/2021", "2021-08-26"):
        assert parse_date_text(text) == date(2021, 8, 26)
    with pytest.raises(DateTextError) as refused:
        parse_date_text("31/6/2021")
    assert refused.value.for_field("Ngày") == (
        "Ngày: “31/6/2021” không phải ngày hợp lệ: tháng 6/2021 chỉ có 30 ngày. Hãy viết theo dạng 26/8/2021."
    )
    with pytest.raises(DateTextError, match="không theo dạng ngày/tháng/năm"):
        parse_date_text("26/8/2021 14:30")


def test_what_fields_show_is_read_back():
    assert input_datetime(AUG_26) == "26/8/2021 14:30"
    assert input_datetime(datetime(2021, 8, 26, 7, 30, tzinfo=UTC)) == "26/8/2021 14:30"  # Vietnam's time
    assert input_datetime(None) == "" and input_date(None) == ""
    assert input_date(date(2020, 1, 5)) == "5/1/2020"
    for minute in range(0, 24 * 60, 7):
        moment = datetime(2021, 12, 31, minute // 60, minute % 60, tzinfo=VN_TZ)
        assert parse_datetime_text(input_datetime(moment)) == moment


def test_parse_local_is_the_same_parser():
    assert parse_local("26/8/2021 14:30") == parse_local("2021-08-26T14:30") == AUG_26
    with pytest.raises(ValueError):
        parse_local("32/8/2021 14:30")
