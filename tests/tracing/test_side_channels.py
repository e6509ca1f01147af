"""Tracing answers nothing about what lies outside the caller's area (issue 16, point 2).

For each way in — promoting a test, registering an ID, the workspace's form, the case routes, the
person look-up — an answer about something that exists elsewhere (a positive or negative test, a
case, a home) is the same, status and body, as the answer about something that does not exist, for a
source platform's token, an operator, a leader without a tracer grant and a tracer of another area.
"""

from __future__ import annotations

import re

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.tracing.models import Case
from tests.factories import CASE, P2, P4, hexkey, record, register

ABSENT_ID = "0977777777"  # a valid mobile number nobody in the test world has used
ABSENT_CASE = 987654


def _answer(response, *echoed: str) -> tuple[int, dict]:
    """Status and problem body, with what the caller typed (an id, an event id) masked: it is
    echoed back whether or not the thing exists, and is not what the comparison is about."""
    body = response.json()
    text = dict(body)
    for value in echoed:
        for name in ("detail", "instance"):
            if isinstance(text.get(name), str):
                text[name] = re.sub(rf"(?<![0-9A-Za-z-]){re.escape(value)}(?![0-9A-Za-z-])", "…", text[name])
    return response.status_code, text


def _promote(caller, event_id: str, source: str = "ncovi"):
    return caller.client().post(
        "/api/v1/tracing/cases",
        {"test": {"source": source, "event_id": event_id}},
        content_type="application/json",
    )


def _tests(platform) -> None:
    """test-9: P4 positive and test-10: P2 negative, both in Bến Thành; test-11: the CASE's positive
    test taken in Sài Gòn."""
    response = platform.send(
        "test",
        [
            record("test", 9, person_id=P4, result="positive"),
            record("test", 10, person_id=P2, result="negative"),
            record("test", 11, person_id=CASE, result="positive", commune="26740"),
        ],
    )
    assert response.json()["accepted"] == 3


def _not_tracers(world, platform):
    return {"source token": platform, "operator": world.operator_a, "leader": world.leader}


# Promoting a test


def test_without_a_tracer_grant_promoting_says_nothing_of_the_test(world, platform, tracers, outbreak):
    _tests(platform)
    for who, caller in _not_tracers(world, platform).items():
        answers = {
            name: _answer(_promote(caller, event_id), event_id)
            for name, event_id in [("positive", "test-9"), ("negative", "test-10"), ("absent", "nope")]
        }
        assert answers["positive"] == answers["negative"] == answers["absent"], who
        assert answers["absent"][0] == 403, who
        unknown_source = _answer(_promote(caller, "test-9", source="khong-co"), "test-9", "khong-co")
        assert unknown_source == answers["absent"], who
    assert not Case.objects.exists()


def test_a_test_of_another_area_is_not_found_like_an_absent_one(platform, tracers, outbreak):
    _tests(platform)
    for caller in [tracers.b, tracers.far]:
        positive = _answer(_promote(caller, "test-9"), "test-9")
        negative = _answer(_promote(caller, "test-10"), "test-10")
        absent = _answer(_promote(caller, "nope"), "nope")
        assert positive == negative == absent
        assert absent[0] == 404 and "không tìm thấy" in absent[1]["detail"]
    assert not Case.objects.exists()
    # The tests are there: the tracer of their area is told the result and promotes the positive one.
    negative = tracers.a.client().post(
        "/api/v1/tracing/cases",
        {"test": {"source": "ncovi", "event_id": "test-10"}},
        content_type="application/json",
    )
    assert negative.status_code == 422 and "negative" in negative.json()["detail"]
    assert _promote(tracers.a, "test-9").status_code == 201


def test_a_positive_test_of_your_area_whose_person_is_a_case_elsewhere_is_not_found(
    platform, tracers, outbreak
):
    _tests(platform)
    case_a = register(tracers.a).json()["id"]  # the CASE, resident of Bến Thành
    found = _answer(_promote(tracers.b, "test-11"), "test-11")  # the CASE's test, taken in Sài Gòn
    assert found == _answer(_promote(tracers.b, "nope"), "nope")
    assert found[0] == 404 and f"#{case_a}" not in found[1]["detail"]
    # Its own area's tracer is told it is already their case.
    again = _promote(tracers.a, "test-9")
    assert again.status_code == 201
    assert _promote(tracers.a, "test-9").status_code == 409
    assert Case.objects.count() == 2


# Registering by ID


def _register_answer(caller, person_id: str, **body) -> tuple[int, dict]:
    return _answer(register(caller, person_id=person_id, **body), person_id)


def test_without_a_tracer_grant_registering_says_nothing_of_the_person(world, platform, tracers, outbreak):
    register(tracers.a)
    for who, caller in _not_tracers(world, platform).items():
        case, absent = _register_answer(caller, CASE), _register_answer(caller, ABSENT_ID)
        assert case == absent and absent[0] == 403, who
    assert Case.objects.count() == 1


def test_a_person_of_another_area_is_not_found_whether_a_case_there_or_only_living_there(
    world, tracers, outbreak
):
    case_a = register(tracers.a).json()["id"]  # the CASE lives in Bến Thành and is its case
    undeclared = register(tracers.a, person_id="0944444444", commune="VN-2025:26743")
    assert undeclared.status_code == 201
    elsewhere = world.commune_b.ref
    answers = [
        _register_answer(tracers.b, CASE),  # a case there, declared there
        _register_answer(tracers.b, CASE, commune=elsewhere),
        _register_answer(tracers.b, "0944444444", commune=elsewhere),  # a case there, never declared
        _register_answer(tracers.b, P4),  # declared there, no case
        _register_answer(tracers.b, P4, commune=elsewhere),
        _register_answer(tracers.far, CASE),
    ]
    assert all(a == answers[0] for a in answers), answers
    status, body = answers[0]
    assert status == 404 and body["detail"] == "person_id: không tìm thấy người này trong địa bàn của bạn"
    assert Case.objects.count() == 2
    refused = AuditEntry.objects.filter(action="tracing.case.refused", actor=tracers.b.user)
    assert refused.count() == 5
    assert {e.detail["person"] for e in refused} >= {hexkey(CASE)[:12], hexkey(P4)[:12]}
    assert CASE not in str([e.detail for e in refused])
    # Their own area's tracer hears that the person is already its case.
    mine = register(tracers.a)
    assert mine.status_code == 409 and f"#{case_a}" in mine.json()["detail"]
    assert register(tracers.a, person_id="0944444444").status_code == 409


def test_a_commune_named_outside_your_area_is_refused_before_the_person_is_read(tracers, outbreak):
    register(tracers.a)
    neighbour = "VN-2025:26743"
    assert _register_answer(tracers.b, CASE, commune=neighbour) == _register_answer(
        tracers.b, ABSENT_ID, commune=neighbour
    )
    assert register(tracers.b, person_id=ABSENT_ID, commune=neighbour).status_code == 404
    assert not AuditEntry.objects.filter(action="tracing.case.refused").exists()


# The workspace's form


def _alert(page: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


def test_the_form_does_not_open_another_areas_case(tracers, outbreak):
    register(tracers.a)
    browser = tracers.b.browser()
    known = browser.post("/tracing/", {"person_id": CASE})
    unknown = browser.post("/tracing/", {"person_id": ABSENT_ID})
    assert known.status_code == unknown.status_code == 200  # no redirect to Bến Thành's case
    assert _alert(known.content.decode()) == _alert(unknown.content.decode()) != ""
    assert "chưa là ca bệnh" in _alert(known.content.decode())
    # With a confirmation time: another area's case and another area's resident answer alike.
    when = "2021-08-27T10:00"
    case_there = browser.post("/tracing/", {"person_id": CASE, "confirmed_at": when})
    living_there = browser.post("/tracing/", {"person_id": P4, "confirmed_at": when})
    assert case_there.status_code == living_there.status_code == 200
    said = _alert(case_there.content.decode())
    assert said == _alert(living_there.content.decode())
    assert "không tìm thấy người này trong địa bàn của bạn" in said
    assert "26743" not in said and "Bến Thành" not in said
    assert Case.objects.count() == 1
    # Bến Thành's own tracer is taken to the case.
    opened = tracers.a.browser().post("/tracing/", {"person_id": CASE})
    assert opened.status_code == 302 and opened["Location"] == f"/tracing/cases/{Case.objects.get().pk}/"


# The case routes, by id


def _case_routes(client, case_id: int):
    url = f"/api/v1/tracing/cases/{case_id}"
    json = "application/json"
    bad_key = {"person_keys": ["not-a-key"], "purpose": "kiểm tra"}
    good_key = {"person_keys": [hexkey(P4)], "purpose": "kiểm tra"}
    return {
        "get": client.get(url),
        "patch": client.patch(url, {"note": "x"}, content_type=json),
        "delete": client.delete(url),
        "contacts": client.get(f"{url}/contacts", {"depth": 2}),
        "list": client.get(f"{url}/contacts/list", {"depth": 2}),
        "identities": client.post(f"{url}/identities", good_key, content_type=json),
        "identities, malformed key": client.post(f"{url}/identities", bad_key, content_type=json),
    }


def test_case_routes_answer_another_areas_case_as_an_absent_one(world, platform, tracers, case_id):
    callers = {**_not_tracers(world, platform), "far tracer": tracers.far}
    for who, caller in callers.items():
        there = _case_routes(caller.client(), case_id)
        absent = _case_routes(caller.client(), ABSENT_CASE)
        for route in there:
            assert _answer(there[route], str(case_id)) == _answer(absent[route], str(ABSENT_CASE)), (
                who,
                route,
            )
            assert there[route].status_code in (403, 404, 422), (who, route)
    assert Case.objects.filter(pk=case_id, note="").exists()


# The person look-up


def _person_events(caller, person_id: str):
    return caller.client().post(
        "/api/v1/persons/events", {"person_id": person_id}, content_type="application/json"
    )


def test_the_person_look_up_takes_the_id_in_the_body_and_is_audited(tracers, outbreak):
    response = _person_events(tracers.a, CASE)
    assert response.status_code == 200
    found = response.json()
    assert {e["kind"] for e in found} == {"health", "checkin"}
    assert {e["commune"] for e in found} == {"VN-2025:26743"}
    entry = AuditEntry.objects.get(action="persons.events")
    assert entry.actor == tracers.a.user and entry.rows == len(found)
    assert entry.target == hexkey(CASE)[:12] and CASE not in entry.target + str(entry.detail)
    # Known elsewhere or unknown everywhere: the same empty answer.
    assert _person_events(tracers.far, CASE).json() == _person_events(tracers.far, ABSENT_ID).json() == []


def test_without_a_tracer_grant_the_look_up_says_nothing(world, platform, outbreak):
    for who, caller in _not_tracers(world, platform).items():
        known, absent = _person_events(caller, CASE), _person_events(caller, ABSENT_ID)
        assert _answer(known) == _answer(absent) and known.status_code == 403, who
    assert not AuditEntry.objects.filter(action="persons.events").exists()


def test_the_old_path_is_gone_and_names_the_new_route_without_reading_the_id(
    world, platform, tracers, outbreak
):
    answers = []
    for caller in [tracers.a, world.operator_a, platform]:
        for person_id in [CASE, "12ab"]:
            response = caller.client().get(f"/api/v1/persons/{person_id}/events")
            assert response.status_code == 410
            detail = response.json()["detail"]
            assert "POST /api/v1/persons/events" in detail and "Đường dẫn này đã ngừng dùng" in detail
            assert person_id not in detail
            answers.append(detail)
    assert len(set(answers)) == 1
    assert not AuditEntry.objects.filter(action="persons.events").exists()
