"""Demo reports in Hồ Chí Minh City and Hà Nội: some answered (one with a photo of the work done),
one forwarded, some overdue, one merged duplicate, and one published "Dân hỏi – Chính quyền trả lời"
session in Bến Thành."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from dieuhanh.accounts.models import User
from dieuhanh.feedback import services, sessions
from dieuhanh.feedback.models import Feedback
from dieuhanh.feedback.services import Place, Upload

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
    # A second citizen reports the same stall at the same place: merged, they follow the first report.
    (
        "health",
        "Quán ăn trên vỉa hè dùng dầu chiên cũ, bốc mùi khét.",
        "Phường Sài Gòn, Thành phố Hồ Chí Minh",
        0,
        "",
    ),
]

SESSION_QUESTIONS = [
    (
        "Trật tự đô thị",
        "Vỉa hè quanh chợ Bến Thành bị lấn chiếm, phường có kế hoạch gì?",
        "Từ ngày 15/12, phường ra quân lập lại trật tự vỉa hè quanh chợ mỗi tuần hai lần.",
    ),
    (
        "Môi trường",
        "Khi nào có thêm thùng rác công cộng trên đường Lê Lợi?",
        "Phường đã đề nghị Công ty Dịch vụ công ích đặt thêm 10 thùng rác trong tháng 12.",
    ),
    ("Thủ tục hành chính", "Làm căn cước cho trẻ em ở đâu?", "Tại Công an phường, sáng thứ Bảy có tiếp dân."),
]


# Bến Thành answers its lighting report with a photo of the lamp working again (the file carries a
# phone's EXIF with a GPS position, as a real one would: the answer's photo is stored without it).
ANSWER_PHOTO = Path(__file__).parent / "static" / "feedback" / "demo" / "den-duong-da-thay.jpg"
PHOTO_CATEGORY = "lighting"

# Who acts for a unit: the demo user of that unit, else the national leader.
OFFICIALS = {"26743": "benthanh", "26740": "saigon", "79": "tphcm", "VN": "lanhdao"}


def load_demo_feedback() -> list[str]:
    """Files the reports through the real intake, then acts on them as the demo's officials."""
    if Feedback.objects.exists():
        return ["Phản ánh mẫu đã có: giữ nguyên."]
    users = {u.username: u for u in User.objects.filter(username__in=OFFICIALS.values())}
    # Food safety in Hồ Chí Minh City goes to the city's department, held as an agency unit.
    services.add_agency(
        actor=None, province="VN-2025:79", code="SATTP", name="Ban Quản lý An toàn thực phẩm TP. Hồ Chí Minh"
    )
    answered = forwarded = late = 0
    with_photo = ""
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
            photos = []
            if category == PHOTO_CATEGORY:
                photos, with_photo = [Upload(ANSWER_PHOTO.name, ANSWER_PHOTO.read_bytes())], item.code
            services.answer(actor=actor, item=item, text=then, photos=photos)
            answered += 1
    merged = Feedback.objects.filter(merged_into__isnull=False).count()
    published = _demo_session(users.get("benthanh") or users.get("lanhdao"))
    return [
        f"Phản ánh mẫu: {len(REPORTS)} (đã trả lời {answered}, đã chuyển {forwarded}, quá hạn {late},"
        f" gộp trùng {merged}); phiên hỏi đáp đã công bố: {1 if published else 0}",
        *(
            [f"Trả lời kèm ảnh: /phan-anh/theo-doi/{with_photo}/ (và /phan-anh/cong-khai/)"]
            if with_photo
            else []
        ),
        *([f"Phiên hỏi đáp đã công bố: /phan-anh/hoi-dap/{published}/"] if published else []),
    ]


def _demo_session(actor: User | None) -> int:
    """The published session's id (0 without an official to hold it)."""
    if actor is None:
        return 0
    session = sessions.open_session(
        actor=actor,
        unit="VN-2025:26743",
        title="Dân hỏi – Chính quyền trả lời: phường Bến Thành tháng 12",
        day=timezone.localdate(),
        topics=[topic for topic, _, _ in SESSION_QUESTIONS],
    )
    for topic, question, answer in SESSION_QUESTIONS:
        asked = sessions.ask(session_id=session.pk, topic=topic, text=question)
        sessions.answer_question(
            actor=actor,
            session_id=session.pk,
            question_id=asked.pk,
            text=answer,
            answerer_title="Chủ tịch UBND phường Bến Thành",
        )
    sessions.publish_session(actor=actor, session_id=session.pk)
    return session.pk
