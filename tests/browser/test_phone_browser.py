"""The phone (issue 17, point 5), in Debian's Chromium at 390×844 with an English (en-US) browser: a
commune official's inbox, a delivery and the response form work one-handed — the menu is a bar at the
bottom with a Menu button, nothing scrolls sideways, the acts are tapped in the lower part of the
screen — and date fields show and read 26/8/2021 14:30, not the browser's mm/dd/yyyy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dieuhanh.directives.models import Directive, Response
from dieuhanh.vnformat import VN_TZ
from tests.factories import SCREENSHOTS, Watch, issue, log_in, screenshot

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 390, 844
# The thumb of a hand holding a 390×844 phone reaches the lower part of the screen without shifting
# the grip; the top is the hard part. Every act below is tapped under this line.
REACH = HEIGHT * 0.55
QUESTION = "Thời điểm hoàn thành rà soát"
BODY = "\n\n".join(
    f"{i}. Rà soát người về từ vùng dịch tại các khu phố, lập danh sách và báo cáo kết quả."
    for i in range(1, 9)
)


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        locale="en-US", viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    """What the phone's screen shows at this moment (a full-page capture would draw the bar at the
    bottom and the sticky buttons where the top of the page is, not where the user sees them)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH


def thumb_tap(page, locator, taps: list[float], *, at: float = REACH + 60) -> None:
    """Tap as a thumb does: if the target is above the reach or covered there (by the bar at the
    bottom), scroll the page as the thumb would until it sits in reach, then tap that point of the
    screen. Whatever is on top at that point gets the tap."""
    locator.scroll_into_view_if_needed()
    x, y = middle(locator)
    if y < REACH or not on_top(locator, x, y):
        page.evaluate("(d) => window.scrollBy(0, d)", y - at)
        x, y = middle(locator)
    assert REACH <= y <= HEIGHT and on_top(locator, x, y), f"{locator} is out of the thumb's reach (y={y})"
    taps.append(y)
    page.touchscreen.tap(x, y)


def middle(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def on_top(locator, x: float, y: float) -> bool:
    return locator.evaluate("(el, [x, y]) => el.contains(document.elementFromPoint(x, y))", [x, y])


def test_a_commune_official_reads_acknowledges_and_answers_one_handed(phone, live_server, world):
    issue(world.leader, title="Rà soát người về từ vùng dịch", body=BODY)
    issue(
        world.leader,
        title="Báo cáo rà soát khu phố",
        priority="urgent",
        body=BODY,
        form=[
            {"key": "done", "label": QUESTION, "type": "datetime"},
            {"key": "people", "label": "Số người đã rà soát", "type": "number"},
        ],
    )
    watch = Watch(phone)
    log_in(phone, live_server, "benthanh-operator")
    phone.wait_for_url("**/inbox/")
    assert phone.evaluate("document.documentElement.lang") == "vi"  # an English browser, a Vietnamese page

    # The menu: the header is one row, the menu a bar at the bottom, one row, with a Menu button.
    header = phone.locator("header.top").bounding_box()
    assert header["height"] <= 60
    expect(phone.locator("header.top nav")).to_be_hidden()
    bar = phone.get_by_role("navigation", name="Thanh điều hướng nhanh")
    expect(bar).to_be_visible()
    box = bar.bounding_box()
    assert box["y"] + box["height"] == pytest.approx(HEIGHT, abs=1) and box["height"] <= 72
    items = bar.locator(":scope > a, :scope > details > summary")
    assert [" ".join(text.split()) for text in items.all_inner_texts()] == [
        "Hộp thư 2",
        "Nhập liệu",
        "Đơn vị",
        "Menu",
    ]
    expect(
        bar.locator(":scope > a").get_by_label("2 chưa đọc")
    ).to_be_visible()  # the unread count rides on Hộp thư
    assert len({round(item.bounding_box()["y"]) for item in items.all()}) == 1  # one row
    expect(bar.get_by_role("link", name="Hộp thư")).to_have_attribute("aria-current", "page")
    no_sideways_scroll(phone)
    shot(phone, "phone-inbox")

    # Menu opens everything else upwards, within the screen, in reach.
    taps: list[float] = []
    thumb_tap(phone, bar.locator("summary"), taps)
    sheet = bar.locator(".sheet")
    expect(sheet.get_by_role("link", name="Báo cáo")).to_be_visible()
    expect(sheet.get_by_role("link", name="Nhập số liệu")).to_be_visible()
    expect(sheet.get_by_role("button", name="Đăng xuất")).to_be_visible()
    sheet_box = sheet.bounding_box()
    assert sheet_box["y"] >= 0 and sheet_box["y"] + sheet_box["height"] <= HEIGHT
    no_sideways_scroll(phone)
    shot(phone, "phone-menu-open")
    thumb_tap(phone, bar.locator("summary"), taps)
    expect(sheet).to_be_hidden()
    # Opened again, a tap outside it closes it too (menu.js), and so does Escape.
    bar.locator("summary").tap()
    expect(sheet).to_be_visible()
    phone.touchscreen.tap(WIDTH / 2, sheet.bounding_box()["y"] / 2)  # above the sheet, whatever its height
    expect(sheet).to_be_hidden()
    expect(phone).to_have_url(re.compile(r".*/inbox/$"))  # closed, not followed a link
    bar.locator("summary").tap()
    phone.keyboard.press("Escape")
    expect(sheet).to_be_hidden()

    # Picking the directive is the one tap where the list puts it (the newest urgent one is on top).
    phone.get_by_role("link", name="Khẩn Báo cáo rà soát khu phố").tap()
    phone.wait_for_url("**/inbox/*/")
    expect(bar.locator(":scope > a").get_by_label("1 chưa đọc")).to_be_visible()  # opened: one left unread
    no_sideways_scroll(phone)
    # While the directive is read, Acknowledge and Respond stay above the bar, in reach.
    acknowledge = phone.get_by_role("button", name="Đã nhận")
    box = acknowledge.bounding_box()
    assert box["y"] >= REACH and box["y"] + box["height"] <= HEIGHT - 56
    shot(phone, "phone-delivery")
    thumb_tap(phone, acknowledge, taps)
    expect(phone.get_by_role("status").first).to_contain_text("Đã xác nhận nhận chỉ đạo.")
    thumb_tap(phone, phone.locator(".actionbar").get_by_role("link", name="Báo cáo"), taps)

    # The response form: the date field reads and shows the Vietnamese way.
    when = phone.get_by_label(QUESTION, exact=True)
    expect(when).to_have_attribute("type", "text")
    expect(when).to_have_attribute("placeholder", "26/8/2021 14:30")
    hint = phone.locator("#q_done-hint")
    expect(hint).to_have_text("Ngày/tháng/năm giờ:phút, ví dụ 26/8/2021 14:30")
    thumb_tap(phone, when, taps)
    phone.keyboard.type("8/26/2021 2:30")  # the American order is refused, and says so
    thumb_tap(phone, phone.get_by_label("Số người đã rà soát"), taps)
    expect(hint).to_have_text(
        f"{QUESTION}: “8/26/2021 2:30” không phải ngày giờ hợp lệ: không có tháng 26: viết ngày trước, "
        "tháng sau (26/8/2021). Hãy viết theo dạng 26/8/2021 14:30."
    )
    expect(when).to_have_attribute("aria-invalid", "true")
    phone.keyboard.type("1.250")
    thumb_tap(phone, when, taps)
    when.fill("")
    phone.keyboard.type("ngày 26/8/2021 lúc 14h30")
    thumb_tap(phone, phone.get_by_label("Nội dung"), taps)
    expect(when).to_have_value("26/8/2021 14:30")  # read by the server's parser, shown its way
    expect(hint).to_have_text("Ngày/tháng/năm giờ:phút, ví dụ 26/8/2021 14:30")
    phone.keyboard.type("Đã rà soát xong các khu phố.")
    no_sideways_scroll(phone)
    shot(phone, "phone-response-form")
    send = phone.get_by_role("button", name="Gửi báo cáo")
    thumb_tap(phone, send, taps)
    expect(phone.locator("ol.responses")).to_contain_text(f"{QUESTION}: 26/8/2021 14:30")
    expect(phone.locator("ol.responses")).to_contain_text("Số người đã rà soát: 1.250")
    assert Response.objects.get().figures == {"people": 1250.0}
    no_sideways_scroll(phone)
    phone.locator("ol.responses").scroll_into_view_if_needed()
    shot(phone, "phone-response-sent")
    assert len(taps) == 9 and min(taps) >= REACH
    assert watch.violations() == []


def test_a_leaders_deadline_shows_and_reads_26_8_2021_14_30_in_an_english_browser(phone, live_server, world):
    watch = Watch(phone)
    log_in(phone, live_server, "leader")
    phone.wait_for_url("**/room/")
    bar = phone.get_by_role("navigation", name="Thanh điều hướng nhanh")
    expect(bar.locator(":scope > a")).to_have_text(["Hộp thư", "Điều hành", "Đơn vị"])
    bar.locator("summary").tap()
    bar.get_by_role("link", name="Chỉ đạo mới").tap()
    phone.wait_for_url("**/directives/new/")
    no_sideways_scroll(phone)
    phone.get_by_label("Tiêu đề").fill("Kiểm tra điểm tiêm chủng")
    phone.get_by_label("Đơn vị (MÃ-BẢN-ĐỒ:MÃ, cách nhau bởi dấu phẩy)").fill("VN-2025:26743")
    deadline = phone.get_by_label("Hạn", exact=True)
    expect(deadline).to_have_attribute("placeholder", "26/8/2021 14:30")
    # The calendar button hands the browser's picker's choice (ISO) to the server's parser, and the
    # field shows it the Vietnamese way.
    expect(phone.get_by_role("button", name="Chọn trên lịch: Hạn")).to_be_visible()
    phone.locator("#deadline ~ input.picker").fill("2030-08-26T09:05")
    expect(deadline).to_have_value("26/8/2030 09:05")
    deadline.fill("26/8/2030 14:30")
    deadline.blur()
    expect(deadline).to_have_value("26/8/2030 14:30")
    shot(phone, "phone-compose-deadline")
    phone.get_by_role("button", name="Ban hành").tap()
    phone.wait_for_url(re.compile(r"/directives/[0-9]+/$"))
    assert Directive.objects.get().deadline.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") == "26/08/2030 14:30"
    expect(phone.locator("main")).to_contain_text("14:30 26/8/2030")
    no_sideways_scroll(phone)
    assert watch.violations() == []


def test_the_wide_layout_keeps_its_header_menu(browser, live_server, world):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "benthanh-operator")
    page.wait_for_url("**/inbox/")
    expect(page.get_by_role("navigation", name="Thanh điều hướng nhanh")).to_be_hidden()
    menu = page.locator("header.top nav")
    expect(menu.get_by_role("link", name="Hộp thư chỉ đạo")).to_have_attribute("aria-current", "page")
    expect(menu.get_by_role("link", name="Nhập số liệu")).to_be_visible()
    assert page.locator("header.top").bounding_box()["height"] <= 60  # one row
    screenshot(page, "wide-inbox")
    context.close()
