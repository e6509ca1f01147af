"""LEVEL-n's units are kept between requests (indicators.services._at_levels): what a caller sees must
still follow every change to the units at once, and each caller's area."""

from __future__ import annotations

import pytest

from dieuhanh.indicators import services
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from tests.factories import element, store

A, B, HCMC = "VN-2025:26743", "VN-2025:26740", "VN-2025:79"


@pytest.fixture
def figures(world):
    element("a")
    store("a", [(A, "202108", 30), (B, "202108", 10)])
    return world


def names(caller, ou: str = f"{HCMC};LEVEL-2") -> dict[str, str]:
    asked = {"dx": "a", "pe": "202108", "ou": ou, "empty": "true"}
    response = caller.client().get("/api/v1/analytics", asked)
    assert response.status_code == 200, response.content
    return {r["ou"]: r["ou_name"] for r in response.json()["rows"] if r["ou"] != HCMC}


def test_a_renamed_commune_is_named_anew_in_the_next_answer(figures):
    before = names(figures.leader)
    assert before[A] == "Phường Bến Thành" and before[B] == "Phường Sài Gòn"
    assert names(figures.leader) == before  # asked again: the same units
    Unit.objects.filter(pk=figures.commune_a.pk).update(name="Phường Bến Thành Mới")
    after = names(figures.leader)
    assert after[A] == "Phường Bến Thành Mới" and after[B] == "Phường Sài Gòn"


def test_each_caller_gets_the_units_of_their_own_area(figures):
    assert set(names(figures.leader)) >= {A, B}
    assert set(names(figures.operator_a, "USER_ORGUNIT;LEVEL-2")) == {A}
    assert set(names(figures.operator_b, "USER_ORGUNIT;LEVEL-2")) == {B}
    assert set(names(figures.leader)) >= {A, B}  # the leader's kept list is not the operators'


def test_the_same_bounds_asked_from_two_areas_are_kept_apart(figures):
    """The kept list is per area too: the nation's communes seen from the nation, then from a ward."""
    nation = Unit.objects.ref("VN-2025:VN")
    everywhere = services.units_named(["LEVEL-2"], edition="VN-2025", area=Area.of(nation), roots=[nation])
    assert {A, B} <= {u.ref for u in everywhere}
    ward = Area.of(figures.commune_a)
    seen = services.units_named(["LEVEL-2"], edition="VN-2025", area=ward, roots=[nation])
    assert [u.ref for u in seen] == [A]
