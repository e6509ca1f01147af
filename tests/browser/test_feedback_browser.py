"""A citizen's report in Debian's Chromium, on a phone-sized screen (issue 20): filed at /phan-anh/
without logging in, followed by its code, answered by Bến Thành's official, and read in public
without the citizen's phone number."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dieuhanh.feedback.models import Feedback
from tests.factories import screenshot

pytestmark = pytest.mark.browser

PHONE = "0912 345 678"
PHONE_TRACES = (PHONE, "0912345678", "912345678", "912 345 678", "345 678", "+84")
ADDRESS = "Phường Bến Thành, TP Hồ Chí Minh"
TEXT = "Đèn đường trước cổng chợ Bến Thành tắt ba đêm nay, lối đi rất tối."
ANSWER = "Phường đã thay bóng đèn ngày 5/12; xin cảm ơn người dân đã phản ánh."


# The fields and buttons that stick out of the card, with their right edge and the card's inner one.
SPILLS = """() => {
  const card = document.querySelector("section.card");
  const inner = card.getBoundingClientRect().right - parseFloat(getComputedStyle(card).paddingRight);
  return [...card.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
    .filter((e) => e.getBoundingClientRect().right > inner + 1)
    .map((e) => `${e.id || e.name || e.tagName} ${e.getBoundingClientRect().right} > ${inner}`);
}"""


def fits_the_phone(page) -> None:
    """Nothing spills sideways on a phone: no horizontal scroll, and every field stays in its card."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(SPILLS) == []


def shows_no_phone(page) -> None:
    html = page.content()
    for trace in PHONE_TRACES:
        assert trace not in html


def test_a_citizen_files_follows_and_reads_the_public_answer(phone, live_server, world, categories):
    # The citizen files a report, with an address in the new form and a phone number.
    phone.goto(f"{live_server.url}/phan-anh/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Gửi phản ánh, kiến nghị")
    fits_the_phone(phone)
    phone.get_by_label("Lĩnh vực").select_option(label="Chiếu sáng công cộng")
    phone.get_by_label("Nội dung").fill(TEXT)
    phone.get_by_label("Theo địa chỉ (mới hoặc cũ)").check()
    phone.get_by_label("Địa chỉ", exact=True).fill(ADDRESS)
    phone.get_by_label("Số điện thoại (không bắt buộc, không công khai)").fill(PHONE)
    screenshot(phone, "feedback-form-phone")
    phone.get_by_role("button", name="Gửi phản ánh").click()

    # They land on the tracking page of their code.
    phone.wait_for_url(re.compile(r"/phan-anh/theo-doi/PA[A-Z2-9]{8}/$"))
    code = phone.url.rstrip("/").rsplit("/", 1)[1]
    item = Feedback.objects.get(code=code)
    assert item.unit == world.commune_a
    expect(phone.get_by_role("heading", level=1)).to_have_text(f"Phản ánh {code}")
    facts = phone.locator("dl.facts")
    expect(facts).to_contain_text("Chiếu sáng công cộng")
    expect(facts).to_contain_text("Phường Bến Thành")
    expect(phone.locator("#status")).to_have_text("Đã tiếp nhận")
    expect(phone.locator("ol.history")).to_contain_text("Tiếp nhận: Phường Bến Thành")
    shows_no_phone(phone)
    fits_the_phone(phone)

    # Later, they open it again by its code from the form page.
    phone.goto(f"{live_server.url}/phan-anh/")
    phone.get_by_label("Đã gửi? Nhập mã để theo dõi").fill(code.lower())
    phone.get_by_role("button", name="Theo dõi").click()
    # The code typed in lower case finds it too (the address keeps what was typed).
    phone.wait_for_url(re.compile(f"/phan-anh/theo-doi/{code}/$", re.IGNORECASE))
    expect(phone.get_by_role("heading", level=1)).to_have_text(f"Phản ánh {code}")
    expect(phone.locator("#status")).to_have_text("Đã tiếp nhận")

    # Bến Thành's official takes it and answers it; there is no page for that, the API is the way.
    official = world.operator_a.client()
    queue = official.get("/api/v1/feedback", {"unit": world.commune_a.ref}).json()["items"]
    assert [i["code"] for i in queue] == [code]
    assert official.post(f"/api/v1/feedback/{code}/accept").status_code == 200
    answered = official.post(
        f"/api/v1/feedback/{code}/answer", {"text": ANSWER}, content_type="application/json"
    )
    assert answered.status_code == 200, answered.content

    # The citizen's tracking page shows the answer, and they rate it.
    phone.reload()
    expect(phone.locator("#status")).to_have_text("Đã trả lời")
    history = phone.locator("ol.history")
    expect(history).to_contain_text("Đơn vị nhận xử lý: Phường Bến Thành")
    expect(history.locator("blockquote")).to_have_text(ANSWER)
    shows_no_phone(phone)
    fits_the_phone(phone)
    screenshot(phone, "feedback-track-answered-phone")
    phone.get_by_role("button", name="4 trên 5").click()
    expect(phone.locator("#rating")).to_have_text("Bạn đã đánh giá câu trả lời: 4/5.")

    # The public page lists it with the answer, the commune and the rating, never the phone number
    # or the address as given.
    phone.get_by_role("link", name="Các câu trả lời công khai").click()
    phone.wait_for_url("**/phan-anh/cong-khai/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Trả lời phản ánh, kiến nghị")
    expect(phone.get_by_text("1 phản ánh đã được trả lời.")).to_be_visible()
    article = phone.locator("article.answered").filter(has_text=code)
    expect(article).to_have_count(1)
    expect(article.get_by_role("heading", level=2)).to_have_text(
        f"Chiếu sáng công cộng — Phường Bến Thành ({code})"
    )
    expect(article).to_contain_text(TEXT)
    expect(article.locator("blockquote")).to_have_text(ANSWER)
    expect(article).to_contain_text("Người phản ánh đánh giá: 4/5")
    shows_no_phone(phone)
    assert ADDRESS not in phone.content()
    fits_the_phone(phone)

    # Searched by the commune's name without diacritics, it is still there.
    phone.get_by_label("Tìm", exact=True).fill("ben thanh")
    phone.get_by_role("button", name="Tìm").click()
    expect(phone.locator("article.answered").filter(has_text=code)).to_have_count(1)
    shows_no_phone(phone)
    fits_the_phone(phone)
    screenshot(phone, "feedback-public-phone")


def test_a_citizen_asks_in_a_session_and_reads_the_published_answer(phone, live_server, world, categories):
    # Bến Thành opens a "Dân hỏi – Chính quyền trả lời" session (API: the officials have no page yet).
    official = world.operator_a.client()
    opened = official.post(
        "/api/v1/feedback/sessions",
        {
            "unit": "VN-2025:26743",
            "title": "Dân hỏi – Chính quyền trả lời tháng 12",
            "date": "2026-12-20",
            "topics": ["Môi trường"],
        },
        content_type="application/json",
    )
    assert opened.status_code == 201, opened.content
    sid = opened.json()["id"]
    phone.goto(f"{live_server.url}/phan-anh/hoi-dap/{sid}/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Dân hỏi – Chính quyền trả lời tháng 12")
    phone.get_by_label("Chủ đề").select_option(label="Môi trường")
    phone.get_by_label("Câu hỏi (không ghi số điện thoại, số giấy tờ hay địa chỉ nhà)").fill(
        "Khi nào có thùng rác trên đường Lê Lợi? Số tôi 0912345678"
    )
    phone.get_by_role("button", name="Gửi câu hỏi").click()
    expect(phone.locator("#asked")).to_contain_text("Câu hỏi của bạn đã được gửi")
    fits_the_phone(phone)
    # The ward answers and publishes; the citizen reads the answer under its topic, without the number.
    question = official.get(f"/api/v1/feedback/sessions/{sid}").json()["groups"][0]["questions"][0]
    answer = official.post(
        f"/api/v1/feedback/sessions/{sid}/questions/{question['id']}/answer",
        {"text": "Phường đặt thêm 10 thùng rác trong tháng 12.", "answerer_title": "Chủ tịch UBND phường"},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert official.post(f"/api/v1/feedback/sessions/{sid}/publish").status_code == 200
    phone.goto(f"{live_server.url}/phan-anh/cong-khai/")
    phone.get_by_role("link", name="Dân hỏi – Chính quyền trả lời tháng 12").click()
    topic = phone.locator("section.topic")
    expect(topic.get_by_role("heading", level=2)).to_have_text("Môi trường")
    expect(topic.locator("blockquote")).to_contain_text("Phường đặt thêm 10 thùng rác trong tháng 12.")
    expect(topic.locator("blockquote")).to_contain_text("Chủ tịch UBND phường")
    shows_no_phone(phone)
    fits_the_phone(phone)
    screenshot(phone, "feedback-session-phone")
