"""A composed document written as DOCX, PDF, HTML or Markdown, in the layout of Decree 30/2020/NĐ-CP
(Appendix I): A4; margins top and bottom 20 mm, left 30 mm, right 15 mm; Times New Roman; the two-column
header (issuing body and number on the left, national name, motto and place-and-date on the right);
"BÁO CÁO" and its subject; body 14 pt, justified, first line indented 1 cm; page numbers from page 2,
centred at the top; "Nơi nhận:" and the signature block side by side at the end."""

from __future__ import annotations

import html
import io
from collections.abc import Callable

from docx import Document as new_docx
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Mm, Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph as DocxParagraph

from dieuhanh.reports.compose import Document, Heading, Paragraph, Table

FONT = "Times New Roman"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
MARGINS_MM = {"top": 20, "bottom": 20, "left": 30, "right": 15}
BODY_PT = 14
MISSING_HEADING = "Số liệu chưa có khi lập báo cáo"

FORMATS = ("docx", "pdf", "html", "md")
CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}


def render(document: Document, fmt: str) -> bytes:
    writers: dict[str, Callable[[Document], bytes]] = {
        "docx": docx_bytes, "pdf": pdf_bytes, "html": lambda d: html_page(d).encode(),
        "md": lambda d: markdown(d).encode(),
    }  # fmt: skip
    if fmt not in writers:
        raise ValueError(f"'{fmt}' is not a report format: use one of {', '.join(FORMATS)}")
    return writers[fmt](document)


# DOCX


def docx_bytes(document: Document) -> bytes:
    doc = new_docx()
    _page(doc)
    _styles(doc)
    _header_block(doc, document)
    _title(doc, document.subject)
    for item in document.items:
        if isinstance(item, Heading):
            _heading(doc, item)
        elif isinstance(item, Paragraph):
            _body_paragraph(doc, item)
        else:
            _table(doc, item)
    if document.missing:
        _missing(doc, document.missing)
    _signature(doc, document)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _page(doc) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    section.left_margin, section.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    # The first page carries no number; from page 2 the number stands centred in the top margin.
    section.different_first_page_header_footer = True
    number = section.header.paragraphs[0]
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _field(number, "PAGE")


def _field(paragraph: DocxParagraph, instruction: str) -> None:
    run = paragraph.add_run()
    _font(run, BODY_PT)
    for kind, text in (("begin", None), (None, instruction), ("separate", None), (None, "2"), ("end", None)):
        if kind:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)
        elif text == instruction:
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = f" {instruction} "
            run._r.append(instr)
        else:
            shown = OxmlElement("w:t")
            shown.text = text
            run._r.append(shown)


def _styles(doc) -> None:
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(BODY_PT)
    # Word takes Vietnamese letters from the East Asian and complex-script slots too; name the font in all.
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), FONT)
    normal.paragraph_format.space_after = Pt(6)
    normal.paragraph_format.line_spacing = 1.15


def _font(run, size: float, *, bold: bool = False, italic: bool = False) -> None:
    run.font.name, run.font.size = FONT, Pt(size)
    run.font.bold, run.font.italic = bold, italic
    run._r.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), FONT)


def _line(cell: _Cell, text: str, size: float, *, bold=False, italic=False, first=False) -> DocxParagraph:
    paragraph = cell.paragraphs[0] if first else cell.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.paragraph_format.line_spacing = 1
    _font(paragraph.add_run(text), size, bold=bold, italic=italic)
    return paragraph


def _no_borders(table) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def _header_block(doc, document: Document) -> None:
    table = doc.add_table(rows=1, cols=2)
    _no_borders(table)
    left, right = table.rows[0].cells
    left.width, right.width = Cm(6.5), Cm(10)
    first = True
    if document.governing_body:
        _line(left, document.governing_body.upper(), 13, first=True)
        first = False
    _line(left, document.issuing_body.upper(), 13, bold=True, first=first)
    _line(left, "_______", 13)
    _line(left, document.number_line, 13)
    _line(right, NATION, 13, bold=True, first=True)
    _line(right, MOTTO, 14, bold=True)
    _line(right, "_______________________", 13)
    _line(right, document.place_date, 14, italic=True)


def _title(doc, subject: str) -> None:
    for text, before in (("BÁO CÁO", 18), (subject, 0)):
        paragraph = doc.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.paragraph_format.space_before = Pt(before)
        _font(paragraph.add_run(text), 14, bold=True)
    doc.add_paragraph("_______").alignment = WD_ALIGN_PARAGRAPH.CENTER


def _heading(doc, heading: Heading) -> None:
    paragraph = doc.add_paragraph()
    if heading.depth == 0:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(paragraph.add_run(f"{heading.number}\n{heading.title.upper()}"), BODY_PT, bold=True)
        return
    paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    paragraph.paragraph_format.first_line_indent = Cm(1)
    paragraph.paragraph_format.keep_with_next = True
    title = heading.title.upper() if heading.depth == 1 else heading.title
    _font(paragraph.add_run(f"{heading.number} {title}"), BODY_PT, bold=True, italic=heading.depth == 3)


def _body_paragraph(doc, item: Paragraph) -> None:
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    paragraph.paragraph_format.first_line_indent = Cm(1)
    for text, missing in item.runs():
        run = paragraph.add_run(text)
        _font(run, BODY_PT, italic=missing)
        if missing:
            run.font.highlight_color = 7  # yellow: a gap the signer must see before signing


def _table(doc, item: Table) -> None:
    if item.title:
        caption = doc.add_paragraph()
        caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _font(caption.add_run(item.title), 13, bold=True)
    table = doc.add_table(rows=1, cols=len(item.header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(table.rows[0].cells, item.header, strict=True):
        _line(cell, text, 12, bold=True, first=True)
    for row in item.rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            paragraph = cell.paragraphs[0]
            paragraph.paragraph_format.space_after = Pt(0)
            for piece, missing in item.cell_runs(text):
                _font(paragraph.add_run(piece), 12, italic=missing)
    doc.add_paragraph()


def _missing(doc, lines: list[str]) -> None:
    paragraph = doc.add_paragraph()
    _font(paragraph.add_run(MISSING_HEADING + ":"), BODY_PT, bold=True, italic=True)
    for line in lines:
        entry = doc.add_paragraph()
        entry.paragraph_format.left_indent = Cm(1)
        _font(entry.add_run(f"- {line}"), 12, italic=True)


def _signature(doc, document: Document) -> None:
    table = doc.add_table(rows=1, cols=2)
    _no_borders(table)
    left, right = table.rows[0].cells
    paragraph = left.paragraphs[0]
    paragraph.paragraph_format.space_after = Pt(0)
    _font(paragraph.add_run("Nơi nhận:"), 12, bold=True, italic=True)
    for recipient in document.recipients:
        line = left.add_paragraph()
        line.paragraph_format.space_after = Pt(0)
        line.paragraph_format.line_spacing = 1
        _font(line.add_run(f"- {recipient}"), 11)
    _line(right, document.signer_title.upper(), 14, bold=True, first=True)
    _line(right, "(Ký, ghi rõ họ tên, đóng dấu)", 14, italic=True)
    for _ in range(3):
        _line(right, "", 14)
    _line(right, document.signer_name, 14, bold=True)


# HTML (and PDF through WeasyPrint, from the same page)

# Times New Roman where the reader has it; Debian's metric-compatible Liberation Serif where not.
_FONTS = '"Times New Roman", "Liberation Serif", serif'
_CSS = f"""
@page {{ size: A4;
  margin: {MARGINS_MM["top"]}mm {MARGINS_MM["right"]}mm {MARGINS_MM["bottom"]}mm {MARGINS_MM["left"]}mm;
  @top-center {{ content: counter(page); font: {BODY_PT}pt {_FONTS}; }} }}
@page :first {{ @top-center {{ content: none; }} }}
body {{ font: {BODY_PT}pt/1.3 {_FONTS}; color: #000; max-width: 165mm; margin: 0 auto; }}
.head {{ display: flex; justify-content: space-between; text-align: center; font-size: 13pt;
  line-height: 1.2; }}
.head .left {{ width: 40%; }} .head .right {{ width: 58%; }}
.head p {{ margin: 0; }} .motto {{ font-size: 14pt; font-weight: bold; }}
.rule {{ width: 30%; margin: 2pt auto 4pt; border-top: 1px solid #000; }}
.place {{ font-style: italic; font-size: 14pt; margin-top: 6pt !important; }}
h1 {{ font-size: 14pt; text-align: center; margin: 18pt 0 0; }}
h2.subject {{ font-size: 14pt; text-align: center; margin: 0 0 12pt; }}
h3 {{ font-size: {BODY_PT}pt; margin: 6pt 0; text-indent: 1cm; }}
h3.part {{ text-align: center; text-indent: 0; }} h3.d3 {{ font-style: italic; }}
p.body {{ text-align: justify; text-indent: 1cm; margin: 0 0 6pt; }}
.missing {{ font-style: italic; background: #ff0; }}
table.data {{ border-collapse: collapse; width: 100%; font-size: 12pt; margin: 6pt 0 12pt; }}
table.data th, table.data td {{ border: 1px solid #000; padding: 2pt 4pt; }}
table.data td:nth-child(n+3) {{ text-align: right; }}
caption {{ font-weight: bold; font-size: 13pt; }}
.gaps {{ font-style: italic; font-size: 12pt; }}
.end {{ display: flex; justify-content: space-between; margin-top: 12pt; page-break-inside: avoid; }}
.end .to {{ width: 50%; font-size: 11pt; }} .end .to b {{ font-size: 12pt; font-style: italic; }}
.end .to p {{ margin: 0; }} .end .sign {{ width: 45%; text-align: center; font-weight: bold; }}
.sign .note {{ font-weight: normal; font-style: italic; }} .sign .name {{ margin-top: 60pt; }}
"""


def _runs_html(runs: list[tuple[str, bool]]) -> str:
    return "".join(
        f'<span class="missing">{html.escape(text)}</span>' if missing else html.escape(text)
        for text, missing in runs
    )


def html_page(document: Document) -> str:
    e = html.escape
    parts = [
        f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{e(document.subject)}</title>'
        f"<style>{_CSS}</style></head><body>",
        '<div class="head"><div class="left">',
        f"<p>{e(document.governing_body.upper())}</p>" if document.governing_body else "",
        f'<p><b>{e(document.issuing_body.upper())}</b></p><div class="rule"></div>',
        f"<p>{e(document.number_line)}</p></div>",
        f'<div class="right"><p><b>{NATION}</b></p><p class="motto">{MOTTO}</p><div class="rule"></div>',
        f'<p class="place">{e(document.place_date)}</p></div></div>',
        f'<h1>BÁO CÁO</h1><h2 class="subject">{e(document.subject)}</h2>',
    ]
    for item in document.items:
        parts.append(_item_html(item))
    if document.missing:
        rows = "".join(f"<li>{e(line)}</li>" for line in document.missing)
        parts.append(f'<div class="gaps"><b>{MISSING_HEADING}:</b><ul>{rows}</ul></div>')
    recipients = "".join(f"<p>- {e(r)}</p>" for r in document.recipients)
    parts.append(
        f'<div class="end"><div class="to"><b>Nơi nhận:</b>{recipients}</div>'
        f'<div class="sign"><p>{e(document.signer_title.upper())}</p>'
        f'<p class="note">(Ký, ghi rõ họ tên, đóng dấu)</p><p class="name">{e(document.signer_name)}</p>'
        "</div></div></body></html>"
    )
    return "".join(parts)


def _item_html(item: Heading | Paragraph | Table) -> str:
    e = html.escape
    if isinstance(item, Heading):
        if item.depth == 0:
            return f'<h3 class="part">{e(item.number)}<br>{e(item.title.upper())}</h3>'
        title = item.title.upper() if item.depth == 1 else item.title
        return f'<h3 class="d{item.depth}">{e(item.number)} {e(title)}</h3>'
    if isinstance(item, Paragraph):
        return f'<p class="body">{_runs_html(item.runs())}</p>'
    caption = f"<caption>{e(item.title)}</caption>" if item.title else ""
    head = "".join(f"<th>{e(h)}</th>" for h in item.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_runs_html(item.cell_runs(c))}</td>" for c in row) + "</tr>"
        for row in item.rows
    )
    return f'<table class="data">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pdf_bytes(document: Document) -> bytes:
    from weasyprint import HTML  # imported on use: loading Pango costs ~0.5 s that other formats need not pay

    return HTML(string=html_page(document)).write_pdf()


# Markdown


def markdown(document: Document) -> str:
    def runs(pieces: list[tuple[str, bool]]) -> str:
        return "".join(f"*{text}*" if missing else text for text, missing in pieces)

    lines = [
        *([document.governing_body.upper()] if document.governing_body else []),
        f"**{document.issuing_body.upper()}**  ",
        document.number_line,
        "",
        f"**{NATION}**  ",
        f"**{MOTTO}**  ",
        f"*{document.place_date}*",
        "",
        "# BÁO CÁO",
        f"## {document.subject}",
        "",
    ]
    for item in document.items:
        if isinstance(item, Heading):
            level = "###" if item.depth <= 1 else "#" * min(item.depth + 2, 6)
            lines += [f"{level} {item.number} {item.title}", ""]
        elif isinstance(item, Paragraph):
            lines += [runs(item.runs()), ""]
        else:
            if item.title:
                lines += [f"**{item.title}**", ""]
            lines.append("| " + " | ".join(item.header) + " |")
            lines.append("|" + "---|" * len(item.header))
            lines += ["| " + " | ".join(runs(item.cell_runs(c)) for c in row) + " |" for row in item.rows]
            lines.append("")
    if document.missing:
        lines += [f"**{MISSING_HEADING}:**", "", *(f"- {m}" for m in document.missing), ""]
    lines += ["**Nơi nhận:**", "", *(f"- {r}" for r in document.recipients), ""]
    lines += [f"**{document.signer_title.upper()}**", ""]
    if document.signer_name:
        lines += [f"**{document.signer_name}**", ""]
    return "\n".join(lines)
