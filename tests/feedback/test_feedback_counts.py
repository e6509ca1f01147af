"""What issue 20's speed work changed, as a user reads it: a queue or the public page past 10,000
reports says "Hơn 10.000" instead of counting every one; the public search, whose indexes hold the
answered reports alone, finds an answered report and never an unanswered one; a repeated sender, now
counted with the report's own writes, is still asked to confirm and counted once per report."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Category, Feedback, Throttle

URL = "/api/v1/feedback"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"


def _post(ip: str, **override):
    body = {"category": "lighting", "text": "Đèn đường trước chợ tắt ba đêm nay.", "address": BEN_THANH}
    return Client(REMOTE_ADDR=ip).post(URL, {**body, **override})


def _answered(world, categories, n: int) -> None:
    """n answered reports in Bến Thành, written as rows (the intake would take minutes for 10,001)."""
    now = timezone.now()
    Feedback.objects.bulk_create(
        [
            Feedback(
                code=f"PT{i:08d}",
                category=categories["lighting"],
                text=f"Đèn đường số {i} tắt.",
                unit=world.commune_a,
                place_unit=world.commune_a,
                status="answered",
                received_at=now - timedelta(days=2),
                assigned_at=now - timedelta(days=2),
                forward_due=now - timedelta(days=2),
                answer_due=now + timedelta(days=3),
                answered_at=now - timedelta(minutes=i),
                answer="Đã thay bóng đèn.",
            )
            for i in range(n)
        ],
        batch_size=2000,
    )


def test_past_ten_thousand_the_queue_and_the_public_page_say_more_than_ten_thousand(world, categories):
    _answered(world, categories, services.COUNT_CAP + 1)
    queue = world.operator_a.client().get(URL, {"unit": world.commune_a.ref, "limit": 5}).json()
    assert (queue["count"], queue["count_capped"]) == (10_000, True) and len(queue["items"]) == 5
    tab = {"unit": world.commune_a.ref, "loc": "da-tra-loi"}
    page = world.operator_a.browser().get("/phan-anh/xu-ly/", tab)
    count = re.search(r'id="count">([^<]*)<', page.content.decode()).group(1)
    assert count.startswith("Hơn 10.000 phản ánh của Phường Bến Thành")
    public = Client().get("/phan-anh/cong-khai/").content.decode()
    assert "Hơn 10.000 phản ánh đã được trả lời" in public
    # One fewer: the exact count, in Vietnamese form.
    Feedback.objects.filter(code="PT00000000").delete()
    queue = world.operator_a.client().get(URL, {"unit": world.commune_a.ref, "limit": 5}).json()
    assert (queue["count"], queue["count_capped"]) == (10_000, False)
    assert "10.000 phản ánh đã được trả lời" in Client().get("/phan-anh/cong-khai/").content.decode()
    assert "Hơn 10.000" not in Client().get("/phan-anh/cong-khai/").content.decode()


def test_under_the_cap_the_queue_counts_exactly(world, categories):
    sent = [_post(f"203.0.113.{40 + n}", category=c) for n, c in enumerate(("roads", "waste"))]
    codes = [r.json()["code"] for r in sent]
    queue = world.province_operator.client().get(URL, {"unit": world.province.ref}).json()
    assert (queue["count"], queue["count_capped"]) == (2, False)
    assert sorted(i["code"] for i in queue["items"]) == sorted(codes)
    page = world.province_operator.browser().get("/phan-anh/xu-ly/", {"unit": world.province.ref})
    assert re.search(r'id="count">2 phản ánh của', page.content.decode())


def test_the_public_search_finds_an_answered_report_and_never_an_unanswered_one(world, categories):
    word = "cầuthangsắt"  # a word no other report holds
    answered = _post("203.0.113.51", text=f"Lan can {word} trước trường bị gãy.").json()["code"]
    waiting = _post("203.0.113.52", category="roads", text=f"Bậc {word} ở chợ bị vỡ.").json()["code"]
    item = Feedback.objects.get(code=answered)
    services.answer(actor=world.province_operator.user, item=item, text="Phường đã hàn lại lan can.")
    for q in (word, "cầuTHANGsắt", "hàn lại lan"):  # in the text or in the answer, in any case
        html = Client().get("/phan-anh/cong-khai/", {"q": q}).content.decode()
        assert answered in html and waiting not in html, q
    # The unanswered one appears once it is answered, no sooner.
    later = Feedback.objects.get(code=waiting)
    services.answer(actor=world.province_operator.user, item=later, text="Đã sửa.")
    html = Client().get("/phan-anh/cong-khai/", {"q": word}).content.decode()
    assert answered in html and waiting in html


def test_a_repeated_sender_is_asked_to_confirm_and_counted_once_a_report(world, categories, settings):
    settings.SMS_URL = ""  # no gateway: the refusal says the code could not be sent
    ip = "198.51.100.80"
    for cat in ("roads", "waste", "drainage"):
        assert _post(ip, category=cat).status_code == 201
    refused = _post(ip, category="other")
    assert (refused.status_code, refused.json()["field"]) == (428, "phone")
    assert "đã gửi 3 phản ánh từ máy này" in refused.json()["detail"]
    row = Throttle.objects.get(key=services._throttle_key("client", ip))
    assert row.count == 3 and Feedback.objects.count() == 3  # the refused report was not counted


@pytest.fixture
def confirmed_phone(monkeypatch):
    """A phone confirmed earlier (confirm_sender passes), so that a repeated sender's report goes on."""
    monkeypatch.setattr(services, "confirm_sender", lambda **kwargs: None)


def test_a_confirmed_repeated_sender_is_counted_once_for_the_report(world, categories, confirmed_phone):
    ip = "198.51.100.81"
    for cat in ("roads", "waste", "drainage", "other"):
        assert _post(ip, category=cat, phone="0912 345 678").status_code == 201
    # The fourth report was filed again after the confirmation: the first try was rolled back.
    assert Throttle.objects.get(key=services._throttle_key("client", ip)).count == 4
    assert Throttle.objects.get(key=services._throttle_key("phone", "+84912345678")).count == 4
    assert Feedback.objects.count() == 4


def test_a_duplicate_is_written_with_its_steps_and_the_primarys_count(world, categories):
    """A duplicate's rows go in one round trip on PostgreSQL: the report, its steps, the primary's
    step, the audit entry and the primary's count, all there afterwards."""
    first = _post("203.0.113.61").json()["code"]
    second = _post("203.0.113.62", text="Đèn trước chợ lại tắt.").json()["code"]
    primary, duplicate = Feedback.objects.get(code=first), Feedback.objects.get(code=second)
    assert (duplicate.status, duplicate.merged_into_id, primary.reporters) == ("merged", primary.pk, 2)
    assert [e.kind for e in duplicate.events.all()] == ["received", "merged"]
    assert [e.kind for e in primary.events.all()] == ["received", "joined"]
    entry = AuditEntry.objects.get(action="feedback.submit", target=duplicate.code)
    assert entry.detail["merged_into"] == first


def test_a_category_turned_off_after_this_process_read_it_is_refused(world, categories):
    """The intake checks a report with the categories and units this process keeps, and their data
    versions in its own transaction: an edit between two reports is seen by the second."""
    assert _post("203.0.113.71", category="roads").status_code == 201  # the categories are kept
    Category.objects.filter(code="roads").update(active=False)
    r = _post("203.0.113.72", category="roads")
    assert (r.status_code, r.json()["field"]) == (422, "category")
    assert Feedback.objects.filter(category_id="roads").count() == 1  # nothing written
    Category.objects.filter(code="roads").update(active=True, name="Đường sá")
    assert _post("203.0.113.73", category="roads").status_code == 201
