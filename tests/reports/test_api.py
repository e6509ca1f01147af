"""`POST /api/v1/reports` makes the report in the background and says where the file will be; the archive
and the files are scoped to the caller's area; `dieuhanh report generate` writes the file from a terminal."""

from __future__ import annotations

import time
from datetime import date

import pytest
from docx import Document
from typer.testing import CliRunner

from dieuhanh.cli import app
from dieuhanh.reports import services
from dieuhanh.reports.models import Report
from tests.factories import ict_catalogue, stored_files

pytestmark = pytest.mark.usefixtures("media")


def wait_done(client, report_id: int, limit: float = 30) -> dict:
    """Poll as a client would, until the background report is made (or the limit passes)."""
    ends = time.monotonic() + limit
    while True:
        answer = client.get(f"/api/v1/reports/{report_id}").json()
        if answer["state"] in ("done", "failed") or time.monotonic() > ends:
            return answer
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_post_report_runs_in_the_background_and_serves_the_file(world, media):
    # The report is made on its own thread and connection: it sees only committed rows.
    ict_catalogue()
    services.load_shipped(owner=world.leader.user)
    client = world.leader.client()
    answer = client.post(
        "/api/v1/reports",
        {"definition": "ict_monthly", "period": "202108", "format": "docx"},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    queued = answer.json()
    assert queued["state"] == "queued" and queued["file"] == f"/api/v1/reports/{queued['id']}/file"
    done = wait_done(client, queued["id"])
    assert done["state"] == "done", done["error"]
    assert done["missing"] == []
    got = client.get(queued["file"])
    assert got.status_code == 200
    assert got["Content-Disposition"] == 'attachment; filename="ict_monthly-202108-VN.docx"'
    path = services.file_path(Report.objects.get(pk=queued["id"]))
    assert stored_files(media) == [path]
    text = [p.text for p in Document(str(path)).paragraphs]
    assert any(t.startswith("Doanh thu bưu chính ước đạt 24.500 tỷ") for t in text)


def test_post_report_refuses_bad_input_with_the_field(world, ict):
    client = world.leader.client()

    def post(**data):
        body = {"definition": "ict_monthly", "period": "202108", **data}
        return client.post("/api/v1/reports", body, content_type="application/json")

    for data, status, field in [
        ({"period": "2021-08"}, 422, "period"),
        ({"period": "2021S1"}, 422, "period"),
        ({"format": "odt"}, 422, "format"),
        ({"definition": "nope"}, 404, "definition"),
        ({"unit": "VN-2025:XX"}, 404, "unit"),
    ]:
        answer = post(**data)
        assert (answer.status_code, answer.json()["field"]) == (status, field), data
    assert not Report.objects.exists()


def test_archive_and_files_are_scoped_to_the_area(world, hcm_report):
    request = services.prepare(
        actor=world.leader.user, definition="ict_monthly", period="202108", unit=None, fmt="md"
    )
    national = services.generate(actor=world.leader.user, request=request)
    province = world.province_operator
    request = services.prepare(
        actor=province.user, definition="hcm", period="202108", unit=world.province.ref, fmt="md"
    )
    own = services.generate(actor=province.user, request=request)
    listed = [r["id"] for r in province.client().get("/api/v1/reports").json()]
    assert listed == [own.pk]
    assert province.client().get(f"/api/v1/reports/{national.pk}").status_code == 404
    assert province.client().get(f"/api/v1/reports/{national.pk}/file").status_code == 404
    # A commune sees neither its province's report nor, of course, its neighbour's.
    assert world.operator_a.client().get(f"/api/v1/reports/{own.pk}").status_code == 404
    assert world.leader.client().get(f"/api/v1/reports/{own.pk}/file").status_code == 200
    refused = province.client().post(
        "/api/v1/reports", {"definition": "ict_monthly", "period": "202108"}, content_type="application/json"
    )
    assert refused.status_code == 404 and "trong phạm vi của bạn" in refused.json()["detail"]


def test_replay_route_gives_the_same_file(world, ict):
    request = services.prepare(
        actor=world.leader.user, definition="ict_monthly", period="202108", unit=None, fmt="docx"
    )
    original = services.generate(actor=world.leader.user, request=request, dated=date(2021, 9, 15))
    answer = world.leader.client().post(
        f"/api/v1/reports/{original.pk}/replay", {}, content_type="application/json"
    )
    assert answer.status_code == 201
    assert answer.json()["sha256"] == original.sha256 and answer.json()["replay_of"] == original.pk


runner = CliRunner()


def test_cli_generate_writes_the_file(cli, ict, tmp_path):
    out = tmp_path / "bao-cao.md"
    result = runner.invoke(
        app,
        ["report", "generate", "ict_monthly", "--period", "202108", "--format", "md", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "Số thuê bao điện thoại: 126,34 triệu, giảm 0,81% so với cùng kỳ năm trước" in out.read_text()
    listed = runner.invoke(app, ["report", "list"])
    assert "ict_monthly\tmonthly\tVN-2025:VN" in listed.output


def test_cli_refuses_a_unit_outside_the_persons_area(cli, ict, tmp_path):
    result = runner.invoke(
        app,
        ["report", "generate", "ict_monthly", "--period", "202108", "--as", "benthanh-operator"],
    )
    assert result.exit_code != 0
    assert "trong phạm vi của bạn" in " ".join(result.output.split())
