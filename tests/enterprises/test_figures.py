"""An enterprise's figures are its workers' events wherever they happened, and its gates' check-ins;
a park sees its enterprises', each enterprise only its own, the commune those standing in it."""

from __future__ import annotations

import re
from datetime import date

import pytest

from dieuhanh.warehouse.enterprises.models import EnterpriseRollup, Worker
from dieuhanh.warehouse.enterprises.services import link_venue
from dieuhanh.warehouse.kinds import KINDS
from dieuhanh.warehouse.services import VenueInput, save_venue
from tests.factories import CCCD_1, CCCD_2, record, roster

WINDOW = {"from": "2021-08-01", "to": "2021-08-31"}


def counts(caller, kind, unit, **more):
    return caller.client().get("/api/v1/warehouse/counts", {"kind": kind, "unit": unit.ref, **WINDOW, **more})


def test_a_workers_test_counts_for_the_enterprise_even_in_another_province(tested):
    r = counts(tested.officer_one, "test", tested.one, result="positive")
    assert r.status_code == 200 and r.json()["total"] == 1
    # ...and for the commune where it was taken, as before (Hà Nội's, not Bến Thành's).
    bt = counts(tested.world.operator_a, "test", tested.world.commune_a, result="positive").json()
    assert bt["total"] == 1  # the stranger's only


def test_two_enterprises_of_one_park_do_not_see_each_other_while_the_park_sees_both(tested):
    assert counts(tested.officer_one, "test", tested.two).status_code == 404  # as for no unit
    assert counts(tested.officer_two, "test", tested.one).status_code == 404
    assert counts(tested.officer_two, "test", tested.two).json()["total"] == 1
    park = counts(tested.park_officer, "test", tested.park, by="unit").json()
    assert park["total"] == 2
    assert {row["unit"]: row["count"] for row in park["rows"]} == {tested.one.ref: 1, tested.two.ref: 1}
    positives = counts(tested.park_officer, "test", tested.park, result="positive").json()
    assert positives["total"] == 1
    # The park's own officer cannot read the lone factory of Sài Gòn.
    assert counts(tested.park_officer, "test", tested.alone).status_code == 404


def test_a_commune_sees_its_enterprises(tested):
    w = tested.world
    assert counts(w.operator_a, "test", tested.one).json()["total"] == 1
    assert counts(w.operator_a, "test", tested.park).json()["total"] == 2
    assert counts(w.operator_a, "test", tested.alone).status_code == 404
    assert counts(w.operator_b, "test", tested.alone, result="positive").json()["total"] == 1
    listed = w.operator_a.client().get("/api/v1/enterprises", {"unit": w.commune_a.ref}).json()
    assert {e["ref"] for e in listed} == {tested.one.ref, tested.two.ref}


def test_an_enterprise_officer_sees_counts_never_a_person(tested):
    body = {"person_id": CCCD_1}
    r = tested.officer_one.client().post("/api/v1/persons/events", body, content_type="application/json")
    assert r.status_code == 403
    listed = tested.officer_one.client().get("/api/v1/enterprises", {"unit": tested.one.ref}).json()
    assert listed == [
        {
            "ref": tested.one.ref,
            "name": "Nhà máy Một",
            "kind": "enterprise",
            "parent": tested.park.ref,
            "workers": 1,
            "dose1": 0,
            "dose2": 0,
            "coverage_pct": 0.0,
            "positives": 1,  # over the 30 days up to the latest day with data
        }
    ]


def test_a_roster_added_after_the_events_counts_them_and_an_end_date_takes_them_out(firms, platform):
    platform.send("test", [record("test", 1, person_id=CCCD_1, sampled_at="2021-08-20T09:00:00+07:00")])
    assert counts(firms.officer_one, "test", firms.one).json()["total"] == 0
    roster(firms.one, CCCD_1, start=date(2021, 8, 1))
    assert counts(firms.officer_one, "test", firms.one).json()["total"] == 1
    roster(firms.one, CCCD_1, start=date(2021, 8, 1), end=date(2021, 8, 10))  # left before the test
    assert counts(firms.officer_one, "test", firms.one).json()["total"] == 0
    assert not EnterpriseRollup.objects.filter(enterprise=firms.one).exists()


def test_vaccination_doses_and_coverage_of_the_roster(firms, platform):
    roster(firms.one, CCCD_1, CCCD_2, "0912 000 111")
    platform.send(
        "vaccination",
        [
            record("vaccination", 1, person_id=CCCD_1, dose=1, vaccinated_at="2021-08-02T09:00:00+07:00"),
            record("vaccination", 2, person_id=CCCD_1, dose=2, vaccinated_at="2021-08-25T09:00:00+07:00"),
            record("vaccination", 3, person_id=CCCD_2, dose=1, commune="VN-2025:00004"),
        ],
    )
    doses = counts(firms.officer_one, "vaccination", firms.one, by="unit").json()
    assert doses["total"] == 3
    assert counts(firms.officer_one, "vaccination", firms.one, dose="2").json()["total"] == 1
    standing = firms.officer_one.client().get("/api/v1/enterprises", {"unit": firms.one.ref}).json()[0]
    assert (standing["workers"], standing["dose1"], standing["dose2"]) == (3, 2, 1)
    assert standing["coverage_pct"] == pytest.approx(33.33)
    assert Worker.objects.get(enterprise=firms.one, max_dose=2)


def test_quarantine_counts_by_place(firms, platform):
    roster(firms.two, CCCD_2)
    platform.send("quarantine", [record("quarantine", 1, person_id=CCCD_2, place="home")])
    assert counts(firms.officer_two, "quarantine", firms.two, place="home").json()["total"] == 1


def test_gate_check_ins_count_for_the_enterprise_and_the_commune(firms, platform):
    gate = save_venue(actor=None, venue=VenueInput("G-ONE-1", "Cổng 1 Nhà máy Một", "factory", "26743"))
    link_venue(actor=None, venue=gate, enterprise=firms.one)
    platform.send("checkin", [record("checkin", n, venue="G-ONE-1") for n in range(3)])
    assert counts(firms.officer_one, "checkin", firms.one).json()["total"] == 3
    assert counts(firms.world.operator_a, "checkin", firms.world.commune_a).json()["total"] == 3
    assert counts(firms.officer_two, "checkin", firms.two).json()["total"] == 0
    # Moving the gate to factory two moves its stored check-ins with it.
    r = firms.officer_two.client().put(f"/api/v1/enterprises/VN-2025/{firms.two.code}/venues/G-ONE-1")
    assert r.status_code == 409  # factory one's gate: factory two's officer may not take it
    w = firms.world
    r = w.operator_a.client().put(f"/api/v1/enterprises/VN-2025/{firms.two.code}/venues/G-ONE-1")
    assert r.status_code == 200, r.content
    assert counts(firms.officer_two, "checkin", firms.two).json()["total"] == 3
    assert counts(firms.officer_one, "checkin", firms.one).json()["total"] == 0
    assert r.json() == {"venue": "G-ONE-1", "enterprise": firms.two.ref}
    # The gate belongs to no enterprise: its check-ins count for the commune only.
    r = w.operator_a.client().delete(f"/api/v1/enterprises/VN-2025/{firms.two.code}/venues/G-ONE-1")
    assert r.status_code == 200 and r.json() == {"venue": "G-ONE-1", "enterprise": None}
    assert counts(firms.officer_two, "checkin", firms.two).json()["total"] == 0
    assert counts(firms.world.operator_a, "checkin", firms.world.commune_a).json()["total"] == 3


def test_the_park_page_ranks_its_enterprises(tested):
    page = tested.park_officer.browser().get(f"/units/VN-2025/{tested.park.code}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Nhà máy Một" in html and "Nhà máy Hai" in html
    assert "Xếp hạng doanh nghiệp" in html
    two = tested.officer_two.browser().get(f"/units/VN-2025/{tested.one.code}/")
    assert two.status_code == 404


def test_analytics_take_an_enterprise_or_a_park(tested):
    r = tested.park_officer.client().get(
        "/api/v1/analytics",
        {"dx": "ev.test.positive", "pe": "202108", "ou": f"{tested.park.ref};{tested.one.ref}"},
    )
    assert r.status_code == 200, r.content
    values = {row["ou"]: row["value"] for row in r.json()["rows"]}
    assert values == {tested.park.ref: 1, tested.one.ref: 1}
    refused = tested.officer_two.client().get(
        "/api/v1/analytics", {"dx": "ev.test", "pe": "202108", "ou": tested.one.ref}
    )
    assert refused.status_code in (403, 404, 422)
    assert "value" not in refused.content.decode()


def test_a_window_of_whole_months_and_odd_days_counts_each_event_once(firms, platform):
    roster(firms.one, CCCD_1, start=date(2021, 1, 1))
    days = ["2021-07-19", "2021-07-31", "2021-08-01", "2021-08-15", "2021-08-31", "2021-09-01", "2021-09-06"]
    platform.send(
        "test",
        [record("test", n, person_id=CCCD_1, sampled_at=f"{d}T09:00:00+07:00") for n, d in enumerate(days)],
    )
    span = {"from": "2021-07-20", "to": "2021-09-05"}  # misses the first and the last
    for by in ("none", "unit", "day"):
        r = firms.park_officer.client().get(
            "/api/v1/warehouse/counts", {"kind": "test", "unit": firms.park.ref, "by": by, **span}
        )
        assert r.status_code == 200 and r.json()["total"] == 5, (by, r.content)
    august = {"from": "2021-08-01", "to": "2021-08-31"}  # a whole month alone: the monthly rollups
    assert counts(firms.park_officer, "test", firms.park, **august).json()["total"] == 3


def test_a_parks_room_hears_of_its_workers_events(firms, platform, django_capture_on_commit_callbacks):
    import asyncio

    from dieuhanh.live import HUB, area_key

    roster(firms.one, CCCD_1)
    park_key = area_key(firms.park.edition_id, firms.park.path)

    async def listen():
        return HUB.subscribe([park_key])

    loop = asyncio.new_event_loop()
    subscription = loop.run_until_complete(listen())
    try:
        before = HUB.version([park_key])
        with django_capture_on_commit_callbacks(execute=True):
            platform.send("test", [record("test", 1, person_id=CCCD_1, commune="VN-2025:00004")])
        assert HUB.version([park_key]) > before  # the park's room reloads its (cached) figures
        loop.run_until_complete(asyncio.sleep(0))
        assert subscription.queue.get_nowait().name == "figures"
    finally:
        HUB.unsubscribe(subscription)
        loop.close()


def test_a_communes_page_shows_its_park_with_the_parks_own_figures(tested):
    page = tested.world.operator_a.browser().get(f"/units/VN-2025/{tested.world.commune_a.code}/")
    assert page.status_code == 200
    html = page.content.decode()
    row = html.split(f'href="/units/VN-2025/{tested.park.code}/"')[1].split("</tr>")[0]
    values = re.findall(r'data-value="([^"]*)"', row)  # units below, then each kind's count in KINDS order
    assert (
        values[0] == "2" and values[1 + list(KINDS).index("test")] == "2"
    )  # its workers' tests, not the ward's
    assert "Xếp hạng doanh nghiệp" in html and "Xưởng Sài Gòn" not in html
