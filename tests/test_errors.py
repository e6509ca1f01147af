"""One error model (issue 15, point 2): every app's refusal answers in the same problem+json shape,
in Vietnamese on a Vietnamese answer, and a page's refusal gets its status (dieuhanh.errors)."""

from __future__ import annotations

import pickle

from dieuhanh.errors import DomainError
from dieuhanh.indicators.approval.services import ApprovalError
from dieuhanh.indicators.formula import FormulaError

A = "VN-2025:26743"
SHAPE = {"type", "title", "status", "detail", "instance", "code", "field"}


def test_every_apps_refusal_has_one_shape(world):
    leader = world.leader.client()
    refusals = {
        "directives": leader.post(
            "/api/v1/directives", {"title": "", "body": "x"}, content_type="application/json"
        ),
        "tasks": leader.post("/api/v1/tasks", {"title": " ", "owner": A}, content_type="application/json"),
        "units": leader.get("/api/v1/units", {"parent": "VN-2025:"}),
        "parameters": leader.get("/api/v1/units", {"page_size": 0}),
        "tracing": world.tracer.client().post(
            "/api/v1/tracing/cases", {"person_id": "12345"}, content_type="application/json"
        ),
        "not found": leader.get("/api/v1/units/VN-2025/99999"),
    }
    for app, response in refusals.items():
        body = response.json()
        assert response["Content-Type"] == "application/problem+json", app
        assert set(body) >= SHAPE, (app, body)
        assert body["status"] == response.status_code and body["code"], (app, body)
    # Vietnamese by default, the field named as the API spells it.
    assert refusals["units"].json()["detail"].startswith("parent: 'VN-2025:' không phải mã đơn vị")
    assert refusals["parameters"].json()["detail"] == "Tham số không hợp lệ: page_size"


def test_a_page_refusal_gets_its_status(world):
    browser = world.leader.browser()
    malformed = browser.get("/directives/new/tree.json", {"parent": "VN-2025:"})
    assert malformed.status_code == 422 and "không phải mã đơn vị" in malformed.content.decode()
    assert browser.get("/directives/new/tree.json", {"parent": "VN-2025:99999"}).status_code == 404


def test_an_error_crosses_a_process_whole():
    for error in (
        FormulaError("unexpected ')'", 4),
        ApprovalError("units", "không được", 403, units=[{"unit": A, "reason": "cấp tỉnh"}]),
        DomainError("unit", "không có", 404, code="unit_not_found", retry_after=5),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
        assert (type(copy), str(copy), copy.status, copy.code, copy.extra) == (
            type(error),
            str(error),
            error.status,
            error.code,
            error.extra,
        )


def test_a_form_names_the_field_at_fault_by_its_label():
    labels = {"text": "Nội dung", "photos": "Ảnh"}
    assert DomainError("text", "để trống").labelled(labels) == "Nội dung: để trống"
    assert DomainError("photos[2]", "ảnh quá lớn").labelled(labels) == "Ảnh: ảnh quá lớn"
    assert DomainError("unit", "không có").labelled(labels) == "không có"
    assert DomainError(None, "không được").labelled(labels) == "không được"
