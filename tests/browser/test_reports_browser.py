"""A leader makes the monthly report on the reports page and downloads the PDF; a bad period is explained."""

import pypdfium2 as pdfium
import pytest

from dieuhanh.reports.services import load_shipped
from tests.factories import ict_catalogue, log_in, screenshot, stored_files

pytestmark = pytest.mark.browser


@pytest.fixture
def shipped(world, media):
    ict_catalogue()
    return load_shipped(owner=world.leader.user)


def test_leader_makes_the_monthly_report_and_downloads_the_pdf(page, live_server, world, shipped, media):
    log_in(page, live_server, "leader")
    page.goto(f"{live_server.url}/reports/")
    page.get_by_label("Báo cáo", exact=True).select_option("ict_monthly")
    page.get_by_label("Kỳ báo cáo").fill("2021-08")
    page.get_by_role("button", name="Lập báo cáo").click()
    assert "Không lập được báo cáo" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Kỳ báo cáo").input_value() == "2021-08"  # the form is kept to correct
    page.get_by_label("Kỳ báo cáo").fill("202108")
    page.get_by_label("Định dạng").select_option("pdf")
    page.get_by_role("button", name="Lập báo cáo").click()
    assert "đã lập xong" in page.get_by_role("status").inner_text()
    screenshot(page, "reports-archive")
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").first.click()
    saved = media / "tai-ve" / "report.pdf"
    download.value.save_as(saved)
    assert [p.read_bytes() for p in stored_files(media / "reports")] == [saved.read_bytes()]  # the one stored
    assert download.value.suggested_filename == "ict_monthly-202108-VN.pdf"
    text = pdfium.PdfDocument(saved)[0].get_textpage().get_text_range()
    assert "24.500 tỷ" in text and "BÁO CÁO" in text
