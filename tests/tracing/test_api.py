"""Tracing through the API, on events ingested by the real pipeline: who sees which contacts, what
the lists hold, and the audit rows every read leaves."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from dieuhanh.accounts.models import AuditEntry
from dieuhanh.tracing.models import Case
from tests.factories import CASE, P1, P2, P3, P4, contacts, hexkey, record, register


def test_registering_a_case_sets_the_window_two_days_before_and_keeps_the_id_in_the_vault(tracers, outbreak):
    response = register(tracers.a)
    assert response.status_code == 201
    case = response.json()
    assert case["window_start"] == "2021-08-25T10:00:00+07:00"
    assert case["window_end"] is None
    assert case["commune"] == "VN-2025:26743"  # from the latest health declaration
    assert case["person_key"] == hexkey(CASE)
    assert CASE.encode() not in bytes(Case.objects.get().person_key)
    entry = AuditEntry.objects.get(action="tracing.case.create")
    assert entry.actor == tracers.a.user and entry.target == f"case:{case['id']}"
    again = register(tracers.a)
    assert again.status_code == 409
    assert f"ca bệnh #{case['id']}" in again.json()["detail"]


def test_registering_checks_the_input_and_the_area(tracers, outbreak, world):
    bad_id = register(tracers.a, person_id="12345")
    assert bad_id.status_code == 422 and bad_id.json()["detail"].startswith("person_id:")
    onset_after = register(tracers.a, onset_at="2021-08-28T10:00:00+07:00")
    assert onset_after.status_code == 422 and "onset_at" in onset_after.json()["detail"]
    assert register(tracers.b, commune="VN-2025:26743").status_code == 404  # the neighbour's commune
    assert register(world.operator_a).status_code == 403  # an operator is no tracer
    assert Case.objects.count() == 0


def test_a_time_sent_without_an_offset_is_vietnam_time_not_a_server_error(tracers, outbreak):
    # Mixed with an aware confirmation time, a naive onset failed the request (500) before.
    response = register(tracers.a, confirmed_at="2021-08-27T10:00:00+07:00", onset_at="2021-08-26T09:30:00")
    assert response.status_code == 201, response.content
    assert response.json()["window_start"] == "2021-08-24T09:30:00+07:00"  # 2 days before the onset
    assert (
        register(tracers.a, person_id=P1, confirmed_at="2021-08-27T10:00", onset_at="2021-08-28T08:00")
        .json()["detail"]
        .startswith("onset_at:")
    )  # both naive: compared, and refused with the field's name


def test_the_national_tracer_sees_f1_and_f2_with_paths_times_and_homes(tracers, case_id):
    response = contacts(tracers.national, case_id)
    assert response.status_code == 200
    body = response.json()
    found = {c["person_key"]: c for c in body["contacts"]}
    assert set(found) == {hexkey(P1), hexkey(P2), hexkey(P3), hexkey(P4)}
    p1, p4, p3 = found[hexkey(P1)], found[hexkey(P4)], found[hexkey(P3)]
    # P1 and P4 met each other at the market after their first exposures: both are F1 and F2, once,
    # with both paths and the overlap summed over them.
    assert (p1["generation"], p1["commune"], p1["paths"]) == (
        1,
        "VN-2025:26740",
        sorted([hexkey(CASE), hexkey(P4)]),
    )
    assert p1["overlap_minutes"] == 50.0 + 15.0
    assert p1["first_exposure"] == "2021-08-26T09:10:00+07:00"
    assert (
        p4["overlap_minutes"] == 25.0 + 45.0
    )  # 25: the case's 30-minute aerosol tail after it left at 09:40
    assert (p3["generation"], p3["overlap_minutes"], p3["paths"]) == (2, 90.0, [hexkey(P1)])
    assert p3["venues"][0]["venue"] == "V-SG-VP"
    assert body["counts"] == {"f1": 2, "f2": 2}
    assert {
        "from": hexkey(CASE),
        "to": hexkey(P1),
        "venue": "V-BT-CHO",
        "start": "2021-08-26T09:10:00+07:00",
        "end": "2021-08-26T10:00:00+07:00",
        "minutes": 50.0,
    } in body["edges"]
    entry = AuditEntry.objects.get(action="tracing.contacts")
    assert (entry.actor, entry.rows, entry.detail["depth"]) == (tracers.national.user, 4, 2)
    assert entry.detail["rule"]["min_overlap_minutes"] == 10


def test_depth_one_and_a_stricter_rule_find_fewer(tracers, case_id):
    f1 = contacts(tracers.national, case_id, depth=1).json()
    assert {c["person_key"] for c in f1["contacts"]} == {hexkey(P1), hexkey(P4)}
    strict = contacts(tracers.national, case_id, depth=1, min_overlap=30).json()
    assert {c["person_key"] for c in strict["contacts"]} == {hexkey(P1)}
    assert strict["rule"]["min_overlap_minutes"] == 30
    assert contacts(tracers.national, case_id, depth=3).status_code == 422


def test_neighbouring_communes_see_only_contacts_living_or_exposed_in_their_own_area(tracers, case_id):
    seen_a = {c["person_key"] for c in contacts(tracers.a, case_id).json()["contacts"]}
    seen_b = {c["person_key"] for c in contacts(tracers.b, case_id).json()["contacts"]}
    assert seen_a == {hexkey(P1), hexkey(P2), hexkey(P4)}  # P1 exposed here, P2 and P4 live here
    assert seen_b == {hexkey(P1), hexkey(P2), hexkey(P3)}  # P1 and P3 live here, P2 exposed here
    edges_b = contacts(tracers.b, case_id).json()["edges"]
    assert hexkey(P4) not in {e["to"] for e in edges_b}
    # The case lives in Bến Thành: Sài Gòn may trace it but not open or list it; Hà Nội gets nothing.
    assert tracers.b.client().get(f"/api/v1/tracing/cases/{case_id}").status_code == 404
    assert tracers.b.client().get("/api/v1/tracing/cases").json() == []
    assert [c["id"] for c in tracers.a.client().get("/api/v1/tracing/cases").json()] == [case_id]
    assert contacts(tracers.far, case_id).status_code == 404


def test_routes_refuse_anyone_without_a_tracer_grant(world, platform, case_id):
    for caller in [world.leader, world.operator_a, world.province_operator]:
        assert contacts(caller, case_id).status_code == 403
        assert caller.client().get("/api/v1/tracing/cases").status_code == 403
        assert (
            caller.client()
            .get("/api/v1/tracing/clusters", {"from": "2021-08-01T00:00:00Z", "to": "2021-09-01T00:00:00Z"})
            .status_code
            == 403
        )
    assert platform.client().get(f"/api/v1/tracing/cases/{case_id}/contacts").status_code == 403


def test_identities_come_from_the_vault_only_for_contacts_you_may_see(tracers, case_id):
    url = f"/api/v1/tracing/cases/{case_id}/identities?depth=2"
    ask = {"person_keys": [hexkey(P2)], "purpose": "gọi điện cách ly"}
    got = tracers.a.client().post(url, ask, content_type="application/json")
    assert got.status_code == 200, got.content
    assert got.json() == {hexkey(P2): "+84987654321"}  # P2 declared health: its ID is in the vault
    entry = AuditEntry.objects.get(action="vault.reveal")
    assert entry.actor == tracers.a.user and entry.rows == 1 and entry.detail["purpose"] == "gọi điện cách ly"
    stranger = {"person_keys": [hexkey(P3)], "purpose": "tò mò"}
    assert tracers.a.client().post(url, stranger, content_type="application/json").status_code == 403
    assert AuditEntry.objects.filter(action="vault.reveal").count() == 1


def test_the_list_per_commune_of_residence_as_csv_and_xlsx(tracers, case_id):
    url = f"/api/v1/tracing/cases/{case_id}/contacts/list"
    response = tracers.national.client().get(url, {"depth": 2, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Mã xã nơi ở", "Xã, phường nơi ở", "Mã định danh ẩn danh"]
    communes = [r[0] for r in rows[1:]]
    assert communes == sorted(communes) and communes.count("VN-2025:26743") == 2
    assert all(r[3] == "" for r in rows[1:])  # no identities unless asked
    with_ids = tracers.a.client().get(url, {"depth": 2, "format": "xlsx", "identities": "true"})
    sheet = load_workbook(io.BytesIO(with_ids.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert {v[3] for v in values} == {"+84912345678", "+84987654321", "+84966666666"}
    assert "Danh sách tiếp xúc của ca bệnh" in sheet["A1"].value
    assert AuditEntry.objects.filter(action="vault.reveal", actor=tracers.a.user).get().rows == 3


def test_clusters_are_venues_where_several_cases_stayed(tracers, case_id):
    second = register(
        tracers.b,
        person_id=P1,
        confirmed_at="2021-08-28T10:00:00+07:00",
        window_start="2021-08-26T00:00:00+07:00",
    ).json()
    params = {"from": "2021-08-25T00:00:00+07:00", "to": "2021-08-29T00:00:00+07:00", "min_cases": 2}
    found = tracers.a.client().get("/api/v1/tracing/clusters", params).json()
    assert [(c["venue"], sorted(c["cases"])) for c in found] == [
        ("V-BT-CHO", sorted([case_id, second["id"]]))
    ]
    assert found[0]["contacts"] == 1  # P4: the other visitors are cases themselves
    assert tracers.far.client().get("/api/v1/tracing/clusters", params).json() == []
    assert AuditEntry.objects.filter(action="tracing.clusters").count() == 2
    # The same window written without an offset is Vietnam's, as a page's is.
    naive = {"from": "2021-08-25T00:00:00", "to": "2021-08-29T00:00:00", "min_cases": 2}
    assert tracers.a.client().get("/api/v1/tracing/clusters", naive).json() == found


def test_a_positive_test_is_promoted_to_a_case(tracers, platform, outbreak):
    platform.send(
        "test",
        [
            record("test", 9, person_id=P4, result="positive"),
            record("test", 10, person_id=P2, result="negative"),
        ],
    )
    url = "/api/v1/tracing/cases"
    promoted = tracers.a.client().post(
        url, {"test": {"source": "ncovi", "event_id": "test-9"}}, content_type="application/json"
    )
    assert promoted.status_code == 201, promoted.content
    assert promoted.json()["confirmed_at"] == "2021-08-26T10:00:00+07:00"
    assert promoted.json()["test"] == "ncovi/test-9"
    negative = tracers.a.client().post(
        url, {"test": {"source": "ncovi", "event_id": "test-10"}}, content_type="application/json"
    )
    assert negative.status_code == 422 and "negative" in negative.json()["detail"]
    missing = tracers.a.client().post(
        url, {"test": {"source": "ncovi", "event_id": "nope"}}, content_type="application/json"
    )
    assert missing.status_code == 404


def test_a_case_can_be_corrected_and_withdrawn(tracers, case_id):
    url = f"/api/v1/tracing/cases/{case_id}"
    bad = tracers.a.client().patch(
        url, {"window_end": "2021-08-01T00:00:00+07:00"}, content_type="application/json"
    )
    assert bad.status_code == 422
    fixed = tracers.a.client().patch(
        url, {"window_end": "2021-08-26T09:30:00+07:00"}, content_type="application/json"
    )
    assert fixed.status_code == 200
    assert fixed.json()["window_end"] == "2021-08-26T09:30:00+07:00"
    entry = AuditEntry.objects.get(action="tracing.case.change")
    assert entry.detail["before"] == {"window_end": None}
    assert {c["person_key"] for c in contacts(tracers.a, case_id).json()["contacts"]} == {
        hexkey(P1),
        hexkey(P2),
        hexkey(P4),
    }
    assert tracers.b.client().delete(url).status_code == 404  # not the neighbour's case
    assert tracers.a.client().delete(url).status_code == 204
    assert not Case.objects.exists()
    assert AuditEntry.objects.filter(action="tracing.case.withdraw").exists()


def test_every_tracing_route_keeps_neighbouring_communes_apart(tracers, outbreak):
    """A case of each commune; each commune's tracer walks every route for the other's."""
    case_a = register(tracers.a).json()["id"]
    case_b = register(
        tracers.b,
        person_id=P3,
        confirmed_at="2021-08-28T10:00:00+07:00",
        window_start="2021-08-27T00:00:00+07:00",
    ).json()["id"]
    for me, mine, theirs, stranger in [(tracers.a, case_a, case_b, P3), (tracers.b, case_b, case_a, P4)]:
        c = me.client()
        assert [x["id"] for x in c.get("/api/v1/tracing/cases").json()] == [mine]
        assert c.get(f"/api/v1/tracing/cases/{theirs}").status_code == 404
        assert (
            c.patch(
                f"/api/v1/tracing/cases/{theirs}", {"note": "x"}, content_type="application/json"
            ).status_code
            == 404
        )
        assert c.delete(f"/api/v1/tracing/cases/{theirs}").status_code == 404
        seen = {
            x["person_key"]
            for x in c.get(f"/api/v1/tracing/cases/{theirs}/contacts", {"depth": 2})
            .json()
            .get("contacts", [])
        }
        assert hexkey(stranger) not in seen
        listed = c.get(f"/api/v1/tracing/cases/{theirs}/contacts/list", {"depth": 2}).content.decode(
            "utf-8-sig"
        )
        assert hexkey(stranger) not in listed
        ask = {"person_keys": [hexkey(stranger)], "purpose": "kiểm tra"}
        assert c.post(
            f"/api/v1/tracing/cases/{theirs}/identities", ask, content_type="application/json"
        ).status_code in (403, 404)
    assert Case.objects.count() == 2
    assert AuditEntry.objects.filter(action="tracing.cases").count() == 2
    assert AuditEntry.objects.filter(action="tracing.contacts").count() >= 4  # every trace left a row
