"""Excel forms of a data set, for the officials who fill spreadsheets: a template per unit and period
(filled with what is stored, last period's and last year's values beside each field), and reading a
filled one back into import records that name their spreadsheet row."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from zipfile import BadZipFile

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font, PatternFill, Protection
from openpyxl.utils.exceptions import InvalidFileException

from dieuhanh.errors import DomainError
from dieuhanh.indicators.models import DataElement, DataSet, DataValue
from dieuhanh.indicators.periods import parse
from dieuhanh.sheets import append_row
from dieuhanh.units.models import Unit

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = 6
COLUMNS = (
    "Mã chỉ tiêu",
    "Tên chỉ tiêu",
    "Phân tổ",
    "Đơn vị tính",
    "Giá trị",
    "Ước tính (x)",
    "Ghi chú",
    "Kỳ trước",
    "Cùng kỳ năm trước",
)
ESTIMATE_MARKS = {"x", "ước", "uoc", "estimate", "có", "1"}


class TemplateError(DomainError):
    """The upload is not a filled form of this data set: 422, no field."""

    def __init__(self, message: str | Promise) -> None:
        super().__init__(None, message)


def template(data_set: DataSet, unit: Unit, period: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Biểu mẫu"
    current = parse(period)
    append_row(sheet, [data_set.name])
    append_row(sheet, ["Mã biểu", data_set.code])
    append_row(sheet, ["Đơn vị", unit.ref, unit.name])
    append_row(sheet, ["Kỳ báo cáo", current.id, current.label()])
    append_row(
        sheet,
        ["Điền cột Giá trị (số, dấu chấm thập phân); đánh x ở cột Ước tính cho số ước; để trống để xoá."],
    )
    append_row(sheet, list(COLUMNS))
    for row in form_rows(data_set, unit, current.id):
        now = row.stored
        append_row(
            sheet,
            [
                row.element.code,
                row.element.name,
                row.option,
                row.element.unit,
                now.value if now else None,
                "x" if now and now.status == "estimate" else None,
                now.comment if now else None,
                row.previous,
                row.last_year,
            ],
        )
    _style(sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class FormRow:
    """One field of a data set's form: an element (and option) with what is stored for the period,
    last period and the same period last year; the Excel template and the web form both show it."""

    element: DataElement
    option: str
    stored: DataValue | None
    previous: float | None
    last_year: float | None


def form_rows(data_set: DataSet, unit: Unit, period: str) -> list[FormRow]:
    current = parse(period)
    before, year_ago = current.previous().id, current.last_year().id
    stored = _stored(data_set, unit, [current.id, before, year_ago])
    return [
        FormRow(
            element,
            option,
            stored.get((element.pk, current.id, option)),
            _value(stored.get((element.pk, before, option))),
            _value(stored.get((element.pk, year_ago, option))),
        )
        for element in data_set.elements.order_by("code")
        for option in ["", *element.option_codes()]
    ]


def _stored(data_set: DataSet, unit: Unit, periods: list[str]) -> dict[tuple, DataValue]:
    rows = DataValue.objects.filter(element__in=data_set.elements.all(), unit=unit, period__in=periods)
    return {(v.element_id, v.period, v.option): v for v in rows}


def _value(found: DataValue | None) -> float | None:
    return found.value if found else None


def _style(sheet: Any) -> None:
    bold = Font(bold=True)
    sheet["A1"].font = Font(bold=True, size=13)
    for cell in sheet[HEADER_ROW]:
        cell.font = bold
    grey = PatternFill("solid", fgColor="EEEEEE")
    for row in sheet.iter_rows(min_row=HEADER_ROW + 1):
        for cell in row[7:9]:
            cell.fill = grey
        for cell in row[4:7]:
            cell.protection = Protection(locked=False)
    for letter, width in zip("ABCDEFGHI", (24, 48, 12, 14, 16, 12, 30, 14, 16), strict=True):
        sheet.column_dimensions[letter].width = width


def records(body: bytes, data_set: DataSet) -> list[dict[str, Any]]:
    """Import records of a filled form, each with `_line`, its row in the spreadsheet."""
    try:
        sheet = load_workbook(io.BytesIO(body), read_only=True, data_only=True).worksheets[0]
    except (InvalidFileException, BadZipFile, OSError, KeyError, ValueError, IndexError):
        raise TemplateError(_("the upload is not an Excel (.xlsx) file")) from None
    head = {row[0]: row[1:] for row in sheet.iter_rows(min_row=1, max_row=4, values_only=True) if row}
    code = _cell(head.get("Mã biểu"))
    if code != data_set.code:
        raise TemplateError(
            _("this form is for data set '%(code)s', not '%(expected)s' (cell B2)")
            % {"code": code, "expected": data_set.code}
        )
    unit, period = _cell(head.get("Đơn vị")), _cell(head.get("Kỳ báo cáo"))
    out = []
    for line, row in enumerate(
        sheet.iter_rows(min_row=HEADER_ROW + 1, values_only=True), start=HEADER_ROW + 1
    ):
        if not row or row[0] is None:
            continue
        mark = str(row[5] or "").strip().lower()
        out.append(
            {
                "_line": line,
                "dataElement": row[0],
                "period": period,
                "orgUnit": unit,
                "categoryOptionCombo": row[2] or "",
                "value": row[4],
                "comment": row[6] or "",
                "status": "estimate" if mark in ESTIMATE_MARKS else "final",
            }
        )
    return out


def _cell(values: tuple | None) -> str:
    return str(values[0]).strip() if values and values[0] is not None else ""
