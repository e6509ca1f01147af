"""Rosters in: the API (JSON and file) and the command line; bad lines named by line and field, the good
kept; the raw IDs never stored."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app
from dieuhanh.warehouse.enterprises.models import Worker
from dieuhanh.warehouse.persons import person_key
from tests.factories import CCCD_1, CCCD_2

BAD_FILE = (
    "person_id,start,end\n"
    f"{CCCD_1},01/07/2021,\n"  # line 2: good
    "12345,01/07/2021,\n"  # line 3: not an ID
    f"{CCCD_2},2021-13-01,\n"  # line 4: not a date
    "0912 345 678,2021-07-01,2021-06-01\n"  # line 5: ends before it starts
    f"{CCCD_1},02/07/2021,\n"  # line 6: twice in the file
    "+84 987 654 321,2021-07-01,2021-12-31\n"  # line 7: good
)


def test_a_roster_file_with_bad_lines_keeps_the_good_ones(firms, tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(BAD_FILE, encoding="utf-8")
    with path.open("rb") as f:
        r = firms.officer_one.client().post(
            f"/api/v1/enterprises/VN-2025/{firms.one.code}/workers/file", {"file": f}
        )
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["added"], body["updated"], body["unchanged"]) == (2, 0, 0)
    assert [(x["line"], x["field"]) for x in body["rejected"]] == [
        (3, "person_id"),
        (4, "start"),
        (5, "end"),
        (6, "person_id"),
    ]
    keys = {
        bytes(k) for k in Worker.objects.filter(enterprise=firms.one).values_list("person_key", flat=True)
    }
    assert keys == {person_key(CCCD_1), person_key("0987654321")}
    # No raw ID anywhere: not in the rows, not in the audit.
    audit = AuditEntry.objects.filter(action="enterprise.roster").latest("id")
    assert CCCD_1 not in str(audit.detail) and audit.rows == 2


def test_a_roster_as_json_and_a_second_import_updates(firms):
    url = f"/api/v1/enterprises/VN-2025/{firms.two.code}/workers"
    client = firms.officer_two.client()
    first = client.post(
        url, {"workers": [{"person_id": CCCD_2, "start": "2021-07-01"}]}, content_type="application/json"
    )
    assert first.json()["added"] == 1
    again = client.post(
        url,
        {
            "workers": [
                {"person_id": CCCD_2, "start": "2021-07-01", "end": "2021-09-30"},
                {"person_id": "x", "start": "2021-07-01"},
            ]
        },
        content_type="application/json",
    )
    assert again.json()["updated"] == 1 and again.json()["rejected"][0] == {
        "line": 2,
        "field": "person_id",
        "error": "không phải số CCCD 12 chữ số hay số điện thoại di động",
    }


def test_who_may_write_a_roster(firms):
    body = {"workers": [{"person_id": CCCD_1, "start": "2021-07-01"}]}
    url = f"/api/v1/enterprises/VN-2025/{firms.one.code}/workers"
    assert firms.officer_two.client().post(url, body, content_type="application/json").status_code == 404
    assert firms.world.operator_b.client().post(url, body, content_type="application/json").status_code == 404
    assert firms.world.tracer.client().post(url, body, content_type="application/json").status_code == 403
    assert firms.world.operator_a.client().post(url, body, content_type="application/json").status_code == 200


def test_cli_roster_import_from_xlsx(firms, tmp_path: Path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Số định danh", "Ngày bắt đầu", "Ngày kết thúc"])
    sheet.append([CCCD_1, "01/07/2021", None])
    sheet.append(["abc", "01/07/2021", None])
    path = tmp_path / "roster.xlsx"
    book.save(path)
    result = CliRunner().invoke(app, ["enterprises", "roster", str(path), "--enterprise", firms.one.ref])
    assert result.exit_code == 2, result.output
    assert "dòng 3, cột person_id" in result.output
    assert "mới 1" in result.output
    assert Worker.objects.filter(enterprise=firms.one).count() == 1
