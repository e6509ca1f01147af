"""The tracing workspace's pages, through Django's test client."""

from __future__ import annotations

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.tracing.models import Case
from tests.factories import CASE, P1, P3, hexkey, register


def test_a_tracer_registers_a_case_from_the_workspace_and_sees_its_contacts(tracers, outbreak):
    browser = tracers.a.browser()
    page = browser.get("/tracing/").content.decode()
    assert "Tìm hoặc đăng ký ca bệnh" in page and "Chưa có ca bệnh nào trong địa bàn của bạn." in page
    response = browser.post("/tracing/", {"person_id": CASE, "confirmed_at": "2021-08-27T10:00"})
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tracing/cases/{case.pk}/"
    assert case.confirmed_at.isoformat() == "2021-08-27T03:00:00+00:00"  # the form's time is Vietnam's
    page = browser.get(f"/tracing/cases/{case.pk}/?depth=2").content.decode()
    assert "Ca bệnh #" in page and "Người tiếp xúc theo xã, phường nơi ở" in page
    assert "Phường Bến Thành" in page and "Phường Sài Gòn" in page
    assert hexkey(P3)[:12] not in page  # lives and was exposed in the neighbour commune
    assert page.count('class="node g1') == 2 and page.count('class="node g2') == 1
    assert AuditEntry.objects.filter(action="tracing.contacts", actor=tracers.a.user).count() == 1
    # Asking again by the same ID opens the same case.
    again = browser.post("/tracing/", {"person_id": "0792 0100 1234"})
    assert again["Location"] == f"/tracing/cases/{case.pk}/"


def test_the_workspace_explains_what_is_missing(tracers, outbreak):
    browser = tracers.a.browser()
    page = browser.post("/tracing/", {"person_id": CASE}).content.decode()
    assert "Người này chưa là ca bệnh" in page
    page = browser.post("/tracing/", {"person_id": "12"}).content.decode()
    assert 'role="alert"' in page and Case.objects.count() == 0


def test_only_tracers_see_the_workspace(world, tracers):
    assert world.operator_a.browser().get("/tracing/").status_code == 403
    assert "Truy vết" not in world.operator_a.browser().get("/units/VN-2025/26743/").content.decode()
    assert 'href="/tracing/"' in tracers.a.browser().get("/units/VN-2025/26743/").content.decode()


def test_a_neighbours_case_page_is_not_found(tracers, outbreak):
    tracers.a.browser().post("/tracing/", {"person_id": CASE, "confirmed_at": "2021-08-27T10:00"})
    case = Case.objects.get()
    assert tracers.far.browser().get(f"/tracing/cases/{case.pk}/").status_code == 404


def test_the_workspace_lists_clusters_of_its_area(tracers, outbreak):
    register(tracers.a)
    register(
        tracers.b,
        person_id=P1,
        confirmed_at="2021-08-28T10:00:00+07:00",
        window_start="2021-08-26T00:00:00+07:00",
    )
    page = tracers.a.browser().get("/tracing/").content.decode()
    assert "Ổ dịch" in page and "Chợ Bến Thành" in page
    assert "Văn phòng Sài Gòn" not in page  # one case only there
    assert "Chợ Bến Thành" not in tracers.far.browser().get("/tracing/").content.decode()
