"""Server errors found by fuzzing, as classes (issue 16, point 8): a null where a field cannot be
empty, a page number past what the database counts to, a refusal a page did not expect. Each answers
a 4xx problem document (or a page with the reason) and changes nothing; and the OpenAPI document
names every operation's 4xx answers, from the one error body the API sends."""

from __future__ import annotations

import pytest

from dieuhanh.api import Problem, api
from dieuhanh.directives.models import Directive
from dieuhanh.tracing import services as tracing_services
from dieuhanh.tracing.models import Case

A = "VN-2025:26743"
JSON = "application/json"


@pytest.fixture
def directive(world) -> dict:
    body = {"title": "Xét nghiệm diện rộng", "targets": {"units": [A]}}
    response = world.leader.client().post("/api/v1/directives", body, content_type=JSON)
    assert response.status_code == 201, response.content
    return response.json()


def update(caller, directive_id: int, body: dict):
    return caller.client().post(f"/api/v1/directives/{directive_id}/update", body, content_type=JSON)


# Null where a field cannot be empty


@pytest.mark.parametrize("field", ["priority", "late_answers", "requires_ack", "title", "body", "number"])
def test_a_null_for_a_field_a_directive_always_has_is_refused_and_changes_nothing(world, directive, field):
    response = update(world.leader, directive["id"], {field: None, "note": "thử"})
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["detail"]
    stored = Directive.objects.get(pk=directive["id"])
    assert (stored.version, stored.priority, stored.title) == (1, "normal", "Xét nghiệm diện rộng")


def test_a_null_deadline_removes_it_and_fields_left_out_stay(world, directive):
    set_deadline = update(world.leader, directive["id"], {"deadline": "2099-01-01T00:00:00+07:00"})
    assert set_deadline.status_code == 200 and set_deadline.json()["deadline"] is not None
    # "khan", the old code, is still read for one release; the answer has the new one.
    cleared = update(world.leader, directive["id"], {"deadline": None, "priority": "khan"})
    assert cleared.status_code == 200, cleared.content
    body = cleared.json()
    assert (body["deadline"], body["priority"], body["title"], body["late_answers"]) == (
        None,
        "urgent",
        "Xét nghiệm diện rộng",
        True,
    )


def test_a_directive_number_longer_than_its_column_is_refused(world, directive):
    response = update(world.leader, directive["id"], {"number": "1" * 41})
    assert response.status_code == 422 and "number" in response.json()["detail"]


# Pages past what the database counts to


@pytest.mark.parametrize("url", ["/api/v1/units", "/api/v1/tasks"])
@pytest.mark.parametrize("page", [2**63, 2**64 + 1, 100_001])
def test_a_page_past_the_bound_is_refused(world, url, page):
    response = world.leader.client().get(url, {"page": page})
    assert response.status_code == 422, response.content
    assert response.json()["detail"] == "Tham số không hợp lệ: page"


@pytest.mark.parametrize("url", ["/api/v1/units", "/api/v1/tasks"])
def test_the_last_allowed_page_answers_empty(world, url):
    response = world.leader.client().get(url, {"page": 100_000, "page_size": 500})
    assert response.status_code == 200, response.content
    assert response.json()["items"] == []


def _schema() -> dict:
    return api.get_openapi_schema(path_prefix="/api/v1")


def test_every_page_limit_and_offset_parameter_has_an_upper_bound():
    schema = _schema()
    unbounded = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for p in operation["parameters"]:
                paging = p["in"] == "query" and p["name"] in {"page", "page_size", "limit", "offset"}
                if paging and "maximum" not in p["schema"]:
                    unbounded.append(f"{method.upper()} {path} {p['name']}")
    assert unbounded == []


# The OpenAPI document's 4xx answers


def test_every_operation_lists_its_4xx_answers_as_problem_documents():
    schema = _schema()
    assert set(schema["components"]["schemas"]["Problem"]["required"]) >= {"title", "status", "detail"}
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            expected = set()
            if operation.get("security"):
                expected |= {401, 403}
            if operation["parameters"] or operation.get("requestBody"):
                expected |= {404, 422}
            if operation.get("requestBody"):
                expected.add(400)
            for status in expected:
                answer = operation["responses"].get(status, {})
                content = answer.get("content", {}).get("application/problem+json", {})
                if content.get("schema") != {"$ref": "#/components/schemas/Problem"}:
                    missing.append(f"{method.upper()} {path} {status}")
            if expected and not expected <= statuses:
                missing.append(f"{method.upper()} {path}: {sorted(expected - statuses)}")
    assert missing == []


def test_the_documented_error_body_is_the_one_the_api_sends(world, directive):
    answers = [
        world.leader.client().get("/api/v1/units", {"page": 2**64}),  # 422 with errors
        world.operator_b.client().get(f"/api/v1/directives/{directive['id']}"),  # 404
        update(world.leader, directive["id"], {"deadline": "2001-01-01T00:00:00+07:00"}),  # 422
        world.leader.client().post(f"/api/v1/directives/{directive['id']}/update", "{", content_type=JSON),
    ]
    assert [a.status_code for a in answers] == [422, 404, 422, 400]
    documented = set(Problem.model_fields)
    for answer in answers:
        body = answer.json()
        assert answer["Content-Type"] == "application/problem+json"
        assert set(body) <= documented, set(body) - documented
        assert Problem.model_validate(body).status == answer.status_code


# The tracing page


def test_the_tracing_page_answers_a_person_of_another_area_without_a_server_error(world, platform):
    hanoi = {
        "source_event_id": "health-hn-1",
        "person_id": "001201009999",
        "commune": "00004",
        "declared_at": "2021-08-26T08:00:00+07:00",
        "symptoms": [],
        "exposure": False,
    }
    assert platform.send("health", [hanoi]).status_code == 200
    page = world.tracer.browser().post(
        "/tracing/", {"person_id": "001201009999", "confirmed_at": "2021-08-27T10:00"}
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "00004" not in text and "Ba Đình" not in text
    assert not Case.objects.exists()


def test_the_tracing_page_shows_any_refusal_of_the_area_as_a_message(world, monkeypatch):
    def refuse(**kwargs):
        raise PermissionError("the case's commune VN-2025:00004 is outside your area")

    monkeypatch.setattr(tracing_services, "register_case", refuse)
    page = world.tracer.browser().post(
        "/tracing/", {"person_id": "001201009999", "confirmed_at": "2021-08-27T10:00"}
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "Không tìm thấy người này trong địa bàn của bạn." in text
    assert "00004" not in text
