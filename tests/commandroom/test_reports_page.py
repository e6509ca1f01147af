"""The reports page: make a report for a unit of one's area, see it in the archive, download it; a
neighbour's report is neither listed nor downloadable."""

from __future__ import annotations

import pytest

from dieuhanh.reports.models import Report
from dieuhanh.reports.services import load_shipped
from tests.factories import ict_catalogue, stored_files


@pytest.fixture
def shipped(world, media):
    ict_catalogue()
    return load_shipped(owner=world.leader.user)


def post(client, **form):
    data = {"definition": "ict_monthly", "period": "202108", "unit": "", "format": "md", **form}
    return client.post("/reports/generate/", data, follow=True)


def test_leader_makes_a_report_and_downloads_it(world, shipped, media):
    client = world.leader.browser()
    page = post(client).content.decode()
    report = Report.objects.get()
    assert f"Báo cáo số {report.pk} đã lập xong." in page
    assert f'href="/reports/{report.pk}/file/"' in page
    got = client.get(f"/reports/{report.pk}/file/")
    body = b"".join(got.streaming_content).decode()
    assert "Doanh thu bưu chính ước đạt 24.500 tỷ (tăng 10% so với cùng kỳ)" in body
    assert [p.read_text(encoding="utf-8") for p in stored_files(media)] == [body]


def test_a_bad_period_is_explained_and_the_form_kept(world, shipped, media):
    page = post(world.leader.browser(), period="2021-08").content.decode()
    assert "Không lập được báo cáo" in page and "2021-08" in page and "không phải là kỳ báo cáo" in page
    assert not Report.objects.exists() and stored_files(media) == []


def test_a_period_typed_as_reports_name_it_makes_the_report(world, shipped):
    page = post(world.leader.browser(), period="tháng 8/2021").content.decode()
    report = Report.objects.get()
    assert f"Báo cáo số {report.pk} đã lập xong." in page and report.period == "202108"


def test_neighbouring_communes_do_not_see_each_others_reports(world, shipped):
    a, b = world.operator_a, world.operator_b
    post(a.browser(), unit=world.commune_a.ref)
    own = Report.objects.get()
    assert own.unit == world.commune_a
    assert f"/reports/{own.pk}/file/" not in b.browser().get("/reports/").content.decode()
    assert b.browser().get(f"/reports/{own.pk}/file/").status_code == 404
    refused = post(b.browser(), unit=world.commune_a.ref).content.decode()
    assert "trong phạm vi của bạn" in refused and Report.objects.count() == 1
