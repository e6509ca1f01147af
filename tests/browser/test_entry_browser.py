"""Data entry in Debian's Chromium: a commune operator fills the form, and sends the Excel form back
with one bad row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.models import DataValue
from dieuhanh.units.scoping import Area
from tests.factories import log_in, screenshot

pytestmark = pytest.mark.browser


def open_form(page, live_server):
    log_in(page, live_server, "benthanh-operator")
    page.wait_for_url("**/inbox/")
    page.get_by_role("link", name="Nhập số liệu").click()
    section = page.get_by_role("region", name="Báo cáo viễn thông")
    section.get_by_label("Kỳ", exact=True).fill("202108")
    section.get_by_role("button", name="Mở biểu mẫu").click()
    page.wait_for_url("**/entry/telecom/?unit=VN-2025%3A26743&period=202108")


def test_the_form_saves_a_value_and_shows_it_with_last_period_beside(page, live_server, world, telecom):
    records = [
        {"dataElement": "postal_revenue", "period": "202107", "orgUnit": "VN-2025:26743", "value": 1100}
    ]
    assert not import_values(records, actor=None, area=Area(True, frozenset())).conflicts
    open_form(page, live_server)
    assert page.get_by_role("heading", level=1).inner_text().endswith("Phường Bến Thành · tháng 8/2021")
    page.get_by_label("Doanh thu bưu chính", exact=True).fill("1.250,5")
    page.get_by_role("button", name="Lưu", exact=True).click()
    summary = page.get_by_role("status").filter(has_text="Đã lưu.")
    assert "Mới: 1" in summary.inner_text()
    assert page.get_by_label("Doanh thu bưu chính", exact=True).input_value() == "1.250,5"
    row = page.get_by_role("row").filter(has=page.get_by_label("Doanh thu bưu chính", exact=True))
    assert row.locator("td[data-label='Kỳ trước']").inner_text() == "1.100"
    assert DataValue.objects.get(period="202108").value == 1250.5
    screenshot(page, "entry-form")


def test_an_excel_upload_with_one_bad_row_shows_that_rows_error(page, live_server, world, telecom, tmp_path):
    open_form(page, live_server)
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải biểu mẫu Excel").click()
    assert download.value.suggested_filename == "telecom-26743-202108.xlsx"
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    sheet = book.active
    for row in sheet.iter_rows(min_row=7):
        if row[0].value == "postal_revenue":
            row[4].value = 1500
        if row[0].value == "coverage":
            row[4].value = 120  # a percentage over 100: refused
    filled = tmp_path / "bao-cao.xlsx"
    buffer = io.BytesIO()
    book.save(buffer)
    filled.write_bytes(buffer.getvalue())
    page.get_by_label("Tải lên biểu mẫu đã điền").set_input_files(str(filled))
    page.get_by_role("button", name="Tải lên", exact=True).click()
    page.wait_for_url("**/entry/telecom/upload/")
    summary = page.get_by_role("status").filter(has_text="Đã lưu, nhưng một số giá trị bị từ chối.")
    assert "Mới: 1" in summary.inner_text()
    refused = page.locator("table.refused tbody tr")
    assert refused.count() == 1
    cells = refused.first.locator("td").all_inner_texts()
    assert cells == ["Dòng 7", "Giá trị: 120", "'coverage' là tỉ lệ phần trăm (từ 0 đến 100)"]
    assert DataValue.objects.get().value == 1500
    screenshot(page, "entry-upload-summary")
