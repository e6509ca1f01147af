"""The enterprises' refusals read in Vietnamese by default and in English with the English language
cookie (issue 15, point 2): a request's refusal and a roster line's reason alike."""

from __future__ import annotations

from django.conf import settings
from django.test import Client


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_an_enterprise_refusal_reads_in_the_callers_language(world):
    body = {"kind": "enterprise", "tax_code": "123", "name": "Nhà máy", "commune": "VN-2025:26743"}
    vi = world.province_operator.client().post("/api/v1/units", body, content_type="application/json")
    en = _english(world.province_operator.client()).post(
        "/api/v1/units", body, content_type="application/json"
    )
    assert vi.status_code == en.status_code == 422
    assert (
        vi.json()["detail"] == "tax_code: '123' không phải mã số thuế (10 chữ số, chi nhánh thêm -3 chữ số)"
    )
    assert en.json()["detail"] == "tax_code: '123' is not a tax code (10 digits, a branch's with -3 more)"


def test_a_roster_lines_reason_reads_in_the_callers_language(firms):
    workers = {"workers": [{"person_id": "12345", "start": "2021-07-01"}]}
    url = f"/api/v1/enterprises/VN-2025/{firms.one.code}/workers"
    vi = firms.officer_one.client().post(url, workers, content_type="application/json").json()["rejected"]
    en = _english(firms.officer_one.client()).post(url, workers, content_type="application/json").json()
    assert vi == [
        {"line": 1, "field": "person_id", "error": "không phải số CCCD 12 chữ số hay số điện thoại di động"}
    ]
    assert en["rejected"] == [
        {
            "line": 1,
            "field": "person_id",
            "error": "not a 12-digit citizen ID (CCCD) nor a Vietnamese mobile number",
        }
    ]
