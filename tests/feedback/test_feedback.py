"""Citizens' reports (issue 20): intake without login, routing to a 2025 commune, a unit's queue and
its verbs within areas, deadlines and the overdue list, the public answers."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image
from typer.testing import CliRunner

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.cli import app as cli_app
from dieuhanh.demo import create_demo, load_demo_reports_of_citizens
from dieuhanh.feedback.demo import ANSWER_PHOTO
from dieuhanh.feedback.models import Event, Feedback, Photo, PostPhoto, Session, Throttle
from dieuhanh.feedback.services import overdue_q
from dieuhanh.units.services import get_unit
from dieuhanh.warehouse.models import Identity
from dieuhanh.warehouse.persons import person_key
from tests.factories import BROKEN_JPEG, CAMERA, jpeg, png, record, stored_files

URL = "/api/v1/feedback"
JPEG, PNG = jpeg(), png()  # as a phone writes them: the device and the GPS position where taken
PDF = b"%PDF-1.7\n" + b"\x00" * 200
PHONE = "0912 345 678"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"


def post(data: dict, *, ip: str = "203.0.113.7", photos: list[tuple[str, bytes]] = ()):
    body = dict(data)
    if photos:
        body["photos"] = [SimpleUploadedFile(name, content) for name, content in photos]
    return Client(REMOTE_ADDR=ip).post(URL, body)


def report(**override) -> dict:
    base = {"category": "lighting", "text": "Đèn đường trước chợ tắt ba đêm nay.", "address": BEN_THANH}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def nothing_written() -> bool:
    return not (Feedback.objects.exists() or Photo.objects.exists() or Throttle.objects.exists())


@pytest.fixture
def filed(world, categories):
    """A report in Bến Thành, with a phone number, as a citizen files it."""
    r = post(report(phone=PHONE))
    assert r.status_code == 201, r.content
    return Feedback.objects.get(code=r.json()["code"])


def test_categories_list_english_codes_with_vietnamese_names(categories):
    r = Client().get(f"{URL}/categories")
    assert r.status_code == 200
    names = {c["code"]: c["name"] for c in r.json()}
    assert names["roads"] == "Giao thông, đường sá, vỉa hè"
    assert names["lighting"] == "Chiếu sáng công cộng"
    assert all(c["forward_minutes"] == 5 and c["answer_days"] == 5 for c in r.json())


def test_a_report_by_new_address_gets_a_code_and_goes_to_the_commune(world, categories):
    r = post(report())
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["code"].startswith("PA") and len(body["code"]) == 10
    assert body["unit"] == "VN-2025:26743"
    item = Feedback.objects.get(code=body["code"])
    assert item.forward_due - item.received_at == timedelta(minutes=5)
    assert item.answer_due - item.received_at == timedelta(days=5)


def test_an_old_address_is_carried_to_the_2025_commune(world, categories):
    # Phường Bến Nghé, Quận 1 joined Phường Sài Gòn on 1/7/2025.
    r = post(report(address="Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh"))
    assert r.status_code == 201, r.content
    assert r.json()["unit"] == "VN-2025:26740"


def test_a_pin_goes_to_the_nearest_commune_centre(world, categories):
    a = world.commune_a
    r = post(report(address=None, lat=a.lat + 0.0005, lon=a.lon - 0.0005))
    assert r.status_code == 201, r.content
    assert r.json()["unit"] == a.ref
    hanoi = post(report(address=None, lat=21.0285, lon=105.8542), ip="203.0.113.8")
    assert hanoi.status_code == 201, hanoi.content
    assert get_unit(hanoi.json()["unit"]).parent.code == "01"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (report(address=None, lat=13.7563, lon=100.5018), "lat", "ngoài lãnh thổ Việt Nam"),  # Bangkok
        (report(address="10 Downing Street, London"), "address", "không tìm thấy địa chỉ"),
        (report(address="Thành phố Hồ Chí Minh"), "address", "không xác định được xã, phường"),
        (report(address=None), "address", "cần vị trí"),
        (report(category="potholes"), "category", "không có lĩnh vực 'potholes'"),
        (report(text="   "), "text", "cần nội dung"),
        (report(phone="12345"), "phone", "không phải số điện thoại"),
        (report(lat=10.77), "lon", "cần cả vĩ độ"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(world, categories, data, field, words):
    identities = Identity.objects.count()
    r = post(data)
    assert r.status_code == 422, r.content
    problem = r.json()
    assert problem["field"] == field
    assert words in problem["detail"]
    assert nothing_written()
    assert Identity.objects.count() == identities


def test_photos_are_typed_by_content_and_limited(world, categories, media):
    four = post(report(), photos=[("a.jpg", JPEG)] * 4)
    assert (four.status_code, four.json()["field"]) == (422, "photos")
    # A PDF named .jpg after a good photo: refused by its bytes, and the good one is not kept either.
    renamed = post(report(), photos=[("a.jpg", JPEG), ("b.jpg", PDF)])
    assert (renamed.status_code, renamed.json()["field"]) == (415, "photos[1]")
    big = post(report(), photos=[("big.png", PNG + b"\x00" * (5 * 1024 * 1024))])
    assert (big.status_code, big.json()["field"]) == (413, "photos[0]")
    # A JPEG whose structure cannot be followed: its metadata could not be said to be gone.
    broken = post(report(), photos=[("a.jpg", JPEG), ("b.jpg", BROKEN_JPEG)])
    assert (broken.status_code, broken.json()["field"]) == (415, "photos[1]")
    assert broken.json()["detail"].startswith("photos[1]: ")
    assert nothing_written()
    assert stored_files(media) == []
    good = post(report(), photos=[("a.jpg", JPEG), ("b", PNG)])
    assert good.status_code == 201, good.content
    stored = Photo.objects.filter(feedback__code=good.json()["code"])
    assert sorted(p.content_type for p in stored) == ["image/jpeg", "image/png"]


def test_the_phone_number_is_only_in_the_vault(filed):
    key = person_key(PHONE)
    assert bytes(filed.phone_key) == key
    assert Identity.objects.filter(person_key=key).exists()
    for value in Feedback.objects.filter(pk=filed.pk).values().get().values():
        assert "912345678" not in str(value)
    for entry in AuditEntry.objects.filter(action="feedback.submit"):
        assert "912345678" not in str(entry.detail) + entry.target


def test_tracking_shows_the_history_without_personal_data(filed):
    r = Client().get(f"{URL}/track/{filed.code.lower()}")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "received" and body["place"] == "Phường Bến Thành"
    assert [e["kind"] for e in body["history"]] == ["received"]
    text = json.dumps(body, ensure_ascii=False)
    assert "912345678" not in text and "345 678" not in text and BEN_THANH not in text
    assert Client().get(f"{URL}/track/PA00000000").status_code == 404


@pytest.fixture
def no_confirmation(monkeypatch):
    """The hard limits alone (the confirmation code of repeated senders has tests of its own)."""
    from dieuhanh.feedback import services

    monkeypatch.setattr(services, "CONFIRM_AFTER", {k: 100 for k in services.CONFIRM_AFTER})


def test_a_flood_from_one_client_is_refused_with_why_and_when(world, categories, no_confirmation):
    for _ in range(10):
        assert post(report(), ip="198.51.100.1").status_code == 201
    r = post(report(), ip="198.51.100.1")
    assert r.status_code == 429
    assert 0 < int(r["Retry-After"]) <= 3600
    assert "mức tối đa là 10" in r.json()["detail"] and "vui lòng gửi lại sau" in r.json()["detail"]
    assert Feedback.objects.count() == 10
    assert post(report(), ip="198.51.100.2").status_code == 201  # another client is not held back


def test_a_flood_from_one_phone_is_refused_across_clients(world, categories, no_confirmation):
    for i in range(5):
        assert post(report(phone=PHONE), ip=f"198.51.100.{i}").status_code == 201
    r = post(report(phone="+84 912 345 678"), ip="198.51.100.99")
    assert r.status_code == 429
    assert r.json()["field"] == "phone"
    assert int(r["Retry-After"]) > 3600
    # The counters hold neither the address nor the number.
    assert not Throttle.objects.filter(key__contains="198.51").exists()
    assert not Throttle.objects.filter(key__contains="912345678").exists()


def test_the_queue_respects_areas(world, filed):
    mine = world.operator_a.client().get(URL, {"unit": "VN-2025:26743"})
    assert mine.status_code == 200
    assert [i["code"] for i in mine.json()["items"]] == [filed.code]
    assert mine.json()["items"][0]["address"] == BEN_THANH  # the handling officials see the place
    province = world.province_operator.client().get(URL, {"unit": "VN-2025:79"})
    assert [i["code"] for i in province.json()["items"]] == [filed.code]
    neighbour = world.operator_b.client()
    assert neighbour.get(URL, {"unit": "VN-2025:26740"}).json()["items"] == []
    theirs = neighbour.get(URL, {"unit": "VN-2025:26743"})
    unknown = neighbour.get(URL, {"unit": "VN-2025:99999"})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["detail"].replace("26743", "X") == unknown.json()["detail"].replace("99999", "X")
    # Reading or acting on the neighbour's item answers as an item that does not exist.
    for r in (
        neighbour.get(f"{URL}/{filed.code}"),
        neighbour.post(f"{URL}/{filed.code}/answer", {"text": "x"}, content_type="application/json"),
        neighbour.post(f"{URL}/PA22222222/answer", {"text": "x"}, content_type="application/json"),
    ):
        assert r.status_code == 404
        assert "trong phạm vi của bạn" in r.json()["detail"]
    assert Client().get(URL, {"unit": "VN-2025:26743"}).status_code == 401


def test_forwarding_must_name_the_unit_and_a_reason(world, filed):
    client = world.operator_a.client()
    path = f"{URL}/{filed.code}/forward"
    bare = client.post(path, {"reason": "Không thuộc phường"}, content_type="application/json")
    assert bare.status_code == 422  # a bare "not ours" is refused
    nowhere = client.post(path, {"to": "", "reason": "Không thuộc phường"}, content_type="application/json")
    assert (nowhere.status_code, nowhere.json()["field"]) == (422, "to")
    short = client.post(path, {"to": "VN-2025:26740", "reason": "no"}, content_type="application/json")
    assert (short.status_code, short.json()["field"]) == (422, "reason")
    assert Event.objects.filter(feedback=filed).count() == 1
    reason = "Vị trí thuộc địa bàn phường Sài Gòn"
    r = client.post(path, {"to": "VN-2025:26740", "reason": reason}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert [e["kind"] for e in r.json()["history"]] == ["received", "forwarded"]
    assert r.json()["history"][-1]["unit_name"] == "Phường Sài Gòn"
    public = Client().get(f"{URL}/track/{filed.code}").json()
    assert [(e["kind"], e["note"]) for e in public["history"]] == [("received", ""), ("forwarded", "")]
    assert world.operator_a.client().get(URL, {"unit": "VN-2025:26743"}).json()["items"] == []
    theirs = world.operator_b.client().get(URL, {"unit": "VN-2025:26740"}).json()["items"]
    assert [i["code"] for i in theirs] == [filed.code]
    entry = AuditEntry.objects.get(action="feedback.forward")
    assert (entry.actor, entry.detail["to"]) == (world.operator_a.user, "VN-2025:26740")


def test_overdue_lists_what_waits_past_its_deadlines(world, filed, categories):
    client = world.operator_a.client()
    fresh = post(report(category="waste"), ip="203.0.113.9").json()["code"]
    now = timezone.now()
    Feedback.objects.filter(pk=filed.pk).update(forward_due=now - timedelta(minutes=1))  # 6 minutes on
    overdue = client.get(URL, {"unit": "VN-2025:26743", "overdue": "true"}).json()["items"]
    assert [i["code"] for i in overdue] == [filed.code]
    assert overdue[0]["overdue"] is True
    # Taking it ends the five-minute clock; the five-day one still runs.
    assert client.post(f"{URL}/{filed.code}/accept").status_code == 200
    assert client.get(URL, {"unit": "VN-2025:26743", "overdue": "true"}).json()["items"] == []
    Feedback.objects.filter(code=fresh).update(answer_due=now - timedelta(hours=1))
    late = client.get(URL, {"unit": "VN-2025:26743", "overdue": "true"}).json()["items"]
    assert [i["code"] for i in late] == [fresh]


def test_a_province_category_goes_to_the_province(world, categories):
    r = post(report(category="health", text="Cơ sở bán thực phẩm không rõ nguồn gốc"))
    assert r.json()["unit"] == "VN-2025:79"
    assert world.operator_a.client().get(URL, {"unit": "VN-2025:26743"}).json()["items"] == []
    province = world.province_operator.client().get(URL, {"unit": "VN-2025:79"}).json()["items"]
    assert [i["code"] for i in province] == [r.json()["code"]]


def test_an_answer_is_public_without_personal_data(world, filed):
    text = "Phường đã thay bóng đèn ngày 5/12; xin cảm ơn người dân."
    client = world.operator_a.client()
    r = client.post(f"{URL}/{filed.code}/answer", {"text": text}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "answered" and r.json()["answer"] == text
    again = client.post(f"{URL}/{filed.code}/answer", {"text": text}, content_type="application/json")
    assert again.status_code == 409
    assert AuditEntry.objects.filter(action="feedback.answer", target=filed.code).count() == 1
    page = Client().get("/phan-anh/cong-khai/", {"q": "bóng đèn"})
    assert page.status_code == 200
    html = page.content.decode()
    assert text in html and filed.code in html and "Phường Bến Thành" in html
    assert "912345678" not in html and "912 345 678" not in html and BEN_THANH not in html
    assert filed.code not in Client().get("/phan-anh/cong-khai/", {"q": "ngập nước"}).content.decode()


def test_the_public_page_masks_numbers_written_in_the_text(world, categories):
    code = post(report(text="Gọi tôi 0912345678, CCCD 079201001234, đèn hỏng")).json()["code"]
    item = Feedback.objects.get(code=code)
    world.operator_a.client().post(
        f"{URL}/{code}/answer", {"text": "Đã sửa"}, content_type="application/json"
    )
    html = Client().get("/phan-anh/cong-khai/").content.decode()
    assert item.code in html and "đèn hỏng" in html
    assert "0912345678" not in html and "079201001234" not in html
    # Nor does the API, to the officials handling it.
    queue = world.operator_a.client().get(URL, {"unit": "VN-2025:26743", "status": "answered"}).json()
    text = json.dumps(queue, ensure_ascii=False)
    assert "đèn hỏng" in text and "0912345678" not in text and "079201001234" not in text


def test_the_form_page_files_a_report_and_shows_its_code(world, categories, media):
    c = Client(REMOTE_ADDR="203.0.113.20")
    page = c.get("/phan-anh/")
    assert page.status_code == 200 and "Gửi phản ánh" in page.content.decode()
    bad = c.post("/phan-anh/", {"category": "lighting", "text": "Đèn tắt", "where": "address", "address": ""})
    assert bad.status_code == 422
    assert "<strong>Địa chỉ:</strong> cần vị trí" in bad.content.decode()
    assert not Feedback.objects.exists()
    photo = io.BytesIO(JPEG)
    photo.name = "den.jpg"
    r = c.post(
        "/phan-anh/",
        {
            "category": "lighting",
            "text": "Đèn tắt",
            "where": "address",
            "address": BEN_THANH,
            "photos": photo,
        },
    )
    assert r.status_code == 302
    item = Feedback.objects.get()
    assert r["Location"] == f"/phan-anh/theo-doi/{item.code}/"
    assert item.photos.count() == 1
    track = c.get(r["Location"])
    assert track.status_code == 200 and item.code in track.content.decode()
    assert "Phường Bến Thành" in track.content.decode()


def test_the_demo_reports_go_through_the_real_verbs(world, categories, media):
    create_demo()
    lines = load_demo_reports_of_citizens()
    assert lines[0] == (
        "Phản ánh mẫu: 8 (đã trả lời 3, đã chuyển 1, quá hạn 2, gộp trùng 1); phiên hỏi đáp đã công bố: 1"
    )
    assert load_demo_reports_of_citizens() == ["Phản ánh mẫu đã có: giữ nguyên."]
    units = set(Feedback.objects.values_list("place_unit__parent__code", flat=True))
    assert units == {"79", "01"}
    late = Feedback.objects.filter(overdue_q(timezone.now())).values_list(
        "place_unit__parent__code", flat=True
    )
    assert sorted(late) == ["01", "79"]
    html = Client().get("/phan-anh/cong-khai/").content.decode()
    assert "Phường đã thay bóng đèn" in html and "Đã vá ổ gà" in html
    assert "Dân hỏi – Chính quyền trả lời: phường Bến Thành tháng 12" in html
    duplicate = Feedback.objects.get(merged_into__isnull=False)
    assert duplicate.merged_into.unit.ref == "VN-2025:79-SATTP" and duplicate.merged_into.reporters == 2
    # One answer carries a photo: public, without the GPS position and the device the file shipped with.
    photo = PostPhoto.objects.select_related("event__feedback").get()
    item = photo.event.feedback
    assert (photo.event.kind, item.category_id) == ("answered", "lighting")
    assert b"Exif" in ANSWER_PHOTO.read_bytes()
    url = f"/phan-anh/theo-doi/{item.code}/anh/{photo.pk}/"
    content = b"".join(Client().get(url).streaming_content)
    assert content[:2] == b"\xff\xd8" and b"Exif" not in content and b"DienThoaiCanBo" not in content
    assert f'src="{url}"' in html
    # The published session's page, linked from the public page, and both printed by the demo.
    session = Session.objects.get(status="published")
    assert f'href="/phan-anh/hoi-dap/{session.pk}/"' in html
    page = Client().get(f"/phan-anh/hoi-dap/{session.pk}/").content.decode()
    assert "Trật tự đô thị" in page and "Chủ tịch UBND phường Bến Thành" in page
    assert lines[1:] == [
        f"Trả lời kèm ảnh: /phan-anh/theo-doi/{item.code}/ (và /phan-anh/cong-khai/)",
        f"Phiên hỏi đáp đã công bố: /phan-anh/hoi-dap/{session.pk}/",
    ]


def test_a_citizens_photo_is_stored_without_its_gps_position(world, categories, media):
    """A phone's photo carries where it was taken (often the sender's home) and the device: neither
    is stored, from the API or from the page; a damaged file is refused naming the field."""
    assert b"Exif" in JPEG and CAMERA.encode() in JPEG and CAMERA.encode() in PNG
    api = post(report(), photos=[("a.jpg", JPEG), ("b.png", PNG)])
    assert api.status_code == 201, api.content
    page = io.BytesIO(jpeg((30, 160, 60)))
    page.name = "den.jpg"
    form = {"category": "waste", "text": "Rác ùn ứ", "where": "address", "address": BEN_THANH}
    r = Client(REMOTE_ADDR="203.0.113.21").post("/phan-anh/", {**form, "photos": page})
    assert r.status_code == 302
    official = world.operator_a.client()
    codes = [api.json()["code"], r["Location"].rstrip("/").rsplit("/", 1)[1]]
    downloaded = [
        b"".join(official.get(f"{URL}/{code}/photos/{n}").streaming_content)
        for code, n in ((codes[0], 1), (codes[0], 2), (codes[1], 1))
    ]
    for content in downloaded:
        assert b"Exif" not in content and CAMERA.encode() not in content and b"Le Loi" not in content
    assert [c[:3] for c in downloaded] == [b"\xff\xd8\xff", b"\x89PN", b"\xff\xd8\xff"]
    assert [p.size for p in Photo.objects.order_by("id")] == [len(c) for c in downloaded]
    # What is on disk is what an official downloads: the metadata is not kept anywhere.
    on_disk = [p.read_bytes() for p in stored_files(media)]
    assert sorted(on_disk) == sorted(downloaded)

    # A damaged file on the page: 415 naming the field ("Ảnh"), nothing written.
    before = (Feedback.objects.count(), Photo.objects.count(), Throttle.objects.count())
    broken = io.BytesIO(BROKEN_JPEG)
    broken.name = "hong.jpg"
    r = Client(REMOTE_ADDR="203.0.113.22").post("/phan-anh/", {**form, "photos": broken})
    assert r.status_code == 415
    assert "<strong>Ảnh:</strong> không đọc được ảnh" in r.content.decode()
    assert (Feedback.objects.count(), Photo.objects.count(), Throttle.objects.count()) == before
    assert len(stored_files(media)) == 3


def test_the_unit_opens_the_photos_and_the_neighbour_cannot(world, categories, media):
    code = post(report(), photos=[("a.jpg", JPEG), ("b.png", PNG)]).json()["code"]
    bare = post(report(category="waste", text="Rác ùn ứ."), ip="203.0.113.8").json()["code"]
    mine = world.operator_a.client()
    # The queue counts each item's own photos.
    counts = {i["code"]: i["photos"] for i in mine.get(URL, {"unit": "VN-2025:26743"}).json()["items"]}
    assert counts == {code: 2, bare: 0}
    first, second = mine.get(f"{URL}/{code}/photos/1"), mine.get(f"{URL}/{code}/photos/2")
    assert (first.status_code, first["Content-Type"], second["Content-Type"]) == (
        200,
        "image/jpeg",
        "image/png",
    )
    for got, size in ((first, (64, 48)), (second, (30, 20))):  # the pictures sent, without their metadata
        image = Image.open(io.BytesIO(b"".join(got.streaming_content)))
        image.load()
        assert image.size == size and dict(image.getexif()) == {}
    assert "no-store" in first["Cache-Control"]
    for number in (0, 3, 2**63):
        assert mine.get(f"{URL}/{code}/photos/{number}").status_code == 404
    assert world.operator_b.client().get(f"{URL}/{code}/photos/1").status_code == 404
    assert Client().get(f"{URL}/{code}/photos/1").status_code == 401


def test_the_citizen_rates_the_answer_once(world, filed):
    rate = f"{URL}/track/{filed.code}/rating"
    early = Client().post(rate, {"stars": 5}, content_type="application/json")
    assert (early.status_code, early.json()["field"]) == (409, "stars")
    world.operator_a.client().post(
        f"{URL}/{filed.code}/answer", {"text": "Đã thay bóng đèn."}, content_type="application/json"
    )
    assert Client().post(rate, {"stars": 6}, content_type="application/json").status_code == 422
    r = Client().post(rate, {"stars": 4}, content_type="application/json")
    assert (r.status_code, r.json()["rating"]) == (200, 4)
    assert Client().post(rate, {"stars": 1}, content_type="application/json").status_code == 409
    assert Feedback.objects.get(pk=filed.pk).rating == 4
    assert "Người phản ánh đánh giá: 4/5" in Client().get("/phan-anh/cong-khai/").content.decode()


def test_the_tracking_page_takes_the_rating(world, filed):
    world.operator_a.client().post(
        f"{URL}/{filed.code}/answer", {"text": "Đã thay bóng đèn."}, content_type="application/json"
    )
    page = Client().get(f"/phan-anh/theo-doi/{filed.code}/")
    assert 'name="stars" value="5"' in page.content.decode()
    r = Client().post(f"/phan-anh/theo-doi/{filed.code}/danh-gia/", {"stars": "5"})
    assert r.status_code == 302
    assert "Bạn đã đánh giá câu trả lời: 5/5." in Client().get(r["Location"]).content.decode()
    again = Client().post(f"/phan-anh/theo-doi/{filed.code}/danh-gia/", {"stars": "2"})
    assert again.status_code == 409 and "đã được đánh giá" in again.content.decode()
    assert Feedback.objects.get(pk=filed.pk).rating == 5


def test_incident_reports_from_sources_become_items_once(world, categories, platform):
    sent = platform.send(
        "report",
        [
            {**record("report", 1), "category": "waste", "person_id": PHONE},
            record("report", 2),  # "gathering": not one of ours, so "other"
            {**record("report", 3), "commune": "VN-2025:26743"},
        ],
    )
    assert sent.status_code == 200, sent.content
    result = CliRunner().invoke(cli_app, ["feedback", "import-incidents"])
    assert result.exit_code == 0, result.output
    assert "tạo 3 phản ánh mới" in result.output
    items = {i.incident_id: i for i in Feedback.objects.select_related("place_unit", "category")}
    assert sorted((i.category_id, i.place_unit.code) for i in items.values()) == [
        ("other", "26740"),
        ("other", "26743"),
        ("waste", "26740"),
    ]
    assert bytes(next(i for i in items.values() if i.category_id == "waste").phone_key) == person_key(PHONE)
    queue = world.operator_b.client().get(URL, {"unit": "VN-2025:26740"}).json()["items"]
    assert len(queue) == 2 and not any(i["overdue"] for i in queue)  # deadlines run from arrival here
    assert "tạo 0 phản ánh mới" in CliRunner().invoke(cli_app, ["feedback", "import-incidents"]).output
    assert Feedback.objects.count() == 3
