"""Every page's date and time fields are text read the Vietnamese way, whatever the browser's language
(issue 17, point 5): the composer's deadline, the tracing workspace's times and a directive's date
question; a bad one comes back with the reason, naming the field, and what was typed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dieuhanh.directives.models import Delivery, Directive, Response
from dieuhanh.tracing.models import Case
from dieuhanh.vnformat import VN_TZ
from tests.factories import CASE, issue

TEMPLATES = Path(__file__).parents[2] / "src" / "dieuhanh"


def test_no_page_uses_the_browsers_own_date_fields():
    """type=date shows mm/dd/yyyy in an English browser: every date field is ours."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for kind in ('type="date"', 'type="datetime-local"', 'type="time"', 'type="month"', "type=date"):
            assert kind not in text, f"{template.relative_to(TEMPLATES)} has an {kind} input"


def compose(caller, **fields):
    data = {"title": "Báo cáo tiến độ tiêm chủng", "body": "Các phường báo cáo.", "units": "VN-2025:26743"}
    return caller.browser().post("/directives/new/", {**data, "issue": "1", **fields})


def test_the_composer_reads_a_vietnamese_deadline_whatever_the_browser_says(world):
    page = world.leader.browser().get("/directives/new/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert 'id="deadline" name="deadline" type="text"' in page and 'placeholder="26/8/2021 14:30"' in page
    assert "Ngày/tháng/năm giờ:phút, ví dụ 26/8/2021 14:30; chỉ ghi ngày thì hạn là 23:59 ngày đó" in page
    assert compose(world.leader, deadline="26/8/2030 14:30").status_code == 302
    assert Directive.objects.get().deadline == datetime(2030, 8, 26, 14, 30, tzinfo=VN_TZ)


def test_a_deadline_of_a_day_alone_is_the_end_of_that_day(world):
    compose(world.leader, deadline="30/9/2030")
    assert Directive.objects.get().deadline == datetime(2030, 9, 30, 23, 59, tzinfo=VN_TZ)


def test_a_bad_deadline_names_the_field_keeps_the_text_and_issues_nothing(world):
    response = compose(world.leader, deadline="31/9/2030 14:30")
    page = response.content.decode()
    assert response.status_code == 200 and not Directive.objects.exists()
    assert (
        "Hạn: “31/9/2030 14:30” không phải ngày giờ hợp lệ: tháng 9/2030 chỉ có 30 ngày. "
        "Hãy viết theo dạng 26/8/2021 14:30."
    ) in page
    assert 'value="31/9/2030 14:30"' in page and 'value="Báo cáo tiến độ tiêm chủng"' in page
    page = compose(world.leader, deadline="9/26/2030 2:30 PM").content.decode()
    assert "Hạn: “9/26/2030 2:30 PM” không phải ngày giờ hợp lệ" in page


def test_a_commune_answers_a_date_question_in_vietnamese(world):
    form = [
        {"key": "done", "label": "Thời điểm hoàn thành rà soát", "type": "datetime"},
        {"key": "people", "label": "Số người đã rà soát", "type": "number"},
    ]
    directive = issue(world.leader, form=form).json()
    delivery = Delivery.objects.get(directive_id=directive["id"], unit=world.commune_a)
    browser = world.operator_a.browser()
    page = browser.get(f"/inbox/{delivery.pk}/").content.decode()
    assert (
        'id="q_done" name="q_done" type="text"' in page
        and 'data-label="Thời điểm hoàn thành rà soát"' in page
    )
    url = f"/inbox/{delivery.pk}/respond/"
    # A bad date: the page comes back with the reason naming the question, and what was typed.
    refused = browser.post(url, {"q_done": "31/11/2021 16:00", "q_people": "1.250", "text": "Đã xong"})
    page = refused.content.decode()
    assert refused.status_code == 422 and not Response.objects.exists()
    assert (
        "Thời điểm hoàn thành rà soát: “31/11/2021 16:00” không phải ngày giờ hợp lệ: "
        "tháng 11/2021 chỉ có 30 ngày. Hãy viết theo dạng 26/8/2021 14:30."
    ) in page
    assert 'value="31/11/2021 16:00"' in page and 'value="1.250"' in page and ">Đã xong</textarea>" in page
    # The same in the ways people write it is read, and kept as the pages write it.
    sent = browser.post(url, {"q_done": "ngày 30/11/2021 lúc 16h", "q_people": "1.250", "text": "Đã xong"})
    assert sent.status_code == 302
    response = Response.objects.get()
    assert response.text == "Đã xong\nThời điểm hoàn thành rà soát: 30/11/2021 16:00"
    assert response.figures == {"people": 1250.0}


def test_a_directive_form_may_ask_for_a_date_through_the_api(world):
    created = issue(world.leader, form=[{"key": "d", "label": "Ngày", "type": "datetime"}])
    assert created.status_code == 201, created.content
    refused = issue(world.leader, form=[{"key": "d", "label": "Ngày", "type": "date-ish"}])
    assert refused.status_code == 422


def test_the_tracing_workspace_reads_vietnamese_times(tracers, outbreak):
    browser = tracers.a.browser()
    refused = browser.post("/tracing/", {"person_id": CASE, "confirmed_at": "27/8/2021 25:00"})
    page = refused.content.decode()
    assert not Case.objects.exists()
    assert "Thời điểm khẳng định: “27/8/2021 25:00” không phải ngày giờ hợp lệ: không có giờ 25" in page
    page = browser.post(
        "/tracing/", {"person_id": CASE, "confirmed_at": "27/8/2021 10:00", "onset_at": "tháng 8"}
    ).content.decode()
    assert "Ngày khởi phát triệu chứng: “tháng 8” không phải ngày giờ hợp lệ" in page
    browser.post("/tracing/", {"person_id": CASE, "confirmed_at": "27/8/2021 10:00", "onset_at": "25/8/2021"})
    case = Case.objects.get()
    assert case.confirmed_at == datetime(2021, 8, 27, 10, 0, tzinfo=VN_TZ)
    assert case.onset_at == datetime(2021, 8, 25, 0, 0, tzinfo=VN_TZ)  # a day alone: from 0:00


def test_the_fields_check_asks_the_one_parser(world, client):
    ok = client.get("/date-check/", {"text": "ngày 26/8/2021 lúc 14h30", "label": "Hạn"}).json()
    assert ok == {"ok": True, "text": "26/8/2021 14:30", "local": "2021-08-26T14:30"}
    picked = client.get("/date-check/", {"text": "2021-08-26T14:30"}).json()  # the calendar's choice
    assert picked["text"] == "26/8/2021 14:30"
    day = client.get("/date-check/", {"text": "26/8/2021", "default": "23:59", "label": "Hạn"}).json()
    assert day["text"] == "26/8/2021 23:59"
    bad = client.get("/date-check/", {"text": "8/26/2021 14:30", "label": "Hạn"}).json()
    assert bad == {
        "ok": False,
        "error": "Hạn: “8/26/2021 14:30” không phải ngày giờ hợp lệ: không có tháng 26: viết ngày trước, "
        "tháng sau (26/8/2021). Hãy viết theo dạng 26/8/2021 14:30.",
    }
    assert client.post("/date-check/", {"text": "26/8/2021 14:30"}).status_code == 405
