"""Tracing test helpers: check-ins written straight into the warehouse, by small integer people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from dieuhanh.units.services import get_unit
from dieuhanh.warehouse.models import CheckIn, Venue
from dieuhanh.warehouse.persons import person_key
from dieuhanh.warehouse.services import VenueInput, save_venue
from tests.conftest import Caller, make_caller
from tests.warehouse.conftest import CCCD_A, record

BASE = int(datetime(2021, 8, 20, tzinfo=UTC).timestamp())


def key(person: int) -> bytes:
    """A person key for test person n (real keys are HMACs; tracing only compares them)."""
    return person.to_bytes(2, "big") * 16


def write_stays(source, stays, venues: dict[int, Venue]) -> None:
    """Stays as (person, venue number, time_in epoch, time_out epoch or None) into warehouse_checkin."""
    CheckIn.objects.bulk_create(
        CheckIn(
            source=source,
            source_event_id=f"t{i}",
            commune_id=venues[s.venue].commune_id,
            at=datetime.fromtimestamp(s.time_in, UTC),
            time_out=datetime.fromtimestamp(s.time_out, UTC) if s.time_out is not None else None,
            person_key=key(s.person),
            venue=venues[s.venue],
        )
        for i, s in enumerate(stays)
    )


@pytest.fixture
def trace_venues(world) -> dict[int, Venue]:
    """Venue 0 and 1 in Bến Thành (0 without a dwell time), venue 2 in Sài Gòn (dwell 20 minutes)."""
    specs = [("T-BT-0", "26743", None), ("T-BT-1", "26743", 45), ("T-SG-2", "26740", 20)]
    return {
        n: save_venue(
            actor=None, venue=VenueInput(code, f"Điểm {code}", "other", commune, dwell_minutes=dwell)
        )
        for n, (code, commune, dwell) in enumerate(specs)
    }


# A small outbreak ingested through the real pipeline, for the API, page and browser tests.

CASE = CCCD_A  # lives in Bến Thành
P1, P2, P3, P4 = "0912345678", "0987654321", "0355555555", "0966666666"


def hexkey(person_id: str) -> str:
    return person_key(person_id).hex()


def stay(n: int, venue: str, person: str, time_in: str, time_out: str | None) -> dict:
    return record("checkin", n, venue=venue, person_id=person, time_in=time_in, time_out=time_out)


def home(n: int, person: str, commune: str) -> dict:
    return record("health", n, person_id=person, commune=commune, declared_at="2021-08-20T08:00:00+07:00")


@dataclass
class Tracers:
    national: Caller
    a: Caller  # Bến Thành
    b: Caller  # Sài Gòn, its neighbour
    far: Caller  # a commune in Hà Nội


@pytest.fixture
def tracers(world) -> Tracers:
    return Tracers(
        national=make_caller("national-tracer", world.nation, "tracer"),
        a=make_caller("benthanh-tracer", world.commune_a, "tracer"),
        b=make_caller("saigon-tracer", world.commune_b, "tracer"),
        far=make_caller("hanoi-tracer", get_unit("VN-2025:00004"), "tracer"),
    )


@pytest.fixture
def outbreak(platform, venues):
    """The case at Bến Thành market; P1 (lives in Sài Gòn) and P4 (Bến Thành) with it; P1 the next
    day at the Sài Gòn office with P2 (lives in Bến Thành) and P3 (Sài Gòn)."""
    homes = [
        home(1, CASE, "26743"),
        home(2, P1, "26740"),
        home(3, P2, "26743"),
        home(4, P3, "26740"),
        home(5, P4, "26743"),
    ]
    assert platform.send("health", homes).json()["accepted"] == 5
    market, office = "V-BT-CHO", "V-SG-VP"
    stays = [
        stay(1, market, CASE, "2021-08-26T09:00:00+07:00", "2021-08-26T09:40:00+07:00"),
        stay(2, market, P1, "2021-08-26T09:10:00+07:00", "2021-08-26T10:00:00+07:00"),
        stay(3, market, P4, "2021-08-26T09:45:00+07:00", "2021-08-26T10:30:00+07:00"),  # after the case left
        stay(4, office, P1, "2021-08-27T08:00:00+07:00", "2021-08-27T12:00:00+07:00"),
        stay(5, office, P2, "2021-08-27T08:30:00+07:00", "2021-08-27T09:00:00+07:00"),
        stay(6, office, P3, "2021-08-27T11:00:00+07:00", "2021-08-27T17:00:00+07:00"),
        stay(7, market, P3, "2021-08-20T09:00:00+07:00", "2021-08-20T10:00:00+07:00"),  # before the window
        stay(8, market, CASE, "2021-08-20T09:00:00+07:00", "2021-08-20T10:00:00+07:00"),
    ]
    assert platform.send("checkin", stays).json()["accepted"] == len(stays)


def register(caller: Caller, **body):
    payload = {"person_id": CASE, "confirmed_at": "2021-08-27T10:00:00+07:00", **body}
    return caller.client().post("/api/v1/tracing/cases", payload, content_type="application/json")


def contacts(caller: Caller, case_id: int, **params):
    return caller.client().get(f"/api/v1/tracing/cases/{case_id}/contacts", {"depth": 2, **params})


@pytest.fixture
def case_id(tracers, outbreak) -> int:
    response = register(tracers.a)
    assert response.status_code == 201, response.content
    return response.json()["id"]
