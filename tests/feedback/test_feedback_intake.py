"""The intake's writes in fewer round trips (issue 20's speed) keep what they wrote before: a tracking
code drawn twice is drawn again, a sender's window starts again once it is over, and the report, its
first history step and its audit entry are written together."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Event, Feedback, Throttle

URL = "/api/v1/feedback"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"


def _post(ip: str, **override):
    body = {"category": "lighting", "text": "Đèn đường trước chợ tắt ba đêm nay.", "address": BEN_THANH}
    return Client(REMOTE_ADDR=ip).post(URL, {**body, **override})


def test_a_tracking_code_drawn_twice_is_drawn_again(world, categories, monkeypatch):
    first = _post("203.0.113.7").json()["code"]
    drawn = iter([first, "PA22222222"])
    monkeypatch.setattr(services, "_fresh_code", lambda: next(drawn))
    r = _post("203.0.113.8", category="waste")
    assert r.status_code == 201 and r.json()["code"] == "PA22222222"
    again = Feedback.objects.get(code="PA22222222")
    assert again.category_id == "waste" and Feedback.objects.get(code=first).category_id == "lighting"
    assert [e.kind for e in Event.objects.filter(feedback=again)] == ["received"]
    assert AuditEntry.objects.filter(action="feedback.submit", target="PA22222222").count() == 1
    # Counted once: the try that failed was rolled back whole.
    assert Throttle.objects.get(key=services._throttle_key("client", "203.0.113.8")).count == 1


def test_the_report_its_first_step_and_its_audit_entry_are_written_together(world, categories):
    code = _post("203.0.113.9").json()["code"]
    item = Feedback.objects.get(code=code)
    (step,) = Event.objects.filter(feedback=item)
    assert (step.kind, step.unit_id, step.at) == ("received", item.unit_id, item.received_at)
    entry = AuditEntry.objects.get(action="feedback.submit", target=code)
    assert entry.actor_name == "system" and entry.detail["unit"] == item.unit.ref
    assert entry.detail["category"] == "lighting" and entry.detail["merged_into"] is None


@pytest.fixture
def no_confirmation(monkeypatch):
    monkeypatch.setattr(services, "CONFIRM_AFTER", {k: 100 for k in services.CONFIRM_AFTER})


def test_a_senders_window_starts_again_once_it_is_over(world, categories, no_confirmation):
    for n in range(10):
        assert _post("198.51.100.7", text=f"Đèn đường số {n} tắt.").status_code == 201
    assert _post("198.51.100.7").status_code == 429
    row = Throttle.objects.get(key=services._throttle_key("client", "198.51.100.7"))
    assert row.count == 10  # the refused report was not counted
    long_ago = timezone.now() - timedelta(hours=1, seconds=1)
    Throttle.objects.filter(pk=row.pk).update(window_start=long_ago)
    assert _post("198.51.100.7", category="waste").status_code == 201
    row.refresh_from_db()
    assert row.count == 1 and row.window_start > long_ago + timedelta(hours=1)


def test_a_provinces_queue_merges_its_units_reports_by_deadline_page_by_page(world, categories):
    """The province's page is each unit's first reports merged (PostgreSQL) or one sort (SQLite): the
    same order, across the province itself and its communes, on every page."""
    now = timezone.now()
    codes = []
    for n, (ip, address) in enumerate(
        [
            ("203.0.113.21", BEN_THANH),
            ("203.0.113.22", "Phường Sài Gòn, Thành phố Hồ Chí Minh"),
            ("203.0.113.23", BEN_THANH),
            ("203.0.113.24", "Phường Sài Gòn, Thành phố Hồ Chí Minh"),
            ("203.0.113.25", "Phường Bến Thành, Thành phố Hồ Chí Minh"),
        ]
    ):
        # Another category each time: none is a duplicate of another.
        category = ["lighting", "waste", "roads", "drainage", "other"][n]
        codes.append(_post(ip, category=category, address=address).json()["code"])
    # Deadlines that interleave the two communes; one report held by the province itself.
    for hours, code in zip([5, 1, 4, 2, 3], codes, strict=True):
        Feedback.objects.filter(code=code).update(answer_due=now + timedelta(hours=hours))
    Feedback.objects.filter(code=codes[4]).update(unit=world.province)
    expected = [codes[1], codes[3], codes[4], codes[2], codes[0]]
    client = world.province_operator.client()
    whole = client.get(URL, {"unit": world.province.ref}).json()
    assert [i["code"] for i in whole["items"]] == expected and whole["count"] == 5
    first = client.get(URL, {"unit": world.province.ref, "limit": 2}).json()
    assert [i["code"] for i in first["items"]] == expected[:2]
    page = services.queue_page(services.queue(world.province_operator.user, world.province.ref), 2, 2)
    assert [i.code for i in page] == expected[2:4]
