"""Tracing test helpers: check-ins written straight into the warehouse, by small integer people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dieuhanh.warehouse.models import CheckIn, Venue
from dieuhanh.warehouse.services import VenueInput, save_venue

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
