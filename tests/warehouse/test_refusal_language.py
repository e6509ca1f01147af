"""The warehouse's refusals read in Vietnamese by default and in English with the English language
cookie (issue 15, point 2): a request's refusal and a rejected line's reason alike, the field keeping
its API name in both."""

from __future__ import annotations

import json

from django.conf import settings
from django.test import Client


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _batch(platform, client: Client):
    lines = [
        {"source_event_id": "t-1", "person_id": "079201001234", "commune": "26743",
         "sampled_at": "1999-12-31T10:00:00+07:00", "method": "pcr", "result": "positive"},
        {"source_event_id": "t-2", "person_id": "0" * 100, "commune": "26743",
         "sampled_at": "2021-08-26T10:00:00+07:00", "method": "pcr", "result": "positive"},
    ]  # fmt: skip
    body = "\n".join(json.dumps(line) for line in lines) + "\n{"
    return client.post("/api/v1/events/test", body, content_type="application/x-ndjson").json()["rejected"]


def test_a_rejected_lines_reason_reads_in_the_sources_language(platform):
    vi = _batch(platform, platform.client())
    en = _batch(platform, _english(platform.client()))
    assert (
        [(r["line"], r["field"]) for r in vi]
        == [(r["line"], r["field"]) for r in en]
        == [
            (1, "sampled_at"),
            (2, "person_id"),
            (3, None),
        ]
    )
    assert [r["error"] for r in vi] == [
        "trước ngày 01/01/2000 (giờ Việt Nam): không nền tảng nguồn nào ghi thời điểm như vậy",
        "phải là `str` có độ dài <= 40",
        "không phải JSON hợp lệ: dòng kết thúc giữa chừng",
    ]
    assert [r["error"] for r in en] == [
        "is before 2000-01-01 (Vietnam time): not a time any source records",
        "must be `str` of length <= 40",
        "not valid JSON: the line ends too soon",
    ]


def test_a_refused_request_reads_in_the_callers_language(world, platform):
    weather = platform.client().post("/api/v1/events/weather", "", content_type="application/x-ndjson")
    weather_en = _english(platform.client()).post(
        "/api/v1/events/weather", "", content_type="application/x-ndjson"
    )
    assert weather.status_code == weather_en.status_code == 404
    assert weather.json()["detail"].startswith("kind: không có loại sự kiện 'weather'; các loại sự kiện: ")
    assert weather_en.json()["detail"].startswith("kind: unknown event kind 'weather'; kinds are: ")
    window = {"kind": "test", "unit": "VN-2025:79", "from": "2021-08-02", "to": "2021-08-01"}
    vi = world.province_operator.client().get("/api/v1/warehouse/counts", window)
    en = _english(world.province_operator.client()).get("/api/v1/warehouse/counts", window)
    assert vi.status_code == en.status_code == 422
    assert (vi.json()["field"], vi.json()["detail"]) == ("to", "to: trước from")
    assert (en.json()["field"], en.json()["detail"]) == ("to", "to: is before from")
