"""Issue 20, the officials' pages: a unit works its queue of citizens' reports on /phan-anh/xu-ly/ —
takes a report, answers it in public, passes it on with a reason, undoes a wrong merge — inside its
area, in Vietnamese, and a refused action says why without losing what was typed."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from dieuhanh.feedback.models import Feedback

QUEUE = "/phan-anh/xu-ly/"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"
SAI_GON = "Phường Sài Gòn, Thành phố Hồ Chí Minh"


def file(text: str, address: str = BEN_THANH, category: str = "lighting", ip: str = "203.0.113.7") -> str:
    r = Client(REMOTE_ADDR=ip).post(
        "/api/v1/feedback", {"category": category, "text": text, "address": address}
    )
    assert r.status_code == 201, r.content
    return r.json()["code"]


def test_a_commune_works_its_queue_on_its_pages_and_never_sees_the_neighbours(world, categories):
    lamp = file("Đèn đường trước chợ tắt, gọi 0912345678.")
    waste = file("Rác ùn ứ ở góc phố.", category="waste", ip="203.0.113.8")
    twin = file("Cột đèn số 2 nghiêng, sắp đổ.", ip="203.0.113.9")  # same address: merged into lamp
    theirs = file("Ổ gà giữa đường.", address=SAI_GON, category="roads", ip="203.0.113.10")
    page = world.operator_a.browser()

    html = page.get(QUEUE).content.decode()
    assert "Phản ánh của người dân" in html and "Đang mở" in html
    assert lamp in html and waste in html and theirs not in html
    assert "0912345678" not in html and "2 người cùng phản ánh" in html  # digit runs masked, reporters
    assert twin not in html and twin in page.get(QUEUE, {"loc": "da-gop"}).content.decode()
    # The neighbour's queue and reports are not found, and a post to them changes nothing.
    assert page.get(QUEUE, {"unit": "VN-2025:26740"}).status_code == 404
    assert page.get(f"{QUEUE}{theirs}/").status_code == 404
    assert page.post(f"{QUEUE}{theirs}/", {"action": "accept"}).status_code == 404
    assert Feedback.objects.get(code=theirs).status == "received"

    # Take it, then a refused answer comes back saying why, nothing saved.
    r = page.post(f"{QUEUE}{lamp}/", {"action": "accept"})
    assert r.status_code == 302 and Feedback.objects.get(code=lamp).status == "accepted"
    r = page.post(f"{QUEUE}{lamp}/", {"action": "answer", "text": "  "})
    assert r.status_code == 422 and "Nội dung trả lời: cần nội dung trả lời" in r.content.decode()
    assert Feedback.objects.get(code=lamp).status == "accepted"
    r = page.post(f"{QUEUE}{lamp}/", {"action": "answer", "text": "Đã thay bóng đèn."}, follow=True)
    assert "Đã trả lời phản ánh" in r.content.decode()
    assert Feedback.objects.get(code=lamp).answer == "Đã thay bóng đèn."
    assert lamp in page.get(QUEUE, {"loc": "da-tra-loi"}).content.decode()

    # Passing on needs the unit it belongs to and a reason; what was typed stays on the page.
    r = page.post(f"{QUEUE}{waste}/", {"action": "forward", "to": "VN-2025:26740", "reason": "sai"})
    assert (
        r.status_code == 422
        and "Lý do:" in r.content.decode()
        and 'value="VN-2025:26740"' in r.content.decode()
    )
    r = page.post(
        f"{QUEUE}{waste}/",
        {"action": "forward", "to": "VN-2025:26740", "reason": "Điểm rác thuộc phường Sài Gòn."},
    )
    assert r.status_code == 302 and Feedback.objects.get(code=waste).unit.code == "26740"
    assert page.get(f"{QUEUE}{waste}/").status_code == 404  # gone out of the area with it
    neighbour = world.operator_b.browser().get(QUEUE).content.decode()
    assert waste in neighbour and lamp not in neighbour

    # The lamp's item is answered: its duplicate's reporter has read the answer, the merge stays.
    r = page.post(f"{QUEUE}{twin}/", {"action": "unmerge", "reason": "Hai cột đèn khác nhau."})
    assert r.status_code == 409 and "đã được trả lời" in r.content.decode()

    # A tracer holds no handling role: refused, not an empty list.
    assert world.tracer.browser().get(QUEUE).status_code == 403


def test_the_overdue_list_and_undoing_a_merge_on_the_page(world, categories):
    first = file("Đèn đường trước chợ tắt.")
    twin = file("Cột đèn số 2 nghiêng, sắp đổ.", ip="203.0.113.8")
    Feedback.objects.filter(code=first).update(answer_due=timezone.now() - timedelta(hours=1))
    page = world.province_operator.browser()  # the city sees its wards' queues
    overdue = page.get(QUEUE, {"unit": "VN-2025:26743", "loc": "qua-han"}).content.decode()
    assert first in overdue and "Quá hạn" in overdue
    item = page.get(f"{QUEUE}{twin}/").content.decode()
    assert "Tách ra" in item and first in item
    r = page.post(f"{QUEUE}{twin}/", {"action": "unmerge", "reason": "Hai cột đèn khác nhau."}, follow=True)
    assert "đã được tách ra" in r.content.decode()
    assert (Feedback.objects.get(code=twin).status, Feedback.objects.get(code=first).reporters) == (
        "received",
        1,
    )
