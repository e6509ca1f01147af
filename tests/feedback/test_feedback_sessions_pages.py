"""Issue 20, "Dân hỏi – Chính quyền trả lời" on pages: an official opens a session for a date, citizens
send questions to it, the officials see them by topic, answer (and regroup) them and publish; the
public reads the published session, linked from /phan-anh/cong-khai/. Through the sessions' verbs,
inside the caller's area (404 outside it, 403 without a handling role), in Vietnamese."""

from __future__ import annotations

from django.test import Client

from dieuhanh.feedback.models import Question, Session

SESSIONS = "/phan-anh/xu-ly/hoi-dap/"


def open_session(page, **override) -> Session:
    values = {
        "unit": "VN-2025:26743",
        "title": "Dân hỏi – Chính quyền trả lời tháng 12",
        "date": "20/12/2026",
        "topics": "Môi trường\nTrật tự đô thị",
    }
    r = page.post(SESSIONS, {**values, **override})
    assert r.status_code == 302, r.content.decode()[:2000]
    session = Session.objects.latest("id")
    assert r["Location"] == f"{SESSIONS}{session.pk}/"
    return session


def ask(session: Session, topic: str, text: str, ip: str) -> None:
    r = Client(REMOTE_ADDR=ip).post(f"/phan-anh/hoi-dap/{session.pk}/", {"topic": topic, "text": text})
    assert r.status_code == 200 and "Câu hỏi của bạn đã được gửi" in r.content.decode()


def test_an_official_opens_answers_and_publishes_a_session_on_the_pages(world, categories):
    page = world.operator_a.browser()
    html = page.get(SESSIONS).content.decode()
    assert "<h1>Dân hỏi – Chính quyền trả lời</h1>" in html and "Chưa có phiên hỏi đáp nào." in html
    # Reached from the officials' queue; the menu's "citizens' reports" stays lit (its one row holds no more).
    assert f'href="{SESSIONS}"' in page.get("/phan-anh/xu-ly/").content.decode()
    assert 'href="/phan-anh/xu-ly/" aria-current="page"' in html

    # A date that does not exist is refused on the page, what was typed kept, nothing opened.
    r = page.post(SESSIONS, {"unit": "VN-2025:26743", "title": "Phiên tháng 12", "date": "31/11/2026"})
    assert (
        r.status_code == 422
        and "Ngày:" in r.content.decode()
        and "tháng 11/2026 chỉ có 30 ngày" in (r.content.decode())
    )
    assert 'value="Phiên tháng 12"' in r.content.decode() and not Session.objects.exists()
    session = open_session(page)
    assert (session.date.isoformat(), session.topics) == (
        "2026-12-20",
        ["Môi trường", "Trật tự đô thị", "Khác"],
    )
    assert "Đã mở phiên" in page.get(f"{SESSIONS}{session.pk}/").content.decode()

    # Citizens ask on the public page; the officials see the questions by topic, numbers masked.
    ask(session, "Môi trường", "Khi nào có thùng rác trên đường Lê Lợi? Số tôi 0912345678", "203.0.113.7")
    ask(session, "Khác", "Vỉa hè quanh chợ bị lấn chiếm thì báo ai?", "203.0.113.8")
    html = page.get(f"{SESSIONS}{session.pk}/").content.decode()
    assert "2 câu hỏi, đã trả lời 0." in html
    assert (
        html.index("<h2>Môi trường") < html.index("thùng rác") < html.index("<h2>Khác") < html.index("Vỉa hè")
    )
    assert "0912345678" not in html
    listed = page.get(SESSIONS).content.decode()
    assert "ngày 20/12/2026" in listed and "2 câu hỏi, đã trả lời 0" in listed

    # Publishing with nothing answered is refused, saying why.
    r = page.post(f"{SESSIONS}{session.pk}/", {"action": "publish"})
    assert r.status_code == 409 and "chưa có câu hỏi nào được trả lời" in r.content.decode()
    bin_q, pavement_q = (Question.objects.get(text__startswith=w) for w in ("Khi nào", "Vỉa hè"))
    # An empty answer is refused naming the field; the other fields typed stay.
    r = page.post(
        f"{SESSIONS}{session.pk}/",
        {"action": "answer", "question": bin_q.pk, "text": " ", "answerer_title": "Chủ tịch UBND phường"},
    )
    assert r.status_code == 422 and "Câu trả lời: không được để trống" in r.content.decode()
    assert 'value="Chủ tịch UBND phường"' in r.content.decode()
    assert Question.objects.get(pk=bin_q.pk).answered_at is None
    r = page.post(
        f"{SESSIONS}{session.pk}/",
        {
            "action": "answer",
            "question": bin_q.pk,
            "text": "Phường đặt thêm 10 thùng rác trong tháng 12.",
            "answerer_title": "Chủ tịch UBND phường",
            "topic": "Môi trường",
        },
        follow=True,
    )
    assert "Đã lưu câu trả lời" in r.content.decode() and "2 câu hỏi, đã trả lời 1." in r.content.decode()
    # Answered and regrouped under the topic it belongs to.
    r = page.post(
        f"{SESSIONS}{session.pk}/",
        {
            "action": "answer",
            "question": pavement_q.pk,
            "text": "Báo Công an phường qua số đường dây nóng.",
            "answerer_title": "Trưởng Công an phường",
            "topic": "Trật tự đô thị",
        },
    )
    assert r.status_code == 302 and Question.objects.get(pk=pavement_q.pk).topic == "Trật tự đô thị"
    r = page.post(f"{SESSIONS}{session.pk}/", {"action": "close"}, follow=True)
    assert "Phiên đã ngừng nhận câu hỏi." in r.content.decode()
    assert Client().get(f"/phan-anh/hoi-dap/{session.pk}/").status_code == 404  # closed, not yet published
    r = page.post(f"{SESSIONS}{session.pk}/", {"action": "publish"}, follow=True)
    assert "Đã công bố phiên" in r.content.decode()
    assert Session.objects.get(pk=session.pk).status == "published"

    # The public reads it from the public page, answers by topic, the number masked.
    public = Client().get("/phan-anh/cong-khai/").content.decode()
    assert f'href="/phan-anh/hoi-dap/{session.pk}/"' in public and "20/12/2026" in public
    html = Client().get(f"/phan-anh/hoi-dap/{session.pk}/").content.decode()
    assert "Phường đặt thêm 10 thùng rác" in html and "(Trưởng Công an phường)" in html
    assert html.index("<h2>Môi trường") < html.index("<h2>Trật tự đô thị") < html.index("Báo Công an")
    assert "0912345678" not in html
    # Published, the answers are no longer edited on the page.
    assert "Lưu câu trả lời" not in page.get(f"{SESSIONS}{session.pk}/").content.decode()
    r = page.post(f"{SESSIONS}{session.pk}/", {"action": "answer", "question": bin_q.pk, "text": "Sửa."})
    assert r.status_code == 409 and "phiên đã công bố" in r.content.decode()


def test_the_session_pages_keep_to_the_area_and_the_roles(world, categories):
    session = open_session(world.operator_a.browser(), title="Tiếp dân trực tuyến của phường Bến Thành")
    theirs = world.operator_b.browser()
    # The neighbour neither lists it, opens it, acts on it, nor opens one for Bến Thành.
    assert session.title not in theirs.get(SESSIONS).content.decode()
    assert theirs.get(f"{SESSIONS}{session.pk}/").status_code == 404
    assert theirs.post(f"{SESSIONS}{session.pk}/", {"action": "close"}).status_code == 404
    assert theirs.get(SESSIONS, {"unit": "VN-2025:26743"}).status_code == 404
    r = theirs.post(
        SESSIONS, {"unit": "VN-2025:26743", "title": "Phiên của phường khác", "date": "20/12/2026"}
    )
    assert r.status_code == 404 and Session.objects.count() == 1
    assert Session.objects.get().status == "open"
    # The city above sees and may publish its wards' sessions.
    assert session.title in world.province_operator.browser().get(SESSIONS).content.decode()
    # A tracer holds no handling role; an anonymous visitor is sent to sign in.
    tracer = world.tracer.browser()
    assert tracer.get(SESSIONS).status_code == 403
    assert tracer.get(f"{SESSIONS}{session.pk}/").status_code == 403
    assert Client().get(SESSIONS).status_code == 302
    assert Client().post(f"{SESSIONS}{session.pk}/", {"action": "close"}).status_code == 302
    assert Session.objects.get().status == "open"
