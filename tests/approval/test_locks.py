"""Approved figures are locked; expiry days lock old periods; a lock exception reopens one for a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from openpyxl import load_workbook

from dieuhanh.indicators.approval import locks
from dieuhanh.indicators.approval.models import DataSetApproval, LockException
from dieuhanh.indicators.approval.services import vn_today
from dieuhanh.indicators.excel import XLSX_TYPE
from dieuhanh.indicators.models import DataValue
from tests.factories import act, values

A, B = "VN-2025:26743", "VN-2025:26740"


def test_a_write_to_approved_figures_answers_409_with_the_reason(world, telecom):
    assert values(world.operator_a, ("postal_revenue", A, 10)).status_code == 200
    assert act(world.operator_a, "approve", A).status_code == 200
    answer = values(world.operator_a, ("postal_revenue", A, 12))
    assert answer.status_code == 409
    conflict = answer.json()["conflicts"][0]
    assert conflict["errorCode"] == "E7642"
    assert "đã được Phường Bến Thành phê duyệt" in conflict["value"]
    assert "hủy phê duyệt" in conflict["value"]
    assert DataValue.objects.get(unit=world.commune_a).value == 10
    # Deleting is a write too.
    assert values(world.operator_a, ("postal_revenue", A, "")).status_code == 409
    # The province's approval locks every commune under it, even from the province's own operator.
    assert values(world.province_operator, ("subscribers", B, 5), ("subscribers", A, 5)).status_code == 200
    # (Sài Gòn is not approved: its line was kept; Bến Thành's was refused.)
    assert DataValue.objects.filter(unit=world.commune_b).count() == 1
    assert not DataValue.objects.filter(unit=world.commune_a, element__code="subscribers").exists()
    # Unapproved (with a reason), the figure can be corrected again.
    assert act(world.operator_a, "unapprove", A, reason="Sửa doanh thu").status_code == 200
    assert values(world.operator_a, ("postal_revenue", A, 12)).status_code == 200


def test_an_import_reports_each_locked_line_and_keeps_the_others(world, telecom):
    act(world.operator_a, "approve", A)
    csv = (
        "dataElement,period,orgUnit,categoryOptionCombo,value,comment\n"
        f"postal_revenue,202108,{B},,7,\n"
        f"postal_revenue,202108,{A},,8,\n"
        f"subscribers,202108,{B},,9,\n"
        f"subscribers,202108,{A},,9,\n"
    )
    answer = world.province_operator.client().post("/api/v1/datavalues", csv, content_type="text/csv")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "WARNING"
    assert body["importCount"]["imported"] == 2
    assert [(c["line"], c["errorCode"]) for c in body["conflicts"]] == [(3, "E7642"), (5, "E7642")]
    assert sorted(DataValue.objects.values_list("unit__code", "value")) == [("26740", 7.0), ("26740", 9.0)]


def test_an_excel_upload_keeps_the_unlocked_lines(world, telecom):
    from dieuhanh.indicators import excel

    content = excel.template(telecom, world.commune_a, "202108")
    book = load_workbook(__import__("io").BytesIO(content))
    sheet = book.active
    filled = 0
    for row in sheet.iter_rows():
        if row[0].value in ("postal_revenue", "subscribers"):
            for cell in row:
                if cell.column_letter == "D":
                    cell.value = 100
            filled += 1
    assert filled >= 2
    buffer = __import__("io").BytesIO()
    book.save(buffer)
    act(world.operator_a, "approve", A)
    answer = world.operator_a.client().post(
        "/api/v1/datasets/telecom/upload", buffer.getvalue(), content_type=XLSX_TYPE
    )
    assert answer.status_code == 409  # every line of the locked unit refused
    assert {c["errorCode"] for c in answer.json()["conflicts"]} == {"E7642"}
    assert all(c["line"] for c in answer.json()["conflicts"])


@pytest.fixture
def expiring(telecom):
    DataSetApproval.objects.filter(data_set=telecom).update(expiry_days=10)
    return telecom


def test_a_lock_exception_granted_and_then_expired(world, expiring, monkeypatch):
    today = vn_today()
    late = values(world.operator_a, ("postal_revenue", A, 3), period="202101")
    assert late.status_code == 409
    assert late.json()["conflicts"][0]["errorCode"] == "E7640"
    assert "xin ngoại lệ" in late.json()["conflicts"][0]["value"]
    # The commune asks; the neighbour cannot ask for it, and the commune cannot grant itself.
    client = world.operator_a.client()
    body = {"dataSet": "telecom", "period": "202101", "unit": A, "reason": "Bổ sung số liệu bị sót"}
    assert (
        world.operator_b.client()
        .post("/api/v1/approvals/exceptions", body, content_type="application/json")
        .status_code
        == 404
    )
    asked = client.post("/api/v1/approvals/exceptions", body, content_type="application/json")
    assert asked.status_code == 201, asked.content
    pk = asked.json()["id"]
    grant = {"grant": True, "endsOn": (today + timedelta(days=3)).isoformat()}
    url = f"/api/v1/approvals/exceptions/{pk}/decision"
    assert client.post(url, grant, content_type="application/json").status_code == 403
    assert world.operator_b.client().post(url, grant, content_type="application/json").status_code == 404
    no_end = world.province_operator.client().post(url, {"grant": True}, content_type="application/json")
    assert no_end.status_code == 422
    granted = world.province_operator.client().post(url, grant, content_type="application/json")
    assert granted.status_code == 200, granted.content
    assert granted.json()["active"] is True
    assert values(world.operator_a, ("postal_revenue", A, 3), period="202101").status_code == 200
    # Sài Gòn holds no exception: still locked.
    assert values(world.operator_b, ("postal_revenue", B, 3), period="202101").status_code == 409
    # The day after its end date, the period is locked again.
    monkeypatch.setattr(locks, "today", lambda: today + timedelta(days=4))
    again = values(world.operator_a, ("postal_revenue", A, 4), period="202101")
    assert again.status_code == 409
    assert again.json()["conflicts"][0]["errorCode"] == "E7640"
    assert DataValue.objects.get(unit=world.commune_a, period="202101").value == 3
    assert LockException.objects.get(pk=pk).state == "granted"


def test_a_refused_exception_keeps_the_lock(world, expiring):
    client = world.operator_a.client()
    body = {"dataSet": "telecom", "period": "202101", "unit": A, "reason": "Bổ sung"}
    pk = client.post("/api/v1/approvals/exceptions", body, content_type="application/json").json()["id"]
    url = f"/api/v1/approvals/exceptions/{pk}/decision"
    refused = world.province_operator.client().post(
        url, {"grant": False, "note": "Quá muộn"}, content_type="application/json"
    )
    assert refused.json()["state"] == "refused"
    assert (
        world.province_operator.client()
        .post(url, {"grant": True, "endsOn": "2099-01-01"}, content_type="application/json")
        .status_code
        == 409
    )
    assert values(world.operator_a, ("postal_revenue", A, 3), period="202101").status_code == 409
    # A recent period is open: expiry counts from the period's end.
    recent = vn_today().strftime("%Y%m")
    assert values(world.operator_a, ("postal_revenue", A, 3), period=recent).status_code == 200


def test_the_entry_form_says_the_period_is_approved_and_keeps_the_figure(world, telecom):
    form = f"/entry/telecom/?unit={A}&period=202108"
    page = world.operator_a.browser()
    assert "Số liệu kỳ này chưa được phê duyệt." in page.get(form).content.decode()
    values(world.operator_a, ("postal_revenue", A, 10))
    act(world.operator_a, "approve", A)
    shown = page.get(form).content.decode()
    assert "Kỳ này đã được Phường Bến Thành phê duyệt: số liệu đã khoá." in shown
    saved = page.post(form, {"v:postal_revenue:": "12"}).content.decode()
    assert "hủy phê duyệt" in saved  # the refusal says why, beside the field
    assert DataValue.objects.get(unit=world.commune_a).value == 10


def test_a_commune_approves_and_unapproves_from_its_entry_form(world, telecom):
    form = f"/entry/telecom/?unit={A}&period=202108"
    page = world.operator_a.browser()
    assert "Phê duyệt số liệu kỳ này" in page.get(form).content.decode()
    done = page.post(
        "/entry/telecom/approval/", {"unit": A, "period": "202108", "action": "approve"}, follow=True
    )
    shown = done.content.decode()
    assert "Đã phê duyệt số liệu kỳ này." in shown and "đã khoá" in shown
    assert "Hủy phê duyệt" in shown and "Phê duyệt số liệu kỳ này</button>" not in shown
    no_reason = page.post(
        "/entry/telecom/approval/", {"unit": A, "period": "202108", "action": "unapprove"}, follow=True
    )
    assert "Hủy phê duyệt phải ghi rõ lý do." in no_reason.content.decode()
    undone = page.post(
        "/entry/telecom/approval/",
        {"unit": A, "period": "202108", "action": "unapprove", "reason": "Sửa số liệu"},
        follow=True,
    )
    assert "Đã hủy phê duyệt." in undone.content.decode()
    # The neighbour's unit is not there to approve.
    other = page.post("/entry/telecom/approval/", {"unit": B, "period": "202108", "action": "approve"})
    assert other.status_code == 404
