"""A citizen's and an official's refusals from feedback read in Vietnamese by default and in English
with the English language cookie (issue 15, point 2); the field keeps its API name in both. The
officials' pages of reports and question sessions (issue 20) read the same way."""

from __future__ import annotations

import html

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone, translation

from dieuhanh.feedback.models import Session
from dieuhanh.vnformat import input_date

URL = "/api/v1/feedback"


@pytest.fixture(autouse=True)
def _vietnamese_after():
    """A request with the English cookie leaves English active in this thread: the next test is not ours."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _english(client: Client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _post(client: Client, path: str, body: dict, **kw) -> dict:
    response = client.post(path, body, **kw)
    return {"status": response.status_code, "language": response["Content-Language"], **response.json()}


def test_a_citizens_refusal_reads_in_vietnamese_unless_english_is_chosen(world, categories):
    body = {"category": "potholes-on-mars", "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}
    vi = _post(Client(), URL, body)
    en = _post(_english(Client()), URL, body)
    assert vi["status"] == en["status"] == 422 and vi["field"] == en["field"] == "category"
    assert vi["language"] == "vi"
    assert (
        vi["detail"] == "category: không có lĩnh vực 'potholes-on-mars'; xem GET /api/v1/feedback/categories"
    )
    assert en["language"] == "en"
    assert en["detail"] == "category: no category 'potholes-on-mars'; see GET /api/v1/feedback/categories"


def test_an_officials_refusal_reads_in_their_language(world, categories):
    code = Client().post(
        URL, {"category": "lighting", "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}
    )
    code = code.json()["code"]
    path = f"{URL}/{code}/forward"
    short = {"to": "VN-2025:26740", "reason": "không"}
    vi = _post(world.operator_a.client(), path, short, content_type="application/json")
    en = _post(_english(world.operator_a.client()), path, short, content_type="application/json")
    assert vi["status"] == en["status"] == 422 and vi["field"] == en["field"] == "reason"
    assert vi["detail"] == "reason: cần nêu lý do chuyển (ít nhất 10 ký tự)"
    assert en["detail"] == "reason: say why it is passed on (at least 10 characters)"
    # Another refusal of the same route: the report is with this unit already.
    to_self = {"to": "VN-2025:26743", "reason": "Thuộc địa bàn phường Bến Thành"}
    vi = _post(world.operator_a.client(), path, to_self, content_type="application/json")
    en = _post(_english(world.operator_a.client()), path, to_self, content_type="application/json")
    assert (vi["detail"], en["detail"]) == (
        "to: phản ánh đang ở chính đơn vị này",
        "to: the report is with this unit already",
    )


QUEUE = "/phan-anh/xu-ly/"
SESSIONS = "/phan-anh/xu-ly/hoi-dap/"


def _read(response) -> str:
    assert response.status_code in (200, 422), response.status_code
    return html.unescape(response.content.decode())  # as read: &#x27; is an apostrophe


def test_an_officials_queue_and_report_read_in_vietnamese_unless_english_is_chosen(world, categories):
    """The officials' pages of citizens' reports (issue 20) take their words from the catalogue, as the
    command room's do: headings, filter tabs, buttons, a refusal's field and what an action did."""
    codes = []
    for ip, category in (("203.0.113.7", "lighting"), ("203.0.113.8", "waste")):  # two: not merged
        body = {"category": category, "text": "Đèn tắt", "address": "Phường Bến Thành, TP Hồ Chí Minh"}
        codes.append(Client(REMOTE_ADDR=ip).post(URL, body).json()["code"])
    mine, yours = codes
    vi, en = world.operator_a.browser(), _english(world.operator_a.browser())

    queue = _read(vi.get(QUEUE))
    for said in ("<h1>Phản ánh của người dân</h1>", ">Đang mở</a>", ">Chờ tiếp nhận</a>", ">Xem</button>"):
        assert said in queue
    assert "2 phản ánh của Phường Bến Thành và các đơn vị trực thuộc" in queue
    queue = _read(en.get(QUEUE))
    for said in (
        "<h1>Citizens' reports</h1>",
        ">Open reports</a>",
        ">Waiting to be taken on</a>",
        ">View</button>",
    ):
        assert said in queue
    assert "2 reports of Phường Bến Thành and the units below it" in queue
    assert ">Đang mở</a>" not in queue and "các đơn vị trực thuộc" not in queue

    item = _read(vi.get(f"{QUEUE}{mine}/"))
    for said in (f"<h1>Phản ánh {mine}</h1>", "Nhận xử lý</button>", "<h2>Chuyển đơn vị xử lý</h2>"):
        assert said in item
    assert 'id="status">Đã tiếp nhận</span>' in item and "— Tiếp nhận: Phường Bến Thành" in item
    item = _read(en.get(f"{QUEUE}{mine}/"))
    for said in (f"<h1>Report {mine}</h1>", "Take it on</button>", "<h2>Pass on to another unit</h2>"):
        assert said in item
    assert 'id="status">Filed</span>' in item and "— Received: Phường Bến Thành" in item  # the model's labels
    assert "Nhận xử lý</button>" not in item and "Quá trình xử lý" not in item

    # A refusal names the field in the reader's words; what an action did is said in them too.
    refused = _read(en.post(f"{QUEUE}{mine}/", {"action": "answer", "text": "  "}))
    assert "Text of the answer: the answer's text is needed" in refused
    refused = _read(vi.post(f"{QUEUE}{mine}/", {"action": "answer", "text": "  "}))
    assert "Nội dung trả lời: cần nội dung trả lời" in refused
    done = _read(en.post(f"{QUEUE}{mine}/", {"action": "accept"}, follow=True))
    assert f"Your unit has taken on report {mine}." in done
    done = _read(vi.post(f"{QUEUE}{yours}/", {"action": "accept"}, follow=True))
    assert f"Đơn vị đã nhận xử lý phản ánh {yours}." in done


def test_the_session_pages_read_in_vietnamese_unless_english_is_chosen(world, categories):
    """The officials' side of "Dân hỏi – Chính quyền trả lời" likewise: the list, the form, one session."""
    vi, en = world.operator_a.browser(), _english(world.operator_a.browser())
    assert "<h2>Mở phiên hỏi đáp</h2>" in _read(vi.get(SESSIONS))
    listing = _read(en.get(SESSIONS))
    assert (
        "<h1>Citizens ask – the government answers</h1>" in listing
        and "<h2>Open a question session</h2>" in listing
    )
    assert "No question session yet." in listing and "Mở phiên hỏi đáp" not in listing
    values = {"unit": "VN-2025:26743", "title": "Phiên tháng 12", "date": input_date(timezone.localdate())}
    opened = _read(en.post(SESSIONS, {**values, "topics": "Môi trường"}, follow=True))
    assert "The session is open: citizens can send questions now." in opened
    for said in (
        "0 questions, 0 answered.",
        "Stop taking questions</button>",
        'status">Taking questions</span>',
        "No question yet.",
    ):
        assert said in opened
    assert "Ngừng nhận câu hỏi" not in opened and "Chưa có câu hỏi nào" not in opened
    session = Session.objects.latest("id").pk
    page = _read(vi.get(f"{SESSIONS}{session}/"))
    for said in (
        "0 câu hỏi, đã trả lời 0.",
        "Ngừng nhận câu hỏi</button>",
        'status">Đang nhận câu hỏi</span>',
    ):
        assert said in page
    closed = _read(en.post(f"{SESSIONS}{session}/", {"action": "close"}, follow=True))
    assert "The session no longer takes questions." in closed and "Publish the session</button>" in closed
