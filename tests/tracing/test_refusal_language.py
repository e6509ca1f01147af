"""Tracing's refusals read in Vietnamese by default and in English with the English language cookie
(issue 15, point 2)."""

from __future__ import annotations

from django.conf import settings
from django.test import Client

CASE = {"person_id": "079201001234", "confirmed_at": "2021-08-27T10:00:00+07:00", "commune": "VN-2025:26743"}


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _register(client: Client):
    return client.post("/api/v1/tracing/cases", CASE, content_type="application/json")


def test_a_tracing_refusal_reads_in_the_callers_language(world, tracers):
    operator = _register(world.operator_a.client())
    operator_en = _register(_english(world.operator_a.client()))
    assert operator.status_code == operator_en.status_code == 403
    assert operator.json()["detail"] == "truy vết cần quyền của tổ truy vết"
    assert operator_en.json()["detail"] == "tracing needs a tracer grant"
    case = _register(tracers.a.client()).json()["id"]
    again, again_en = _register(tracers.a.client()), _register(_english(tracers.a.client()))
    assert again.status_code == again_en.status_code == 409
    assert again.json()["detail"] == f"người này đã là ca bệnh #{case}"
    assert again_en.json()["detail"] == f"this person is already case #{case}"
