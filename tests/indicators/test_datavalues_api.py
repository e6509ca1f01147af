"""Data values through the API: DHIS2 dataValueSets import (JSON, CSV) and export, the audit trail,
the caller's area, Excel forms, completeness, and the metadata an admin manages."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from dieuhanh.indicators.excel import XLSX_TYPE
from dieuhanh.indicators.models import DataValue, DataValueAudit
from dieuhanh.indicators.services import save_data_set
from dieuhanh.units.models import Unit
from dieuhanh.vnformat import VN_TZ
from tests.factories import PERIOD, make_caller, post, row

A = "VN-2025:26743"  # Phường Bến Thành, operator_a's commune
B = "VN-2025:26740"  # Phường Sài Gòn, operator_b's commune
CSV_HEADER = "dataElement,period,orgUnit,categoryOptionCombo,value,comment"


# Helpers


def post_csv(caller, *lines: str):
    text = "\n".join([CSV_HEADER, *lines]) + "\n"
    return caller.client().post("/api/v1/datavalues", text, content_type="text/csv")


def stored(unit: str = A) -> dict[tuple[str, str], float]:
    """The values stored for a unit in PERIOD, by (element, option)."""
    edition, code = unit.split(":")
    rows = DataValue.objects.filter(unit__edition_id=edition, unit__code=code, period=PERIOD)
    return {(v.element.code, v.option): v.value for v in rows.select_related("element")}


def counts(response) -> dict[str, int]:
    return response.json()["importCount"]


def only_conflict(response) -> dict:
    conflicts = response.json()["conflicts"]
    assert len(conflicts) == 1, conflicts
    return conflicts[0]


def good_rows() -> list[dict]:
    return [row("postal_revenue", "24500"), row("coverage", "87.5")]


# Import: summary and conflicts


def test_import_writes_good_rows_and_names_each_bad_one(world, telecom):
    first, second = good_rows()
    response = post(
        world.operator_a,
        first,
        second,
        row("postal_revenue", "1", unit="VN-2025:99999999"),
        row("coverage", "50", period="2021Q5"),
        row("postal_revenue", "999"),  # the same cell as the first row
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "WARNING"
    assert body["dryRun"] is False
    assert body["importCount"] == {"imported": 2, "updated": 0, "ignored": 0, "deleted": 0}
    conflicts = body["conflicts"]
    assert [(c["index"], c["field"]) for c in conflicts] == [(2, "orgUnit"), (3, "period"), (4, "dataValues")]
    assert "VN-2025:99999999" in conflicts[0]["value"]
    assert "2021Q5" in conflicts[1]["value"]
    assert "trùng ô với dòng 0" in conflicts[2]["value"]

    assert stored() == {("postal_revenue", ""): 24500, ("coverage", ""): 87.5}
    assert set(DataValue.objects.values_list("stored_by__username", flat=True)) == {"benthanh-operator"}
    trail = DataValueAudit.objects.all()
    assert sorted((a.element.code, a.action, a.new_value) for a in trail) == [
        ("coverage", "create", 87.5),
        ("postal_revenue", "create", 24500),
    ]
    assert {a.actor_name for a in trail} == {"benthanh-operator"}


def test_resending_the_same_rows_is_ignored_and_changes_nothing(world, telecom):
    assert post(world.operator_a, *good_rows()).status_code == 200
    before = dict(DataValue.objects.values_list("pk", "updated_at"))
    response = post(world.operator_a, *good_rows())
    assert response.status_code == 200
    assert response.json()["status"] == "SUCCESS"
    assert counts(response) == {"imported": 0, "updated": 0, "ignored": 2, "deleted": 0}
    assert dict(DataValue.objects.values_list("pk", "updated_at")) == before
    assert DataValueAudit.objects.count() == 2


def test_changing_a_value_updates_it_and_audits_old_and_new(world, telecom):
    post(world.operator_a, *good_rows())
    response = post(world.operator_a, row("postal_revenue", "25000"), row("coverage", "87.5"))
    assert counts(response) == {"imported": 0, "updated": 1, "ignored": 1, "deleted": 0}
    assert stored()[("postal_revenue", "")] == 25000
    change = DataValueAudit.objects.get(action="update")
    assert (change.element.code, change.old_value, change.new_value) == ("postal_revenue", 24500, 25000)
    assert change.actor_name == "benthanh-operator"


def test_an_update_moves_last_updated(world, telecom):
    """A client that synced before a change finds the changed value with ?lastUpdated=."""
    post(world.operator_a, row("postal_revenue", "24500"))
    first = DataValue.objects.get()
    synced = timezone.now()
    post(world.operator_a, row("postal_revenue", "25000"))
    changed = DataValue.objects.get()
    assert changed.value == 25000
    assert changed.updated_at > synced > first.updated_at
    body = world.operator_a.client().get("/api/v1/datavalues", {"lastUpdated": synced.isoformat()}).json()
    assert [r["value"] for r in body["dataValues"]] == ["25000"]


def test_an_empty_value_deletes_the_stored_one_and_the_audit_keeps_it(world, telecom):
    post(world.operator_a, *good_rows())
    response = post(world.operator_a, row("coverage", ""))
    assert response.status_code == 200
    assert counts(response) == {"imported": 0, "updated": 0, "ignored": 0, "deleted": 1}
    assert stored() == {("postal_revenue", ""): 24500}
    gone = DataValueAudit.objects.get(action="delete")
    assert (gone.element.code, gone.old_value, gone.new_value) == ("coverage", 87.5, None)


def test_dry_run_counts_as_if_imported_but_writes_nothing(world, telecom):
    response = post(world.operator_a, *good_rows(), dry_run=True)
    assert response.status_code == 200
    body = response.json()
    assert body["dryRun"] is True
    assert body["status"] == "SUCCESS"
    assert body["importCount"] == {"imported": 2, "updated": 0, "ignored": 0, "deleted": 0}
    assert not DataValue.objects.exists()
    assert not DataValueAudit.objects.exists()


def test_a_payload_of_only_bad_rows_is_409_error(world, telecom):
    response = post(
        world.operator_a,
        row("nope", "1"),
        row("postal_revenue", "1", period="2021Q5"),
        row("postal_revenue", "1", unit="VN-2025:99999999"),
    )
    assert response.status_code == 409
    body = response.json()
    assert body["status"] == "ERROR"
    assert len(body["conflicts"]) == 3
    assert not DataValue.objects.exists()


# The caller's area


def test_an_operator_cannot_write_the_neighbouring_commune(world, telecom):
    response = post(world.operator_a, row("postal_revenue", "100", unit=B))
    assert response.status_code == 409
    conflict = only_conflict(response)
    assert conflict["field"] == "orgUnit" and conflict["object"] == B
    assert "trong phạm vi của bạn" in conflict["value"]
    assert not DataValue.objects.exists()


def test_an_operator_cannot_read_the_neighbours_values(world, telecom):
    post(world.operator_a, *good_rows())
    post(world.operator_b, row("postal_revenue", "7000", unit=B))

    response = world.operator_b.client().get("/api/v1/datavalues", {"orgUnit": A})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"

    def units_seen(caller) -> set[str]:
        body = caller.client().get("/api/v1/datavalues").json()
        return {r["orgUnit"] for r in body["dataValues"]}

    assert units_seen(world.operator_b) == {B}
    assert units_seen(world.operator_a) == {A}
    assert units_seen(world.province_operator) == {A, B}


def test_the_province_operator_reads_both_communes(world, telecom):
    post(world.operator_a, *good_rows())
    post(world.operator_b, row("postal_revenue", "7000", unit=B))
    response = world.province_operator.client().get("/api/v1/datavalues", {"orgUnit": "VN-2025:79"})
    assert response.status_code == 200
    body = response.json()
    assert {(r["orgUnit"], r["dataElement"], r["value"]) for r in body["dataValues"]} == {
        (A, "postal_revenue", "24500"),
        (A, "coverage", "87.5"),
        (B, "postal_revenue", "7000"),
    }


@pytest.mark.parametrize("who", ["leader", "tracer"])
def test_callers_without_an_operator_grant_cannot_post(world, telecom, who):
    response = post(getattr(world, who), row("postal_revenue", "1"))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert "cán bộ nghiệp vụ" in response.json()["detail"]  # the operator role, in Vietnamese
    assert not DataValue.objects.exists()


# CSV import and value checks


def test_a_csv_conflict_carries_the_line_number(world, telecom):
    response = post_csv(
        world.operator_a,
        f"postal_revenue,{PERIOD},{A},,24500,",
        f"postal_revenue,2021Q5,{A},,1,",
        f"coverage,{PERIOD},{A},default,87.5,đã kiểm tra",
    )
    assert response.status_code == 200
    assert counts(response)["imported"] == 2
    conflict = only_conflict(response)
    assert (conflict["index"], conflict["line"], conflict["field"]) == (1, 3, "period")
    assert stored() == {("postal_revenue", ""): 24500, ("coverage", ""): 87.5}
    assert DataValue.objects.get(element__code="coverage").comment == "đã kiểm tra"


def test_a_disaggregation_option_is_accepted_and_an_unknown_one_names_the_options(world, telecom):
    response = post_csv(
        world.operator_a,
        f"subscribers,{PERIOD},{A},viettel,1200,",
        f"subscribers,{PERIOD},{A},gmobile,300,",
    )
    assert counts(response)["imported"] == 1
    assert stored() == {("subscribers", "viettel"): 1200}
    conflict = only_conflict(response)
    assert conflict["line"] == 3 and conflict["field"] == "categoryOptionCombo"
    assert "gmobile" in conflict["value"]
    assert "viettel" in conflict["value"] and "vnpt" in conflict["value"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f'postal_revenue,{PERIOD},{A},,"24,5",', "dấu chấm"),
        (f"subscribers,{PERIOD},{A},viettel,2.5,", "'subscribers' chỉ nhận số nguyên"),
        (f"coverage,{PERIOD},{A},,120,", "'coverage' là tỉ lệ phần trăm (từ 0 đến 100)"),
    ],
    ids=["decimal-comma", "integer", "percent"],
)
def test_values_that_do_not_fit_the_element_are_refused(world, telecom, line, reason):
    response = post_csv(world.operator_a, line)
    assert response.status_code == 409
    conflict = only_conflict(response)
    assert (conflict["line"], conflict["field"]) == (2, "value")
    assert reason in conflict["value"]
    assert not DataValue.objects.exists()


# Export


def test_csv_export_has_the_header_and_the_values(world, telecom):
    post(world.operator_a, *good_rows(), row("subscribers", "1200", option="viettel"))
    response = world.operator_a.client().get(
        "/api/v1/datavalues", {"dataSet": "telecom", "period": PERIOD, "orgUnit": A, "format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].split(",")[:5] == ["dataElement", "period", "orgUnit", "categoryOptionCombo", "value"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["dataElement"], r["categoryOptionCombo"], r["value"]) for r in rows} == {
        ("postal_revenue", "default", "24500"),
        ("coverage", "default", "87.5"),
        ("subscribers", "viettel", "1200"),
    }
    assert {r["orgUnit"] for r in rows} == {A} and {r["period"] for r in rows} == {PERIOD}


def test_json_export_has_dhis2_keys_and_posts_back_as_ignored(world, telecom):
    post(world.operator_a, *good_rows(), row("subscribers", "1200", option="viettel"))
    response = world.operator_a.client().get(
        "/api/v1/datavalues", {"dataSet": "telecom", "period": PERIOD, "orgUnit": A}
    )
    assert response.status_code == 200
    exported = response.json()
    assert len(exported["dataValues"]) == 3
    keys = {"dataElement", "period", "orgUnit", "categoryOptionCombo", "value", "storedBy", "lastUpdated"}
    for r in exported["dataValues"]:
        assert keys <= r.keys()
        assert r["storedBy"] == "benthanh-operator"

    again = world.operator_a.client().post("/api/v1/datavalues", exported, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["status"] == "SUCCESS"
    assert counts(again) == {"imported": 0, "updated": 0, "ignored": 3, "deleted": 0}


# Audit


def test_the_audit_of_a_value_lists_its_history(world, telecom):
    post(world.operator_a, row("postal_revenue", "24500"))
    post(world.operator_a, row("postal_revenue", "25000"))
    value = DataValue.objects.get()
    response = world.operator_a.client().get(f"/api/v1/datavalues/{value.pk}/audit")
    assert response.status_code == 200
    history = response.json()  # newest first
    assert [(h["action"], h["old_value"], h["new_value"]) for h in history] == [
        ("update", 24500, 25000),
        ("create", None, 24500),
    ]
    assert {h["actor"] for h in history} == {"benthanh-operator"}

    response = world.operator_b.client().get(f"/api/v1/datavalues/{value.pk}/audit")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


# Excel


def template(caller, code: str = "telecom", period: str = PERIOD):
    return caller.client().get(f"/api/v1/datasets/{code}/template.xlsx", {"unit": A, "period": period})


def upload(caller, content: bytes, code: str = "telecom"):
    return caller.client().post(f"/api/v1/datasets/{code}/upload", content, content_type=XLSX_TYPE)


def open_sheet(content: bytes):
    book = load_workbook(io.BytesIO(content))
    return book, book.worksheets[0]


def form_rows(sheet) -> dict[tuple[str, str], int]:
    """(element, option) → spreadsheet row of each field of the form."""
    return {
        (r[0].value, r[2].value or ""): r[0].row for r in sheet.iter_rows(min_row=7) if r[0].value is not None
    }


def test_the_excel_template_names_set_unit_and_period_and_lists_every_field(world, telecom):
    response = template(world.operator_a)
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX_TYPE
    _, sheet = open_sheet(response.content)
    assert (sheet["B2"].value, sheet["B3"].value, sheet["B4"].value) == ("telecom", A, PERIOD)
    header = [c.value for c in sheet[6]]
    assert header[:5] == ["Mã chỉ tiêu", "Tên chỉ tiêu", "Phân tổ", "Đơn vị tính", "Giá trị"]
    assert header[5].startswith("Ước tính")
    assert sorted(form_rows(sheet)) == [
        ("coverage", ""),
        ("postal_revenue", ""),
        ("subscribers", ""),
        ("subscribers", "viettel"),
        ("subscribers", "vnpt"),
    ]


def test_the_excel_template_is_404_outside_the_area(world, telecom):
    response = template(world.operator_b)
    assert response.status_code == 404


def test_a_filled_excel_form_imports_with_lines_and_estimates(world, telecom):
    book, sheet = open_sheet(template(world.operator_a).content)
    rows = form_rows(sheet)
    sheet.cell(rows[("postal_revenue", "")], 5, 24500)
    sheet.cell(rows[("coverage", "")], 5, "abc")
    sheet.cell(rows[("subscribers", "viettel")], 5, 1200)
    sheet.cell(rows[("subscribers", "viettel")], 6, "x")
    out = io.BytesIO()
    book.save(out)

    response = upload(world.operator_a, out.getvalue())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "WARNING"
    assert body["importCount"]["imported"] == 2
    conflict = only_conflict(response)
    assert (conflict["line"], conflict["field"]) == (rows[("coverage", "")], "value")
    assert "abc" in conflict["object"]
    assert stored() == {("postal_revenue", ""): 24500, ("subscribers", "viettel"): 1200}
    statuses = dict(DataValue.objects.values_list("element__code", "status"))
    assert statuses == {"postal_revenue": "final", "subscribers": "estimate"}


def test_an_excel_form_of_another_data_set_is_422(world, telecom):
    save_data_set(
        actor=None, code="postal", name="Bưu chính", elements=["postal_revenue"], unit_kind="commune"
    )
    response = upload(world.operator_a, template(world.operator_a, code="postal").content)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "'postal'" in response.json()["detail"]
    assert not DataValue.objects.exists()


def test_an_upload_that_is_not_excel_is_422(world, telecom):
    response = upload(world.operator_a, b"dataElement,period\nnot,a spreadsheet\n")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "xlsx" in response.json()["detail"]
    assert not DataValue.objects.exists()


# Completeness


def completeness(caller, period: str):
    return caller.client().get(
        "/api/v1/datasets/telecom/completeness", {"period": period, "parent": "VN-2025:79"}
    )


def test_completeness_lists_every_commune_of_the_province(world, telecom):
    period = datetime.now(VN_TZ).strftime("%Y%m")  # reported now, within the due day
    post(world.operator_a, row("postal_revenue", "24500", period=period))
    response = completeness(world.province_operator, period)
    assert response.status_code == 200, response.content
    body = response.json()
    communes = Unit.objects.under(world.province).filter(kind="commune").count()
    assert communes > 100
    assert body["expected"] == communes == len(body["units"])
    states = {u["unit"]: u["state"] for u in body["units"]}
    assert states[A] == "on_time"
    assert {s for ref, s in states.items() if ref != A} == {"missing"}
    assert (body["reported"], body["on_time"], body["late"]) == (1, 1, 0)


def test_completeness_counts_a_report_after_the_due_day_as_late(world, telecom):
    post(world.operator_a, row("postal_revenue", "24500"))  # August 2021, due on 15 September 2021
    body = completeness(world.province_operator, PERIOD).json()
    assert body["due"] == "2021-09-15"
    states = {u["unit"]: u["state"] for u in body["units"]}
    assert states[A] == "late" and states[B] == "missing"
    assert (body["reported"], body["on_time"], body["late"]) == (1, 0, 1)


# Metadata


@pytest.fixture
def admin(world):
    return make_caller("admin-user", world.nation, "admin")


ELEMENT = {"code": "bts_count", "name": "Số trạm BTS", "unit": "trạm", "value_type": "integer"}


def indicator(formula: str, code: str = "revenue_growth") -> dict:
    return {"code": code, "name": "Tăng trưởng doanh thu", "formula": formula, "unit": "%"}


def test_only_an_admin_creates_data_elements_and_indicators(world, telecom, admin):
    c = admin.client()
    response = c.post("/api/v1/dataelements", ELEMENT, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["code"] == "bts_count" and response.json()["value_type"] == "integer"
    response = c.post(
        "/api/v1/indicators", indicator("yoy(#{postal_revenue})"), content_type="application/json"
    )
    assert response.status_code == 201, response.content

    o = world.operator_a.client()
    for url, body in [("/api/v1/dataelements", ELEMENT), ("/api/v1/indicators", indicator("1", "x"))]:
        response = o.post(url, body, content_type="application/json")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
    codes = [e["code"] for e in c.get("/api/v1/indicators").json()]
    assert codes == ["revenue_growth"]


def test_a_bad_formula_is_422_naming_the_position_or_the_reference(world, telecom, admin):
    c = admin.client()
    response = c.post(
        "/api/v1/indicators", indicator("yoy(#{postal_revenue} +)"), content_type="application/json"
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["field"] == "formula"
    assert body["detail"].startswith("formula: cần một số, một tham chiếu")  # Vietnamese by default
    assert "(vị trí 24)" in body["detail"]  # the ')' after '+', 1-based
    assert body["detail"].splitlines()[-1] == " " * 23 + "^"  # a caret under it

    c.cookies["django_language"] = "en"  # the language chosen on the pages, carried by their scripts
    english = c.post(
        "/api/v1/indicators", indicator("yoy(#{postal_revenue} +)"), content_type="application/json"
    )
    assert english.status_code == 422 and english["Content-Language"] == "en"
    assert english.json()["detail"].splitlines()[0] == (
        "formula: expected a number, a reference, a function call or '(' but found ')' at position 24"
    )
    del c.cookies["django_language"]

    response = c.post("/api/v1/indicators", indicator("#{nope} * 2"), content_type="application/json")
    assert response.status_code == 422
    assert "#{nope}" in response.json()["detail"]
    assert c.get("/api/v1/indicators").json() == []


def test_an_admin_sets_a_target_that_a_leader_reads(world, telecom, admin):
    c = admin.client()
    c.post("/api/v1/indicators", indicator("yoy(#{postal_revenue})"), content_type="application/json")
    target = {"indicator": "revenue_growth", "unit": "VN-2025:79", "period": "2021", "value": 8.5}
    response = c.post("/api/v1/targets", target, content_type="application/json")
    assert response.status_code == 201, response.content
    listed = world.leader.client().get("/api/v1/targets").json()
    assert listed == [{**target, "comment": "", "owner_unit": "VN-2025:VN"}]
