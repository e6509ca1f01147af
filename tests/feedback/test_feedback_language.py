"""A citizen's and an official's refusals from feedback read in Vietnamese by default and in English
with the English language cookie (issue 15, point 2); the field keeps its API name in both."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

URL = "/api/v1/feedback"


@pytest.fixture(autouse=True)
def _vietnamese_after():
    """A request with the English cookie leaves English active in this thread: the next test is not ours."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _post(client: Client, path: str, body: dict, **kw) -> dict:
    response = client.post(path, body, **kw)
    return {"status": response.status_code, "language": response["Content-Language"], **response.json()}


def test_a_citizens_refusal_reads_in_vietnamese_unless_english_is_chosen(world, categories):
    body = {"category": "potholes-on-mars", "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}
    vi = _post(Client(), URL, body)
    en = _post(_english(Client()), URL, body)
    assert vi["status"] == en["status"] == 422 and vi["field"] == en["field"] == "category"
    assert vi["language"] == "vi"
    assert (
        vi["detail"] == "category: không có lĩnh vực 'potholes-on-mars'; xem GET /api/v1/feedback/categories"
    )
    assert en["language"] == "en"
    assert en["detail"] == "category: no category 'potholes-on-mars'; see GET /api/v1/feedback/categories"


def test_an_officials_refusal_reads_in_their_language(world, categories):
    code = Client().post(
        URL, {"category": "lighting", "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}
    )
    code = code.json()["code"]
    path = f"{URL}/{code}/forward"
    short = {"to": "VN-2025:26740", "reason": "không"}
    vi = _post(world.operator_a.client(), path, short, content_type="application/json")
    en = _post(_english(world.operator_a.client()), path, short, content_type="application/json")
    assert vi["status"] == en["status"] == 422 and vi["field"] == en["field"] == "reason"
    assert vi["detail"] == "reason: cần nêu lý do chuyển (ít nhất 10 ký tự)"
    assert en["detail"] == "reason: say why it is passed on (at least 10 characters)"
    # Another refusal of the same route: the report is with this unit already.
    to_self = {"to": "VN-2025:26743", "reason": "Thuộc địa bàn phường Bến Thành"}
    vi = _post(world.operator_a.client(), path, to_self, content_type="application/json")
    en = _post(_english(world.operator_a.client()), path, to_self, content_type="application/json")
    assert (vi["detail"], en["detail"]) == (
        "to: phản ánh đang ở chính đơn vị này",
        "to: the report is with this unit already",
    )
