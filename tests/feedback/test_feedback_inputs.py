"""Inputs a fuzzer sends (issue 16's classes) to the feedback routes: a 4xx naming the field, never a
server error, and nothing written; on PostgreSQL too, which refuses NUL in text."""

from __future__ import annotations

import pytest
from django.test import Client

from dieuhanh.feedback.models import Feedback, Throttle

URL = "/api/v1/feedback"
GOOD = {"category": "lighting", "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"text": "Đèn\x00tắt"}, "text"),
        ({"category": "light\x00ing"}, "category"),
        ({"address": "Phường Bến Thành\x00"}, "address"),
        ({"phone": "0912\x00345678"}, "phone"),
        ({"address": "", "lat": "nan", "lon": "106.7"}, "lat"),
        ({"address": "", "lat": "inf", "lon": "106.7"}, "lat"),
        ({"address": "", "lat": "10.77", "lon": "-inf"}, "lat"),
    ],
)
def test_unfit_intake_is_refused_naming_the_field(world, categories, change, field):
    body = {k: v for k, v in {**GOOD, **change}.items() if v != ""}
    r = Client().post(URL, body)
    assert r.status_code == 422, r.content
    assert r.json()["field"] == field
    assert not Feedback.objects.exists() and not Throttle.objects.exists()


def test_codes_and_references_holding_nul_name_nothing(world, categories):
    official = world.operator_a.client()
    assert Client().get(f"{URL}/track/PA%00").status_code == 404
    nul_unit = official.get(URL, {"unit": "VN-2025:26743\x00"})  # not a reference: 422 on its field
    assert (nul_unit.status_code, nul_unit.json()["field"]) == (422, "unit")
    assert official.get(f"{URL}/PA%00").status_code == 404
    page = Client().get("/phan-anh/cong-khai/", {"q": "đèn\x00", "linh-vuc": "x\x00"})
    assert page.status_code == 200


def test_forwarding_to_a_reference_holding_nul_is_refused(world, categories):
    code = Client().post(URL, GOOD).json()["code"]
    r = world.operator_a.client().post(
        f"{URL}/{code}/forward",
        {"to": "VN-2025:26740\x00", "reason": "Thuộc địa bàn phường Sài Gòn"},
        content_type="application/json",
    )
    assert (r.status_code, r.json()["field"]) == (422, "to")
    assert Feedback.objects.get(code=code).unit.code == "26743"


def test_ids_past_what_a_database_holds_name_nothing(world, categories):
    official = world.operator_a.client()
    huge = 2**70
    assert official.get(f"{URL}/sessions/{huge}").status_code == 404
    assert (
        Client()
        .post(f"{URL}/sessions/{huge}/questions", {"text": "?"}, content_type="application/json")
        .status_code
        == 404
    )
    assert Client().get(f"{URL}/sessions/{huge}/public").status_code == 404
    answer = official.post(
        f"{URL}/sessions/{huge}/questions/{huge}/answer", {"text": "x"}, content_type="application/json"
    )
    assert answer.status_code == 404
    assert official.get(f"{URL}/linked", {"directive": huge}).json() == []
    assert Client().get(f"/phan-anh/hoi-dap/{huge}/").status_code == 404
