"""Directives through the API: fan-out, the delivery state machine, inboxes and the room's status,
each seen from the units' side and kept inside each caller's area."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.directives.models import Delivery, Directive, Response
from dieuhanh.units.models import Unit
from dieuhanh.units.services import get_unit
from tests.factories import issue, make_caller, stored_files

SOUTH_2021 = [
    "VN-2021:79",
    "VN-2021:74",
    "VN-2021:75",
    "VN-2021:80",
    "VN-2021:83",
]  # HCMC, Bình Dương, Đồng Nai, Long An, Bến Tre


def inbox(caller):
    return caller.client().get("/api/v1/inbox").json()


def delivery_of(caller, directive_id: int) -> int:
    return next(i["id"] for i in inbox(caller)["items"] if i["directive"]["id"] == directive_id)


def post(caller, url: str, body: dict | None = None):
    return caller.client().post(url, body or {}, content_type="application/json")


@pytest.fixture
def hcm_leader(world):
    return make_caller("hcm-leader", world.province, "leader")


def test_a_directive_to_all_communes_of_the_south_on_the_2021_map_reaches_each_once(world):
    response = issue(world.leader, targets={"units": SOUTH_2021, "level": "commune"})
    assert response.status_code == 201, response.content
    body = response.json()
    expected = set()
    for ref in SOUTH_2021:
        expected |= set(Unit.objects.under(get_unit(ref)).leaves().values_list("id", flat=True))
    deliveries = Delivery.objects.filter(directive_id=body["id"])
    assert deliveries.count() == len(expected) > 500
    assert set(deliveries.values_list("unit_id", flat=True)) == expected
    assert {p["unit"] for p in body["status"]["provinces"]} == set(SOUTH_2021)
    assert body["status"]["total"] == body["status"]["sent"] == len(expected)
    assert body["edition"] == "VN-2021" and body["issuer_unit"] == "VN-2025:VN"
    assert AuditEntry.objects.get(action="directives.issue").rows == len(expected)


def test_targets_are_checked(world, hcm_leader):
    assert issue(world.operator_a).status_code == 403  # an operator does not issue
    outside = issue(hcm_leader, targets={"units": ["VN-2025:00004"]})  # a Hà Nội ward
    unknown = issue(hcm_leader, targets={"units": ["VN-2025:99999"]})
    assert outside.status_code == unknown.status_code == 404  # another area's unit is as no unit
    told = outside.json()["detail"].replace("VN-2025:00004", "X")
    assert told == unknown.json()["detail"].replace("VN-2025:99999", "X") and "targets.units" in told
    mixed = issue(world.leader, targets={"units": ["VN-2025:79", "VN-2021:79"]})
    assert mixed.status_code == 422
    assert mixed.json()["detail"] == (
        "targets: lẫn đơn vị của nhiều bản đồ hành chính (VN-2021, VN-2025): hãy chọn một bản đồ"
    )
    past = issue(world.leader, deadline=(timezone.now() - timedelta(hours=1)).isoformat())
    assert past.status_code == 422 and past.json()["detail"].startswith("deadline")
    assert not Directive.objects.exists()


def test_a_province_leader_issues_to_its_communes_and_sees_only_their_states(world, hcm_leader):
    national = issue(world.leader, targets={"units": ["VN-2025:79", "VN-2025:01"], "level": "commune"}).json()
    mine = hcm_leader.client().get(f"/api/v1/directives/{national['id']}").json()
    hcm_communes = Unit.objects.under(world.province).leaves().count()
    assert mine["status"]["total"] == hcm_communes < national["status"]["total"]
    assert [p["unit"] for p in mine["status"]["provinces"]] == ["VN-2025:79"]
    own = issue(hcm_leader, targets={"units": ["VN-2025:79"], "level": "commune"})
    assert own.status_code == 201 and own.json()["issuer_unit"] == "VN-2025:79"


def test_the_delivery_state_machine(world):
    directive = issue(world.leader, requires_ack=True).json()
    a = delivery_of(world.operator_a, directive["id"])
    opened = world.operator_a.client().get(f"/api/v1/deliveries/{a}").json()
    assert opened["state"] == "read" and opened["read_at"]
    acked = post(world.operator_a, f"/api/v1/deliveries/{a}/ack")
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "benthanh-operator"
    again = post(world.operator_a, f"/api/v1/deliveries/{a}/ack")
    assert again.status_code == 409
    assert again.json()["detail"] == "benthanh-operator đã xác nhận nhận chỉ đạo này"
    first = post(world.operator_a, f"/api/v1/deliveries/{a}/respond", {"text": "Đã lấy 1.200 mẫu"})
    second = post(world.operator_a, f"/api/v1/deliveries/{a}/respond", {"text": "Đã lấy 1.350 mẫu"})
    assert first.status_code == second.status_code == 201
    assert [r["text"] for r in second.json()["responses"]] == ["Đã lấy 1.200 mẫu", "Đã lấy 1.350 mẫu"]
    status = world.leader.client().get(f"/api/v1/directives/{directive['id']}").json()["status"]
    assert (status["responded"], status["sent"], status["total"]) == (1, 1, 2)


def test_no_answer_to_a_cancelled_directive_nor_after_a_closed_deadline(world):
    deadline = (timezone.now() + timedelta(days=1)).isoformat()
    directive = issue(world.leader, deadline=deadline, late_answers=False).json()
    a, b = delivery_of(world.operator_a, directive["id"]), delivery_of(world.operator_b, directive["id"])
    Directive.objects.filter(pk=directive["id"]).update(deadline=timezone.now() - timedelta(minutes=1))
    late = post(world.operator_a, f"/api/v1/deliveries/{a}/respond", {"text": "muộn"})
    assert late.status_code == 409 and "quá thời hạn" in late.json()["detail"]
    cancelled = post(world.leader, f"/api/v1/directives/{directive['id']}/cancel", {"note": "Ban hành nhầm"})
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"]
    assert [r["action"] for r in cancelled.json()["revisions"]] == ["issue", "cancel"]
    assert post(world.operator_b, f"/api/v1/deliveries/{b}/ack").status_code == 409
    assert post(world.operator_b, f"/api/v1/deliveries/{b}/respond", {"text": "x"}).status_code == 409
    assert not Response.objects.exists()


def test_neighbouring_communes_cannot_see_or_answer_each_others_delivery(world):
    directive = issue(world.leader).json()
    a = delivery_of(world.operator_a, directive["id"])
    b = delivery_of(world.operator_b, directive["id"])
    assert [i["unit"] for i in inbox(world.operator_a)["items"]] == ["VN-2025:26743"]
    for other, theirs in [(world.operator_b, a), (world.operator_a, b)]:
        assert other.client().get(f"/api/v1/deliveries/{theirs}").status_code == 404
        assert post(other, f"/api/v1/deliveries/{theirs}/ack").status_code == 404
        assert post(other, f"/api/v1/deliveries/{theirs}/respond", {"text": "x"}).status_code == 404
    # The province sees both communes' deliveries but answers for neither, and opening them is no "read".
    province = world.province_operator
    assert province.client().get(f"/api/v1/deliveries/{a}").json()["state"] == "sent"
    assert post(province, f"/api/v1/deliveries/{a}/ack").status_code == 403


def test_inbox_puts_urgent_first_and_counts_unread(world):
    normal = issue(world.leader, title="Thường").json()
    urgent = issue(world.leader, title="Khẩn", priority="urgent").json()
    box = inbox(world.operator_a)
    assert [i["directive"]["id"] for i in box["items"]] == [urgent["id"], normal["id"]]
    assert box["unread"] == 2
    world.operator_a.client().get(f"/api/v1/deliveries/{box['items'][0]['id']}")
    assert inbox(world.operator_a)["unread"] == 1


def test_a_form_collects_figures_and_the_room_sees_them_summed(world):
    form = [
        {"key": "samples", "label": "Số mẫu đã lấy", "type": "number"},
        {"key": "notes", "label": "Ghi chú"},
    ]
    directive = issue(world.leader, kind="report_request", form=form).json()
    a, b = delivery_of(world.operator_a, directive["id"]), delivery_of(world.operator_b, directive["id"])
    bad = post(world.operator_a, f"/api/v1/deliveries/{a}/respond", {"figures": {"tests": 5}})
    assert bad.status_code == 422 and "figures.tests" in bad.json()["detail"]
    ok = post(
        world.operator_a, f"/api/v1/deliveries/{a}/respond", {"text": "xong", "figures": {"samples": 1200}}
    )
    assert ok.status_code == 201 and ok.json()["responses"][0]["figures"] == {"samples": 1200}
    pending = world.leader.client().get(f"/api/v1/directives/{directive['id']}/pending").json()
    assert [p["unit"] for p in pending] == ["VN-2025:26740"]
    post(world.operator_b, f"/api/v1/deliveries/{b}/respond", {"figures": {"samples": 800}})
    post(world.operator_b, f"/api/v1/deliveries/{b}/respond", {"figures": {"samples": 900}})  # a correction
    status = world.leader.client().get(f"/api/v1/directives/{directive['id']}").json()["status"]
    assert status["figures"] == {"samples": 1200 + 900}  # each unit's latest answer, summed up the tree
    assert status["provinces"][0]["figures"] == {"samples": 2100}
    assert world.leader.client().get(f"/api/v1/directives/{directive['id']}/pending").json() == []
    sheet = world.leader.client().get(f"/api/v1/directives/{directive['id']}/status.xlsx")
    assert sheet.status_code == 200 and sheet.content[:2] == b"PK"


def test_an_update_is_seen_by_recipients_with_its_history(world):
    directive = issue(world.leader).json()
    changed = post(
        world.leader,
        f"/api/v1/directives/{directive['id']}/update",
        {"title": "Xét nghiệm toàn dân", "note": "mở rộng"},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    item = inbox(world.operator_a)["items"][0]["directive"]
    assert item["title"] == "Xét nghiệm toàn dân"
    assert item["revisions"][1]["changes"] == {
        "title": ["Triển khai xét nghiệm diện rộng", "Xét nghiệm toàn dân"]
    }
    assert (
        post(world.operator_a, f"/api/v1/directives/{directive['id']}/update", {"title": "x"}).status_code
        == 403
    )


def test_attachments_are_checked_by_content_and_served_only_to_those_who_see_the_directive(world, media):
    directive = issue(world.leader, targets={"units": ["VN-2025:26743"]}).json()
    url = f"/api/v1/directives/{directive['id']}/attachments"
    pdf = SimpleUploadedFile("ke-hoach.pdf", b"%PDF-1.7\n...", content_type="application/pdf")
    created = world.leader.client().post(url, {"file": pdf})
    assert created.status_code == 201, created.content
    fake = SimpleUploadedFile("virus.pdf", b"MZ\x90\x00", content_type="application/pdf")
    refused = world.leader.client().post(url, {"file": fake})
    assert refused.status_code == 415 and "PDF" in refused.json()["detail"]
    assert [p.read_bytes() for p in stored_files(media)] == [b"%PDF-1.7\n..."]  # the refused one not kept
    download = created.json()["url"]
    got = world.operator_a.client().get(download)
    assert got.status_code == 200 and b"".join(got.streaming_content).startswith(b"%PDF-")
    assert got["X-Content-Type-Options"] == "nosniff"
    assert world.operator_b.client().get(download).status_code == 404  # Sài Gòn was not a target
    assert world.operator_a.client().post(url, {"file": pdf}).status_code == 403  # recipients do not attach


def test_a_saved_group_is_addressed_by_its_code(world, hcm_leader):
    made = post(
        hcm_leader,
        "/api/v1/unit-groups",
        {
            "code": "trung-tam",
            "name": "Phường trung tâm",
            "targets": {"units": ["VN-2025:26743", "VN-2025:26740"]},
        },
    )
    assert made.status_code == 201 and made.json()["units"] == 2
    directive = issue(hcm_leader, targets={"group": "trung-tam"}).json()
    assert directive["status"]["total"] == 2
    taken = post(
        world.leader,
        "/api/v1/unit-groups",
        {"code": "trung-tam", "name": "x", "targets": {"units": ["VN-2025:79"]}},
    )
    assert taken.status_code == 409
    outside = post(
        hcm_leader,
        "/api/v1/unit-groups",
        {"code": "ha-noi", "name": "x", "targets": {"units": ["VN-2025:01"]}},
    )
    assert outside.status_code == 404


def test_the_overdue_flag_of_a_delivery_in_hand_agrees_with_the_rooms_query(world):
    """`is_overdue` (inbox, an opened delivery) and `overdue_q` (the room's counts) are two spellings of one
    rule: over every combination of deadline, cancellation, what is required and what was done."""
    from itertools import product

    from dieuhanh.directives.services import is_overdue, overdue_q

    now = timezone.now()
    directive = Directive.objects.get(pk=issue(world.leader).json()["id"])
    delivery = Delivery.objects.get(directive=directive, unit__code="26743")
    checked = 0
    for deadline, cancelled, requires_ack, form, kind, acked, responded in product(
        [None, now - timedelta(hours=1), now + timedelta(hours=1)],
        [None, now],
        [True, False],
        [[], [{"key": "mau", "label": "Số mẫu", "type": "number"}]],
        ["directive", "report_request"],
        [None, now],
        [None, now],
    ):
        Directive.objects.filter(pk=directive.pk).update(
            deadline=deadline, cancelled_at=cancelled, requires_ack=requires_ack, form=form, kind=kind
        )
        Delivery.objects.filter(pk=delivery.pk).update(acknowledged_at=acked, responded_at=responded)
        in_hand = Delivery.objects.select_related("directive").get(pk=delivery.pk)
        by_query = Delivery.objects.filter(pk=delivery.pk).filter(overdue_q(now)).exists()
        assert is_overdue(in_hand, now) == by_query, (deadline, cancelled, requires_ack, form, kind, acked)
        checked += by_query
    assert checked > 0  # the grid holds overdue cases, not only on-time ones


def test_a_file_attached_after_the_directive_was_opened_is_seen_at_the_next_opening(world, media):
    directive = issue(world.leader, targets={"units": ["VN-2025:26743"]}).json()
    a = delivery_of(world.operator_a, directive["id"])
    assert world.operator_a.client().get(f"/api/v1/deliveries/{a}").json()["directive"]["attachments"] == []
    pdf = SimpleUploadedFile("ke-hoach.pdf", b"%PDF-1.7\n...", content_type="application/pdf")
    url = f"/api/v1/directives/{directive['id']}/attachments"
    assert world.leader.client().post(url, {"file": pdf}).status_code == 201
    opened = world.operator_a.client().get(f"/api/v1/deliveries/{a}").json()
    assert [f["name"] for f in opened["directive"]["attachments"]] == ["ke-hoach.pdf"]
    assert [f["name"] for f in inbox(world.operator_a)["items"][0]["directive"]["attachments"]] == [
        "ke-hoach.pdf"
    ]


def test_a_communes_morning_sends_few_statements(world, django_assert_max_num_queries):
    """The national morning's three calls (bench/load.py): what each sends to the database is bounded, so
    that 10,000 communes at once cost the database what the work needs (docs/load-bench.md)."""
    directive = issue(world.leader, priority="urgent").json()
    inbox(world.operator_b)  # another commune opened it first: the directive's history is known
    client = world.operator_a.client()
    # The token with its user and grants; its first use's record; the units below; unread; the page.
    with django_assert_max_num_queries(5):
        items = client.get("/api/v1/inbox").json()["items"]
    a = next(i["id"] for i in items if i["directive"]["id"] == directive["id"])
    # The token with its user and grants; the delivery; the guarded write and its audit row, in a
    # transaction (here a savepoint and its release: the test runs inside one).
    with django_assert_max_num_queries(6):
        assert client.get(f"/api/v1/deliveries/{a}").json()["state"] == "read"
    with django_assert_max_num_queries(6):
        assert client.post(f"/api/v1/deliveries/{a}/ack").json()["state"] == "acknowledged"


def test_rates_are_counted_one_way_and_a_response_counts_as_an_acknowledgement(world):
    """services.rates is what the room's directive panel, the reports and the unit page show, and the
    status's furthest states come from the same count. A response counts as an acknowledgement and a
    reading even where a row lacks acknowledged_at and read_at: that unit is neither pending nor late."""
    from dieuhanh.commandroom.room import directive_rates
    from dieuhanh.commandroom.unit_panels import unit_directives
    from dieuhanh.directives.services import is_overdue, pending, rates, status
    from dieuhanh.units.scoping import Area

    form = [{"key": "mau", "label": "Số mẫu", "type": "number"}]
    directive = Directive.objects.get(pk=issue(world.leader, requires_ack=True, form=form).json()["id"])
    now = timezone.now()
    Directive.objects.filter(pk=directive.pk).update(deadline=now - timedelta(hours=1))
    a = Delivery.objects.get(directive=directive, unit=world.commune_a)
    Delivery.objects.filter(pk=a.pk).update(
        state="responded", responded_at=now, acknowledged_at=None, read_at=None
    )
    area = Area.of(world.province)
    counted = rates([directive.pk], area, now)[directive.pk]
    assert (counted.total, counted.read, counted.acknowledged, counted.responded) == (2, 1, 1, 1)
    assert counted.overdue == 1  # the neighbour, which has done nothing
    (room,) = directive_rates(world.province, now)
    assert (room.total, room.ack_pct, room.response_pct, room.overdue) == (2, 50.0, 50.0, 1)
    ((_, panel),) = unit_directives(world.leader.user, world.province)
    assert (panel.total, panel.acknowledged, panel.responded, panel.overdue) == (2, 1, 1, 1)
    states = status(directive, area, now)
    shown = {k: states[k] for k in ("total", "sent", "read", "acknowledged", "responded", "overdue")}
    assert shown == {"total": 2, "sent": 1, "read": 0, "acknowledged": 0, "responded": 1, "overdue": 1}
    assert [d.unit_id for d in pending(directive, area)] == [world.commune_b.pk]
    a = Delivery.objects.select_related("directive").get(pk=a.pk)
    assert not is_overdue(a, now)
