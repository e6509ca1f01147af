"""Issue 20, HCMC 1022's rule: "answered within 5 days, or progress is posted with a photo". An
official attaches up to 3 photos to an answer or a progress update, through the API and on the
report's page; the photos are public, so they are stored without what the camera wrote (the GPS
position, the device); the citizen's tracking page and the public page show them. A progress update
with a photo meets the first-answer deadline; bad photos are refused naming the field, with nothing
written."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from dieuhanh.feedback import followup
from dieuhanh.feedback.models import Event, Feedback, PostPhoto
from tests.factories import BROKEN_JPEG, CAMERA, jpeg, png, stored_files

URL = "/api/v1/feedback"
QUEUE = "/phan-anh/xu-ly/"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"
PDF = b"%PDF-1.7\n" + b"\x00" * 200


def uploads(*photos: tuple[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, content) for name, content in photos]


def file(text: str = "Đèn đường trước chợ tắt ba đêm nay.", ip: str = "203.0.113.7") -> str:
    r = Client(REMOTE_ADDR=ip).post(URL, {"category": "lighting", "text": text, "address": BEN_THANH})
    assert r.status_code == 201, r.content
    return r.json()["code"]


def test_an_answer_with_photos_is_public_without_the_cameras_metadata(world, categories, media):
    code = file()
    official = world.operator_a.client()
    r = official.post(
        f"{URL}/{code}/answer",
        {"text": "Đã thay bóng đèn, đèn sáng lại.", "photos": uploads(("a.jpg", jpeg()), ("b.png", png()))},
    )
    assert r.status_code == 200, r.content
    answered = [e for e in r.json()["history"] if e["kind"] == "answered"]
    assert len(answered) == 1 and len(answered[0]["photos"]) == 2
    first, second = answered[0]["photos"]
    assert first.startswith(f"/phan-anh/theo-doi/{code}/anh/")

    # Anyone opens them (no login), stripped of the device, the GPS position, the comment and trailer.
    for url, kind, size in ((first, "image/jpeg", (64, 48)), (second, "image/png", (30, 20))):
        got = Client().get(url)
        content = b"".join(got.streaming_content)
        assert (got.status_code, got["Content-Type"]) == (200, kind)
        assert CAMERA.encode() not in content and b"Le Loi" not in content and b"Exif" not in content
        image = Image.open(io.BytesIO(content))
        image.load()  # still a picture a viewer draws
        assert image.size == size and dict(image.getexif()) == {}
    # A photo is found only under its own report's code.
    other = file("Đèn khác cũng tắt.", ip="203.0.113.8")
    assert Client().get(first.replace(code, other)).status_code == 404

    # The citizen's tracking page and the public page show them.
    for page in (f"/phan-anh/theo-doi/{code}/", "/phan-anh/cong-khai/"):
        html = Client().get(page).content.decode()
        assert f'<img src="{first}"' in html and f'<img src="{second}"' in html, page
    # The answer is one and final: a second one, photos or not, is refused.
    again = official.post(f"{URL}/{code}/answer", {"text": "Lần nữa", "photos": uploads(("c.jpg", jpeg()))})
    assert again.status_code == 409 and PostPhoto.objects.count() == 2
    # The neighbour cannot answer it.
    theirs = world.operator_b.client().post(f"{URL}/{other}/answer", {"text": "Đã xử lý."})
    assert theirs.status_code == 404


def test_bad_photos_are_refused_naming_the_field_and_nothing_is_written(world, categories, media):
    code = file()
    official = world.operator_a.client()
    cases = [
        ([("a.jpg", jpeg())] * 4, 422, "photos"),
        ([("a.jpg", jpeg()), ("b.jpg", PDF)], 415, "photos[1]"),  # named .jpg, is a PDF
        ([("big.png", png() + b"\x00" * (5 * 1024 * 1024))], 413, "photos[0]"),
        ([("broken.jpg", BROKEN_JPEG)], 415, "photos[0]"),
    ]
    for verb in ("answer", "progress"):
        for photos, status, field in cases:
            r = official.post(f"{URL}/{code}/{verb}", {"text": "Đã xử lý xong.", "photos": uploads(*photos)})
            assert (r.status_code, r.json()["field"]) == (status, field), (verb, field, r.content)
            assert r.json()["detail"].startswith(f"{field}: ")
    item = Feedback.objects.get(code=code)
    assert (item.status, item.answer) == ("received", "")
    assert not Event.objects.filter(feedback=item, kind__in=["answered", "progress"]).exists()
    assert not PostPhoto.objects.exists() and stored_files(media) == []
    # The refusal speaks Vietnamese.
    broken = official.post(f"{URL}/{code}/answer", {"text": "x", "photos": uploads(("b.jpg", BROKEN_JPEG))})
    assert "không đọc được ảnh" in broken.json()["detail"]


def test_progress_with_a_photo_meets_the_first_answer_deadline(world, categories, media):
    code = file()
    official = world.operator_a.client()
    assert official.post(f"{URL}/{code}/accept").status_code == 200
    Feedback.objects.filter(code=code).update(answer_due=timezone.now() - timedelta(hours=2))
    overdue = official.get(URL, {"unit": world.commune_a.ref, "overdue": "true"}).json()["items"]
    assert [i["code"] for i in overdue] == [code]

    # A note without a photo tells the citizen, but does not meet 1022's rule: still overdue.
    r = official.post(f"{URL}/{code}/progress", {"text": "Đã báo Công ty chiếu sáng đến kiểm tra."})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert official.get(f"{URL}/{code}").json()["overdue"] is True

    # With a photo: under way in public, no longer overdue, still open until answered.
    r = official.post(
        f"{URL}/{code}/progress",
        {"text": "Đang thay cáp điện, dự kiến xong trong 3 ngày.", "photos": uploads(("cap.jpg", jpeg()))},
    )
    assert r.status_code == 200, r.content
    assert (r.json()["status"], r.json()["status_name"]) == ("progress", "Đã cập nhật tiến độ kèm ảnh")
    posts = [e for e in r.json()["history"] if e["kind"] == "progress"]
    assert [e["note"] for e in posts] == [
        "Đã báo Công ty chiếu sáng đến kiểm tra.",
        "Đang thay cáp điện, dự kiến xong trong 3 ngày.",
    ]
    assert [len(e["photos"]) for e in posts] == [0, 1]
    assert official.get(f"{URL}/{code}").json()["overdue"] is False
    assert official.get(URL, {"unit": world.commune_a.ref, "overdue": "true"}).json()["items"] == []
    assert [i["code"] for i in official.get(URL, {"unit": world.commune_a.ref}).json()["items"]] == [code]
    # The follow-up worker neither reminds nor escalates it, even two days past the deadline.
    ticked = followup.tick(timezone.now() + timedelta(days=2))
    assert (ticked.reminded, ticked.escalated) == (0, 0)
    assert Feedback.objects.get(code=code).escalated_at is None

    # The citizen reads the progress and its photo on the tracking page.
    html = Client().get(f"/phan-anh/theo-doi/{code}/").content.decode()
    assert "Đã cập nhật tiến độ kèm ảnh" in html and "Đang thay cáp điện" in html
    assert f'<img src="{posts[1]["photos"][0]}"' in html

    # Then the answer; after it, progress is no longer posted.
    done = official.post(f"{URL}/{code}/answer", {"text": "Đã xong."}, content_type="application/json")
    assert done.status_code == 200 and done.json()["status"] == "answered"
    late = official.post(f"{URL}/{code}/progress", {"text": "Thêm ảnh."})
    assert late.status_code == 409 and late.json()["field"] == "status"


def test_the_official_answers_with_a_photo_on_the_reports_page(world, categories, media):
    code = file()
    page = world.operator_a.browser()
    html = page.get(f"{QUEUE}{code}/").content.decode()
    assert 'enctype="multipart/form-data"' in html and "Cập nhật tiến độ" in html
    # A bad photo comes back on the page naming the field, what was typed kept, nothing written.
    r = page.post(
        f"{QUEUE}{code}/", {"action": "answer", "text": "Đã thay bóng.", "photos": uploads(("a.jpg", PDF))}
    )
    assert r.status_code == 415
    assert "Ảnh: chỉ nhận ảnh JPEG hoặc PNG" in r.content.decode() and "Đã thay bóng." in r.content.decode()
    assert Feedback.objects.get(code=code).status == "received" and stored_files(media) == []
    # Progress with a photo, then the answer with one.
    r = page.post(
        f"{QUEUE}{code}/",
        {"action": "progress", "text": "Đang sửa.", "photos": uploads(("p.jpg", jpeg((1, 2, 3))))},
        follow=True,
    )
    assert "Đã đăng cập nhật tiến độ" in r.content.decode()
    assert Feedback.objects.get(code=code).status == "progress"
    r = page.post(
        f"{QUEUE}{code}/",
        {"action": "answer", "text": "Đã thay bóng đèn.", "photos": uploads(("a.jpg", jpeg()))},
        follow=True,
    )
    assert "Đã trả lời phản ánh" in r.content.decode()
    photos = list(PostPhoto.objects.select_related("event").order_by("id"))
    assert [p.event.kind for p in photos] == ["progress", "answered"]
    public = Client().get("/phan-anh/cong-khai/").content.decode()
    for p in photos:
        assert f'src="/phan-anh/theo-doi/{code}/anh/{p.pk}/"' in public
    # The neighbour's official finds neither the report nor a way to post on it.
    theirs = world.operator_b.browser()
    assert theirs.post(f"{QUEUE}{code}/", {"action": "progress", "text": "x"}).status_code == 404
