"""Tracing's "send to communes": each commune of residence gets a directive about its own contacts."""

from __future__ import annotations

from dieuhanh.directives.models import Directive
from tests.factories import P1, P2, P3, P4, hexkey, register


def send(caller, case_id: int, **body):
    return caller.client().post(
        f"/api/v1/tracing/cases/{case_id}/send", {"depth": 2, **body}, content_type="application/json"
    )


def test_each_commune_gets_its_own_residents_only(world, tracers, outbreak):
    case_id = register(tracers.national).json()["id"]
    report = send(tracers.national, case_id)
    assert report.status_code == 200, report.content
    body = report.json()
    assert sorted(s["unit"] for s in body["sent"]) == ["VN-2025:26740", "VN-2025:26743"]
    items = world.operator_a.client().get("/api/v1/inbox").json()["items"]
    assert len(items) == 1
    directive = items[0]["directive"]
    assert directive["title"] == f"Theo dõi 2 người tiếp xúc của ca bệnh #{case_id}"
    assert (directive["priority"], directive["kind"]) == ("urgent", "report_request")
    assert hexkey(P2)[:12] in directive["body"] and hexkey(P4)[:12] in directive["body"]
    assert hexkey(P1)[:12] not in directive["body"] and hexkey(P3)[:12] not in directive["body"]
    assert "0987654321" not in directive["body"]  # identities stay in the vault
    # Sending again adds nothing: each commune already has this case's list.
    again = send(tracers.national, case_id).json()
    assert again["sent"] == [] and sorted(again["already"]) == ["VN-2025:26740", "VN-2025:26743"]
    assert Directive.objects.count() == 2


def test_a_commune_tracer_sends_only_within_its_area(world, tracers, outbreak):
    case_id = register(tracers.a).json()["id"]
    body = send(tracers.a, case_id).json()
    assert [s["unit"] for s in body["sent"]] == ["VN-2025:26743"]
    assert body["outside"] == ["VN-2025:26740"]  # P1 lives in Sài Gòn: that commune's tracers send it
    assert Directive.objects.get().issuer_unit == world.commune_a
    assert send(world.operator_a, case_id).status_code == 403
    assert send(tracers.b, case_id).status_code == 404  # not Sài Gòn's case
