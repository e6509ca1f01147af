"""The Decree 30/2020/NĐ-CP layout, read back from the files as a clerk would check it: the DOCX through
python-docx (page, margins, fonts, header texts, number line, page numbers from page 2, signature), the
PDF through pdfium (text, A4 pages), its first page saved as PNG for a person to look at."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm

from dieuhanh.reports import services
from tests.factories import stored_files

OUTPUT = Path(__file__).parent / "output"  # not committed: for a person to look at after a run


pytestmark = pytest.mark.usefixtures("media")


def make(actor, fmt: str, number: str = "") -> Path:
    request = services.prepare(actor=actor, definition="ict_monthly", period="202108", unit=None, fmt=fmt)
    report = services.generate(actor=actor, request=request, number=number, dated=date(2021, 9, 5))
    return services.file_path(report)


def mm(length) -> float:
    return round(length / Mm(1), 1)


def test_docx_page_margins_and_fonts(world, ict):
    doc = Document(str(make(world.leader.user, "docx")))
    page = doc.sections[0]
    assert (mm(page.page_width), mm(page.page_height)) == (210, 297)
    margins = [mm(page.top_margin), mm(page.bottom_margin), mm(page.left_margin), mm(page.right_margin)]
    assert 20 <= margins[0] <= 25 and 20 <= margins[1] <= 25
    assert 30 <= margins[2] <= 35 and 15 <= margins[3] <= 20
    normal = doc.styles["Normal"].font
    assert normal.name == "Times New Roman" and 13 <= normal.size.pt <= 14
    # A run without its own font takes Normal's.
    fonts = {run.font.name or normal.name for p in doc.paragraphs for run in p.runs if run.text.strip()}
    assert fonts == {"Times New Roman"}


def test_docx_header_title_and_number_line(world, ict):
    doc = Document(str(make(world.leader.user, "docx", number="215")))
    left, right = doc.tables[0].rows[0].cells
    assert [p.text for p in left.paragraphs if p.text.strip("_ ")] == [
        "BỘ THÔNG TIN VÀ TRUYỀN THÔNG",
        "Số: 215/BC-BTTTT",
    ]
    assert [p.text for p in right.paragraphs if p.text.strip("_ ")] == [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Hà Nội, ngày 05 tháng 9 năm 2021",
    ]
    assert right.paragraphs[-1].runs[0].font.italic
    texts = [p.text for p in doc.paragraphs]
    title = texts.index("BÁO CÁO")
    assert texts[title + 1] == "Tình hình phát triển ngành Thông tin và Truyền thông tháng 8/2021"
    assert doc.paragraphs[title].runs[0].font.bold


def test_docx_body_is_justified_and_indented_with_numbered_sections(world, ict):
    doc = Document(str(make(world.leader.user, "docx")))
    body = [p for p in doc.paragraphs if p.text.startswith("Doanh thu bưu chính ước đạt 24.500 tỷ")]
    assert len(body) == 1
    paragraph = body[0]
    assert paragraph.alignment == WD_ALIGN_PARAGRAPH.JUSTIFY
    assert mm(paragraph.paragraph_format.first_line_indent) == 10
    assert 13 <= paragraph.runs[0].font.size.pt <= 14
    headings = [p.text for p in doc.paragraphs if p.runs and p.runs[0].font.bold]
    assert "I. BƯU CHÍNH" in headings and "1. Văn bản chỉ đạo" in headings


def test_docx_page_numbers_from_page_two_and_signature(world, ict):
    doc = Document(str(make(world.leader.user, "docx")))
    page = doc.sections[0]
    assert page.different_first_page_header_footer
    assert "PAGE" in page.header._element.xml  # the number field, in the header of pages 2 onwards
    assert not page.first_page_header.paragraphs[0].text.strip()
    left, right = doc.tables[-1].rows[0].cells
    assert left.paragraphs[0].text == "Nơi nhận:"
    assert "- Thủ tướng Chính phủ (để b/c);" in [p.text for p in left.paragraphs]
    assert right.paragraphs[0].text == "BỘ TRƯỞNG"


def test_pdf_is_a4_says_the_figures_and_is_saved_as_png(world, ict):
    pdf = pdfium.PdfDocument(make(world.leader.user, "pdf").read_bytes())
    width, height = pdf[0].get_size()  # points
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (210, 297)
    text = " ".join(" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf)))
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "BÁO CÁO" in text
    assert "Doanh thu bưu chính ước đạt 24.500 tỷ (tăng 10% so với cùng kỳ)" in text
    assert "Nơi nhận:" in text

    # Page numbers from page 2: a line holding only the page's number, on page 2 and not on page 1.
    def lines(page: int) -> list[str]:
        return [line.strip() for line in pdf[page].get_textpage().get_text_range().splitlines()]

    assert "1" not in lines(0) and "2" in lines(1)
    OUTPUT.mkdir(exist_ok=True)
    image = pdf[0].render(scale=1.5).to_pil()
    image.save(OUTPUT / "ict_monthly_202108_page1.png")
    assert image.size[0] > 800


def test_html_marks_a_missing_figure(world, ict, media):
    from dieuhanh.indicators.datavalues import import_values
    from dieuhanh.units.scoping import Area

    record = {"dataElement": "ict_revenue", "period": "2021YTD08", "orgUnit": "VN-2025:VN", "value": ""}
    import_values([record], actor=None, area=Area(True, frozenset()))
    path = make(world.leader.user, "html")
    assert stored_files(media) == [path]
    page = path.read_text(encoding="utf-8")
    assert 'Tổng doanh thu công nghiệp ICT <span class="missing">chưa có số liệu</span>' in page
    assert "Số liệu chưa có khi lập báo cáo" in page
