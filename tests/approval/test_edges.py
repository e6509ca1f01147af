"""Odd input answers 4xx naming the field, never 5xx (as the API's fuzzing would send it)."""

from __future__ import annotations

import pytest

from tests.factories import act

A = "VN-2025:26743"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/approvals?dataSet=telecom&period=202108&edition=XX",
        "/api/v1/approvals?dataSet=telecom&period=2021W99",
        "/api/v1/approvals?dataSet=telecom&period=202108&unit=nope",
        "/api/v1/approvals/map?edition=XX",
        "/api/v1/approvals/map?dataSet=none",
        "/api/v1/approvals/exceptions?state=whatever",
    ],
)
def test_odd_queries_answer_4xx(world, telecom, url):
    answer = world.leader.client().get(url)
    assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.content[:200])


def test_odd_bodies_answer_4xx(world, telecom):
    client = world.leader.client()
    for body in (
        {"action": "approve", "dataSet": "telecom", "period": "202108", "units": [""]},
        {"action": "approve", "dataSet": "telecom", "period": "202108", "units": [":"], "edition": ""},
        {"action": "dance", "dataSet": "telecom", "period": "202108", "units": [A]},
        {"action": "approve", "dataSet": "telecom", "period": "", "units": [A]},
    ):
        answer = client.post("/api/v1/approvals", body, content_type="application/json")
        assert 400 <= answer.status_code < 500, (body, answer.status_code, answer.content[:200])
    decision = client.post(
        "/api/v1/approvals/exceptions/999999/decision", {"grant": True}, content_type="application/json"
    )
    assert decision.status_code == 404
    asked = client.post(
        "/api/v1/approvals/exceptions",
        {"dataSet": "telecom", "period": "202108", "unit": "VN-2025:VN", "reason": ""},
        content_type="application/json",
    )
    assert asked.status_code == 422 and asked.json()["field"] == "reason"
    assert act(world.operator_a, "unapprove", A, reason="x").status_code == 200  # nothing to undo: unchanged
