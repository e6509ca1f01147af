"""The tracing tests' venues for check-ins written straight into the warehouse, and a registered case
(the helpers and the outbreak are in tests/factories.py)."""

from __future__ import annotations

import pytest

from dieuhanh.warehouse.models import Venue
from dieuhanh.warehouse.services import VenueInput, save_venue
from tests.factories import register


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


@pytest.fixture
def case_id(tracers, outbreak) -> int:
    response = register(tracers.a)
    assert response.status_code == 201, response.content
    return response.json()["id"]
