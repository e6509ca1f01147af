"""The enterprise world, on the shared test world (tests/conftest.py): an industrial park in Bến Thành
with two factories, a third factory standing alone in Sài Gòn, and an enterprise officer on each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.warehouse.enterprises.services import (
    EnterpriseInput,
    WorkerInput,
    create_enterprise,
    import_roster,
)
from tests.conftest import Caller, World, make_caller
from tests.warehouse.conftest import record

EVERYWHERE = Area(True, frozenset())
CCCD_1 = "079201000001"  # a worker of factory 1
CCCD_2 = "079201000002"  # a worker of factory 2
CCCD_3 = "079201000003"  # a worker of the Sài Gòn factory


@dataclass
class Firms:
    world: World
    park: Unit
    one: Unit  # in the park
    two: Unit  # in the park
    alone: Unit  # in Sài Gòn, no park
    park_officer: Caller
    officer_one: Caller
    officer_two: Caller


def register(kind: str, tax: str, name: str, **where) -> Unit:
    return create_enterprise(actor=None, data=EnterpriseInput(kind, tax, name, **where), area=EVERYWHERE)


@pytest.fixture
def firms(world) -> Firms:
    park = register("industrial_park", "0300000001", "KCN Thử nghiệm", commune="VN-2025:26743")
    one = register("enterprise", "0300000011", "Nhà máy Một", commune="26743", park=park.ref)
    two = register("enterprise", "0300000012", "Nhà máy Hai", commune="26743", park=park.ref)
    alone = register("enterprise", "0300000013", "Xưởng Sài Gòn", commune="26740")
    return Firms(
        world,
        park,
        one,
        two,
        alone,
        park_officer=make_caller("kcn-officer", park, "enterprise"),
        officer_one=make_caller("one-officer", one, "enterprise"),
        officer_two=make_caller("two-officer", two, "enterprise"),
    )


def roster(unit, *people, start=date(2021, 7, 1), end=None):
    items = [(n, WorkerInput(p, start, end)) for n, p in enumerate(people, start=1)]
    return import_roster(actor=None, enterprise=unit, workers=items)


@pytest.fixture
def tested(firms, platform):
    """Factory one's worker tested positive in Hà Nội, factory two's negative in Bến Thành, the Sài
    Gòn factory's positive in Sài Gòn; a stranger positive in Bến Thành."""
    roster(firms.one, CCCD_1)
    roster(firms.two, CCCD_2)
    roster(firms.alone, CCCD_3)
    r = platform.send(
        "test",
        [
            record("test", 1, person_id=CCCD_1, commune="VN-2025:00004", result="positive"),
            record("test", 2, person_id=CCCD_2, commune="26743", result="negative"),
            record("test", 3, person_id=CCCD_3, commune="26740", result="positive"),
            record("test", 4, person_id="079201009999", commune="26743", result="positive"),
        ],
    )
    assert r.json()["accepted"] == 4
    return firms
