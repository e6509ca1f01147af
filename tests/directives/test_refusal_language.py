"""A directive's or a task's refusal reads in Vietnamese by default and in English with the English
language cookie (issue 15, point 2); the field keeps its API name in both."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.test import Client
from django.utils import timezone

A, B = "VN-2025:26743", "VN-2025:26740"


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _post(client: Client, path: str, body: dict) -> dict:
    response = client.post(path, body, content_type="application/json")
    return {"status": response.status_code, "language": response["Content-Language"], **response.json()}


def test_a_directive_refusal_reads_in_the_callers_language(world):
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    body = {"title": "Rà soát", "body": "x", "targets": {"units": [A, B]}, "deadline": past}
    vi = _post(world.leader.client(), "/api/v1/directives", body)
    en = _post(_english(world.leader.client()), "/api/v1/directives", body)
    assert vi["status"] == en["status"] == 422 and vi["field"] == en["field"] == "deadline"
    assert vi["language"] == "vi" and vi["detail"] == "deadline: là thời điểm đã qua"
    assert en["language"] == "en" and en["detail"] == "deadline: is in the past"
    operator = {"title": "Rà soát", "body": "x", "targets": {"units": [A]}}
    refused = _post(world.operator_a.client(), "/api/v1/directives", operator)
    assert refused["status"] == 403
    assert refused["detail"] == "ban hành chỉ đạo cần quyền lãnh đạo hoặc chuyên viên"
    refused_en = _post(_english(world.operator_a.client()), "/api/v1/directives", operator)
    assert refused_en["detail"] == "issuing needs a leader or analyst grant"


def test_a_task_refusal_reads_in_the_callers_language(world):
    body = {"title": "Rà soát", "owner": A, "co_owners": [A]}
    vi = _post(world.leader.client(), "/api/v1/tasks", body)
    en = _post(_english(world.leader.client()), "/api/v1/tasks", body)
    assert vi["status"] == en["status"] == 422
    assert vi["detail"] == f"co_owners: {A} đã là đơn vị chủ trì"
    assert en["detail"] == f"co_owners: {A} is the owner"
    missing = _post(
        _english(world.leader.client()), "/api/v1/tasks", {"title": "Việc", "owner": A, "directive": 999999}
    )
    assert missing["detail"] == "directive: no directive #999999 for you"
