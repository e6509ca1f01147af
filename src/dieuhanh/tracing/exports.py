"""The contact list per commune of residence as CSV (for any tool) and XLSX (for officials)."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from dieuhanh.sheets import append_row, csv_row
from dieuhanh.tracing.present import LIST_HEADERS

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def list_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(csv_row(label for _, label in LIST_HEADERS))
    for row in rows:
        writer.writerow(csv_row(row[name] for name, _ in LIST_HEADERS))
    # The BOM lets Excel open Vietnamese text as UTF-8 rather than as the system's code page.
    return out.getvalue().encode("utf-8-sig")


def list_xlsx(rows: list[dict], title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Danh sách tiếp xúc"
    append_row(sheet, [title])
    sheet["A1"].font = Font(bold=True, size=13)
    append_row(sheet, [label for _, label in LIST_HEADERS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        append_row(sheet, [row[name] for name, _ in LIST_HEADERS])
    for i, (name, label) in enumerate(LIST_HEADERS, start=1):
        longest = max([len(label), *(len(str(r[name])) for r in rows)])
        sheet.column_dimensions[get_column_letter(i)].width = min(60, longest + 2)
    sheet.freeze_panes = "A3"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
