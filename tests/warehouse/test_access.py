"""Each area sees its own figures: two neighbouring wards never see each other's, on every route."""

from __future__ import annotations

import pytest

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.accounts.services import create_user
from tests.factories import CCCD_A, make_caller, record

WINDOW = {"from": "2021-08-01", "to": "2021-08-31"}


@pytest.fixture
def events(platform, venues):
    platform.send("test", [record("test", 1), record("test", 2, result="negative")])  # Bến Thành
    platform.send("test", [record("test", 3, commune="26740", person_id="0912345678")])  # Sài Gòn
    platform.send("checkin", [record("checkin", 1), record("checkin", 2, venue="V-SG-VP")])
    return platform


def _person_events(caller, person_id: str, **window):
    body = {"person_id": person_id, **window}
    return caller.client().post("/api/v1/persons/events", body, content_type="application/json")


def _total(caller, **params):
    response = caller.client().get("/api/v1/warehouse/counts", {"kind": "test", **WINDOW, **params})
    return response.status_code, response.json()


def test_each_ward_counts_only_its_own(world, events):
    assert _total(world.operator_a) == (
        200,
        {"total": 2, "rows": [{"unit": "VN-2025:26743", "day": None, "count": 2}]},
    )
    assert _total(world.operator_b)[1]["total"] == 1
    assert _total(world.operator_a, result="positive")[1]["total"] == 1


@pytest.mark.parametrize(
    "params", [{"unit": "VN-2025:26740"}, {"unit": "VN-2025:79"}, {"unit": "VN-2025:VN"}]
)
def test_a_ward_operator_gets_404_outside_their_ward_as_for_no_unit(world, events, params):
    status, body = _total(world.operator_a, **params)
    _, unknown = _total(world.operator_a, unit="VN-2025:99999")
    assert status == 404 and "trong phạm vi của bạn" in body["detail"]
    assert body["detail"].replace(params["unit"], "X") == unknown["detail"].replace("VN-2025:99999", "X")


def test_the_city_sees_both_wards_by_unit_and_by_day(world, events):
    status, body = _total(world.province_operator, unit="VN-2025:79", by="unit")
    assert status == 200
    assert {r["unit"]: r["count"] for r in body["rows"]} == {"VN-2025:26743": 2, "VN-2025:26740": 1}
    _, by_day = _total(world.province_operator, unit="VN-2025:79", by="day")
    assert by_day == {"total": 3, "rows": [{"unit": "VN-2025:79", "day": "2021-08-26", "count": 3}]}


def test_venue_lists_hold_only_the_callers_venues(world, venues):
    for caller, mine in [(world.operator_a, "V-BT-CHO"), (world.operator_b, "V-SG-VP")]:
        listed = caller.client().get("/api/v1/venues").json()
        assert [v["code"] for v in listed] == [mine]
    city = world.province_operator.client().get("/api/v1/venues").json()
    assert {v["code"] for v in city} == {"V-BT-CHO", "V-SG-VP"}


def test_a_ward_cannot_register_a_venue_in_its_neighbour(world, venues):
    venue = {"code": "V-X", "name": "Quán cà phê", "kind": "other", "commune": "VN-2025:26740"}
    response = world.operator_a.client().post("/api/v1/venues", venue, content_type="application/json")
    assert response.status_code == 422 and "commune" in response.json()["detail"]
    taken = {**venue, "code": "V-SG-VP", "commune": "VN-2025:26743"}
    response = world.operator_a.client().post("/api/v1/venues", taken, content_type="application/json")
    assert response.status_code == 422 and "thuộc địa bàn khác" in response.json()["detail"]
    own = {**venue, "commune": "VN-2025:26743"}
    response = world.operator_a.client().post("/api/v1/venues", own, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["qr_payload"].startswith("DHQR1:V-X:")


def test_person_events_need_a_tracer_grant(world, events):
    for caller in [world.operator_a, world.province_operator, world.leader]:
        response = _person_events(caller, CCCD_A)
        assert response.status_code == 403, caller.user.username


def test_a_tracer_sees_the_persons_events_in_the_area_and_is_audited(world, events):
    response = _person_events(world.tracer, CCCD_A)
    assert response.status_code == 200
    found = response.json()
    assert {(e["kind"], e["source_event_id"]) for e in found} == {
        ("test", "test-1"),
        ("test", "test-2"),
        ("checkin", "checkin-1"),
        ("checkin", "checkin-2"),
    }
    checkin = next(e for e in found if e["source_event_id"] == "checkin-1")
    assert checkin["details"]["venue"] == "V-BT-CHO" and checkin["commune"] == "VN-2025:26743"
    entry = AuditEntry.objects.filter(action="persons.events").get()
    assert entry.actor == world.tracer.user and entry.rows == 4
    assert CCCD_A not in str(entry.detail) + entry.target


def test_a_ward_tracer_sees_only_events_in_the_ward(world, events):
    tracer_a = make_caller("benthanh-tracer", world.commune_a, "tracer")
    found = _person_events(tracer_a, CCCD_A).json()
    assert {e["commune"] for e in found} == {"VN-2025:26743"}
    tracer_b = make_caller("saigon-tracer", world.commune_b, "tracer")
    found = _person_events(tracer_b, CCCD_A).json()
    assert [e["source_event_id"] for e in found] == ["checkin-2"]  # the visit to the Sài Gòn office


def test_person_window_and_bad_id(world, events):
    assert _person_events(world.tracer, CCCD_A, **{"from": "2021-08-27T00:00:00+07:00"}).json() == []
    response = _person_events(world.tracer, "12ab")
    assert response.status_code == 422 and "person_id" in response.json()["detail"]


def test_an_operator_without_any_grant_sees_nothing(world, events):
    user = create_user(actor=None, username="nobody", password="x" * 12, validate=False)
    from dieuhanh.accounts.services import create_token

    _, raw = create_token(actor=None, user=user, name="t")
    from django.test import Client

    response = Client(headers={"Authorization": f"Bearer {raw}"}).get(
        "/api/v1/warehouse/counts", {"kind": "test", **WINDOW}
    )
    assert response.status_code == 403
