"""Demo reports in Hồ Chí Minh City and Hà Nội: some answered, one forwarded, some overdue."""

from __future__ import annotations

from datetime import timedelta

from dieuhanh.accounts.models import User
from dieuhanh.feedback import services
from dieuhanh.feedback.models import Feedback
from dieuhanh.feedback.services import Place

# (category, text, address, days ago, what happens: answer text | "forward" | "late" | "")
REPORTS = [
    (
        "lighting",
        "Đèn đường trên đường Lê Lợi tắt từ ba đêm nay.",
        "Phường Bến Thành, Thành phố Hồ Chí Minh",
        3,
        "Phường đã thay bóng đèn; đèn sáng lại từ tối qua.",
    ),
    (
        "waste",
        "Rác tập kết ở góc chợ chưa được thu gom từ sáng.",
        "Phường Bến Thành, Thành phố Hồ Chí Minh",
        8,
        "late",
    ),
    (
        "drainage",
        "Nắp cống bị vỡ trên vỉa hè, nguy hiểm cho người đi bộ.",
        "Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh",
        2,
        "Đã thay nắp cống mới.",
    ),
    (
        "public_order",
        "Quán lấn chiếm vỉa hè, người đi bộ phải xuống lòng đường.",
        "Phường Bến Thành, Thành phố Hồ Chí Minh",
        1,
        "forward",
    ),
    (
        "health",
        "Cơ sở bán thức ăn đường phố không đảm bảo vệ sinh.",
        "Phường Sài Gòn, Thành phố Hồ Chí Minh",
        0,
        "",
    ),
    (
        "roads",
        "Ổ gà lớn giữa đường, xe máy dễ té ngã.",
        "Phường Hàng Trống, Quận Hoàn Kiếm, Hà Nội",
        4,
        "Đã vá ổ gà, cảm ơn người dân đã phản ánh.",
    ),
    ("pollution", "Công trình xây dựng làm ồn sau 22 giờ.", "Phường Hoàn Kiếm, Thành phố Hà Nội", 9, "late"),
]


# Who acts for a unit: the demo user of that unit, else the national leader.
OFFICIALS = {"26743": "benthanh", "26740": "saigon", "79": "tphcm", "VN": "lanhdao"}


def load_demo_feedback() -> list[str]:
    """Files the reports through the real intake, then acts on them as the demo's officials."""
    if Feedback.objects.exists():
        return ["Phản ánh mẫu đã có: giữ nguyên."]
    users = {u.username: u for u in User.objects.filter(username__in=OFFICIALS.values())}
    answered = forwarded = late = 0
    for category, text, address, days, then in REPORTS:
        item = services.submit(category=category, text=text, place=Place(address=address))
        back = timedelta(days=days)
        # Back-dated as if filed `days` ago, so that deadlines have run as they would have.
        Feedback.objects.filter(pk=item.pk).update(
            received_at=item.received_at - back,
            assigned_at=item.assigned_at - back,
            forward_due=item.forward_due - back,
            answer_due=item.answer_due - back,
        )
        item.events.update(at=item.received_at - back)
        item.refresh_from_db()
        actor = users.get(OFFICIALS.get(item.unit.code, "lanhdao")) or users.get("lanhdao")
        if actor is None:
            continue
        if then == "forward":
            services.forward(
                actor=actor, item=item, to="VN-2025:26740", reason="Quán nằm trên địa bàn phường Sài Gòn."
            )
            forwarded += 1
        elif then == "late":
            services.accept(actor=actor, item=item)
            late += 1
        elif then:
            services.accept(actor=actor, item=item)
            services.answer(actor=actor, item=item, text=then)
            answered += 1
    return [f"Phản ánh mẫu: {len(REPORTS)} (đã trả lời {answered}, đã chuyển {forwarded}, quá hạn {late})"]
