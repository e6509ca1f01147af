"""A unit look-up's refusal reads in Vietnamese by default and in English with the English language
cookie (issue 15, point 2); the parameter keeps its API name in both."""

from __future__ import annotations

from django.conf import settings
from django.test import Client


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_a_unit_refusal_reads_in_the_callers_language(world):
    vi = world.operator_a.client().get("/api/v1/units", {"parent": "VN-2025:"})
    en = _english(world.operator_a.client()).get("/api/v1/units", {"parent": "VN-2025:"})
    assert vi.status_code == en.status_code == 422
    assert vi.json()["detail"].startswith("parent: 'VN-2025:' không phải mã đơn vị: hãy viết BẢN_ĐỒ:MÃ")
    assert en.json()["detail"].startswith("parent: 'VN-2025:' is not a unit reference: write EDITION:CODE")
    # The neighbour commune is outside a commune operator's area: as unknown as a unit that does not exist.
    outside = world.operator_a.client().get("/api/v1/units", {"parent": "VN-2025:26740"})
    outside_en = _english(world.operator_a.client()).get("/api/v1/units", {"parent": "VN-2025:26740"})
    assert outside.status_code == outside_en.status_code == 404
    assert outside.json()["detail"] == "parent: không có đơn vị 'VN-2025:26740' trong phạm vi của bạn"
    assert outside_en.json()["detail"] == "parent: no unit 'VN-2025:26740' in your area"
