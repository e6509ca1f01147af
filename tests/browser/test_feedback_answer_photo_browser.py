"""Issue 20 in Debian's Chromium, on a phone-sized screen: Bến Thành's official answers a citizen's
report with a photo on the report's page, and the public page shows the photo — a picture the browser
draws, without the GPS position and the device the camera wrote into it — with nothing the page's
Content-Security-Policy had to refuse."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.test import Client
from playwright.sync_api import expect

from dieuhanh.feedback.models import Category, Feedback
from tests.factories import CAMERA, jpeg, stored_files

pytestmark = pytest.mark.browser

ANSWER = "Phường đã thay bóng đèn và cáp điện; đèn sáng lại từ tối 5/12."
PASSWORD = "mat-khau-thu-nghiem-42"
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(locale="vi-VN", viewport={"width": 390, "height": 844}, is_mobile=True)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    yield page
    context.close()


def fits_the_phone(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("window.__violations") == []


def test_an_official_answers_with_a_photo_and_the_public_page_shows_it(phone, live_server, world, media):
    if not Category.objects.exists():  # a flushed test database has lost the migration's categories
        importlib.import_module("dieuhanh.feedback.migrations.0002_categories").add(apps, None)
    filed = Client(REMOTE_ADDR="203.0.113.7").post(
        "/api/v1/feedback",
        {
            "category": "lighting",
            "text": "Đèn đường trước chợ tắt ba đêm nay.",
            "address": "Phường Bến Thành, TP Hồ Chí Minh",
        },
    )
    assert filed.status_code == 201, filed.content
    code = filed.json()["code"]
    official = world.operator_a.user
    official.set_password(PASSWORD)
    official.save()

    phone.goto(f"{live_server.url}/login/")
    phone.get_by_label("Tên đăng nhập").fill(official.username)
    phone.get_by_label("Mật khẩu").fill(PASSWORD)
    phone.get_by_role("button", name="Đăng nhập").click()
    phone.wait_for_load_state()
    phone.goto(f"{live_server.url}/phan-anh/xu-ly/{code}/")
    expect(phone.get_by_role("heading", level=1)).to_have_text(f"Phản ánh {code}")
    answer = phone.locator("form#answer")
    answer.get_by_label("Nội dung trả lời (người dân và trang công khai đều đọc được)").fill(ANSWER)
    answer.locator("input[type=file]").set_input_files(
        [{"name": "den-sang.jpg", "mimeType": "image/jpeg", "buffer": jpeg((240, 200, 40), (320, 240))}]
    )
    fits_the_phone(phone)
    answer.get_by_role("button", name="Gửi câu trả lời").click()
    expect(phone.locator("li.success")).to_contain_text(f"Đã trả lời phản ánh {code}")
    expect(phone.locator("#status")).to_have_text("Đã trả lời")
    assert Feedback.objects.get(code=code).status == "answered"

    # The public page, read by anyone: the answer with its photo, drawn, and stripped of the camera's data.
    public = phone.context.browser.new_context(locale="vi-VN", viewport={"width": 390, "height": 844})
    public.add_init_script(RECORD_VIOLATIONS)
    reader = public.new_page()
    reader.goto(f"{live_server.url}/phan-anh/cong-khai/")
    article = reader.locator("article.answered").filter(has_text=code)
    expect(article).to_have_count(1)
    expect(article.locator("blockquote")).to_have_text(ANSWER)
    image = article.locator("ul.post-photos img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("alt", "Ảnh 1 kèm câu trả lời")
    image.scroll_into_view_if_needed()
    reader.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [320, 240]
    body = reader.request.get(live_server.url + (image.get_attribute("src") or "")).body()
    assert body[:2] == b"\xff\xd8" and CAMERA.encode() not in body and b"Exif" not in body
    assert [p.read_bytes() for p in stored_files(media)] == [body]  # kept stripped, in the test's folder
    fits_the_phone(reader)
    public.close()

    # The same official opens a "Dân hỏi – Chính quyền trả lời" session from the menu's page, on the phone.
    phone.goto(f"{live_server.url}/phan-anh/xu-ly/hoi-dap/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Dân hỏi – Chính quyền trả lời")
    form = phone.locator("form#open-session")
    form.get_by_label("Tiêu đề").fill("Tiếp dân trực tuyến tháng 12")
    form.get_by_label("Ngày (ngày/tháng/năm)").fill("20/12/2026")
    form.get_by_label("Chủ đề, mỗi dòng một chủ đề (luôn có thêm chủ đề “Khác”)").fill("Chiếu sáng")
    fits_the_phone(phone)
    form.get_by_role("button", name="Mở phiên").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Tiếp dân trực tuyến tháng 12")
    expect(phone.locator("#session-status")).to_have_text("Đang nhận câu hỏi")
    expect(phone.locator("#no-questions")).to_be_visible()
    fits_the_phone(phone)
    # A citizen's question arrives; its answer form fits the phone too.
    session = phone.url.rstrip("/").rsplit("/", 1)[1]
    asked = Client(REMOTE_ADDR="203.0.113.9").post(
        f"/phan-anh/hoi-dap/{session}/", {"topic": "Chiếu sáng", "text": "Khi nào lắp thêm đèn ở hẻm 12?"}
    )
    assert asked.status_code == 200, asked.content
    phone.reload()
    question = phone.locator("article.question")
    expect(question).to_contain_text("Khi nào lắp thêm đèn ở hẻm 12?")
    expect(question.get_by_label("Câu trả lời")).to_be_visible()
    fits_the_phone(phone)
