"""The monthly report written from the data: the seed's sentences with the seed's numbers, "ước đạt" only
for estimates, a missing figure shown as missing (never 0), a province's report holding only its area,
replay from the snapshot, the schedule, and definitions refused with the place of the fault."""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from dieuhanh.errors import DomainError
from dieuhanh.indicators.datavalues import import_values
from dieuhanh.indicators.models import DataValue
from dieuhanh.live import HUB, area_key
from dieuhanh.reports import services
from dieuhanh.reports.definition import DefinitionError
from dieuhanh.reports.models import Report, ReportState
from dieuhanh.units.scoping import Area
from tests.factories import make_caller, stored_files

EVERYWHERE = Area(True, frozenset())

# 002_4421c3cca0c35131.txt, "Tình hình phát triển ngành TT&TT tháng 8/2021", as the report must say it.
SEED_SENTENCES = [
    "Doanh thu bưu chính ước đạt 24.500 tỷ (tăng 10% so với cùng kỳ)",
    "sản lượng bưu chính ước 8 tháng đầu năm 2021: 820 triệu bưu gửi (tăng 15% so với cùng kỳ)",
    "đã thiết lập 4.150 điểm cung ứng hàng hóa thiết yếu; cung cấp 53.167 tấn hàng, trị giá 1.034 tỷ đồng",
    "Đến hết tháng 7/2021, tổng doanh thu dịch vụ viễn thông đạt 76,53 nghìn tỷ tăng 3,46% so với cùng kỳ"
    " năm trước",
    "Số thuê bao điện thoại: 126,34 triệu, giảm 0,81% so với cùng kỳ năm trước",
    "số lượng SIM rác đã xử lý: 10,2 triệu SIM",
    "số cuộc gọi giả mạo đã ngăn chặn: 65,17 triệu",
    "Số thuê bao phát tán cuộc gọi rác đã xử lý: 196.762 thuê bao",
    "ghi nhận 5.082 cuộc tấn công mạng gây ra sự cố vào các hệ thống thông tin tại Việt Nam, tăng 25,82%"
    " so với cùng kỳ năm 2020",
    "Tổng doanh thu công nghiệp ICT ước đạt 1.992 tỷ đồng (~ 86,1 tỷ USD) tăng 15,7% so với cùng kỳ năm 2020",
]


def make(actor, definition="ict_monthly", period="202108", unit=None, fmt="md") -> Report:
    request = services.prepare(actor=actor, definition=definition, period=period, unit=unit, fmt=fmt)
    return services.generate(actor=actor, request=request, dated=date(2021, 9, 15))


def text_of(report: Report) -> str:
    return services.file_path(report).read_text(encoding="utf-8")


pytestmark = pytest.mark.usefixtures("media")


def set_value(element: str, period: str, value, status: str = "final") -> None:
    record = {"dataElement": element, "period": period, "orgUnit": "VN-2025:VN", "value": value}
    summary = import_values([{**record, "status": status}], actor=None, area=EVERYWHERE)
    assert summary.status == "SUCCESS", summary.as_dict()


def test_monthly_report_says_the_seeds_sentences_with_their_numbers(world, ict):
    report = make(world.leader.user)
    text = " ".join(text_of(report).split())
    for sentence in SEED_SENTENCES:
        assert sentence in text
    assert report.state == ReportState.DONE and report.missing == []
    assert "Hà Nội, ngày 15 tháng 9 năm 2021" in text
    assert "Tình hình phát triển ngành Thông tin và Truyền thông tháng 8/2021" in text


def test_estimate_wording_follows_each_figures_status(world, ict):
    # Telecom revenue is final in the seed: "đạt", never "ước đạt".
    assert "viễn thông ước đạt" not in text_of(make(world.leader.user))
    set_value("postal_revenue", "2021YTD08", 24500, status="final")
    set_value("telecom_revenue", "2021YTD07", 76530, status="estimate")
    text = text_of(make(world.leader.user))
    assert "Doanh thu bưu chính đạt 24.500 tỷ" in text
    assert "tổng doanh thu dịch vụ viễn thông ước đạt 76,53 nghìn tỷ" in text


def test_a_missing_figure_is_written_as_missing_and_listed_never_as_zero(world, ict):
    set_value("postal_revenue", "2021YTD08", "")  # an empty value deletes the stored one
    assert not DataValue.objects.filter(element__code="postal_revenue", period="2021YTD08").exists()
    report = make(world.leader.user)
    text = text_of(report)
    assert "Doanh thu bưu chính *chưa có số liệu*" in text
    assert "0 tỷ (" not in text
    assert report.missing == ["Doanh thu bưu chính, 8 tháng đầu năm 2021: Việt Nam"]
    assert "- Doanh thu bưu chính, 8 tháng đầu năm 2021: Việt Nam" in text
    # The other sentences are unaffected.
    assert "Số thuê bao điện thoại: 126,34 triệu" in text


def test_a_missing_last_year_is_missing_not_a_change(world, ict):
    set_value("postal_revenue", "2020YTD08", "")
    report = make(world.leader.user)
    assert "ước đạt 24.500 tỷ (so với cùng kỳ: *chưa có số liệu*)" in text_of(report)
    assert "Doanh thu bưu chính (cùng kỳ), 8 tháng đầu năm 2020: Việt Nam" in report.missing


def test_half_year_report_from_the_2021_s1_figures(world, ict):
    text = " ".join(text_of(make(world.leader.user, "ict_halfyear", "2021S1")).split())
    assert "6 tháng đầu năm 2021, định hướng 6 tháng cuối năm 2021" in text
    assert "tổng số 15.418 thẻ nhà báo, gồm các cơ quan báo chí ở trung ương (9.086 thẻ)" in text
    assert "giảm từ 5.596 tỷ xuống 2.424 tỷ đồng" in text and "(giảm 56,68% giá trị vốn" in text
    assert "| 1 | Việt Nam | 49 | 37 | 43 | 63 |" in text


def test_a_province_report_holds_only_its_area(world, hcm_report):
    record = {
        "dataElement": "online_dossiers",
        "period": "202108",
        "orgUnit": world.commune_a.ref,
        "value": 7,
    }
    assert import_values([record], actor=None, area=EVERYWHERE).status == "SUCCESS"
    user = world.province_operator.user
    with pytest.raises(DomainError) as refused:
        make(user, "ict_monthly", unit="VN-2025:VN")
    assert refused.value.status == 404 and refused.value.field == "unit"
    with pytest.raises(DomainError):
        make(world.operator_a.user, "hcm", unit=world.province.ref)
    report = make(user, "hcm", unit=world.province.ref)
    rows = [line for line in text_of(report).splitlines() if line.startswith("| ") and line[2].isdigit()]
    children = list(world.province.children.order_by("code").values_list("name", flat=True))
    assert [row.split(" | ")[1] for row in rows] == children
    assert f"| {world.commune_a.name} | 7 |" in text_of(report)
    assert "Hà Nội" not in text_of(report)


def test_replay_gives_the_same_file_whatever_changed_since(world, ict):
    original = make(world.leader.user, fmt="docx")
    set_value("postal_revenue", "2021YTD08", 99999, status="final")
    again = services.replay(actor=world.leader.user, original=original)
    assert again.sha256 == original.sha256 and again.replay_of == original
    fresh = make(world.leader.user, fmt="docx")
    assert fresh.sha256 != original.sha256
    assert "99.999 tỷ" in text_of(services.replay(actor=world.leader.user, original=fresh, fmt="md"))


def test_replay_of_a_report_outside_the_area_is_refused(world, ict):
    original = make(world.leader.user)
    with pytest.raises(services.ReportError):
        services.replay(actor=world.operator_a.user, original=original)


@pytest.mark.parametrize(
    ("today", "cutoff", "due"),
    [
        ("2021-09-14", False, None),
        ("2021-09-15", False, "202108"),
        ("2021-09-30", False, "202108"),
        ("2021-08-15", True, "202108"),  # 15/7–14/8 is tháng 8 under the provinces' cut-off
        ("2021-08-14", True, None),
    ],
)
def test_monthly_schedule(world, ict, today, cutoff, due):
    definition = ict["ict_monthly"]
    definition.provincial_cutoff = cutoff
    found = services.period_due(definition, date.fromisoformat(today))
    assert (found.id if found else None) == due


def test_half_year_schedule_is_due_only_after_a_half_closes(world, ict):
    definition = ict["ict_halfyear"]
    assert services.period_due(definition, date(2021, 7, 10)).id == "2021S1"
    assert services.period_due(definition, date(2022, 1, 10)).id == "2021S2"
    assert services.period_due(definition, date(2021, 8, 10)) is None


def test_schedule_makes_what_is_due_once(world, ict, media):
    made = services.run_schedule(date(2021, 9, 15))
    assert sorted((r.definition.code, r.period, r.format, r.state) for r in made) == [
        ("ict_monthly", "202108", "docx", "done"),
        ("ict_monthly", "202108", "pdf", "done"),
    ]
    assert services.run_schedule(date(2021, 9, 16)) == []
    assert sorted(stored_files(media)) == sorted(services.file_path(r) for r in made)
    # In the storage with the attachments and photos, the owner's alone, named after what they are.
    assert all(
        r.file.startswith("reports/") and r.file.endswith(f"-ict_monthly-202108-VN.{r.format}") for r in made
    )
    assert {oct(services.file_path(r).stat().st_mode & 0o777) for r in made} == {"0o600"}


def test_reports_made_before_the_storage_move_into_it_and_still_download(
    world, ict, media, settings, tmp_path
):
    """A report made by an earlier version lies under DIEUHANH_HOME/files; the migration moves it into
    the storage under the same name, and the archive still serves it."""
    from importlib import import_module

    from django.apps import apps

    report = make(world.leader.user)
    content = services.file_path(report).read_bytes()
    settings.HOME = tmp_path / "home"
    old = settings.HOME / "files" / report.file
    old.parent.mkdir(parents=True)
    services.file_path(report).rename(old)
    move = import_module("dieuhanh.reports.migrations.0005_made_files_in_the_storage").move_made_reports
    move(apps, None)
    move(apps, None)  # a second run finds it moved
    assert not old.exists() and services.file_path(report).read_bytes() == content
    got = world.leader.browser().get(f"/api/v1/reports/{report.pk}/file")
    assert got.status_code == 200 and b"".join(got.streaming_content) == content


def one_text(text: str) -> dict:
    return {"sections": [{"title": "x", "blocks": [{"text": text}]}]}


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        ({"document_code": "BTTTT"}, "document_code", "pattern"),
        ({"sections": [{"blocks": []}]}, "sections.0.title", "required"),
        (one_text("{{ value("), "sections.0.blocks.0", "mẫu văn bản có lỗi (dòng 1)"),
        (one_text("{{ value('no_such') }}"), "sections.0.blocks.0", "no_such"),
        (one_text("{{ value('postal_revenue', 'soon') }}"), "sections.0.blocks.0", "soon"),
        (one_text("{{ ''.__class__ }}"), "sections.0.blocks.0", "unsafe"),
    ],
)
def test_a_faulty_definition_is_refused_naming_the_place(world, ict, change, where, says):
    definition = ict["ict_monthly"]
    body = {**definition.body, **change}
    with pytest.raises(DefinitionError) as refused:
        definition.body = body
        definition.save()
        make(world.leader.user)
    assert refused.value.where == where and says in str(refused.value)


def test_save_definition_checks_the_body(world):
    with pytest.raises(DefinitionError, match="issuing_body"):
        services.save_definition(
            actor=None, code="x", name="x", period_type="monthly", unit=world.nation, body={"sections": []}
        )


def test_a_period_of_another_type_is_refused(world, ict):
    with pytest.raises(services.ReportError, match="2021S1 không phải kỳ báo cáo hằng tháng"):
        make(world.leader.user, period="2021S1")


def test_a_template_that_does_not_parse_is_refused_when_saved(world, ict):
    body = {**ict["ict_monthly"].body, **one_text("{% if %}")}
    with pytest.raises(DefinitionError) as refused:
        services.save_definition(
            actor=None, code="ict_monthly", name="x", period_type="monthly", unit=world.nation, body=body
        )
    assert refused.value.where == "sections.0.blocks.0"
    assert ict["ict_monthly"].body != body  # the stored definition is unchanged


def test_admin_refuses_a_broken_definition_with_its_place(world, ict):
    admin = make_caller("quantri", world.nation, "admin")
    admin.user.is_staff = admin.user.is_superuser = True
    admin.user.save()
    admin_client = admin.browser()
    definition = ict["ict_monthly"]
    body = {**definition.body, "sections": [{"title": "{{ value(", "blocks": []}]}
    answer = admin_client.post(
        f"/admin/reports/reportdefinition/{definition.pk}/change/",
        {
            "code": definition.code, "name": definition.name, "period_type": "monthly",
            "unit": definition.unit_id, "formats": '["docx"]', "body": json.dumps(body),
        },
    )  # fmt: skip
    assert answer.status_code == 200  # the form again, with the error
    assert "sections.0" in answer.content.decode()
    definition.refresh_from_db()
    assert definition.body["sections"][0]["title"] == "Bưu chính"


def test_making_and_replaying_a_report_is_audited(world, ict):
    from dieuhanh.accounts.models import AuditEntry

    original = make(world.leader.user)
    services.replay(actor=world.leader.user, original=original)
    entries = list(
        AuditEntry.objects.filter(action__startswith="report.")
        .order_by("id")
        .values_list("action", "actor_name", "target")
    )
    assert entries == [
        ("report.generate", "leader", "ict_monthly@VN-2025:VN/202108"),
        ("report.replay", "leader", str(original.pk)),
    ]


def test_a_report_made_tells_the_screens_of_its_unit_and_above_and_not_the_neighbours(
    world, ict, django_capture_on_commit_callbacks
):
    def made() -> Report:
        with django_capture_on_commit_callbacks(execute=True):
            return make(world.province_operator.user, unit=world.province.ref)

    async def scenario():
        province = HUB.stream({area_key("VN-2025", world.province.path)}, heartbeat=30)
        nation = HUB.stream({area_key("VN-2025", "/VN/")}, heartbeat=30)
        neighbour = HUB.stream({area_key("VN-2025", world.commune_a.path)}, heartbeat=30)
        for stream in (province, nation, neighbour):
            await anext(stream)  # connected
        report = await sync_to_async(made)()
        heard = [await asyncio.wait_for(anext(s), 5) for s in (province, nation)]
        with pytest.raises(TimeoutError):  # a ward is below the report's unit: not concerned
            await asyncio.wait_for(anext(neighbour), 0.3)
        for stream in (province, nation, neighbour):
            await stream.aclose()
        return report, heard

    report, heard = async_to_sync(scenario)()
    expected = {"report": report.pk, "definition": "ict_monthly", "period": "202108", "state": "done"}
    assert heard == [f"event: report\ndata: {json.dumps(expected)}\n\n"] * 2
