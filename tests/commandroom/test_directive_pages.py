"""The inbox and directive pages through Django's test client: a commune on a phone, the room's status."""

from __future__ import annotations

from dieuhanh.directives.models import Delivery, Response
from tests.factories import issue


def test_a_commune_operator_lands_on_the_inbox_reads_acknowledges_and_responds(world):
    form = [{"key": "samples", "label": "Số mẫu đã lấy", "type": "number"}]
    directive = issue(
        world.leader, priority="urgent", form=form, body="Báo cáo <script>alert(1)</script> **ngay**"
    ).json()
    browser = world.operator_a.browser()
    assert browser.get("/")["Location"] == "/inbox/"
    page = browser.get("/inbox/").content.decode()
    assert "Hộp thư chỉ đạo" in page and "Khẩn" in page and "Triển khai xét nghiệm diện rộng" in page
    delivery = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_a)
    page = browser.get(f"/inbox/{delivery.pk}/").content.decode()
    assert "<strong>ngay</strong>" in page and "<script>alert(1)</script>" not in page  # Markdown, never HTML
    delivery.refresh_from_db()
    assert delivery.state == "read"
    browser.post(f"/inbox/{delivery.pk}/ack/")
    delivery.refresh_from_db()
    assert delivery.state == "acknowledged" and delivery.acknowledged_by == world.operator_a.user
    response = browser.post(
        f"/inbox/{delivery.pk}/respond/", {"q_samples": "1.200", "text": "Đã lấy mẫu"}, follow=True
    )
    assert "Đã gửi báo cáo." in response.content.decode()
    assert Response.objects.get().figures == {"samples": 1200.0}


def test_a_bad_number_is_explained_and_nothing_is_saved(world):
    form = [{"key": "samples", "label": "Số mẫu đã lấy", "type": "number"}]
    directive = issue(world.leader, form=form).json()
    delivery = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_a)
    page = world.operator_a.browser().post(
        f"/inbox/{delivery.pk}/respond/", {"q_samples": "nhiều"}, follow=True
    )
    assert "Số mẫu đã lấy: không phải là số (nhiều)" in page.content.decode()
    assert not Response.objects.exists()


def test_neighbours_pages_are_not_found(world):
    directive = issue(world.leader).json()
    theirs = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_b)
    assert world.operator_a.browser().get(f"/inbox/{theirs.pk}/").status_code == 404
    world.operator_a.browser().post(f"/inbox/{theirs.pk}/ack/")
    theirs.refresh_from_db()
    assert theirs.state == "sent"


def test_the_status_page_shows_the_province_table(world):
    directive = issue(world.leader, targets={"units": ["VN-2025:79"], "level": "commune"}).json()
    page = world.leader.browser().get(f"/directives/{directive['id']}/").content.decode()
    assert "Thành phố Hồ Chí Minh" in page and "Chưa thực hiện xong" in page
    assert world.operator_a.browser().get(f"/directives/{directive['id']}/").status_code == 200
    assert world.operator_b.browser().get("/directives/999999/").status_code == 404
