"""The data entry pages through Django's test client: a data set's form with last period's and last
year's values, saving in Vietnamese notation, the Excel form down and up, and each commune only its own."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.models import DataValue
from dieuhanh.units.scoping import Area

A, B = "VN-2025:26743", "VN-2025:26740"  # Bến Thành and its neighbour Sài Gòn
FORM = f"/entry/telecom/?unit={A}&period=202108"


def store(rows: list[tuple[str, str, str, float]], unit: str = A) -> None:
    """Values as (element, option, period, value), written as the system."""
    records = [
        {"dataElement": e, "categoryOptionCombo": o, "period": p, "orgUnit": unit, "value": v}
        for e, o, p, v in rows
    ]
    summary = import_values(records, actor=None, area=Area(True, frozenset()))
    assert not summary.conflicts


def value(element: str, option: str = "", unit: str = A, period: str = "202108") -> float | None:
    found = DataValue.objects.filter(
        element__code=element, option=option, unit__code=unit.split(":")[1], period=period
    ).first()
    return found.value if found else None


def row_of(page: str, label: str) -> str:
    """The table row whose header is `label`, as HTML."""
    found = re.search(rf"<tr>\s*<th scope=\"row\"><label[^>]*>{re.escape(label)}</label>.*?</tr>", page, re.S)
    assert found, f"no row {label!r}"
    return found.group(0)


def test_the_list_offers_the_commune_its_data_sets_and_only_itself(world, telecom):
    page = world.operator_a.browser().get("/entry/").content.decode()
    assert "Báo cáo viễn thông" in page and "1 đơn vị bạn báo cáo" in page
    assert f'<option value="{A}"' in page and B not in page
    city = world.province_operator.browser().get("/entry/").content.decode()
    assert "168 đơn vị bạn báo cáo" in city and f'<option value="{B}"' in city


def test_the_menu_links_data_entry_for_operators_only(world, telecom):
    assert 'href="/entry/"' in world.operator_a.browser().get("/inbox/").content.decode()
    assert 'href="/entry/"' not in world.tracer.browser().get("/inbox/").content.decode()
    assert world.tracer.browser().get("/entry/").status_code == 403


def test_the_form_shows_stored_last_period_and_last_year_values(world, telecom):
    store(
        [
            ("postal_revenue", "", "202108", 1250.5),
            ("postal_revenue", "", "202107", 1100),
            ("postal_revenue", "", "202008", 980),
            ("subscribers", "viettel", "202107", 24500),
        ]
    )
    page = world.operator_a.browser().get(FORM).content.decode()
    assert "Kỳ trước (tháng 7/2021)" in page and "Cùng kỳ năm trước (tháng 8/2020)" in page
    revenue = row_of(page, "Doanh thu bưu chính")
    assert 'value="1.250,5"' in revenue  # the stored value, in Vietnamese notation
    assert '<td class="num" data-label="Kỳ trước">1.100</td>' in revenue
    assert '<td class="num" data-label="Cùng kỳ năm trước">980</td>' in revenue
    assert '<td class="num" data-label="Kỳ trước">24.500</td>' in row_of(page, "Thuê bao di động — Viettel")


def test_a_commune_with_one_unit_opens_its_form_without_choosing(world, telecom):
    page = world.operator_a.browser().get("/entry/telecom/?period=202108").content.decode()
    assert "Phường Bến Thành · tháng 8/2021" in page and "Doanh thu bưu chính" in page


def test_saving_reads_vietnamese_numbers_and_shows_the_import_summary(world, telecom):
    store([("coverage", "", "202108", 80)])
    response = world.operator_a.browser().post(
        FORM,
        {
            "v:postal_revenue:": "1.200",
            "e:v:postal_revenue:": "on",
            "v:subscribers:viettel": "24.500",
            "v:subscribers:vnpt": "nhiều",  # not a number: refused, nothing written for it
            "v:coverage:": "",  # emptied: the stored value is deleted
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert value("postal_revenue") == 1200
    assert DataValue.objects.get(element__code="postal_revenue").status == "estimate"
    assert value("subscribers", "viettel") == 24500
    assert value("subscribers", "vnpt") is None and value("coverage") is None
    assert "Đã lưu, nhưng một số giá trị bị từ chối." in page
    assert "Mới: 2 · cập nhật: 0 · không đổi: 0 · xoá: 1" in page
    assert "<td>Thuê bao di động — VNPT</td><td>nhiều</td><td>không phải là số" in page
    assert 'value="nhiều"' in row_of(page, "Thuê bao di động — VNPT")  # kept for the user to correct
    assert 'value="1.200"' in row_of(page, "Doanh thu bưu chính")


def test_the_import_rules_refuse_a_bad_value_with_its_reason(world, telecom):
    page = world.operator_a.browser().post(FORM, {"v:coverage:": "150", "v:subscribers:viettel": "2,5"})
    text = page.content.decode()
    assert "Chưa lưu được giá trị nào." in text
    assert "&#x27;coverage&#x27; là tỉ lệ phần trăm (từ 0 đến 100)" in text
    assert "&#x27;subscribers&#x27; chỉ nhận số nguyên" in text
    assert not DataValue.objects.exists()


def test_saving_the_form_unchanged_changes_nothing(world, telecom):
    store([("postal_revenue", "", "202108", 1234.5678)])
    browser = world.operator_a.browser()
    page = browser.get(FORM).content.decode()
    shown = re.search(r'name="v:postal_revenue:" value="([^"]*)"', page)
    assert shown and shown.group(1) == "1.234,5678"
    text = browser.post(FORM, {"v:postal_revenue:": shown.group(1)}).content.decode()
    assert "Không có gì thay đổi." in text and value("postal_revenue") == 1234.5678


def test_a_neighbours_unit_is_not_found_and_never_written(world, telecom):
    browser = world.operator_a.browser()
    assert browser.get(f"/entry/telecom/?unit={B}&period=202108").status_code == 404
    assert (
        browser.post(f"/entry/telecom/?unit={B}&period=202108", {"v:postal_revenue:": "5"}).status_code == 404
    )
    assert browser.get(f"/entry/telecom/?unit={A}&period=202108").status_code == 200
    assert world.operator_b.browser().get(FORM).status_code == 404
    assert browser.get("/entry/nothing/?unit=VN-2025:26743").status_code == 404
    assert not DataValue.objects.exists()


def test_a_bad_period_is_explained(world, telecom):
    page = world.operator_a.browser().get(f"/entry/telecom/?unit={A}&period=13/2021").content.decode()
    assert "Kỳ báo cáo: không đọc được. Hãy viết tháng 8/2021" in page and "Doanh thu bưu chính" not in page


def test_a_period_typed_as_reports_name_it_opens_the_form(world, telecom):
    """'tháng 8/2021' (or 8/2021, T8/2021) is read as 202108, and the address keeps the identifier."""
    browser = world.operator_a.browser()
    for typed in ("tháng 8/2021", "8/2021", "T8/2021"):
        response = browser.get("/entry/telecom/", {"unit": A, "period": typed})
        assert (
            response.status_code == 302
            and response["Location"] == f"/entry/telecom/?unit={A.replace(':', '%3A')}&period=202108"
        )
    page = browser.get(FORM).content.decode()
    assert "Phường Bến Thành · tháng 8/2021" in page


def test_the_excel_form_downloads_with_the_session(world, telecom):
    store([("postal_revenue", "", "202107", 1100)])
    browser = world.operator_a.browser()
    page = browser.get(FORM).content.decode()
    link = re.search(r'href="(/api/v1/datasets/telecom/template\.xlsx[^"]*)"', page)
    assert link
    response = browser.get(link.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet["B3"].value == A and sheet["B4"].value == "202108"


def filled_form(browser, rows: dict[str, object], unit: str = A) -> bytes:
    """The downloaded template with column Giá trị filled for the given element codes (or code.option)."""
    response = browser.get("/api/v1/datasets/telecom/template.xlsx", {"unit": unit, "period": "202108"})
    book = load_workbook(io.BytesIO(response.content))
    sheet = book.active
    for row in sheet.iter_rows(min_row=7):
        name = row[0].value + (f".{row[2].value}" if row[2].value else "")
        if name in rows:
            row[4].value = rows[name]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(browser, body: bytes, name: str = "form.xlsx"):
    file = io.BytesIO(body)
    file.name = name
    return browser.post("/entry/telecom/upload/", {"file": file, "unit": A, "period": "202108"})


def test_an_upload_shows_each_refused_row_with_its_spreadsheet_row(world, telecom):
    browser = world.operator_a.browser()
    body = filled_form(browser, {"postal_revenue": 1500, "subscribers.viettel": "nhiều", "coverage": 88})
    response = upload(browser, body)
    page = response.content.decode()
    assert response.status_code == 200
    assert value("postal_revenue") == 1500 and value("coverage") == 88
    assert value("subscribers", "viettel") is None
    assert "Mới: 2" in page and "1 giá trị bị từ chối" in page
    # Rows 7 (coverage), 8 (postal_revenue), 9 (subscribers), 10 (subscribers.viettel): the header is row 6.
    assert "<td>Dòng 10</td><td>Giá trị: nhiều</td><td>không phải là số" in page
    assert f'href="/entry/telecom/?unit={A.replace(":", "%3A")}&amp;period=202108"' in page


def test_an_upload_of_the_neighbours_form_writes_nothing(world, telecom):
    neighbour = filled_form(world.operator_b.browser(), {"postal_revenue": 7}, unit=B)
    page = upload(world.operator_a.browser(), neighbour).content.decode()
    assert "Chưa lưu được giá trị nào." in page
    row = "<td>Dòng 8</td><td>Đơn vị: VN-2025:26740</td><td>không có đơn vị &#x27;VN-2025:26740&#x27;"
    assert row in page
    assert not DataValue.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not a spreadsheet", "tệp tải lên không phải là tệp Excel (.xlsx)"),
        (None, "Hãy chọn tệp Excel đã điền."),
    ],
)
def test_an_upload_that_is_not_a_form_is_refused(world, telecom, body, reason):
    browser = world.operator_a.browser()
    if body is None:
        response = browser.post("/entry/telecom/upload/", {"unit": A, "period": "202108"})
    else:
        response = upload(browser, body)
    assert response.status_code == 422 and reason in response.content.decode()
