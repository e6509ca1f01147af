"""A page's refusal reads in Vietnamese by default and in English with the English language cookie
(issue 15, point 2); the field keeps its API name in both."""

from __future__ import annotations

import html

from django.conf import settings


def test_a_page_refusal_reads_in_the_readers_language(world):
    form = {"definition": "nope", "period": "202108"}
    vi = world.leader.browser()
    said = html.unescape(vi.post("/reports/generate/", form, follow=True).content.decode())
    assert "Không lập được báo cáo: definition: không có mẫu báo cáo 'nope'" in said
    en = world.leader.browser()
    en.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    told = html.unescape(en.post("/reports/generate/", form, follow=True).content.decode())
    assert "The report could not be made: definition: no report definition 'nope'" in told
    assert "không có mẫu báo cáo" not in told
