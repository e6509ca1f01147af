"""Issue 20, the second slice: duplicates merged and followed, reports becoming directives and tasks,
"Dân hỏi – Chính quyền trả lời" sessions, reminders and escalation, the room's figures and live
events, agency routing, the confirmation code of repeated senders."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client
from django.utils import timezone

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.directives.models import Directive, Task
from dieuhanh.feedback import followup
from dieuhanh.feedback.models import Confirmation, Feedback, Notice, Question, Session, Throttle
from dieuhanh.feedback.room import province_figures
from dieuhanh.live import HUB, area_key
from dieuhanh.units.models import Unit
from tests.factories import make_caller

URL = "/api/v1/feedback"
BEN_THANH = "Phường Bến Thành, Thành phố Hồ Chí Minh"
JSON = "application/json"


def post(data: dict, *, ip: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=ip).post(URL, data)


def report(**override) -> dict:
    base = {"category": "lighting", "text": "Đèn đường trước chợ tắt ba đêm nay.", "address": BEN_THANH}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


# Duplicates


def test_the_same_report_at_the_same_place_is_merged_and_its_reporter_follows_it(world, categories):
    first = post(report()).json()["code"]
    # The same place given with other spacing and case, from another phone: a duplicate.
    second = post(report(address="phường bến thành,  thành phố hồ chí minh"), ip="203.0.113.8").json()["code"]
    other_category = post(report(category="waste"), ip="203.0.113.9").json()["code"]
    primary, dup = Feedback.objects.get(code=first), Feedback.objects.get(code=second)
    assert (dup.status, dup.merged_into_id, primary.reporters) == ("merged", primary.pk, 2)
    assert Feedback.objects.get(code=other_category).merged_into_id is None
    # The commune's queue holds one item, with two reporters; the duplicate when asked for.
    client = world.operator_a.client()
    queue = client.get(URL, {"unit": "VN-2025:26743"}).json()["items"]
    assert sorted(i["code"] for i in queue) == sorted([first, other_category])
    assert next(i for i in queue if i["code"] == first)["reporters"] == 2
    merged = client.get(URL, {"unit": "VN-2025:26743", "status": "merged"}).json()["items"]
    assert [(i["code"], i["merged_into"]) for i in merged] == [(second, first)]
    # Acting on the duplicate sends the official to the item it follows.
    refused = client.post(f"{URL}/{second}/answer", {"text": "x"}, content_type=JSON)
    assert refused.status_code == 409 and first in refused.json()["detail"]
    # The answer to the item is the answer every reporter reads by their own code.
    client.post(f"{URL}/{first}/answer", {"text": "Đã thay bóng đèn."}, content_type=JSON)
    tracked = Client().get(f"{URL}/track/{second}").json()
    assert (tracked["status"], tracked["answer"], tracked["merged_into"], tracked["reporters"]) == (
        "answered",
        "Đã thay bóng đèn.",
        first,
        2,
    )
    assert [e["kind"] for e in tracked["history"]] == ["received", "merged", "answered"]
    page = Client().get(f"/phan-anh/theo-doi/{second}/").content.decode()
    assert "Đã trả lời" in page and first in page
    # Each reporter rates the answer, once.
    rate = Client().post(f"{URL}/track/{second}/rating", {"stars": 5}, content_type=JSON)
    assert rate.status_code == 200 and rate.json()["rating"] == 5
    # The public page lists the item once, with its reporters, never the duplicate.
    html = Client().get("/phan-anh/cong-khai/").content.decode()
    assert first in html and second not in html and "2 người cùng phản ánh" in html


def test_pins_merge_within_150_metres_and_not_beyond(world, categories):
    a = world.commune_a
    near = post(report(address=None, lat=a.lat, lon=a.lon)).json()["code"]
    close = post(report(address=None, lat=a.lat + 0.0009, lon=a.lon), ip="203.0.113.8").json()  # ~100 m
    far = post(report(address=None, lat=a.lat + 0.003, lon=a.lon), ip="203.0.113.9").json()  # ~330 m
    assert Feedback.objects.get(code=close["code"]).merged_into.code == near
    assert Feedback.objects.get(code=far["code"]).merged_into_id is None
    # Past the category's window, the same place is a new report.
    Feedback.objects.filter(code=near).update(received_at=timezone.now() - timedelta(hours=73))
    later = post(report(address=None, lat=a.lat, lon=a.lon), ip="203.0.113.10").json()["code"]
    assert Feedback.objects.get(code=later).merged_into_id is None


def test_an_official_merges_a_duplicate_the_intake_missed(world, categories):
    first = post(report()).json()["code"]
    other = post(report(address="Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh"), ip="203.0.113.8").json()
    assert other["unit"] == "VN-2025:26740"  # Sài Gòn: the neighbour cannot merge it into Bến Thành's
    neighbour = world.operator_b.client()
    r = neighbour.post(f"{URL}/{other['code']}/merge", {"into": first}, content_type=JSON)
    assert r.status_code == 404
    province = world.province_operator.client()
    waste = post(report(category="waste"), ip="203.0.113.9").json()["code"]
    wrong = province.post(f"{URL}/{other['code']}/merge", {"into": waste}, content_type=JSON)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "into")
    ok = province.post(f"{URL}/{other['code']}/merge", {"into": first}, content_type=JSON)
    assert ok.status_code == 200, ok.content
    assert ok.json()["merged_into"] == first and ok.json()["reporters"] == 2
    assert Feedback.objects.get(code=other["code"]).unit.code == "26743"


def test_an_official_undoes_a_wrong_merge_inside_the_area_and_it_is_audited(world, categories):
    first = post(report()).json()["code"]
    # Another lamp at the same address: the intake merges it, the commune sees two different things.
    second = post(report(text="Cột đèn số 2 bị nghiêng, sắp đổ."), ip="203.0.113.8").json()["code"]
    assert Feedback.objects.get(code=second).merged_into.code == first
    reason = {"reason": "Hai cột đèn khác nhau ở cùng địa chỉ."}
    neighbour = world.operator_b.client().post(f"{URL}/{second}/unmerge", reason, content_type=JSON)
    assert neighbour.status_code == 404 and first not in neighbour.content.decode()
    client = world.operator_a.client()
    short = client.post(f"{URL}/{second}/unmerge", {"reason": "sai"}, content_type=JSON)
    assert (short.status_code, short.json()["field"]) == (422, "reason")
    assert Feedback.objects.get(code=second).status == "merged"  # nothing half-done
    done = client.post(f"{URL}/{second}/unmerge", reason, content_type=JSON)
    assert done.status_code == 200, done.content
    own = done.json()
    assert (own["status"], own["merged_into"], own["reporters"]) == ("received", None, 1)
    assert [e["kind"] for e in own["history"]] == ["received", "merged", "unmerged"]
    # Both are in the commune's queue, each with one reporter; the item it left says so.
    queue = {i["code"]: i for i in client.get(URL, {"unit": "VN-2025:26743"}).json()["items"]}
    assert (queue[first]["reporters"], queue[second]["reporters"]) == (1, 1)
    assert "left" in [e["kind"] for e in Client().get(f"{URL}/track/{first}").json()["history"]]
    entry = AuditEntry.objects.get(action="feedback.unmerge", target=second)
    assert (entry.actor, entry.detail["frm"]) == (world.operator_a.user, first)
    again = client.post(f"{URL}/{second}/unmerge", reason, content_type=JSON)
    assert again.status_code == 409
    # Once the item is answered, its reporters have read the answer: the merge stays.
    third = post(report(text="Đèn lại tắt."), ip="203.0.113.9").json()["code"]
    assert Feedback.objects.get(code=third).merged_into.code == first
    client.post(f"{URL}/{first}/answer", {"text": "Đã thay bóng đèn."}, content_type=JSON)
    late = client.post(f"{URL}/{third}/unmerge", reason, content_type=JSON)
    assert late.status_code == 409 and "đã được trả lời" in late.json()["detail"]


# Reports become work


def test_reports_become_a_directive_with_the_directives_verb_linked_both_ways(world, categories):
    a = post(report()).json()["code"]
    b = post(report(category="waste"), ip="203.0.113.8").json()["code"]
    deadline = (timezone.now() + timedelta(days=3)).isoformat()
    body = {"codes": [a, b], "title": "Xử lý chiếu sáng và rác quanh chợ Bến Thành", "deadline": deadline}
    # An operator does not issue directives: the directives' own rule answers.
    assert world.operator_a.client().post(f"{URL}/to-directive", body, content_type=JSON).status_code == 403
    r = world.leader.client().post(f"{URL}/to-directive", body, content_type=JSON)
    assert r.status_code == 201, r.content
    directive = Directive.objects.get(pk=r.json()["id"])
    assert directive.targets["feedback"] == [a, b]
    assert a in directive.body and b in directive.body
    assert [d.unit.code for d in directive.deliveries.all()] == ["26743"]
    assert set(directive.feedback_items.values_list("code", flat=True)) == {a, b}
    linked = world.leader.client().get(f"{URL}/linked", {"directive": directive.pk}).json()
    assert sorted(i["code"] for i in linked) == sorted([a, b])
    assert all(i["directive"] == directive.pk for i in linked)
    # The neighbour's officials see none of it.
    assert world.operator_b.client().get(f"{URL}/linked", {"directive": directive.pk}).json() == []
    history = Client().get(f"{URL}/track/{a}").json()["history"]
    assert history[-1]["kind"] == "directive"


def test_a_report_becomes_a_task_for_the_commune(world, categories):
    code = post(report()).json()["code"]
    body = {"codes": [code], "title": "Thay hệ thống đèn đường Lê Lợi", "due": "2027-01-31"}
    r = world.leader.client().post(f"{URL}/to-task", body, content_type=JSON)
    assert r.status_code == 201, r.content
    task = Task.objects.get(pk=r.json()["id"])
    assert (task.owner.code, task.basis) == ("26743", f"Phản ánh {code}")
    assert r.json()["codes"] == [code]
    unknown = world.leader.client().post(
        f"{URL}/to-task", {**body, "codes": ["PA22222222"]}, content_type=JSON
    )
    assert unknown.status_code == 404 and Task.objects.count() == 1


# Sessions


def test_a_session_collects_questions_by_topic_answers_them_and_is_published(world, categories):
    official = world.operator_a.client()
    body = {
        "unit": "VN-2025:26743",
        "title": "Dân hỏi – Chính quyền trả lời tháng 12/2026",
        "date": str(timezone.localdate() + timedelta(days=7)),
        "topics": ["Trật tự đô thị", "Môi trường"],
    }
    # The neighbour cannot open a session for Bến Thành.
    assert world.operator_b.client().post(f"{URL}/sessions", body, content_type=JSON).status_code == 404
    r = official.post(f"{URL}/sessions", body, content_type=JSON)
    assert r.status_code == 201, r.content
    sid = r.json()["id"]
    assert r.json()["topics"] == ["Trật tự đô thị", "Môi trường", "Khác"]
    ask = f"{URL}/sessions/{sid}/questions"
    q1 = Client().post(ask, {"topic": "Môi trường", "text": "Khi nào có thùng rác mới?"}, content_type=JSON)
    q2 = Client().post(ask, {"text": "Vỉa hè bị lấn chiếm, gọi tôi 0912345678"}, content_type=JSON)
    q3 = Client().post(ask, {"topic": "Y tế", "text": "?"}, content_type=JSON)
    assert (q1.status_code, q2.status_code, q2.json()["topic"]) == (201, 201, "Khác")
    assert (q3.status_code, q3.json()["field"]) == (422, "topic")
    # Nothing is public before it is published.
    assert Client().get(f"{URL}/sessions/{sid}/public").status_code == 404
    early = official.post(f"{URL}/sessions/{sid}/publish")
    assert early.status_code == 409
    answer = f"{URL}/sessions/{sid}/questions/{q2.json()['id']}/answer"
    a = official.post(
        answer,
        {
            "text": "Phường ra quân lập lại trật tự vỉa hè từ 15/12.",
            "answerer_title": "Chủ tịch UBND phường",
            "topic": "Trật tự đô thị",
        },
        content_type=JSON,
    )
    assert a.status_code == 200 and a.json()["topic"] == "Trật tự đô thị"
    assert world.operator_b.client().post(answer, {"text": "x"}, content_type=JSON).status_code == 404
    published = official.post(f"{URL}/sessions/{sid}/publish")
    assert published.status_code == 200
    groups = published.json()["groups"]
    assert [(g["topic"], len(g["questions"])) for g in groups] == [("Trật tự đô thị", 1)]
    assert "0912345678" not in json.dumps(groups)  # the public text masks numbers
    assert Client().post(ask, {"text": "Còn nhận không?"}, content_type=JSON).status_code == 409
    html = Client().get(f"/phan-anh/hoi-dap/{sid}/").content.decode()
    assert "Phường ra quân lập lại trật tự vỉa hè" in html and "Chủ tịch UBND phường" in html
    assert "thùng rác" not in html  # unanswered: stays with the officials
    assert "Dân hỏi – Chính quyền trả lời" in Client().get("/phan-anh/cong-khai/").content.decode()
    assert Question.objects.filter(session_id=sid).count() == 2


def test_citizens_ask_on_the_session_page(world, categories):
    session = Session.objects.create(
        unit=world.commune_a,
        title="Đối thoại",
        date=timezone.localdate(),
        topics=["Khác"],
        opened_by=world.operator_a.user,
        opened_at=timezone.now(),
    )
    c = Client(REMOTE_ADDR="203.0.113.30")
    page = c.get(f"/phan-anh/hoi-dap/{session.pk}/")
    assert page.status_code == 200 and "Gửi câu hỏi" in page.content.decode()
    empty = c.post(f"/phan-anh/hoi-dap/{session.pk}/", {"topic": "Khác", "text": " "})
    assert empty.status_code == 422 and "không được để trống" in empty.content.decode()
    sent = c.post(f"/phan-anh/hoi-dap/{session.pk}/", {"topic": "Khác", "text": "Giờ làm việc thứ Bảy?"})
    assert sent.status_code == 200 and "đã được gửi" in sent.content.decode()
    assert session.questions.count() == 1
    assert Client().get("/phan-anh/hoi-dap/999999/").status_code == 404


# Deadlines: reminders and escalation through the follow-up worker


def test_reminders_then_escalation_to_the_province_through_the_follow_up(world, categories, settings):
    settings.NOTIFY_CHANNELS = ["in_app"]
    code = post(report()).json()["code"]
    item = Feedback.objects.get(code=code)
    start = item.received_at
    # Not taken within 5 minutes: one reminder to Bến Thành.
    assert followup.tick(start + timedelta(minutes=6)).reminded == 1
    assert followup.tick(start + timedelta(minutes=7)).reminded == 0  # once per step
    notice = Notice.objects.get()
    assert (notice.unit_id, notice.purpose) == (world.commune_a.pk, "reminder")
    world.operator_a.client().post(f"{URL}/{code}/accept")
    # 24 h before the answer deadline, and at it.
    assert followup.tick(item.answer_due - timedelta(hours=23)).reminded == 1
    assert followup.tick(item.answer_due + timedelta(minutes=1)).reminded == 1
    assert followup.tick(item.answer_due + timedelta(hours=23)).escalated == 0
    late = item.answer_due + timedelta(hours=25)
    assert followup.tick(late).escalated == 1
    assert followup.tick(late + timedelta(hours=1)).escalated == 0  # once
    escalation = Notice.objects.get(purpose="escalation")
    assert escalation.unit_id == world.province.pk
    # Messages falling in the quiet hours (22:00–06:00 Vietnam time, so by the time of day the test
    # runs) wait for 06:00: ten hours on, every one of them is due.
    sent = followup.send_due(late + timedelta(hours=10))
    assert sent.sent == Notice.objects.count() and not Notice.objects.filter(state="queued").exists()
    # The province's list of escalated reports; the commune's overdue list.
    province = world.province_operator.client().get(URL, {"unit": "VN-2025:79", "escalated": "true"})
    assert [i["code"] for i in province.json()["items"]] == [code]
    Feedback.objects.filter(code=code).update(answer_due=timezone.now() - timedelta(days=2))
    commune = world.operator_a.client().get(URL, {"unit": "VN-2025:26743", "overdue": "true"}).json()
    assert [i["code"] for i in commune["items"]] == [code]
    assert Client().get(f"{URL}/track/{code}").json()["history"][-1]["kind"] == "escalated"


def test_an_answered_report_gets_no_more_reminders_and_queued_ones_are_withdrawn(world, categories, settings):
    settings.NOTIFY_CHANNELS = ["in_app"]
    code = post(report()).json()["code"]
    item = Feedback.objects.get(code=code)
    followup.tick(item.received_at + timedelta(minutes=6))
    world.operator_a.client().post(f"{URL}/{code}/answer", {"text": "Đã sửa."}, content_type=JSON)
    # A queued message is withdrawn when it falls due (send_due drops what no longer applies); one
    # queued in the quiet hours (22:00–06:00 Vietnam time, by the time of day the test runs) falls due
    # at 06:00: ten hours on, it is due whenever the test runs.
    assert followup.send_due(item.received_at + timedelta(hours=10)).sent == 0
    assert not Notice.objects.exists()
    assert followup.tick(item.answer_due + timedelta(days=2)).escalated == 0


def test_the_follow_up_worker_runs_the_reports_round(world, categories, settings):
    from typer.testing import CliRunner

    from dieuhanh.cli import app as cli_app

    settings.NOTIFY_CHANNELS = ["in_app"]
    # The worker runs at the real time of day: no quiet hours, or a reminder waits for 06:00 when the
    # test runs between 22:00 and 06:00 in Vietnam.
    settings.FOLLOWUP = {**settings.FOLLOWUP, "quiet_hours": [0, 0]}
    code = post(report()).json()["code"]
    post(report(category="waste"), ip="203.0.113.8")
    back = timezone.now() - timedelta(minutes=6)
    Feedback.objects.filter(code=code).update(received_at=back, forward_due=back + timedelta(minutes=5))
    # A sender whose day is over is forgotten by the round (not by each report); a current one is kept.
    first, kept = Throttle.objects.order_by("id")
    Throttle.objects.filter(pk=first.pk).update(window_start=back - timedelta(days=1))
    result = CliRunner().invoke(cli_app, ["worker", "followup", "--once"])
    assert result.exit_code == 0, result.output
    assert "phản ánh: nhắc 1" in result.output
    assert Notice.objects.filter(state="sent").count() == 1
    assert list(Throttle.objects.values_list("pk", flat=True)) == [kept.pk]


# The room and the wall


def test_the_room_shows_received_handled_overdue_and_satisfaction_per_province(world, categories):
    a = post(report()).json()["code"]
    post(report(), ip="203.0.113.8")  # a duplicate: received, handled with its item
    b = post(report(category="waste"), ip="203.0.113.9").json()["code"]
    hanoi = post(report(address="Phường Hoàn Kiếm, Thành phố Hà Nội"), ip="203.0.113.10").json()["code"]
    world.operator_a.client().post(f"{URL}/{a}/answer", {"text": "Đã sửa."}, content_type=JSON)
    Client().post(f"{URL}/track/{a}/rating", {"stars": 5}, content_type=JSON)
    Feedback.objects.filter(code__in=[b, hanoi]).update(answer_due=timezone.now() - timedelta(hours=1))
    rows = {r.ref: r for r in province_figures(world.nation)}
    hcm, hn = rows["VN-2025:79"], rows["VN-2025:01"]
    assert (hcm.received, hcm.handled, hcm.overdue, hcm.rated, hcm.satisfied) == (3, 2, 1, 1, 1)
    assert (hn.received, hn.handled, hn.overdue) == (1, 0, 1)
    assert [r.ref for r in province_figures(world.province)] == ["VN-2025:79"]
    page = world.leader.browser().get("/room/", {"unit": "VN-2025:VN"})
    html = page.content.decode()
    assert 'id="room-feedback"' in html and 'data-province="VN-2025:79"' in html


def test_each_new_progressed_and_answered_report_is_a_live_event_for_the_rooms(
    world, categories, django_capture_on_commit_callbacks
):
    def file_and_answer():
        official = world.operator_a.client()
        with django_capture_on_commit_callbacks(execute=True):
            code = post(report()).json()["code"]
        with django_capture_on_commit_callbacks(execute=True):
            r = official.post(f"{URL}/{code}/progress", {"text": "Đang thay cáp."})
            assert r.status_code == 200, r.content
        with django_capture_on_commit_callbacks(execute=True):
            official.post(f"{URL}/{code}/answer", {"text": "Đã sửa."}, content_type=JSON)
        return code

    async def scenario():
        province = HUB.stream({area_key("VN-2025", world.province.path)}, heartbeat=30)
        neighbour = HUB.stream({area_key("VN-2025", world.commune_b.path)}, heartbeat=30)
        for stream in (province, neighbour):
            await anext(stream)
        code = await sync_to_async(file_and_answer)()
        heard = [await asyncio.wait_for(anext(province), 5) for _ in range(3)]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(neighbour), 0.3)
        for stream in (province, neighbour):
            await stream.aclose()
        return code, heard

    code, heard = async_to_sync(scenario)()
    events = [json.loads(re.search(r"data: (.*)", chunk).group(1)) for chunk in heard]
    assert all(chunk.startswith("event: feedback") for chunk in heard)
    assert [e["event"] for e in events] == ["new", "progress", "answered"]
    assert {e["code"] for e in events} == {code}
    assert events[0]["province"] == "VN-2025:79" and events[0]["place"] == "Phường Bến Thành"
    assert all("text" not in e and "address" not in e and "note" not in e for e in events)


# Agencies


def test_a_category_goes_to_the_provinces_department_held_as_an_agency_unit(world, categories):
    # Without the department, the province handles health and food safety.
    before = post(report(category="health", text="Quán bán thực phẩm ôi thiu")).json()
    assert before["unit"] == "VN-2025:79"
    body = {"province": "VN-2025:79", "code": "SATTP", "name": "Ban Quản lý An toàn thực phẩm TP.HCM"}
    assert (
        world.province_operator.client().post(f"{URL}/agencies", body, content_type=JSON).status_code == 403
    )
    admin = make_caller("hcm-admin", world.province, "admin")
    r = admin.client().post(f"{URL}/agencies", body, content_type=JSON)
    assert r.status_code == 201 and r.json()["unit"] == "VN-2025:79-SATTP"
    sai_gon = "Phường Sài Gòn, Thành phố Hồ Chí Minh"  # elsewhere: not a duplicate of the first
    after = post(report(category="health", text="Cơ sở giết mổ", address=sai_gon), ip="203.0.113.8").json()
    assert after["unit"] == "VN-2025:79-SATTP"
    # The department's officials see it in their queue, the province above it too, the ward not.
    agency = make_caller("sattp-operator", Unit.objects.ref("VN-2025:79-SATTP"), "operator")
    assert [i["code"] for i in agency.client().get(URL, {"unit": "VN-2025:79-SATTP"}).json()["items"]] == [
        after["code"]
    ]
    assert world.operator_a.client().get(URL, {"unit": "VN-2025:79-SATTP"}).status_code == 404


# Abuse: a confirmation code for repeated senders


@pytest.fixture
def sms(settings, gateway):
    settings.SMS_URL = gateway.url
    return gateway


def test_a_repeated_sender_confirms_a_phone_by_a_code_sent_by_sms(world, categories, sms):
    ip = "198.51.100.50"
    for i in range(3):
        assert post(report(category=["roads", "waste", "drainage"][i]), ip=ip).status_code == 201
    bare = post(report(), ip=ip)
    assert (bare.status_code, bare.json()["field"]) == (428, "phone")
    assert "đã gửi 3 phản ánh từ máy này" in bare.json()["detail"]
    asked = post(report(phone="0912 345 678"), ip=ip)
    assert (asked.status_code, asked.json()["field"]) == (428, "confirmation")
    assert "…678" in asked.json()["detail"]
    (message,) = sms.received
    assert message["body"]["to"] == ["+84912345678"]
    code = re.search(r"\b(\d{6})\b", message["body"]["text"]).group(1)
    wrong = post(report(phone="0912 345 678", confirmation="000000" if code != "000000" else "111111"), ip=ip)
    assert (wrong.status_code, wrong.json()["field"]) == (422, "confirmation")
    assert "còn 4 lần thử" in wrong.json()["detail"]
    assert Feedback.objects.count() == 3  # nothing written by a refusal
    ok = post(report(phone="0912 345 678", confirmation=code), ip=ip)
    assert ok.status_code == 201, ok.content
    # Confirmed for a day: the next report from that phone needs no code.
    assert post(report(category="roads", phone="0912345678"), ip=ip).status_code == 201
    assert len(sms.received) == 1
    # The table holds neither the number nor the code.
    row = Confirmation.objects.get()
    assert "912345678" not in row.key and code not in row.code_hash


def test_without_an_sms_gateway_the_refusal_says_why(world, categories, settings):
    settings.SMS_URL = ""
    ip = "198.51.100.60"
    for cat in ("roads", "waste", "drainage"):
        post(report(category=cat), ip=ip)
    r = post(report(phone="0912 345 678"), ip=ip)
    assert r.status_code == 503 and r.json()["field"] == "confirmation"
    assert "chưa gửi được tin nhắn" in r.json()["detail"] and int(r["Retry-After"]) == 60
    assert Feedback.objects.count() == 3


def test_the_form_page_asks_for_the_code(world, categories, sms):
    c = Client(REMOTE_ADDR="198.51.100.70")
    form = {"category": "roads", "text": "Ổ gà", "where": "address", "address": BEN_THANH}
    for cat in ("roads", "waste", "drainage"):
        assert c.post("/phan-anh/", {**form, "category": cat}).status_code == 302
    r = c.post("/phan-anh/", {**form, "phone": "0912345678"})
    assert r.status_code == 428
    html = r.content.decode()
    assert 'id="id_confirmation"' in html and "Mã xác nhận" in html


# The area rule, once more for the new routes


def test_sessions_and_links_stay_inside_the_area(world, categories):
    session = Session.objects.create(
        unit=world.commune_a,
        title="Đối thoại",
        date=timezone.localdate(),
        topics=["Khác"],
        opened_by=world.operator_a.user,
        opened_at=timezone.now(),
    )
    assert world.operator_b.client().get(f"{URL}/sessions/{session.pk}").status_code == 404
    assert world.operator_b.client().get(f"{URL}/sessions").json() == []
    mine = world.operator_a.client().get(f"{URL}/sessions", {"unit": "VN-2025:26743"}).json()
    assert [s["id"] for s in mine] == [session.pk]
    assert Client().get(f"{URL}/sessions").status_code == 401
