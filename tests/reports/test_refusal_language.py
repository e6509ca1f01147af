"""A report's refusal reads in Vietnamese by default and in English with the English language cookie
(issue 15, point 2); the field keeps its API name in both."""

from __future__ import annotations

from django.conf import settings
from django.test import Client


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_a_report_refusal_reads_in_the_callers_language(world):
    body = {"definition": "nope", "period": "202108"}
    vi = world.leader.client().post("/api/v1/reports", body, content_type="application/json")
    en = _english(world.leader.client()).post("/api/v1/reports", body, content_type="application/json")
    assert vi.status_code == en.status_code == 404
    assert vi.json()["detail"] == "definition: không có mẫu báo cáo 'nope'"
    assert en.json()["detail"] == "definition: no report definition 'nope'"
    missing = world.leader.client().get("/api/v1/reports/999999")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "không có báo cáo 999999 trong phạm vi của bạn"
    missing_en = _english(world.leader.client()).get("/api/v1/reports/999999/file")
    assert missing_en.json()["detail"] == "no report 999999 in your area"
