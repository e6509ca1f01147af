"""The approval page: accepting many units, lock exceptions asked and decided, and the settings, from
the web as from the API, inside each caller's area and role."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from dieuhanh.indicators.approval.models import Approval, DataSetApproval, LockException
from dieuhanh.indicators.approval.services import vn_today
from dieuhanh.vnformat import short_date
from tests.factories import PERIOD, act, make_caller

A, B, HCM = "VN-2025:26743", "VN-2025:26740", "VN-2025:79"
PAGE = "/approval/telecom/"


def post(caller, what: str, **data):
    """A form of the page, posted as the browser posts it; the page it comes back to, with its message."""
    data = {"unit": HCM, "period": PERIOD, **data}
    response = caller.browser().post(f"{PAGE}{what}", data, follow=True)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_the_province_accepts_its_communes_from_the_page_and_a_commune_cannot(world, approved_telecom):
    assert act(world.operator_a, "approve", A).status_code == 200
    assert act(world.operator_b, "approve", B).status_code == 200
    page = world.province_operator.browser().get(PAGE, {"unit": HCM, "period": PERIOD}).content.decode()
    assert "Đã phê duyệt, chờ cấp trên chấp nhận" in page and "Chấp nhận các đơn vị đã chọn" in page
    assert f'name="units" value="{A}"' in page
    city = world.province_operator.browser().get(f"/units/VN-2025/79/?period={PERIOD}").content.decode()
    assert f"/approval/telecom/?unit=VN-2025%3A79&amp;period={PERIOD}" in city  # from its completeness line
    # The commune cannot accept its own approval, nor act on its neighbour: nothing is written.
    said = post(world.operator_a, "act/", unit=A, action="accept", units=[A])
    assert "Bến Thành" in said and "Đã chấp nhận" not in said
    assert post(world.operator_a, "act/", unit=A, action="accept", units=[B]).count("Đã chấp nhận") == 0
    assert world.operator_a.browser().get(PAGE, {"unit": B, "period": PERIOD}).status_code == 404
    assert not Approval.objects.filter(accepted_at__isnull=False).exists()
    # The city accepts both in one go; unapproving needs a reason.
    said = post(world.province_operator, "act/", action="accept", units=[A, B])
    assert "Đã chấp nhận phê duyệt của 2 đơn vị." in said
    assert Approval.objects.filter(accepted_at__isnull=False).count() == 2
    said = post(world.province_operator, "act/", action="unapprove", units=[B])
    assert "Hủy phê duyệt phải ghi rõ lý do." in said
    said = post(world.province_operator, "act/", action="unapprove", units=[B], reason="Số liệu sai")
    assert "Đã hủy phê duyệt của 1 đơn vị." in said
    assert list(Approval.objects.values_list("unit__code", flat=True)) == ["26743"]


def test_a_lock_exception_is_asked_by_the_commune_and_decided_by_the_city(world, approved_telecom):
    DataSetApproval.objects.filter(data_set=approved_telecom).update(expiry_days=10)
    said = post(world.operator_a, "exceptions/", unit=A, period="202101", reason="Bổ sung số liệu bị sót")
    assert "Đã gửi yêu cầu ngoại lệ khóa" in said
    asked = LockException.objects.get()
    assert post(world.operator_b, "exceptions/", unit=B, period="202101", reason="").count(
        "phải ghi rõ lý do"
    )
    # The commune cannot decide its own request; the city sees it with the form to decide.
    url = f"exceptions/{asked.pk}/decision/"
    assert "Chỉ cấp trên trực tiếp" in post(
        world.operator_a, url, unit=A, decision="grant", ends_on="1/1/2099"
    )
    page = world.province_operator.browser().get(PAGE, {"unit": HCM, "period": "202101"}).content.decode()
    assert "Bổ sung số liệu bị sót" in page and "Đang chờ quyết định" in page and "Cho phép" in page
    assert "tháng 1/2021" in page
    assert "Ngày kết thúc" in post(
        world.province_operator, url, period="202101", decision="grant", ends_on="32/1"
    )
    ends = vn_today() + timedelta(days=3)
    said = post(world.province_operator, url, period="202101", decision="grant", ends_on=f"{ends:%d/%m/%Y}")
    assert "Đã cho phép ngoại lệ." in said and f"Được phép đến hết {short_date(ends)}" in said
    asked.refresh_from_db()
    assert (asked.state, asked.ends_on, asked.decided_by) == ("granted", ends, world.province_operator.user)


def test_a_national_admin_sets_the_levels_and_expiry_days_and_no_one_else(world, approved_telecom):
    admin = make_caller("national-admin", world.nation, "admin")
    assert "Cấu hình phê duyệt" in admin.browser().get(PAGE, {"unit": HCM}).content.decode()
    assert "Cấu hình phê duyệt" not in world.province_operator.browser().get(PAGE).content.decode()
    said = post(admin, "settings/", **{"levels:VN-2025": "commune, nation", "expiry_days": "15"})
    assert "Đã lưu cấu hình phê duyệt." in said
    settings = DataSetApproval.objects.get(data_set=approved_telecom)
    assert (settings.levels, settings.expiry_days) == ({"VN-2025": ["commune", "nation"]}, 15)
    said = post(admin, "settings/", **{"levels:VN-2025": "commune, ward", "expiry_days": "15"})
    assert "không có cấp ward" in said
    assert "phải là số nguyên" in post(admin, "settings/", expiry_days="mười")
    denied = world.province_operator.browser().post(f"{PAGE}settings/", {"unit": HCM, "expiry_days": "1"})
    assert denied.status_code == 403
    assert DataSetApproval.objects.get(data_set=approved_telecom).expiry_days == 15


def test_the_page_reads_in_vietnamese_by_default_and_in_english_when_chosen(world, approved_telecom):
    """Headings, states, next steps and buttons come from the catalogue, like the entry pages beside it;
    the map layer's legend follows the same language."""
    assert act(world.operator_a, "approve", A).status_code == 200
    vi = world.province_operator.browser()
    page = vi.get(PAGE, {"unit": HCM, "period": PERIOD}).content.decode()
    for said in (
        "Ngoại lệ khóa",
        "Đã phê duyệt, chờ cấp trên chấp nhận",
        "Chấp nhận các đơn vị đã chọn",
        'aria-label="Đường dẫn"',
        ">Xem<",
    ):
        assert said in page
    assert "Lock exceptions" not in page
    en = world.province_operator.browser()
    en.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = en.get(PAGE, {"unit": HCM, "period": PERIOD}).content.decode()
    for said in (
        "Lock exceptions",
        "Approved, waiting for the level above to accept",
        "Accept the chosen units",
    ):
        assert said in page
    assert "Ngoại lệ khóa" not in page and "chờ cấp trên" not in page
    legend = en.get("/api/v1/approvals/map", {"dataSet": "telecom", "unit": HCM, "period": PERIOD}).json()
    assert [x["label"] for x in legend["legend"]][:2] == ["Not approved", "Approved"]
    legend = vi.get("/api/v1/approvals/map", {"dataSet": "telecom", "unit": HCM, "period": PERIOD}).json()
    assert [x["label"] for x in legend["legend"]][:2] == ["Chưa phê duyệt", "Đã phê duyệt"]
