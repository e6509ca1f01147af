"""The wall (/wall/) and the room's charts in Chromium, served by uvicorn as `dieuhanh serve` serves them:
one screen without scrollbars at 1920×1080 and 3840×2160 (screenshots kept), Vietnamese for a browser
set to en-US, the charts drawn with their tables, PNG and CSV downloads, a live event reaching the wall,
and the views turning; all under the Content-Security-Policy."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dieuhanh.live import area_keys, publish_on_commit
from tests.factories import SCREENSHOTS, Watch, log_in, make_caller, positives, record

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

FULL_HD, UHD = (1920, 1080), (3840, 2160)


@pytest.fixture
def screens(browser, asgi_server) -> Iterator:
    """Pages of a given size and browser language, closed before the server stops (their streams end)."""
    contexts = []

    def open_page(size: tuple[int, int], locale: str = "en-US"):
        context = browser.new_context(locale=locale, viewport={"width": size[0], "height": size[1]})
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def figures(world, platform):
    """Four positives in Bến Thành today: it crosses its threshold, and the wall turns to it."""
    positives(platform, "26743", 4, timezone.now())


def wait_for_the_wall(page):
    expect(page.locator("#wall")).to_have_attribute("data-live", "open")
    for name in ("curve", "series", "rank", "targets"):
        expect(page.locator(f'#wall figure[data-chart="{name}"]')).to_have_attribute(
            "data-rows", "0" if name == "targets" else str(ROWS[name])
        )
    expect(page.locator("#wall-map")).to_have_attribute("data-drawn", "168")


ROWS = {"curve": 60, "series": 12, "rank": 20}


def no_scrollbar(page) -> dict:
    return page.evaluate(
        """() => {
          const d = document.documentElement, b = document.body;
          return {height: Math.max(d.scrollHeight, b.scrollHeight) - window.innerHeight,
                  width: Math.max(d.scrollWidth, b.scrollWidth) - window.innerWidth,
                  overflow: getComputedStyle(b).overflow};
        }"""
    )


@pytest.mark.parametrize("size", [FULL_HD, UHD], ids=["1920x1080", "3840x2160"])
def test_the_wall_is_one_screen_without_scrolling(screens, asgi_server, world, figures, size):
    page = screens(size)
    watch = Watch(page)
    make_hcm_leader(world)
    log_in(page, asgi_server, "hcm-leader")
    page.wait_for_url("**/room/")
    page.get_by_role("link", name="Màn hình tường").click()
    page.wait_for_url("**/wall/?unit=VN-2025:79")
    assert page.evaluate("document.documentElement.lang") == "vi"  # the browser asked for en-US
    wait_for_the_wall(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Thành phố Hồ Chí Minh")
    expect(page.locator('#wall-tiles [data-figure="positive"] .value')).to_have_text("4")
    expect(page.locator("#wall-alerts")).to_contain_text("Phường Bến Thành: Ca dương tính 4")
    assert no_scrollbar(page) == {"height": 0, "width": 0, "overflow": "hidden"}
    # Every panel inside the screen, none cut off at its edge.
    for selector in (".wall-figures", ".wall-map-panel", ".wall-side", ".wall-charts-panel"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= size[0] and box["y"] + box["height"] <= size[1], selector
    # Type readable from 5 m: the body text is at least 1/50 of the screen's height.
    body_px = float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    assert body_px >= size[1] / 50
    for figure in page.locator("#wall figure.chart").all():
        assert figure.locator("canvas").count() >= 1  # ECharts drew it
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"wall-{size[0]}x{size[1]}.png"))
    assert watch.violations() == []


def make_hcm_leader(world) -> None:
    make_caller("hcm-leader", world.province, "leader")


def test_charts_render_with_their_tables_and_export_png_and_csv(page, asgi_server, world, figures):
    watch = Watch(page)
    page.set_viewport_size({"width": 1600, "height": 1000})
    make_hcm_leader(world)
    log_in(page, asgi_server, "hcm-leader")
    page.wait_for_url("**/room/")
    for name, rows in [("curve", 60), ("series", 12), ("rank", 20), ("targets", 0)]:
        figure = page.locator(f'figure[data-chart="{name}"]')
        expect(figure).to_have_attribute("data-rows", str(rows))
        data = page.request.get(
            f"{asgi_server.url}/room/charts/{name}.json?unit=VN-2025:79&figure=positive"
        ).json()
        assert figure.locator("tbody tr").count() == len(data["rows"]) == rows
        assert figure.locator("canvas").count() >= 1
        texts = figure.locator("tbody tr").first.locator("td").all_text_contents() if rows else []
        assert texts == (data["text"][0] if rows else [])
    rank = page.locator('figure[data-chart="rank"]')
    rank.get_by_text("Bảng số liệu").click()
    expect(rank.locator("tbody tr").first).to_contain_text("Phường Bến Thành")
    # The curve's last row is today, in Vietnamese form: 4 tests, 4 positives.
    today = timezone.localdate()
    last = page.locator('figure[data-chart="curve"] tbody tr').last.locator("td").all_text_contents()
    assert last[:3] == [f"{today.day}/{today.month}/{today.year}", "4", "4"]
    with page.expect_download() as got:
        rank.get_by_role("link", name="CSV").click()
    download = got.value
    assert download.suggested_filename == "bieu-do-rank-VN-2025-79.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["Nhóm", "Hạng", "Đơn vị", "Ca dương tính"]
    assert rows[1] == ["Cao nhất", "1", "Phường Bến Thành", "4"]
    assert len(rows) == 21
    with page.expect_download() as got:
        page.locator('figure[data-chart="curve"]').get_by_role("button", name="PNG").click()
    assert got.value.suggested_filename == "bieu-do-curve-VN-2025-79.png"
    assert got.value.path().read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The series' choice: tests instead of positives.
    series = page.locator('figure[data-chart="series"]')
    series.locator("select").select_option("test")
    expect(series.locator(".chart-title")).to_contain_text("Mẫu xét nghiệm so với cùng kỳ năm trước")
    page.goto(f"{asgi_server.url}/units/VN-2025/26743/")  # the unit page has the charts too
    expect(page.locator('figure[data-chart="curve"]')).to_have_attribute("data-rows", "60")
    assert page.locator('figure[data-chart="rank"]').count() == 0  # a ward has no units below
    assert watch.violations() == []


def test_a_live_event_reaches_the_wall_and_the_views_turn(screens, asgi_server, world, platform):
    page = screens(FULL_HD, locale="vi-VN")
    make_hcm_leader(world)
    log_in(page, asgi_server, "hcm-leader")
    page.wait_for_url("**/room/")
    page.goto(f"{asgi_server.url}/wall/?seconds=5")
    expect(page.locator("#wall")).to_have_attribute("data-live", "open")
    tile = page.locator('#wall-tiles [data-figure="positive"] .value')
    expect(tile).to_have_text("—")
    when = timezone.now().isoformat()
    tests = [
        record(
            "test",
            source_event_id=f"wall-{i}",
            result="positive",
            sampled_at=when,
            person_id=f"07920300{i:04d}",
        )
        for i in range(3)
    ]
    response = page.request.post(
        f"{asgi_server.url}/api/v1/events/test",
        data="\n".join(json.dumps(t, ensure_ascii=False) for t in tests).encode(),
        headers={"Authorization": f"Bearer {platform.token}", "Content-Type": "application/x-ndjson"},
    )
    assert response.json()["accepted"] == 3
    expect(page.locator("#wall-ticker li").first).to_contain_text(
        "Số liệu mới: Xét nghiệm từ 1 xã, phường", timeout=10_000
    )
    expect(tile).to_have_text("3", timeout=10_000)
    expect(page.locator('#wall figure[data-chart="rank"] tbody tr').first).to_contain_text("Phường Bến Thành")
    # A new citizen's report, as feedback.services publishes it (the category and the place, no words).
    publish_on_commit(
        area_keys("VN-2025", world.commune_a.path),
        "feedback",
        {"code": "PA-TEST", "event": "new", "category": "moi_truong", "category_name": "Môi trường",
         "place": "Phường Bến Thành", "unit": world.commune_a.ref, "unit_name": "Phường Bến Thành"},
    )  # fmt: skip
    expect(page.locator("#wall-ticker li").first).to_contain_text(
        "Phản ánh mới: Môi trường — Phường Bến Thành"
    )
    # Its progress update (feedback.services.post_progress) is told as such, not as a new report.
    publish_on_commit(
        area_keys("VN-2025", world.commune_a.path),
        "feedback",
        {"code": "PA-TEST", "event": "progress", "category": "moi_truong", "category_name": "Môi trường",
         "place": "Phường Bến Thành", "unit": world.commune_a.ref, "unit_name": "Phường Bến Thành"},
    )  # fmt: skip
    expect(page.locator("#wall-ticker li").first).to_contain_text(
        "Phản ánh có cập nhật tiến độ: Môi trường — Phường Bến Thành"
    )
    # After a full turn the wall reads its views again: Bến Thành is now over its threshold.
    expect(page.locator("#wall")).to_have_attribute("data-shown", "VN-2025:26743", timeout=12000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Phường Bến Thành")
    expect(page.locator("#wall-view")).to_contain_text("Màn 2/2 · Ca dương tính 3")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "wall-live-ward.png"))
